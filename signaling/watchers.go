package signaling

import (
	"github.com/tandemcall/tandem/signaling/callcore"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// WHEP players (docs/protocol.md, "WHIP and WHEP") watch a room's call
// from outside it: they are not members, yet they see and hear it. So
// that nobody in a room is watched unknowingly, the members are told how
// many watch, whenever that changes and whenever they join, resume or
// take the call over on another device.

// AddWatcher counts one more WHEP viewer of the call callID and tells its
// members. It reports false if no such call runs on this node; the viewer
// must not be let in then.
func (h *Hub) AddWatcher(callID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.calls[callID]
	if c == nil || c.Phase == callcore.PhaseEnded {
		return false
	}
	c.watchers++
	h.tellWatchersLocked(c)
	return true
}

// RemoveWatcher counts one WHEP viewer of the call fewer and tells its
// members; for a call that has ended it does nothing.
func (h *Hub) RemoveWatcher(callID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.calls[callID]
	if c == nil || c.Phase == callcore.PhaseEnded || c.watchers == 0 {
		return
	}
	c.watchers--
	h.tellWatchersLocked(c)
}

// tellWatchersLocked tells every joined member's device, and the devices
// listening along with them, how many watch c now.
func (h *Hub) tellWatchersLocked(c *call) {
	for _, m := range c.joined() {
		c.sendWatchers(m.Dev)
		for _, s := range m.Listeners {
			c.sendWatchers(s)
		}
	}
}

// sendWatchers tells s how many watch c.
func (c *call) sendWatchers(s *Session) {
	s.send(protocol.TypeWatchers, &protocol.Watchers{CallID: c.ID, WHEP: c.watchers})
}

// greetWatchers tells s, a device that has just come into the call, how
// many watch it, if any do.
func (c *call) greetWatchers(s *Session) {
	if c.watchers > 0 {
		c.sendWatchers(s)
	}
}
