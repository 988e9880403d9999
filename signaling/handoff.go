package signaling

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/tandemcall/tandem/internal/clock"
	"github.com/tandemcall/tandem/sfu"
	"github.com/tandemcall/tandem/signaling/callcore"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// defaultHandoffTimeout is how long a device that takes over a call has,
// from its request, to carry the call's media, unless Config says; after it
// the call stays where it was.
const defaultHandoffTimeout = 15 * time.Second

// handoff is a call moving from one of a member's devices to another
// (DESIGN.md, "Handoff"): make before break. The new device connects a leg
// that takes over the old one's tracks in the SFU; once every other member
// receives the new leg's media, the new device becomes the member's leg
// and the old one is released with handed_off.
type handoff struct {
	leg    MediaLeg // the new device's leg, once its first offer came
	timer  clock.Timer
	ctx    context.Context
	cancel context.CancelFunc
}

// stop stops the handoff's clock and the wait for its takeover.
func (ho *handoff) stop() {
	ho.timer.Stop()
	ho.cancel()
}

// requestHandoff is a handoff message from s: a pull of the call to s
// (device empty) or a push from s to the user's device named device. keep,
// from a device listening along, asks to take the call on the leg it has.
func (h *Hub) requestHandoff(s *Session, callID, device string, keep bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, m, err := h.answeredCallLocked(s, callID)
	if err != nil {
		return err
	}
	if c.floor != nil {
		return fail(protocol.CodeInvalidState, "a push-to-talk room cannot be moved to another device")
	}
	if device != "" {
		// A push: the sender holds the call and names the device to take it.
		to := h.devices[s.user][device]
		if m.Dev == s && m.Move == nil && (to == nil || to == s) {
			return fail(protocol.CodeUserOffline, "no other device of yours named "+device+" is online")
		}
		effs, err := c.Offer(&m.Member, s, to, c.core())
		if err != nil {
			return moveError(err)
		}
		h.applyLocked(c, origin{}, effs)
		return nil
	}
	if err := c.CheckPull(&m.Member, s); err != nil {
		return moveError(err)
	}
	var kept MediaLeg
	if m.Listens(s) {
		// A device listening along takes the whole call (Pull ends its
		// listening). Its leg, which receives the others already, takes
		// over: the device starts sending on it and never stops seeing
		// and hearing them. A leg that cannot gives way to one the
		// device connects now.
		if leg := c.mediaOf(s); leg != nil {
			var err error
			if keep {
				err = leg.Replace(m.Dev.legID())
			}
			if keep && err == nil {
				kept = leg
			} else {
				if err != nil {
					s.log.Info("listening leg cannot take over", "call", c.ID, "err", err)
				}
				c.dropLegLocked(s)
				h.wg.Go(func() { _ = leg.Close() })
			}
		}
	}
	timeout := cmp.Or(h.cfg.HandoffTimeout, defaultHandoffTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	// Checked above: the pull stands.
	effs, _ := c.Pull(&m.Member, s, kept != nil, c.core())
	ho := &handoff{ctx: ctx, cancel: cancel, leg: kept}
	user := s.user
	ho.timer = h.clock.AfterFunc(timeout, func() {
		h.endHandoff(callID, user, s, "the new device did not connect in time")
	})
	m.handoff = ho
	h.applyLocked(c, origin{}, effs)
	h.dirtyLocked(c) // the snapshot names the device it moves to
	s.log.Info("handoff started", "call", c.ID, "from", m.Dev.device, "keeps_leg", kept != nil)
	if kept != nil {
		h.awaitTakeover(callID, s, ho)
	}
	return nil
}

// moveError is the protocol's error for a move callcore refused.
func moveError(err error) error {
	switch {
	case errors.Is(err, callcore.ErrMoving):
		return fail(protocol.CodeInvalidState, "the call is already moving to another device")
	case errors.Is(err, callcore.ErrHolds):
		return fail(protocol.CodeInvalidState, "this device already holds the call")
	case errors.Is(err, callcore.ErrNotHolder):
		return fail(protocol.CodeInvalidState, "only the device holding the call can send it elsewhere")
	}
	return fail(protocol.CodeNotInCall, "you are not in that call")
}

// awaitTakeover waits in the background until ho's new leg carries the
// member's media, then completes the handoff, or gives it up.
func (h *Hub) awaitTakeover(callID string, s *Session, ho *handoff) {
	leg := ho.leg
	h.wg.Go(func() {
		if err := leg.Takeover(ho.ctx); err != nil {
			h.endHandoff(callID, s.user, s, "the new device did not take over the media in time")
			return
		}
		h.completeHandoff(callID, s)
	})
}

// answeredCallLocked returns the answered call callID and s's user's
// place in it, which another of their devices may hold.
func (h *Hub) answeredCallLocked(s *Session, callID string) (*call, *member, error) {
	c, err := h.lookupLocked(callID)
	if err != nil {
		return nil, nil, err
	}
	m := c.members[s.user]
	switch {
	case m == nil || m.State != callcore.MemberJoined:
		return nil, nil, fail(protocol.CodeNotInCall, "you are not in that call")
	case c.Phase != callcore.PhaseActive:
		return nil, nil, fail(protocol.CodeInvalidState, "the call has not been answered yet")
	}
	return c, m, nil
}

// standby returns the handoff whose new device is s in c, if any. The
// caller holds the hub's mutex.
func (c *call) standby(s *Session) *handoff {
	if m := c.members[s.user]; m != nil && m.State == callcore.MemberJoined && m.handoff != nil && m.Move != nil && m.Move.To == s {
		return m.handoff
	}
	return nil
}

// canSignal reports whether s may negotiate media in c: the member's leg,
// the device a handoff moves it to, or one listening along.
func (c *call) canSignal(s *Session) bool {
	return c.Phase != callcore.PhaseEnded && (c.joinedBy(s) != nil || c.standby(s) != nil || c.listenerOf(s) != nil)
}

// joinStandby creates the media leg of a handoff's new device, taking over
// from the member's current leg, and waits in the background for the
// takeover. It reports false if s is not a handoff's new device.
func (h *Hub) joinStandby(s *Session, callID string, ev *legEvents) (MediaLeg, bool, error) {
	h.mu.Lock()
	c := h.calls[callID]
	var ho *handoff
	var from *Session
	if c != nil {
		if ho = c.standby(s); ho != nil {
			from = c.members[s.user].Move.From
		}
	}
	h.mu.Unlock()
	if ho == nil {
		return nil, false, nil
	}
	leg, err := h.media.JoinReplacing(sfu.RoomID(callID), s.legID(), s.user, ev, from.legID())
	if err != nil {
		return nil, true, err
	}
	h.mu.Lock()
	if c.standby(s) != ho || c.legs[s] != nil {
		h.mu.Unlock()
		_ = leg.Close()
		return nil, true, fail(protocol.CodeInvalidState, "the handoff has ended")
	}
	ho.leg = leg
	c.addLegLocked(s, leg, ev)
	h.mu.Unlock()
	h.awaitTakeover(callID, s, ho)
	return leg, true, nil
}

// completeHandoff makes s, whose leg now carries the member's media, the
// member's device and releases the old one with handed_off.
func (h *Hub) completeHandoff(callID string, s *Session) {
	h.mu.Lock()
	c := h.calls[callID]
	if c == nil || c.standby(s) == nil {
		h.mu.Unlock()
		return
	}
	m := c.members[s.user]
	m.handoff.stop()
	m.handoff = nil
	// Checked above: the move to s is under way.
	effs, old, _ := c.Moved(&m.Member, s, h.now())
	oldLeg := c.dropLegLocked(old)
	h.dirtyLocked(c)
	h.applyLocked(c, origin{}, effs)
	c.greetWatchers(s)
	h.announceLocked(s.user)
	h.helpedDeviceChangedLocked(c, s.user)
	h.mu.Unlock()
	s.log.Info("handoff complete", "call", callID, "from", old.device)
	h.metrics.handoffs.WithLabelValues("done").Inc()
	if oldLeg != nil {
		_ = oldLeg.Close()
	}
}

// endHandoff gives up the handoff to s, if it is still under way: the new
// device's leg is closed and both devices are told; the call stays with
// the old one.
func (h *Hub) endHandoff(callID, user string, s *Session, why string) {
	h.mu.Lock()
	c := h.calls[callID]
	var leg MediaLeg
	if c != nil {
		leg = h.dropHandoffLocked(c, c.members[user], s, why)
	}
	h.mu.Unlock()
	if leg != nil {
		_ = leg.Close()
	}
}

// dropHandoffLocked ends m's handoff to s (any handoff if s is nil) and
// returns the new leg to close after unlocking.
func (h *Hub) dropHandoffLocked(c *call, m *member, s *Session, why string) MediaLeg {
	if m == nil || m.handoff == nil {
		return nil
	}
	effs, mv := c.MoveFailed(&m.Member, s, why)
	if mv == nil {
		return nil
	}
	m.handoff.stop()
	m.handoff = nil
	leg := c.dropLegLocked(mv.To)
	h.applyLocked(c, origin{}, effs)
	h.dirtyLocked(c)
	h.log.Info("handoff failed", "call", c.ID, "user", m.User, "to", mv.To.device, "why", why)
	h.metrics.handoffs.WithLabelValues("failed").Inc()
	return leg
}

// announceLocked tells each of user's devices which device holds their call
// now, or that they are in none.
func (h *Hub) announceLocked(user string) {
	h.presenceChangedLocked(user, true)
	msg := h.activeCallLocked(user)
	for _, d := range h.devices[user] {
		d.send(protocol.TypeActiveCall, msg)
	}
}

// activeCallLocked describes user's active call for their devices: where
// it is, who is in it, which devices listen along and which are online
// to take it. No call gives an empty message.
func (h *Hub) activeCallLocked(user string) *protocol.ActiveCall {
	c := h.userCall[user]
	if c == nil || c.Phase != callcore.PhaseActive {
		return &protocol.ActiveCall{}
	}
	m := c.members[user]
	if m == nil || m.State != callcore.MemberJoined || m.Dev == nil {
		return &protocol.ActiveCall{}
	}
	online := make([]string, 0, len(h.devices[user]))
	for name := range h.devices[user] {
		online = append(online, name)
	}
	slices.Sort(online)
	return &protocol.ActiveCall{CallID: c.ID, Device: m.Dev.device, Video: c.Video, Members: c.parties(),
		Listening: m.listening(), Online: online}
}
