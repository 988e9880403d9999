package signaling

import (
	"time"

	"github.com/tandemcall/tandem/internal/clock"

	"github.com/tandemcall/tandem/sfu"
	"github.com/tandemcall/tandem/signaling/callcore"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// floor is the push-to-talk floor of a room (callcore.Floor's rules) and
// the timer of its holder's longest talk. The hub's mutex guards it.
type floor struct {
	callcore.Floor[*Session]
	timer clock.Timer
}

// floorRequest handles a floor request or release from s.
func (h *Hub) floorRequest(s *Session, callID, action string) error {
	h.mu.Lock()
	c, err := h.lookupLocked(callID)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	if c.joinedBy(s) == nil {
		h.mu.Unlock()
		return fail(protocol.CodeNotInCall, "this device is not a member of that room")
	}
	if c.floor == nil {
		h.mu.Unlock()
		return fail(protocol.CodeInvalidState, "this is not a push-to-talk room")
	}
	var changed bool
	var effs []callcore.Effect[*Session]
	switch action {
	case protocol.FloorRequest:
		changed, effs = c.floor.Request(s.user, h.now(), h.cfg.MaxTalk)
	case protocol.FloorRelease:
		changed, effs = c.floor.Release(s.user, h.now(), h.cfg.MaxTalk)
	}
	h.applyLocked(c, origin{}, effs)
	var apply func()
	if changed {
		apply = h.floorChangedLocked(c)
	}
	h.mu.Unlock()
	if apply != nil {
		apply()
	}
	return nil
}

// releaseLocked takes user off the floor or out of its queue (they left
// the room); the next in the queue gets the floor. It reports whether
// anything changed.
func (h *Hub) releaseLocked(c *call, user string) bool {
	if c.floor == nil {
		return false
	}
	changed, effs := c.floor.Release(user, h.now(), h.cfg.MaxTalk)
	h.applyLocked(c, origin{}, effs)
	return changed
}

// floorTimeout is the timer of the floor's grant gen: if its holder still
// talks, they have for MaxTalk and the floor passes on.
func (h *Hub) floorTimeout(callID string, gen uint64) {
	h.mu.Lock()
	c := h.calls[callID]
	if c == nil || c.floor == nil {
		h.mu.Unlock()
		return
	}
	user := c.floor.Holder()
	changed, effs := c.floor.Timeout(gen, h.now(), h.cfg.MaxTalk)
	if !changed {
		h.mu.Unlock()
		return
	}
	h.applyLocked(c, origin{}, effs)
	apply := h.floorChangedLocked(c)
	h.mu.Unlock()
	h.log.Info("floor timed out", "call", callID, "user", user)
	apply()
}

// floorChangedLocked tells every member the new floor and returns the
// media update to make once the lock is released.
func (h *Hub) floorChangedLocked(c *call) func() {
	st := func() protocol.EncodedMessage { return c.floorState(h.now()) }
	c.tellMembers(nil, protocol.TypeFloor, st)
	leg := h.floorLegLocked(c)
	return func() {
		if h.media != nil {
			h.media.SetFloor(c.mediaRoom(), leg)
		}
	}
}

// floorLegLocked is the media leg id of the floor holder ("" = nobody).
func (h *Hub) floorLegLocked(c *call) sfu.LegID {
	if c.floor == nil || c.floor.Holder() == "" {
		return ""
	}
	if m := c.members[c.floor.Holder()]; m != nil && m.State == callcore.MemberJoined {
		return m.Dev.legID()
	}
	return ""
}

// floorState is the floor message of c at now.
func (c *call) floorState(now time.Time) *protocol.FloorState {
	m := &protocol.FloorState{CallID: c.ID, Holder: c.floor.Holder(), Queue: c.floor.Queue()}
	if m.Queue == nil {
		m.Queue = []string{}
	}
	if m.Holder != "" {
		m.ExpiresMS = c.floor.Left(now).Milliseconds()
	}
	return m
}
