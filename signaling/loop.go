package signaling

import (
	"errors"

	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/sfu"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// loop is the session's event loop: events posted by pion callbacks and
// by the hub, and a proxy's forwarded messages, are handled here, one at
// a time with the reader's.
func (s *Session) loop() {
	for {
		select {
		case <-s.inbox.ready:
			for _, ev := range s.inbox.take() {
				select {
				case <-s.done:
					return
				default:
				}
				s.dispatch(ev)
			}
		case <-s.done:
			return
		}
	}
}

func (s *Session) handle(ev any) {
	h := s.hub
	if in, ok := ev.(inbound); ok {
		if s.forwarded(in) {
			return
		}
		ev = in.msg
	}
	var re string
	var err error
	var ackCall string
	ack := false
	switch m := ev.(type) {
	case *protocol.Hello:
		re, err = m.ID, fail(protocol.CodeHelloRequired, "already signed in")
	case *protocol.Header: // ping
		s.send(protocol.TypePong, &protocol.Header{ID: m.ID})
		return
	case *protocol.Invite:
		re, ack = m.ID, true
		if err = s.callGrant(); err != nil {
			break
		}
		ackCall, err = h.invite(s, m.To, m.Video, m.CallID)
		if rq, ok := err.(*reqError); ok {
			h.metrics.invites.WithLabelValues(rq.code).Inc() // refused before anything rang
		}
	case *protocol.Join:
		re, ack = m.ID, true
		if err = s.callGrant(); err != nil {
			break
		}
		ackCall, err = h.join(s, m.Room, m.Mode)
	case *protocol.Floor:
		re, ack, ackCall = m.ID, true, m.CallID
		err = h.floorRequest(s, m.CallID, m.Action)
	case *protocol.CallRef:
		re, ack, ackCall = m.ID, true, m.CallID
		switch m.Type {
		case protocol.TypeRinging:
			ack = false // fire and forget: errors only
			err = h.ringing(s, m.CallID)
		case protocol.TypeDecline:
			err = h.decline(s, m.CallID)
		case protocol.TypeHangup:
			err = h.hangup(s, m.CallID)
		case protocol.TypeAssistEnd:
			err = h.assistEnd(s, m.CallID)
		}
	case *protocol.Assist:
		re, ack, ackCall = m.ID, true, m.CallID
		switch m.Type {
		case protocol.TypeAssist:
			if err = s.assistGrant(); err == nil {
				err = h.assistStart(s, m.CallID, m.Helped, m.Grants)
			}
		case protocol.TypeAssistRequest:
			err = h.assistRequest(s, m.CallID, m.Grants)
		case protocol.TypeAssistGrant:
			err = h.assistSetGrants(s, m.CallID, m.Grants)
		}
	case *protocol.Clipboard:
		re, ack, ackCall = m.ID, true, m.CallID
		err = h.assistClipboard(s, m)
	case *protocol.AssistScreens:
		re, ack, ackCall = m.ID, true, m.CallID
		err = h.assistScreens(s, m.CallID, &protocol.AssistScreens{CallID: m.CallID, Screens: m.Screens, Shown: m.Shown})
	case *protocol.AssistPick:
		re, ack, ackCall = m.ID, true, m.CallID
		err = h.assistScreens(s, m.CallID, &protocol.AssistPick{CallID: m.CallID, Screen: m.Screen})
	case *protocol.Accept:
		re, ack, ackCall = m.ID, true, m.CallID
		if err = s.callGrant(); err != nil {
			break
		}
		err = h.accept(s, m.CallID, m.EndCurrent)
	case *protocol.SDP:
		re, ackCall = m.ID, m.CallID
		err = s.handleSDP(m)
	case *protocol.ICE:
		re, ackCall = m.ID, m.CallID
		err = s.handleICE(m)
	case *protocol.Media:
		re, ackCall = m.ID, m.CallID
		err = h.relayMedia(s, m)
	case *protocol.View:
		re, ackCall = m.ID, m.CallID
		err = s.handleView(m)
	case *protocol.Handoff:
		re, ack, ackCall = m.ID, true, m.CallID
		if err = s.callGrant(); err != nil {
			break
		}
		if m.Listen {
			err = h.requestListen(s, m.CallID)
		} else {
			err = h.requestHandoff(s, m.CallID, m.Device, m.Keep)
			if err == nil && m.Device == "" {
				s.openStandby(m.CallID)
			}
		}
	case mediaFailed:
		h.mediaFailed(s, m.callID)
		return
	}
	if err != nil {
		var rerr *reqError
		if errors.As(err, &rerr) {
			s.send(protocol.TypeError, &protocol.Error{Re: re, Code: rerr.code, Message: rerr.msg, CallID: ackCall,
				RetryAfterMS: retryMS(rerr.retry)})
		} else {
			s.log.Error("request failed", "err", err)
			s.sendError(re, protocol.CodeInternal, "the server failed on this request", ackCall)
		}
		return
	}
	if ack && h.cluster != nil {
		h.recorded() // what is acknowledged is recorded for the other nodes
	}
	if ack && (re != "" || ackCall != "") {
		s.send(protocol.TypeAck, &protocol.Ack{Re: re, CallID: ackCall})
	}
}

// callGrant refuses call actions to a token without the call grant.
func (s *Session) callGrant() error {
	if !s.ident.Has(auth.GrantCall) {
		return fail(protocol.CodeForbidden, "the access token does not allow calls")
	}
	return nil
}

// handleSDP applies a pub offer (creating the leg on first use) or a sub
// answer.
func (s *Session) handleSDP(m *protocol.SDP) error {
	h := s.hub
	leg, ev, err := h.legOf(s, m.CallID)
	if err != nil {
		return err
	}
	if m.PC == protocol.PCSub {
		if leg == nil {
			return fail(protocol.CodeInvalidState, "no subscriber offer was sent for that call")
		}
		if err := leg.HandleAnswer(m.SDP); err != nil {
			return fail(protocol.CodeMediaFailed, "subscriber answer rejected: "+err.Error())
		}
		return nil
	}
	if h.isListener(s, m.CallID) && sendsMedia(m.SDP) {
		// Also on renegotiation: a listener's media would reach the others
		// as a second copy of its user.
		return fail(protocol.CodeInvalidState, "a device listening along receives only: offer no media to send")
	}
	if leg == nil {
		if h.media == nil {
			return fail(protocol.CodeMediaFailed, "media is not available on this server")
		}
		ev = newLegEvents(s, m.CallID)
		var standby bool
		if leg, standby, err = h.joinStandby(s, m.CallID, ev); err != nil {
			return fail(protocol.CodeMediaFailed, "could not take over the call's media: "+err.Error())
		}
		if standby {
			return s.answerPub(m, leg, ev)
		}
		leg, err = h.media.Join(sfu.RoomID(m.CallID), s.legID(), s.user, ev)
		if err != nil {
			return fail(protocol.CodeMediaFailed, "could not join the call's media: "+err.Error())
		}
		ptt, floorLeg, ok := h.attachLeg(s, m.CallID, leg, ev)
		if !ok {
			_ = leg.Close()
			return fail(protocol.CodeNotFound, "the call ended")
		}
		defer h.listening(s, m.CallID)
		if ptt {
			// Gate the room's audio before any of this leg's can flow.
			h.media.SetFloor(sfu.RoomID(m.CallID), floorLeg)
		}
	}
	return s.answerPub(m, leg, ev)
}

// openStandby connects the media leg of a call moving to s at once, when
// the move starts rather than at the device's first offer: the others'
// media is offered to the device while its camera opens and its own offer
// is made, and reaches it sooner. The offer then finds the leg there
// (handleSDP). A move that keeps a leg the device has, or one whose leg
// cannot open now, waits for the offer as before.
func (s *Session) openStandby(callID string) {
	h := s.hub
	if h.media == nil {
		return
	}
	if leg, _, err := h.legOf(s, callID); err != nil || leg != nil {
		return
	}
	if _, _, err := h.joinStandby(s, callID, newLegEvents(s, callID)); err != nil {
		s.log.Info("the moved call's leg could not open before the offer", "call", callID, "err", err)
	}
}

// answerPub applies a pub offer to leg and sends the answer; candidates the
// leg gathers meanwhile wait until the answer is queued.
func (s *Session) answerPub(m *protocol.SDP, leg MediaLeg, ev *legEvents) error {
	ev.hold()
	defer ev.release()
	answer, err := leg.HandleOffer(m.SDP)
	if err != nil {
		return fail(protocol.CodeMediaFailed, "offer rejected: "+err.Error())
	}
	s.send(protocol.TypeSDP, &protocol.SDP{CallID: m.CallID, PC: protocol.PCPub, Kind: protocol.SDPAnswer, SDP: answer})
	return nil
}

func (s *Session) handleICE(m *protocol.ICE) error {
	leg, _, err := s.hub.legOf(s, m.CallID)
	if err != nil {
		return err
	}
	if leg == nil {
		return fail(protocol.CodeInvalidState, "send the pub offer before candidates")
	}
	if m.Candidate.Candidate == "" {
		return nil // end of candidates
	}
	c := webrtc.ICECandidateInit{
		Candidate: m.Candidate.Candidate, SDPMid: m.Candidate.SDPMid,
		SDPMLineIndex: m.Candidate.SDPMLineIndex, UsernameFragment: m.Candidate.UsernameFragment,
	}
	if err := leg.AddICECandidate(m.PC, c); err != nil {
		return fail(protocol.CodeMediaFailed, "candidate rejected: "+err.Error())
	}
	return nil
}

// handleView passes the sizes the client shows remote videos at to its
// leg, which picks simulcast layers by them. Before the leg exists there
// is nothing to size; the client sends its view again as tiles appear.
func (s *Session) handleView(m *protocol.View) error {
	leg, _, err := s.hub.legOf(s, m.CallID)
	if err != nil || leg == nil {
		return err
	}
	tiles := make([]sfu.Tile, len(m.Tiles))
	for i, t := range m.Tiles {
		// A member's stream id is their user id.
		tiles[i] = sfu.Tile{StreamID: t.User, TrackID: t.Track, Width: t.Width, Height: t.Height}
	}
	leg.SetView(tiles)
	return nil
}

// legOf returns s's media leg in the call (nil if not created yet), or an
// error when s is not a leg of it.
func (h *Hub) legOf(s *Session, callID string) (MediaLeg, *legEvents, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.calls[callID]
	if c == nil {
		return nil, nil, fail(protocol.CodeNotFound, "no such call, or it has ended")
	}
	if !c.canSignal(s) {
		return nil, nil, fail(protocol.CodeNotInCall, "this device is not a leg of that call")
	}
	if l := c.legs[s]; l != nil {
		return l.media, l.events, nil
	}
	return nil, nil, nil
}

// attachLeg records leg as s's media leg unless the call has ended. For a
// push-to-talk room it also reports the floor holder's leg.
func (h *Hub) attachLeg(s *Session, callID string, leg MediaLeg, ev *legEvents) (ptt bool, floorLeg sfu.LegID, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.calls[callID]
	if c == nil || !c.canSignal(s) || c.legs[s] != nil {
		return false, "", false
	}
	c.addLegLocked(s, leg, ev)
	return c.floor != nil, h.floorLegLocked(c), true
}

// relayMedia tells the other members what s is sending.
func (h *Hub) relayMedia(s *Session, m *protocol.Media) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.calls[m.CallID]
	if c == nil {
		return fail(protocol.CodeNotFound, "no such call, or it has ended")
	}
	if !c.isLeg(s) {
		return fail(protocol.CodeNotInCall, "this device is not a leg of that call")
	}
	c.tellMembers(s, protocol.TypeMedia, func() protocol.EncodedMessage {
		return &protocol.Media{CallID: c.ID, User: s.user, Audio: m.Audio, Video: m.Video}
	})
	return nil
}

// mediaFailed takes s out of a call whose media path it lost for good; a
// 1:1 call ends.
func (h *Hub) mediaFailed(s *Session, callID string) {
	h.mu.Lock()
	c := h.calls[callID]
	if c != nil && c.listenerOf(s) != nil {
		leg := h.dropListenerLocked(c, c.listenerOf(s), s, protocol.ReasonFailed, false)
		h.mu.Unlock()
		if leg != nil {
			s.later(func() { _ = leg.Close() })
		}
		return
	}
	if c == nil || !c.isLeg(s) {
		h.mu.Unlock()
		return
	}
	e := h.leaveLocked(c, c.joinedBy(s), protocol.ReasonFailed, s)
	h.mu.Unlock()
	s.later(func() { h.finish(e) })
}
