// Package callcore holds the rules of a call's life apart from the hub
// that carries them out: it sends nothing, reads no clock and starts no
// goroutine. A transition changes the state it is called on and returns
// the effects the caller must carry out, in order (messages to devices,
// timers to arm or disarm), so that each rule is a table test, and a ring
// timeout is a method call, not a wait.
//
// Devices are whatever the caller names them by (the hub: its sessions);
// the zero value of the type stands for "no device".
package callcore

import (
	"errors"
	"slices"
	"time"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// EffectKind is what an Effect asks of the caller.
type EffectKind int

const (
	// SendIncoming: tell Device the call rings for it.
	SendIncoming EffectKind = iota
	// SendEnded: tell Device the call stopped ringing for it, for Reason.
	SendEnded
	// ArmTimer: call the Timeout of the state that asked after After
	// (with Gen, where that Timeout takes one), unless it was disarmed.
	// A timer left over from a state that moved on meanwhile finds
	// Timeout doing nothing, so disarming is a saving, not a must.
	ArmTimer
	// DisarmTimer: the armed timer no longer matters.
	DisarmTimer
	// Send: send Msg, a message of Type, to Device.
	Send
)

// Effect is one thing the caller of a transition must do.
type Effect[D comparable] struct {
	Kind   EffectKind
	Device D
	Reason string
	After  time.Duration
	Gen    uint64 // of an ArmTimer: which grant or ring the timer is for
	// User is whose ring an effect of a Call's transition is for (its
	// SendIncoming, SendEnded and timers); "" for a Ring's own.
	User string
	Type string
	Msg  protocol.EncodedMessage
	// Timer is which timer an ArmTimer or DisarmTimer is about:
	// RingTimer, FloorTimer, or an Assist's.
	Timer string
	// Grants: of an Assist's effects (assist.go).
	Grants []string
}

// Timers of a Ring and a Floor (an Assist's are in assist.go).
const (
	RingTimer  = "ring"
	FloorTimer = "floor"
)

// Timeouts is how long a ring lasts: Ring for a user who is free, Waiting
// for one already in another call (call waiting), who needs longer to
// wrap up or switch.
type Timeouts struct {
	Ring, Waiting time.Duration
}

// ringState is where a Ring is in its life.
type ringState int

const (
	ringing ringState = iota
	answered
	over
)

// Errors of Answer.
var (
	ErrNotRung  = errors.New("callcore: this device was not rung for the call")
	ErrAnswered = errors.New("callcore: the call was already answered")
	ErrOver     = errors.New("callcore: the call no longer rings")
)

// Ring is one user's invitation into a call: every device of theirs that
// shows it, from the moment it rings until one device answers, the user
// declines, or it ends unanswered. After an answer it names the one
// device that holds the call (which a move to another device changes).
type Ring[D comparable] struct {
	devices []D // in the order they were rung
	waiting bool
	state   ringState
}

// NewRing rings a user's devices devs; waiting says the user is in
// another call already.
func NewRing[D comparable](devs []D, waiting bool, t Timeouts) (*Ring[D], []Effect[D]) {
	r := &Ring[D]{waiting: waiting}
	var effs []Effect[D]
	for _, d := range devs {
		if !slices.Contains(r.devices, d) {
			r.devices = append(r.devices, d)
			effs = append(effs, Effect[D]{Kind: SendIncoming, Device: d})
		}
	}
	after := t.Ring
	if waiting {
		after = t.Waiting
	}
	return r, append(effs, Effect[D]{Kind: ArmTimer, Timer: RingTimer, After: after})
}

// AnsweredOn is the ring of a member who holds the call on d without
// having been rung there: after a move to d, a resumed session, a call
// taken over from another node.
func AnsweredOn[D comparable](d D) *Ring[D] {
	return &Ring[D]{devices: []D{d}, state: answered}
}

// Rings reports whether d was rung (and, after the answer, whether d is
// the device that holds the call).
func (r *Ring[D]) Rings(d D) bool { return r != nil && slices.Contains(r.devices, d) }

// Ringing reports whether the ring still waits for an answer.
func (r *Ring[D]) Ringing() bool { return r != nil && r.state == ringing }

// Waiting reports whether the user was in another call when rung.
func (r *Ring[D]) Waiting() bool { return r != nil && r.waiting }

// Devices returns the devices rung, in the order they were.
func (r *Ring[D]) Devices() []D { return slices.Clone(r.devices) }

// Add rings d too: a device of the user that came online while the call
// rang for them.
func (r *Ring[D]) Add(d D) []Effect[D] {
	if r == nil || r.state != ringing || slices.Contains(r.devices, d) {
		return nil
	}
	r.devices = append(r.devices, d)
	return []Effect[D]{{Kind: SendIncoming, Device: d}}
}

// Drop forgets d, gone offline: it is told nothing more. The ring goes on
// (another device may come online) until it times out.
func (r *Ring[D]) Drop(d D) {
	if r == nil {
		return
	}
	r.devices = slices.DeleteFunc(r.devices, func(x D) bool { return x == d })
}

// Answer takes the call on d: the user's other devices stop ringing, told
// it was answered elsewhere.
func (r *Ring[D]) Answer(d D) ([]Effect[D], error) {
	switch {
	case !r.Rings(d):
		return nil, ErrNotRung
	case r.state == answered:
		return nil, ErrAnswered
	case r.state == over:
		return nil, ErrOver
	}
	effs := []Effect[D]{{Kind: DisarmTimer, Timer: RingTimer}}
	for _, o := range r.devices {
		if o != d {
			effs = append(effs, Effect[D]{Kind: SendEnded, Device: o, Reason: protocol.ReasonAnsweredElsewhere})
		}
	}
	r.devices, r.state = []D{d}, answered
	return effs, nil
}

// Refusal is the reason a ring that ends for reason (declined, no answer)
// gives its caller: busy if the user was in another call, whatever they
// did about this one.
func (r *Ring[D]) Refusal(reason string) string {
	if r.Waiting() {
		return protocol.ReasonBusy
	}
	return reason
}

// End stops the ring for reason, telling every device rung. If by, a
// device rung, ended it (declined), it hears declined and the others
// declined elsewhere. Ending a ring that was answered or is over does
// nothing.
func (r *Ring[D]) End(reason string, by D) []Effect[D] {
	if r == nil || r.state != ringing {
		return nil
	}
	declined := slices.Contains(r.devices, by)
	effs := []Effect[D]{{Kind: DisarmTimer, Timer: RingTimer}}
	for _, d := range r.devices {
		why := reason
		switch {
		case declined && d == by:
			why = protocol.ReasonDeclined
		case declined:
			why = protocol.ReasonDeclinedElsewhere
		}
		effs = append(effs, Effect[D]{Kind: SendEnded, Device: d, Reason: why})
	}
	r.devices, r.state = nil, over
	return effs
}

// Timeout is the armed timer firing. It reports whether the ring was still
// waiting for an answer: then the caller ends it, as no answer (Refusal
// turns that into busy for a user in another call). A timer of a ring
// answered or ended since reports false.
func (r *Ring[D]) Timeout() bool { return r.Ringing() }
