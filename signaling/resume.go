package signaling

import (
	"cmp"
	"time"

	"github.com/tandemcall/tandem/signaling/callcore"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// defaultReconnectGrace is how long a call leg whose signaling socket was
// lost keeps its place, unless Config says (DESIGN.md, "Reconnect").
const defaultReconnectGrace = 20 * time.Second

// A leg whose socket fails (no close frame: the network went, the phone
// slept) is not ended at once. Its media connections carry on, and the
// member stays in the call for the grace window; when the same device
// signs in again, its new session takes over the leg and hears resumed.
// After the window the member leaves with connection_lost. A client that
// closes its socket on purpose leaves at once, as before.

// detachLocked holds m's place in c while s, its leg's lost session, is
// gone.
func (h *Hub) detachLocked(c *call, m *member, s *Session) {
	grace := cmp.Or(h.cfg.ReconnectGrace, defaultReconnectGrace)
	id, user := c.ID, m.User
	if m.detached != nil {
		m.detached.Stop()
	}
	m.detached = h.clock.AfterFunc(grace, func() { h.graceOver(id, user, s) })
	h.log.Info("leg offline; holding its place", "call", c.ID, "user", m.User, "device", s.device, "grace", grace)
}

// graceOver ends the leg of s in the call if its device has not come back.
func (h *Hub) graceOver(callID, user string, s *Session) {
	var e *endResult
	h.mu.Lock()
	if c := h.calls[callID]; c != nil {
		if m := c.members[user]; m != nil && m.State == callcore.MemberJoined && m.Dev == s && m.detached != nil {
			m.detached = nil
			e = h.leaveLocked(c, m, protocol.ReasonConnectionLost, s)
		}
	}
	h.mu.Unlock()
	if e != nil {
		h.finish(e)
	}
}

// resumeLocked gives s, now its device's session, the legs of the
// device's earlier session: one lost and held for the grace window, or one
// s has just replaced whose loss the server has not seen yet (a network
// that went away without a word). The legs move now, before s reads its
// first message: a client that sends on its new socket at once (an ICE
// restart for the new network) would otherwise be refused as no leg of
// the call until the replaced session had wound down.
func (h *Hub) resumeLocked(s *Session) {
	for _, c := range h.calls {
		m := c.members[s.user]
		if m != nil && m.State == callcore.MemberJoined && m.Dev != nil && m.Dev != s && m.Dev.device == s.device {
			h.reattachLocked(c, m, s)
		}
	}
}

// reattachLocked makes s, a new session of the device whose leg m had, the
// member's leg: the media leg and its events move to it.
func (h *Hub) reattachLocked(c *call, m *member, s *Session) {
	if m.detached != nil {
		m.detached.Stop()
		m.detached = nil
	}
	old := m.Dev
	if l := c.legs[old]; l != nil {
		delete(c.legs, old)
		c.legs[s] = l
		if l.events != nil {
			l.events.sess.Store(s)
		}
	}
	// No media leg here (the call was taken over from a node that went
	// away): the device connects its media anew.
	rejoin := c.legs[s] == nil && h.cluster != nil
	h.applyLocked(c, origin{}, c.Resume(&m.Member, s, rejoin, c.core()))
	c.greetWatchers(s)
	s.log.Info("call resumed", "call", c.ID)
}
