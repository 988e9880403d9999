package callcore

import (
	"errors"
	"slices"
	"time"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// Move is a call moving from one of a member's devices to another, make
// before break (DESIGN.md, "Handoff"): the member stays on From until the
// media of To has taken over, then To holds their place and From is
// released; if the move fails, the call stays on From.
type Move[D comparable] struct {
	From, To D
}

// Errors of moving a call.
var (
	ErrMoving    = errors.New("callcore: the call is already moving to another device")
	ErrHolds     = errors.New("callcore: this device already holds the call")
	ErrNotHolder = errors.New("callcore: only the device holding the call can send it elsewhere")
	ErrNotMoving = errors.New("callcore: no move to that device is under way")
	ErrNotJoined = errors.New("callcore: the user is not in the call")
)

// checkMove reports why joined member m's call may not move now.
func (c *Call[D]) checkMove(m *Member[D]) error {
	switch {
	case m == nil || m.State != MemberJoined || c.Phase != PhaseActive:
		return ErrNotJoined
	case m.Move != nil:
		return ErrMoving
	}
	return nil
}

// Offer is a push: from, the device that holds m's place, asks to, another
// device of theirs, to take the call. to is offered it, and takes it with
// a Pull.
func (c *Call[D]) Offer(m *Member[D], from, to D, ms []*Member[D]) ([]Effect[D], error) {
	if err := c.checkMove(m); err != nil {
		return nil, err
	}
	if m.Dev != from {
		return nil, ErrNotHolder
	}
	if to == from {
		return nil, ErrHolds
	}
	return []Effect[D]{send(to, protocol.TypeHandoff, &protocol.Handoff{CallID: c.ID, State: protocol.HandoffOffer,
		Device: c.Party(from).Device, Video: c.Video, Members: c.Parties(ms)})}, nil
}

// CheckPull reports why m's place may not move to their device to now.
func (c *Call[D]) CheckPull(m *Member[D], to D) error {
	if err := c.checkMove(m); err != nil {
		return err
	}
	if m.Dev == to {
		return ErrHolds
	}
	return nil
}

// Pull starts moving m's place to their device to: to is told to connect
// its media (keep: on the leg it already listens along with). A device
// listening along stops listening: it takes the whole call. The move ends
// with Moved or MoveFailed.
func (c *Call[D]) Pull(m *Member[D], to D, keep bool, ms []*Member[D]) ([]Effect[D], error) {
	if err := c.CheckPull(m, to); err != nil {
		return nil, err
	}
	m.Listeners = slices.DeleteFunc(m.Listeners, func(d D) bool { return d == to })
	m.Move = &Move[D]{From: m.Dev, To: to}
	return []Effect[D]{send(to, protocol.TypeHandoff, &protocol.Handoff{CallID: c.ID, State: protocol.HandoffStarted,
		Device: c.Party(m.Dev).Device, Video: c.Video, Members: c.Parties(ms), Keep: keep})}, nil
}

// Moved completes m's move to to, whose media has taken over: to holds
// their place, and the device it moved from hears handed_off. It returns
// that device.
func (c *Call[D]) Moved(m *Member[D], to D, now time.Time) ([]Effect[D], D, error) {
	var zero D
	if m == nil || m.Move == nil || m.Move.To != to {
		return nil, zero, ErrNotMoving
	}
	old := m.Dev
	m.Move, m.Dev, m.Ring = nil, to, AnsweredOn(to)
	return []Effect[D]{
		send(old, protocol.TypeEnded, &protocol.Ended{CallID: c.ID, Reason: protocol.ReasonHandedOff,
			DurationMS: now.Sub(m.Joined).Milliseconds(), Device: c.Party(to).Device}),
		send(to, protocol.TypeHandoff, &protocol.Handoff{CallID: c.ID, State: protocol.HandoffDone, Device: c.Party(old).Device}),
	}, old, nil
}

// MoveFailed gives up m's move (only the one to to, unless to is zero)
// for why: the call stays where it was. The device that was to take it
// hears failed; so does the one that holds it, naming the other.
func (c *Call[D]) MoveFailed(m *Member[D], to D, why string) ([]Effect[D], *Move[D]) {
	var zero D
	if m == nil || m.Move == nil || (to != zero && m.Move.To != to) {
		return nil, nil
	}
	mv := m.Move
	m.Move = nil
	effs := []Effect[D]{send(mv.To, protocol.TypeHandoff, &protocol.Handoff{CallID: c.ID, State: protocol.HandoffFailed, Message: why})}
	if m.Dev != zero && m.Dev != mv.To {
		effs = append(effs, send(mv.From, protocol.TypeHandoff, &protocol.Handoff{CallID: c.ID, State: protocol.HandoffFailed,
			Device: c.Party(mv.To).Device, Message: why}))
	}
	return effs, mv
}

// Resume gives m's place back to to, a new connection of the device that
// held it, whose connection dropped within the grace the call keeps a
// place for: to is told it is in the call again (rejoin: with no media
// leg left, so it connects its media anew).
func (c *Call[D]) Resume(m *Member[D], to D, rejoin bool, ms []*Member[D]) []Effect[D] {
	m.Dev, m.Ring = to, AnsweredOn(to)
	return []Effect[D]{send(to, protocol.TypeResumed, &protocol.Resumed{CallID: c.ID, Room: c.Room, Video: c.Video,
		Members: c.Parties(ms), Rejoin: rejoin})}
}
