package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/tandemcall/tandem/internal/store"
)

// Passkeys (WebAuthn): a person registers one from an invite link and
// signs in with it on any device that has it. The ceremony's challenge is
// kept in the store until its finish takes it, once: a replayed answer
// finds no ceremony.

// ceremonyTTL is how long a person has to answer their device's prompt.
const ceremonyTTL = 5 * time.Minute

// Errors of the ceremonies.
var (
	// ErrHostName: browsers bind passkeys to a host name, never to an
	// address.
	ErrHostName = errors.New("passkeys need this server opened by its name (such as https://call.example.org or http://localhost), not by an IP address: the operator sets accounts.public_url")
	ErrCeremony = errors.New("the sign-in took too long or was already used: try again")
	ErrPasskey  = errors.New("that passkey was not accepted")
)

// ceremony is what a begun ceremony keeps for its finish.
type ceremony struct {
	Kind    string               `json:"kind"` // "register" or "login"
	Session webauthn.SessionData `json:"session"`
	// Of a registration: the invite, and the person it will make.
	Invite string `json:"invite,omitempty"`
	User   string `json:"user,omitempty"`
	Name   string `json:"name,omitempty"`
	// Data is another kind's own state (an identity provider's sign-in).
	Data json.RawMessage `json:"data,omitempty"`
}

// waUser is a person as the WebAuthn library sees them. The user handle
// is the person's id.
type waUser struct {
	id, name string
	creds    []webauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                         { return []byte(u.id) }
func (u *waUser) WebAuthnName() string                       { return u.id }
func (u *waUser) WebAuthnDisplayName() string                { return u.name }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// relyingParty is the WebAuthn relying party for a request: the public
// URL's host, or the host the request came to. Either way the browser
// binds the passkey to the page's own origin, which is checked.
func (s *Service) relyingParty(r *http.Request) (*webauthn.WebAuthn, error) {
	origin := s.cfg.PublicURL
	if origin == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		origin = scheme + "://" + r.Host
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("accounts: bad public URL %q", origin)
	}
	host := u.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if net.ParseIP(strings.Trim(host, "[]")) != nil {
		return nil, ErrHostName
	}
	return webauthn.New(&webauthn.Config{
		RPID: host, RPDisplayName: s.cfg.Name, RPOrigins: []string{origin},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: ceremonyTTL},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: ceremonyTTL},
		},
	})
}

// putCeremony keeps c and returns its id.
func (s *Service) putCeremony(ctx context.Context, c ceremony) (string, error) {
	id := secret(18)
	b, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	return id, s.store.PutCeremony(ctx, id, b, s.now().Add(ceremonyTTL))
}

// takeCeremony returns the ceremony id of kind, once.
func (s *Service) takeCeremony(ctx context.Context, id, kind string) (ceremony, error) {
	b, err := s.store.TakeCeremony(ctx, id, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return ceremony{}, ErrCeremony
	}
	if err != nil {
		return ceremony{}, err
	}
	var c ceremony
	if err := json.Unmarshal(b, &c); err != nil || c.Kind != kind {
		return ceremony{}, ErrCeremony
	}
	return c, nil
}

// Begun is a ceremony begun: its id, and the options for the browser's
// navigator.credentials call.
type Begun struct {
	Ceremony string `json:"ceremony"`
	Options  any    `json:"options"`
}

// InviteInfo is what an invite link shows before anyone registers.
type InviteInfo struct {
	For       string    `json:"for,omitempty"`
	Inviter   string    `json:"inviter,omitempty"` // the inviter's name
	Owner     bool      `json:"owner,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

// CheckInvite says whether an invite link holds, and who made it.
func (s *Service) CheckInvite(ctx context.Context, sec string) (InviteInfo, error) {
	inv, err := s.checkInvite(ctx, sec)
	if err != nil {
		s.metrics.invite(err)
		return InviteInfo{}, err
	}
	info := InviteInfo{For: inv.For, Owner: inv.Role == store.RoleOwner, ExpiresAt: inv.Expires}
	if p, err := s.store.Person(ctx, inv.By); err == nil {
		info.Inviter = p.Name
	}
	return info, nil
}

// BeginRegister starts registering a passkey for a new person named name
// from the invite link's secret.
func (s *Service) BeginRegister(ctx context.Context, r *http.Request, invite, name string) (Begun, error) {
	name, err := cleanName(name)
	if err != nil {
		return Begun{}, err
	}
	inv, err := s.checkInvite(ctx, invite)
	if err != nil {
		s.metrics.invite(err)
		return Begun{}, err
	}
	id, err := s.freeID(ctx, name)
	if err != nil {
		return Begun{}, err
	}
	rp, err := s.relyingParty(r)
	if err != nil {
		return Begun{}, err
	}
	opts, session, err := rp.BeginRegistration(&waUser{id: id, name: name},
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: protocol.VerificationPreferred,
		}))
	if err != nil {
		return Begun{}, err
	}
	cid, err := s.putCeremony(ctx, ceremony{Kind: "register", Session: *session, Invite: inv.Hash, User: id, Name: name})
	if err != nil {
		return Begun{}, err
	}
	return Begun{Ceremony: cid, Options: opts}, nil
}

// freeID is a user id for name not taken now.
func (s *Service) freeID(ctx context.Context, name string) (string, error) {
	base := slug(name)
	for i := 1; i <= 50; i++ {
		id := base
		if i > 1 {
			id = fmt.Sprintf("%s-%d", base, i)
		}
		_, err := s.store.Person(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return id, nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", errors.New("too many people with that name: choose another")
}

// FinishRegister checks the browser's new passkey, takes a use of the
// invite, and makes the person, their passkey and this device. The
// inviter and the new person become each other's contacts.
func (s *Service) FinishRegister(ctx context.Context, r *http.Request, ceremonyID string, response []byte, deviceName string) (SignedIn, error) {
	c, err := s.takeCeremony(ctx, ceremonyID, "register")
	if err != nil {
		return SignedIn{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		s.metrics.signIn("register", "bad_response")
		return SignedIn{}, fmt.Errorf("%w: %v", ErrPasskey, err)
	}
	rp, err := s.relyingParty(r)
	if err != nil {
		return SignedIn{}, err
	}
	cred, err := rp.CreateCredential(&waUser{id: c.User, name: c.Name}, c.Session, parsed)
	if err != nil {
		s.metrics.signIn("register", "refused")
		return SignedIn{}, fmt.Errorf("%w: %v", ErrPasskey, err)
	}
	inv, err := s.store.RedeemInvite(ctx, c.Invite, s.now())
	if err != nil {
		err = inviteError(err)
		s.metrics.invite(err)
		return SignedIn{}, err
	}
	p := store.Person{ID: c.User, Name: c.Name, Role: inv.Role, Created: s.now()}
	if err := s.store.CreatePerson(ctx, p); errors.Is(err, store.ErrExists) {
		return SignedIn{}, errors.New("someone took that name a moment ago: try again")
	} else if err != nil {
		return SignedIn{}, err
	}
	if err := s.store.TouchUser(ctx, p.ID); err != nil {
		return SignedIn{}, err
	}
	data, _ := json.Marshal(cred)
	if err := s.store.AddPasskey(ctx, store.Passkey{ID: cred.ID, User: p.ID, Data: data, Created: s.now(), LastUsed: s.now()}); err != nil {
		return SignedIn{}, err
	}
	if inv.By != "" {
		if err := s.contactAdded(ctx, inv.By, p.ID); err != nil {
			s.log.Warn("inviter not made a contact", "err", err)
		}
	}
	s.welcomeToFamily(ctx, p.ID)
	s.metrics.invites.Inc()
	s.metrics.signIn("register", "ok")
	s.log.Info("person registered", "user", p.ID, "role", p.Role, "invited_by", inv.By)
	return s.newDevice(ctx, p, deviceName)
}

func inviteError(err error) error {
	switch {
	case errors.Is(err, store.ErrExpired):
		return ErrInviteExpired
	case errors.Is(err, store.ErrUsedUp):
		return ErrInviteUsedUp
	case errors.Is(err, store.ErrNotFound):
		return ErrInviteInvalid
	}
	return err
}

// BeginLogin starts signing in with a passkey: any passkey of this
// server that the device has.
func (s *Service) BeginLogin(ctx context.Context, r *http.Request) (Begun, error) {
	rp, err := s.relyingParty(r)
	if err != nil {
		return Begun{}, err
	}
	opts, session, err := rp.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationPreferred))
	if err != nil {
		return Begun{}, err
	}
	cid, err := s.putCeremony(ctx, ceremony{Kind: "login", Session: *session})
	if err != nil {
		return Begun{}, err
	}
	return Begun{Ceremony: cid, Options: opts}, nil
}

// FinishLogin checks the browser's answer and signs this device in as
// the passkey's person.
func (s *Service) FinishLogin(ctx context.Context, r *http.Request, ceremonyID string, response []byte, deviceName string) (SignedIn, error) {
	c, err := s.takeCeremony(ctx, ceremonyID, "login")
	if err != nil {
		s.metrics.signIn("passkey", "ceremony")
		return SignedIn{}, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		s.metrics.signIn("passkey", "bad_response")
		return SignedIn{}, fmt.Errorf("%w: %v", ErrPasskey, err)
	}
	rp, err := s.relyingParty(r)
	if err != nil {
		return SignedIn{}, err
	}
	var person store.Person
	find := func(rawID, userHandle []byte) (webauthn.User, error) {
		k, err := s.store.Passkey(ctx, rawID)
		if err != nil {
			return nil, ErrPasskey
		}
		if string(userHandle) != k.User {
			return nil, ErrPasskey // a passkey presented under another person's handle
		}
		if person, err = s.active(ctx, k.User); err != nil {
			return nil, err
		}
		keys, err := s.store.Passkeys(ctx, k.User)
		if err != nil {
			return nil, err
		}
		u := &waUser{id: person.ID, name: person.Name}
		for _, k := range keys {
			var cred webauthn.Credential
			if json.Unmarshal(k.Data, &cred) == nil {
				u.creds = append(u.creds, cred)
			}
		}
		return u, nil
	}
	_, cred, err := rp.ValidatePasskeyLogin(find, c.Session, parsed)
	if err != nil {
		if errors.Is(err, ErrDisabled) {
			s.metrics.signIn("passkey", "disabled")
			return SignedIn{}, err
		}
		s.metrics.signIn("passkey", "refused")
		return SignedIn{}, fmt.Errorf("%w: %v", ErrPasskey, err)
	}
	if cred.Authenticator.CloneWarning {
		s.log.Warn("a passkey's signature counter went back: it may have been copied", "user", person.ID)
	}
	data, _ := json.Marshal(cred)
	if err := s.store.UpdatePasskey(ctx, cred.ID, data, s.now()); err != nil {
		s.log.Warn("passkey use not noted", "err", err)
	}
	s.metrics.signIn("passkey", "ok")
	return s.newDevice(ctx, person, deviceName)
}
