package signaling

import (
	"context"
	"time"

	"github.com/tandemcall/tandem/internal/adminapi"
	"github.com/tandemcall/tandem/internal/cluster"
	"github.com/tandemcall/tandem/signaling/callcore"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// Presence (docs/protocol.md, "Contacts and presence"): a person's contacts
// see whether they are available, in a call, or offline and since when;
// nobody else does. A device is told of all its person's contacts when it
// signs in, then of each change. A change is noticed where it happens
// (announceLocked: a device came or went, a call began or ended), worked
// out by a worker that runs while changes wait, and on a deployment told
// to the other nodes, which each work it out from the shared state and
// tell their own devices.

// ContactBook is who sees whose presence: a person's contacts, and when
// someone was last seen (internal/accounts).
type ContactBook interface {
	ContactIDs(ctx context.Context, user string) ([]string, error)
	LastSeen(ctx context.Context, user string) (time.Time, error)
	// Seen notes that user's device was in use at t (its session ended).
	Seen(ctx context.Context, user, device string, t time.Time)
	// ExportAccount is user's account for their data archive; nil for
	// someone without one.
	ExportAccount(ctx context.Context, user string) (*adminapi.AccountExport, error)
	// EraseAccount removes user's account, devices, passkeys and contacts.
	EraseAccount(ctx context.Context, user string) error
	// Relation says whether callee has an account, and whether caller is
	// among their contacts.
	Relation(ctx context.Context, caller, callee string) (account, contact bool, err error)
}

// checkRelation is the contacts' say on a call from caller to callee:
// refused when callee takes calls only from contacts and caller is not
// one; otherwise whether it rings as a call from a stranger.
func (h *Hub) checkRelation(caller, callee string) (stranger bool, err error) {
	if h.contacts == nil {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	account, contact, err := h.contacts.Relation(ctx, caller, callee)
	if err != nil {
		h.log.Warn("contacts unreadable", "err", err)
		return false, fail(protocol.CodeUnavailable, "the call service cannot reach its shared state; try again shortly")
	}
	if account && !contact && h.cfg.ContactsOnly {
		return false, fail(protocol.CodeNotAContact, callee+" takes calls only from their people: ask them for an invite")
	}
	return account && !contact, nil
}

// SetContactBook turns presence on; call it before serving.
func (h *Hub) SetContactBook(b ContactBook) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.contacts = b
	h.watchers = map[string]map[*Session]bool{}
	h.shown = map[string]string{}
	h.presDirty = map[string]bool{}
}

// watchContacts makes s see its person's contacts' presence, and tells it
// where each is now.
func (h *Hub) watchContacts(s *Session) {
	if h.contacts == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ids, err := h.contacts.ContactIDs(ctx, s.user)
	if err != nil {
		s.log.Warn("contacts not loaded: no presence for this device", "err", err)
		return
	}
	h.mu.Lock()
	if h.devices[s.user][s.device] != s {
		h.mu.Unlock()
		return // gone already
	}
	s.sees = map[string]bool{}
	for _, id := range ids {
		h.watchLocked(s, id)
	}
	h.mu.Unlock()
	if len(ids) == 0 {
		return // nobody to tell of (or no account): a first contact comes as a change
	}
	people := make([]protocol.PersonPresence, 0, len(ids))
	for _, id := range ids {
		people = append(people, h.presenceOf(ctx, id))
	}
	s.send(protocol.TypePresence, &protocol.Presence{People: people})
}

func (h *Hub) watchLocked(s *Session, user string) {
	s.sees[user] = true
	w := h.watchers[user]
	if w == nil {
		w = map[*Session]bool{}
		h.watchers[user] = w
	}
	w[s] = true
}

// unwatchLocked ends s seeing anyone's presence.
func (h *Hub) unwatchLocked(s *Session) {
	for user := range s.sees {
		if w := h.watchers[user]; w != nil {
			delete(w, s)
			if len(w) == 0 {
				delete(h.watchers, user)
			}
		}
	}
	s.sees = nil
}

// ContactAdded makes a and b see each other's presence on every device
// (an invite was used, a contact request accepted), here and on the
// other nodes of a deployment.
func (h *Hub) ContactAdded(a, b string) {
	h.contactAdded(a, b)
	if h.cluster != nil {
		h.cluster.Broadcast(&cluster.Envelope{Kind: cluster.KindContact, User: a, Device: b})
	}
}

func (h *Hub) contactAdded(a, b string) {
	if h.contacts == nil {
		return
	}
	h.mu.Lock()
	for _, p := range [][2]string{{a, b}, {b, a}} {
		for _, s := range h.devices[p[0]] {
			if s.remote == nil && s.sees != nil {
				h.watchLocked(s, p[1])
			}
		}
	}
	// Each is told of the other as of a change.
	delete(h.shown, a)
	delete(h.shown, b)
	h.presenceChangedLocked(a, false)
	h.presenceChangedLocked(b, false)
	h.mu.Unlock()
}

// sharedPresenceChanged notes a change of user's presence once the shared
// presence says it: the other nodes work presence out from it, and told
// before it was written they would see the device as it was.
func (h *Hub) sharedPresenceChanged(user string) {
	h.mu.Lock()
	h.presenceChangedLocked(user, true)
	h.mu.Unlock()
}

// presenceChangedLocked notes that user's presence may have changed; local
// says the change happened on this node (the other nodes are told).
func (h *Hub) presenceChangedLocked(user string, local bool) {
	if h.contacts == nil || h.closed {
		return
	}
	h.presDirty[user] = h.presDirty[user] || local
	if !h.presRunning {
		h.presRunning = true
		h.wg.Add(1)
		go h.presenceWorker()
	}
}

// presenceWorker works out the presence of the users noted, and tells
// their contacts' devices here of each change, until none wait.
func (h *Hub) presenceWorker() {
	defer h.wg.Done()
	for {
		h.mu.Lock()
		dirty := h.presDirty
		if len(dirty) == 0 || h.closed {
			h.presRunning = false
			h.mu.Unlock()
			return
		}
		h.presDirty = map[string]bool{}
		h.mu.Unlock()
		if h.cluster != nil {
			h.recorded() // the call directory says what this node just did
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for user, local := range dirty {
			if local && h.cluster != nil {
				h.cluster.Broadcast(&cluster.Envelope{Kind: cluster.KindPresence, User: user})
			}
			h.mu.Lock()
			watched := len(h.watchers[user]) > 0
			h.mu.Unlock()
			if !watched {
				continue
			}
			p := h.presenceOf(ctx, user)
			h.mu.Lock()
			if h.shown[user] != p.State {
				h.shown[user] = p.State
				msg := &protocol.Presence{People: []protocol.PersonPresence{p}}
				for s := range h.watchers[user] {
					s.send(protocol.TypePresence, msg)
				}
			}
			h.mu.Unlock()
		}
		cancel()
	}
}

// presenceOf works user's presence out: from this node's sessions and
// calls, and on a deployment from the shared presence and call directory.
func (h *Hub) presenceOf(ctx context.Context, user string) protocol.PersonPresence {
	h.mu.Lock()
	online := false
	for _, s := range h.devices[user] {
		online = online || s.remote == nil
	}
	inCall := false
	if c := h.userCall[user]; c != nil && c.Phase == callcore.PhaseActive {
		m := c.members[user]
		inCall = m != nil && m.State == callcore.MemberJoined
	}
	h.mu.Unlock()
	if h.cluster != nil {
		if devs, err := h.cluster.Presence(ctx, user); err == nil && len(devs) > 0 {
			online = true
		}
		if homes, err := h.dir.UserHomes(ctx, user); err == nil && len(homes) == 1 && homes[0].Call != "" {
			inCall = true
		}
	}
	p := protocol.PersonPresence{User: user, State: protocol.PresenceOffline}
	switch {
	case inCall:
		p.State = protocol.PresenceInCall
	case online:
		p.State = protocol.PresenceAvailable
	default:
		if t, err := h.contacts.LastSeen(ctx, user); err == nil && !t.IsZero() {
			p.LastSeenMS = t.UnixMilli()
		}
	}
	return p
}
