package signaling

import (
	"cmp"

	"github.com/tandemcall/tandem/internal/clock"
	"github.com/tandemcall/tandem/signaling/callcore"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// origin is the state whose transition returned effects, where the effect
// alone does not say: the member whose ring it was, or the assistance
// (which a call that ends has already let go of). The zero origin is the
// call's: effects name their member by User.
type origin struct {
	m *member
	a *assist
}

// applyLocked carries out, in order, what a transition of c's state asks:
// every kind of callcore effect, of rings, calls, the floor and
// assistance, is carried out here and nowhere else. The caller holds h.mu.
func (h *Hub) applyLocked(c *call, o origin, effs []callcore.Effect[*Session]) {
	for _, e := range effs {
		m := o.m
		if m == nil && e.User != "" {
			m = c.members[e.User]
		}
		switch e.Kind {
		case callcore.Send:
			e.Device.send(e.Type, e.Msg)
		case callcore.SendIncoming:
			if m != nil {
				e.Device.send(protocol.TypeIncoming, c.incoming(m))
			}
		case callcore.SendEnded:
			e.Device.send(protocol.TypeEnded, &protocol.Ended{CallID: c.ID, Reason: e.Reason})
		case callcore.ArmTimer:
			h.armLocked(c, m, o.a, e)
		case callcore.DisarmTimer:
			if t := timerOf(c, m, o.a, e.Timer); t != nil {
				stopTimer(t)
			}
		case callcore.Audit:
			h.auditLocked(c, o.a, e.Type, e.Grants, e.Reason)
		case callcore.TellAssist:
			h.tellAssistLocked(c, o.a, e.Reason)
		case callcore.ApplyAssist:
			h.applyAssistLocked(c, o.a)
			h.dirtyLocked(c) // the snapshot names the grants a takeover takes back
		}
	}
}

// timerOf is where the timer named by an effect is kept: a member's ring,
// the floor's longest talk, an assistance's request or control idle. Nil
// if the state it belongs to is gone.
func timerOf(c *call, m *member, a *assist, name string) *clock.Timer {
	switch {
	case name == callcore.RingTimer && m != nil:
		return &m.timer
	case name == callcore.FloorTimer && c.floor != nil:
		return &c.floor.timer
	case name == callcore.RequestTimer && a != nil:
		return &a.reqTimer
	case name == callcore.IdleTimer && a != nil:
		return &a.idleTimer
	}
	return nil
}

// armLocked (re)starts the timer an ArmTimer effect names, on the hub's
// clock. Each fires into the transition of the state that armed it, which
// does nothing if that state has moved on since (callcore's Gen and the
// checks below).
func (h *Hub) armLocked(c *call, m *member, a *assist, e callcore.Effect[*Session]) {
	t := timerOf(c, m, a, e.Timer)
	if t == nil {
		return
	}
	stopTimer(t)
	id, gen := c.ID, e.Gen
	switch e.Timer {
	case callcore.RingTimer:
		user, r := m.User, m.Ring
		*t = h.clock.AfterFunc(e.After, func() { h.ringTimeout(id, user, r) })
	case callcore.FloorTimer:
		*t = h.clock.AfterFunc(e.After, func() { h.floorTimeout(id, gen) })
	case callcore.RequestTimer:
		*t = h.clock.AfterFunc(cmp.Or(e.After, h.cfg.AssistRequestTimeout, defaultAssistRequestTimeout), func() {
			h.assistRequestTimeout(id, a, gen)
		})
	case callcore.IdleTimer:
		h.armIdleLocked(c, a)
	}
}

// stopTimer stops the timer *t, if any, and forgets it.
func stopTimer(t *clock.Timer) {
	if *t != nil {
		(*t).Stop()
		*t = nil
	}
}
