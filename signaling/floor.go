package signaling

import (
	"slices"
	"time"

	"github.com/tandemcall/tandem/sfu"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// floor is the push-to-talk floor of a room: one holder at a time, a
// queue behind them, and a longest talk time. The hub's mutex guards it.
type floor struct {
	holder string // user; "" = free
	queue  []string
	until  time.Time
	timer  *time.Timer
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
	f, changed := c.floor, false
	switch action {
	case protocol.FloorRequest:
		switch {
		case f.holder == "":
			h.grantLocked(c, s.user)
			changed = true
		case f.holder != s.user && !slices.Contains(f.queue, s.user):
			f.queue = append(f.queue, s.user)
			changed = true
		}
	case protocol.FloorRelease:
		changed = h.releaseLocked(c, s.user)
	}
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

// grantLocked gives the floor to user for at most MaxTalk.
func (h *Hub) grantLocked(c *call, user string) {
	f := c.floor
	f.holder = user
	f.until = h.now().Add(h.cfg.MaxTalk)
	until, id := f.until, c.id
	f.timer = time.AfterFunc(h.cfg.MaxTalk, func() { h.floorTimeout(id, user, until) })
}

// releaseLocked takes user off the floor or out of its queue; the next in
// the queue gets the floor. It reports whether anything changed.
func (h *Hub) releaseLocked(c *call, user string) bool {
	f := c.floor
	if f == nil {
		return false
	}
	if f.holder != user {
		n := len(f.queue)
		f.queue = slices.DeleteFunc(f.queue, func(u string) bool { return u == user })
		return len(f.queue) != n
	}
	if f.timer != nil {
		f.timer.Stop()
	}
	f.holder, f.timer = "", nil
	if len(f.queue) > 0 {
		next := f.queue[0]
		f.queue = f.queue[1:]
		h.grantLocked(c, next)
	}
	return true
}

// floorTimeout passes the floor on when its holder talked for MaxTalk.
func (h *Hub) floorTimeout(callID, user string, until time.Time) {
	h.mu.Lock()
	c := h.calls[callID]
	if c == nil || c.floor == nil || c.floor.holder != user || !c.floor.until.Equal(until) {
		h.mu.Unlock()
		return
	}
	h.releaseLocked(c, user)
	apply := h.floorChangedLocked(c)
	h.mu.Unlock()
	h.log.Info("floor timed out", "call", callID, "user", user)
	apply()
}

// floorChangedLocked tells every member the new floor and returns the
// media update to make once the lock is released.
func (h *Hub) floorChangedLocked(c *call) func() {
	f := c.floor
	st := func() protocol.EncodedMessage {
		m := &protocol.FloorState{CallID: c.id, Holder: f.holder, Queue: slices.Clone(f.queue)}
		if m.Queue == nil {
			m.Queue = []string{}
		}
		if f.holder != "" {
			m.ExpiresMS = max(f.until.Sub(h.now()).Milliseconds(), 0)
		}
		return m
	}
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
	if c.floor == nil || c.floor.holder == "" {
		return ""
	}
	if m := c.members[c.floor.holder]; m != nil && m.state == memberJoined {
		return m.dev.legID()
	}
	return ""
}
