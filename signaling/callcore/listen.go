package callcore

import (
	"errors"
	"slices"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// Errors of listening along.
var (
	ErrListening   = errors.New("callcore: this device already listens to the call")
	ErrMovingHere  = errors.New("callcore: the call is moving to this device")
	ErrNotListener = errors.New("callcore: this device does not listen to the call")
)

// Listen adds dev, another device of joined member m, as a receive-only
// second leg of theirs (listen on the TV while the phone stays in): it is
// told to connect, naming the device that holds the call.
func (c *Call[D]) Listen(m *Member[D], dev D, ms []*Member[D]) ([]Effect[D], error) {
	switch {
	case m == nil || m.State != MemberJoined || c.Phase != PhaseActive:
		return nil, ErrNotJoined
	case m.Dev == dev:
		return nil, ErrHolds
	case slices.Contains(m.Listeners, dev):
		return nil, ErrListening
	case m.Move != nil && m.Move.To == dev:
		return nil, ErrMovingHere
	}
	m.Listeners = append(m.Listeners, dev)
	return []Effect[D]{send(dev, protocol.TypeHandoff, &protocol.Handoff{CallID: c.ID, State: protocol.HandoffStarted, Listen: true,
		Device: c.Party(m.Dev).Device, Video: c.Video, Members: c.Parties(ms)})}, nil
}

// Listens reports whether dev listens along with m.
func (m *Member[D]) Listens(dev D) bool { return slices.Contains(m.Listeners, dev) }

// StopListening takes listener dev out of m's call, telling it reason
// unless its own connection is gone.
func (c *Call[D]) StopListening(m *Member[D], dev D, reason string, gone bool) ([]Effect[D], error) {
	if m == nil || !m.Listens(dev) {
		return nil, ErrNotListener
	}
	m.Listeners = slices.DeleteFunc(m.Listeners, func(d D) bool { return d == dev })
	if gone {
		return nil, nil
	}
	return []Effect[D]{send(dev, protocol.TypeEnded, &protocol.Ended{CallID: c.ID, Reason: reason})}, nil
}
