package accounts

import (
	"context"
	"errors"
	"time"

	"github.com/tandemcall/tandem/internal/store"
)

// Contacts come from invites (inviter and invitee), from a request one
// person on the server makes and the other accepts, and, in a family
// circle (accounts.family_circle), from everyone knowing everyone.

// contactRequestRate bounds the requests one person makes: a family adds
// a few people; a stranger sending requests to every id is slowed.
var contactRequestRate = store.Rate{Every: 3 * time.Minute, Burst: 20}

// Errors of contact requests.
var (
	ErrNoSuchPerson = errors.New("there is nobody with that user id on this server")
	ErrSelf         = errors.New("you cannot add yourself")
)

// RequestContact is actor asking to be to's contact. If to had asked
// actor already, they become contacts at once: added reports that.
func (s *Service) RequestContact(ctx context.Context, actor, to string) (added bool, err error) {
	if _, err := s.active(ctx, actor); err != nil {
		return false, err
	}
	if actor == to {
		return false, ErrSelf
	}
	if _, err := s.store.Person(ctx, to); errors.Is(err, store.ErrNotFound) {
		return false, ErrNoSuchPerson
	} else if err != nil {
		return false, err
	}
	if rel, err := s.isContact(ctx, actor, to); err != nil || rel {
		return rel, err
	}
	if err := s.store.RemoveContactRequest(ctx, to, actor); err == nil {
		return true, s.contactAdded(ctx, actor, to) // they had asked: both want it
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	d, err := s.store.Allow(ctx, "contact-request:"+actor, contactRequestRate, s.now())
	if err != nil {
		return false, err
	}
	if !d.Allowed {
		return false, &RetryError{After: d.RetryAfter}
	}
	return false, s.store.RequestContact(ctx, actor, to, s.now())
}

// AcceptContact is actor accepting from's request: they are contacts.
func (s *Service) AcceptContact(ctx context.Context, actor, from string) error {
	if _, err := s.active(ctx, actor); err != nil {
		return err
	}
	if err := s.store.RemoveContactRequest(ctx, from, actor); errors.Is(err, store.ErrNotFound) {
		return ErrNoRequest
	} else if err != nil {
		return err
	}
	return s.contactAdded(ctx, actor, from)
}

// ErrNoRequest: there is no such request (withdrawn, or answered).
var ErrNoRequest = errors.New("that person has not asked to be your contact, or it was answered already")

// DeclineContact is actor declining from's request.
func (s *Service) DeclineContact(ctx context.Context, actor, from string) error {
	if err := s.store.RemoveContactRequest(ctx, from, actor); errors.Is(err, store.ErrNotFound) {
		return ErrNoRequest
	} else if err != nil {
		return err
	}
	return nil
}

// ContactRequests lists who asks to be actor's contact, with their names.
func (s *Service) ContactRequests(ctx context.Context, actor string) ([]ContactView, error) {
	rs, err := s.store.ContactRequests(ctx, actor)
	if err != nil {
		return nil, err
	}
	out := make([]ContactView, 0, len(rs))
	for _, r := range rs {
		v := ContactView{User: r.User, Name: r.User, Since: r.Since}
		if p, err := s.store.Person(ctx, r.User); err == nil {
			v.Name = p.Name
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Service) isContact(ctx context.Context, a, b string) (bool, error) {
	cs, err := s.store.Contacts(ctx, a)
	for _, c := range cs {
		if c.User == b {
			return true, err
		}
	}
	return false, err
}

// familyLimit bounds the people a family circle links each to each.
const familyLimit = 200

// JoinFamily makes everyone with an account everyone's contact, when the
// server is a family circle: at start, and for each new person.
func (s *Service) JoinFamily(ctx context.Context) error {
	if !s.cfg.FamilyCircle {
		return nil
	}
	people, err := s.store.People(ctx)
	if err != nil {
		return err
	}
	if len(people) > familyLimit {
		s.log.Warn("a family circle of more people than it links", "people", len(people), "limit", familyLimit)
		return nil
	}
	for i, a := range people {
		for _, b := range people[i+1:] {
			if err := s.store.AddContact(ctx, a.ID, b.ID, s.now()); err != nil {
				return err
			}
		}
	}
	return nil
}

// welcomeToFamily makes a new person everyone's contact in a family
// circle.
func (s *Service) welcomeToFamily(ctx context.Context, user string) {
	if !s.cfg.FamilyCircle {
		return
	}
	people, err := s.store.People(ctx)
	if err != nil || len(people) > familyLimit {
		return
	}
	for _, p := range people {
		if p.ID != user {
			if err := s.contactAdded(ctx, p.ID, user); err != nil {
				s.log.Warn("family circle not joined", "err", err)
				return
			}
		}
	}
}
