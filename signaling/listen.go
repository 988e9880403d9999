package signaling

import (
	"errors"
	"slices"

	"github.com/pion/sdp/v3"

	"github.com/tandemcall/tandem/signaling/callcore"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// A device may join its user's call as a second leg that only receives,
// while the call stays on the device holding it: listen on the TV while
// the phone stays in. The listener gets every other member's media and
// sends nothing; the others never see it. It leaves by hanging up, and
// ends with the member's part in the call.

// requestListen is a handoff message with listen set: s asks to listen
// along to its user's call.
func (h *Hub) requestListen(s *Session, callID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, m, err := h.answeredCallLocked(s, callID)
	if err != nil {
		return err
	}
	effs, err := c.Listen(&m.Member, s, c.core())
	switch {
	case errors.Is(err, callcore.ErrHolds):
		return fail(protocol.CodeInvalidState, "this device already holds the call")
	case errors.Is(err, callcore.ErrListening):
		return fail(protocol.CodeInvalidState, "this device already listens to the call")
	case errors.Is(err, callcore.ErrMovingHere):
		return fail(protocol.CodeInvalidState, "the call is moving to this device")
	case err != nil:
		return fail(protocol.CodeNotInCall, "you are not in that call")
	}
	h.applyLocked(c, origin{}, effs)
	h.dirtyLocked(c) // the snapshot names it: a node taking the call over ends its listening
	s.log.Info("listening along", "call", c.ID, "holder", m.Dev.device)
	return nil
}

// listenerOf returns the member s listens along for in c.
func (c *call) listenerOf(s *Session) *member {
	if m := c.members[s.user]; m != nil && m.State == callcore.MemberJoined && m.Listens(s) {
		return m
	}
	return nil
}

// isListener reports whether s listens along in the call.
func (h *Hub) isListener(s *Session, callID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.calls[callID]
	return c != nil && c.listenerOf(s) != nil
}

// listening tells a listener whose leg was just attached that it is in,
// and the user's devices that it listens.
func (h *Hub) listening(s *Session, callID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.calls[callID]
	if c == nil || c.listenerOf(s) == nil {
		return
	}
	s.send(protocol.TypeHandoff, &protocol.Handoff{CallID: c.ID, State: protocol.HandoffDone, Listen: true})
	c.greetWatchers(s)
	h.announceLocked(s.user)
}

// dropListenerLocked takes listener s out of m's call, telling it why
// unless its own connection is gone (gone), and returns its leg to close
// after unlocking.
func (h *Hub) dropListenerLocked(c *call, m *member, s *Session, reason string, gone bool) MediaLeg {
	effs, err := c.StopListening(&m.Member, s, reason, gone)
	if err != nil {
		return nil
	}
	h.applyLocked(c, origin{}, effs)
	h.dirtyLocked(c)
	leg := c.dropLegLocked(s)
	h.announceLocked(m.User)
	return leg
}

// listening lists the devices listening along to m's part in the call.
func (m *member) listening() []string {
	var out []string
	for _, s := range m.Listeners {
		out = append(out, s.device)
	}
	slices.Sort(out)
	return out
}

// sendsMedia reports whether an offer would send media: a section that is
// sendrecv or sendonly, said or by default. An offer that does not parse
// counts as sending; the SFU rejects it anyway.
func sendsMedia(offer string) bool {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return true
	}
	session := direction(d.Attributes, "sendrecv")
	for _, md := range d.MediaDescriptions {
		if md.MediaName.Port.Value == 0 {
			continue // rejected section
		}
		if dir := direction(md.Attributes, session); dir == "sendrecv" || dir == "sendonly" {
			return true
		}
	}
	return false
}

// direction returns the direction attribute among attrs, or def.
func direction(attrs []sdp.Attribute, def string) string {
	for _, a := range attrs {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return a.Key
		}
	}
	return def
}
