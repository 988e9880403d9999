package callcore

import (
	"cmp"
	"errors"
	"slices"
	"time"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// Phase is where a call is in its life.
type Phase int

const (
	// PhaseRinging: the first invitee has not answered yet.
	PhaseRinging Phase = iota
	// PhaseActive: answered (or a room someone joined), and going on.
	PhaseActive
	// PhaseEnded: over for everyone.
	PhaseEnded
)

// MemberState is where one user is in a call.
type MemberState int

const (
	// MemberRinging: their devices ring.
	MemberRinging MemberState = iota
	// MemberJoined: one device of theirs holds their place.
	MemberJoined
	// MemberGone: they declined, did not answer, or left.
	MemberGone
)

// Member is one user's place in a call: their devices ringing, then the
// one device that joined, then gone.
type Member[D comparable] struct {
	User string
	// Dev is the device that holds their place once joined.
	Dev D
	// Ring is their devices rung for the call, then the one that holds
	// it; nil for the caller and room members.
	Ring  *Ring[D]
	State MemberState
	// Inviter is the device that invited them; zero for the caller and
	// room members.
	Inviter D
	Joined  time.Time
	Left    time.Time
	Reason  string // why they left, for their history entry
	// Move is their place moving to another of their devices, while it
	// does.
	Move *Move[D]
	// Listeners are their other devices listening along, in the order
	// they started.
	Listeners []D
}

// Call is a call between users (one-to-one, growing into a group by
// invites) or a named room people join without ringing. Its members are
// kept by the caller, who hands them to each transition; Call keeps what
// is the call's own.
type Call[D comparable] struct {
	ID     string
	Caller string // who started it; "" for a room
	Callee string // whom they first called; "" for a room
	Room   string // the room's name; "" for a call
	Video  bool
	Phase  Phase
	// Started is when it was placed; Answered, when the first invitee
	// answered (a room: when it opened).
	Started, Answered time.Time
	// Party names a device as messages show it (user and device name).
	Party func(D) protocol.Party
}

// Errors of Answer.
var ErrOwnCall = errors.New("callcore: a caller cannot answer their own call")

// MemberParty is m as messages show them: their user and, once joined,
// their device.
func (c *Call[D]) MemberParty(m *Member[D]) protocol.Party {
	var zero D
	if m.Dev == zero {
		return protocol.Party{User: m.User}
	}
	return c.Party(m.Dev)
}

// Joined returns the joined members of ms in the order they joined.
func Joined[D comparable](ms []*Member[D]) []*Member[D] {
	var out []*Member[D]
	for _, m := range ms {
		if m.State == MemberJoined {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b *Member[D]) int {
		return cmp.Or(a.Joined.Compare(b.Joined), cmp.Compare(a.User, b.User))
	})
	return out
}

// Parties is the joined members of ms as messages show them, in the
// order they joined.
func (c *Call[D]) Parties(ms []*Member[D]) []protocol.Party {
	js := Joined(ms)
	out := make([]protocol.Party, len(js))
	for i, m := range js {
		out[i] = c.MemberParty(m)
	}
	return out
}

// CheckAnswer reports why dev may not answer m's ring, if it may not.
func (c *Call[D]) CheckAnswer(m *Member[D], dev D) error {
	switch {
	case m != nil && m.User == c.Caller && m.State != MemberRinging:
		return ErrOwnCall
	case m == nil || !m.Ring.Rings(dev):
		return ErrNotRung
	case m.State != MemberRinging || !m.Ring.Ringing():
		return ErrAnswered
	}
	return nil
}

// Answer takes m's ring on dev, one of the members ms of the call. The
// first answer makes the call active: the caller and dev are told, each
// with the other as its peer. A later one, into a running call, tells dev
// (its peer: who invited it) and the others (member_joined). first
// reports the first answer.
func (c *Call[D]) Answer(m *Member[D], dev D, ms []*Member[D], now time.Time) (effs []Effect[D], first bool, err error) {
	if err := c.CheckAnswer(m, dev); err != nil {
		return nil, false, err
	}
	ring, err := m.Ring.Answer(dev)
	if err != nil {
		return nil, false, err
	}
	effs = forUser(m.User, ring)
	m.State, m.Dev, m.Joined = MemberJoined, dev, now
	me := c.MemberParty(m)
	if c.Phase == PhaseRinging {
		c.Phase, c.Answered = PhaseActive, now
		members := c.Parties(ms)
		caller := c.member(ms, c.Caller)
		return append(effs,
			send(caller.Dev, protocol.TypeAccepted, &protocol.Accepted{CallID: c.ID, By: me, Peer: me, Members: members}),
			send(dev, protocol.TypeAccepted, &protocol.Accepted{CallID: c.ID, By: me, Peer: c.MemberParty(caller), Members: members}),
		), true, nil
	}
	var zero D
	var inviter protocol.Party
	if m.Inviter != zero {
		inviter = c.Party(m.Inviter)
	}
	effs = append(effs, send(dev, protocol.TypeAccepted, &protocol.Accepted{CallID: c.ID, By: me, Peer: inviter, Members: c.Parties(ms)}))
	for _, o := range Joined(ms) {
		if o != m {
			effs = append(effs, send(o.Dev, protocol.TypeMemberJoined, &protocol.MemberJoined{CallID: c.ID, Member: me}))
		}
	}
	return effs, false, nil
}

// Leave takes joined member m out of the call for reason; lost is the
// device whose connection dropped, if that is why (it is told nothing).
// A call left with fewer than two members, or a room left empty, ends
// instead: then Leave changes nothing and reports ends, and the caller
// calls End.
func (c *Call[D]) Leave(m *Member[D], ms []*Member[D], reason string, lost D, now time.Time) (effs []Effect[D], ends bool) {
	if LeaveEnds(c.Room != "", len(Joined(ms))) {
		return nil, true
	}
	m.State, m.Left, m.Reason = MemberGone, now, reason
	if !(reason == protocol.ReasonConnectionLost && m.Dev == lost) {
		effs = append(effs, send(m.Dev, protocol.TypeEnded, &protocol.Ended{CallID: c.ID, Reason: reason, DurationMS: now.Sub(m.Joined).Milliseconds()}))
	}
	return append(effs, c.tellLeft(m, ms, reason)...), false
}

// Unring ends ringing member m's ring for reason (declined, no answer;
// busy whatever it was, for a user in another call); by is the device
// that declined, if one did. While the call waits for its first answer,
// that ends the whole call: then Unring changes nothing and returns the
// reason the caller must End it with.
func (c *Call[D]) Unring(m *Member[D], ms []*Member[D], reason string, by D, now time.Time) (effs []Effect[D], endReason string) {
	reason = m.Ring.Refusal(reason)
	if c.Phase == PhaseRinging {
		return nil, reason
	}
	m.State, m.Left, m.Reason = MemberGone, now, reason
	effs = forUser(m.User, m.Ring.End(reason, by))
	return append(effs, c.tellLeft(m, ms, reason)...), ""
}

// tellLeft tells the joined members of ms that m left for reason.
func (c *Call[D]) tellLeft(m *Member[D], ms []*Member[D], reason string) []Effect[D] {
	var effs []Effect[D]
	for _, o := range Joined(ms) {
		if o != m {
			effs = append(effs, send(o.Dev, protocol.TypeMemberLeft, &protocol.MemberLeft{CallID: c.ID, User: m.User, Reason: reason}))
		}
	}
	return effs
}

// End ends the call for reason and tells each member in their own terms:
// a joined device the call's reason (but lost, the device whose loss
// ended it), a device still ringing its RingEndReason, which a user rung
// into a running call also keeps for their history. by is the device
// whose action or loss ended the call, if any: lost, it is told nothing;
// one that declined hears declined, and the user's others declined
// elsewhere. A device a member's place was moving to, and one listening
// along, hears the call's reason too. End returns how long the call ran since its answer.
func (c *Call[D]) End(ms []*Member[D], reason string, by D, now time.Time) (effs []Effect[D], dur time.Duration) {
	wasActive := c.Phase == PhaseActive
	c.Phase = PhaseEnded
	if !c.Answered.IsZero() {
		dur = now.Sub(c.Answered)
	}
	for _, m := range ms {
		if mv := m.Move; mv != nil {
			m.Move = nil
			effs = append(effs, send(mv.To, protocol.TypeEnded, &protocol.Ended{CallID: c.ID, Reason: reason, DurationMS: dur.Milliseconds()}))
		}
		for _, l := range m.Listeners {
			effs = append(effs, send(l, protocol.TypeEnded, &protocol.Ended{CallID: c.ID, Reason: reason, DurationMS: dur.Milliseconds()}))
		}
		m.Listeners = nil
		switch m.State {
		case MemberJoined:
			if !(reason == protocol.ReasonConnectionLost && m.Dev == by) {
				effs = append(effs, send(m.Dev, protocol.TypeEnded, &protocol.Ended{CallID: c.ID, Reason: reason, DurationMS: dur.Milliseconds()}))
			}
		case MemberRinging:
			r := RingEndReason(wasActive, reason)
			if wasActive {
				m.Reason = r
			}
			effs = append(effs, forUser(m.User, m.Ring.End(r, by))...)
		}
	}
	return effs, dur
}

// member returns the member of ms who is user.
func (c *Call[D]) member(ms []*Member[D], user string) *Member[D] {
	for _, m := range ms {
		if m.User == user {
			return m
		}
	}
	return &Member[D]{User: user}
}

// send is an Effect that sends msg to d.
func send[D comparable](d D, typ string, msg protocol.EncodedMessage) Effect[D] {
	return Effect[D]{Kind: Send, Device: d, Type: typ, Msg: msg}
}

// forUser marks ring effects as user's.
func forUser[D comparable](user string, effs []Effect[D]) []Effect[D] {
	for i := range effs {
		effs[i].User = user
	}
	return effs
}

// LeaveEnds reports whether a member leaving ends the call they leave,
// joined counting the members in it before they go: a call needs two
// people, a room one.
func LeaveEnds(room bool, joined int) bool {
	left := joined - 1
	return left < 1 || !room && left < 2
}

// RingEndReason is what a user still being rung hears when the call ends
// for reason: a call that ends before anyone answered ends for them as it
// ends (cancelled, no answer, failed); a running call that ends while they
// were rung into it was, for them, cancelled.
func RingEndReason(answered bool, reason string) string {
	if answered {
		return protocol.ReasonCancelled
	}
	return reason
}
