package client

import (
	"errors"
	"fmt"

	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// errUnexpectedSDP marks an sdp message that does not fit the direction of
// its PeerConnection.
var errUnexpectedSDP = errors.New("unexpected sdp")

// deliver hands a server sdp or ice message to the event loop. It waits
// while the queue is full, until the Media or the client closes.
func (m *Media) deliver(msg any, clientDone <-chan struct{}) {
	select {
	case m.events <- msg:
	case <-m.done:
	case <-clientDone:
	}
}

// loop handles the server's sdp and ice messages one at a time, so that the
// candidates waiting for a remote description need no lock.
func (m *Media) loop() {
	pending := make(map[string][]webrtc.ICECandidateInit)
	backlog := m.backlog
	m.backlog = nil
	for _, ev := range backlog {
		m.handle(ev, pending)
	}
	for {
		select {
		case <-m.done:
			return
		case ev := <-m.events:
			m.handle(ev, pending)
		}
	}
}

// handle applies one server message and records its error.
func (m *Media) handle(ev any, pending map[string][]webrtc.ICECandidateInit) {
	var err error
	switch msg := ev.(type) {
	case *protocol.SDP:
		err = m.handleSDP(msg, pending)
	case *protocol.ICE:
		err = m.handleICE(msg, pending)
	case *protocol.Layers:
		m.setLayers(msg)
	case restartICE:
		msg.done <- m.restartPub(msg.resync)
	}
	if err != nil {
		m.fail(err)
	}
}

// peer returns the PeerConnection a message names, or nil.
func (m *Media) peer(name string) *webrtc.PeerConnection {
	switch name {
	case protocol.PCPub:
		return m.pub
	case protocol.PCSub:
		return m.sub
	}
	return nil
}

// handleSDP applies the answer on "pub", or answers the offer on "sub".
func (m *Media) handleSDP(msg *protocol.SDP, pending map[string][]webrtc.ICECandidateInit) error {
	pc := m.peer(msg.PC)
	switch {
	case pc == nil:
		return fmt.Errorf("%w: %s %s for a PeerConnection this leg does not have", errUnexpectedSDP, msg.PC, msg.Kind)
	case msg.PC == protocol.PCPub && msg.Kind == protocol.SDPAnswer && pc.SignalingState() == webrtc.SignalingStateStable:
		// The answer to an offer rolled back after a reconnect.
		m.log.Debug("stale pub answer dropped")
		return nil
	case msg.PC == protocol.PCPub && msg.Kind == protocol.SDPAnswer:
		desc := webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: msg.SDP}
		if err := pc.SetRemoteDescription(desc); err != nil {
			return fmt.Errorf("set pub answer: %w", err)
		}
		if err := m.flushCandidates(msg.PC, pc, pending); err != nil {
			return err
		}
		if m.restartPending {
			return m.restartPub(false)
		}
		return nil
	case msg.PC == protocol.PCSub && msg.Kind == protocol.SDPOffer:
		m.count.subOffers.Add(1)
		return m.answerSub(msg, pending)
	default:
		return fmt.Errorf("%w: %s %s", errUnexpectedSDP, msg.PC, msg.Kind)
	}
}

// answerSub applies a server offer on "sub" and sends the answer.
func (m *Media) answerSub(msg *protocol.SDP, pending map[string][]webrtc.ICECandidateInit) error {
	desc := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: msg.SDP}
	if err := m.sub.SetRemoteDescription(desc); err != nil {
		return fmt.Errorf("set sub offer: %w", err)
	}
	if err := m.flushCandidates(msg.PC, m.sub, pending); err != nil {
		return err
	}
	answer, err := m.sub.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("create sub answer: %w", err)
	}
	// After an ICE restart the answer starts gathering anew; its
	// candidates must follow it.
	m.subTrickle.hold()
	if err := m.sub.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("set sub answer: %w", err)
	}
	b, err := protocol.Encode(protocol.TypeSDP, &protocol.SDP{
		CallID: m.callID, PC: protocol.PCSub, Kind: protocol.SDPAnswer, SDP: answer.SDP,
	})
	if err != nil {
		return fmt.Errorf("encode sub answer: %w", err)
	}
	if err := m.c.enqueue(m.done, b); err != nil {
		return fmt.Errorf("send sub answer: %w", err)
	}
	m.subTrickle.release()
	return nil
}

// handleICE adds a remote candidate, or keeps it until the PeerConnection
// has a remote description.
func (m *Media) handleICE(msg *protocol.ICE, pending map[string][]webrtc.ICECandidateInit) error {
	pc := m.peer(msg.PC)
	if pc == nil {
		m.log.Debug("candidate for a PeerConnection this leg does not have", "pc", msg.PC)
		return nil
	}
	if m.c.opts.LoopbackOnly && !loopbackCandidate(msg.Candidate.Candidate) {
		m.log.Debug("dropping non-loopback candidate", "pc", msg.PC, "candidate", msg.Candidate.Candidate)
		return nil
	}
	c := toInit(msg.Candidate)
	if pc.RemoteDescription() == nil {
		pending[msg.PC] = append(pending[msg.PC], c)
		return nil
	}
	if err := pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("add %s candidate: %w", msg.PC, err)
	}
	return nil
}

// flushCandidates adds the candidates that arrived before the remote
// description.
func (m *Media) flushCandidates(name string, pc *webrtc.PeerConnection, pending map[string][]webrtc.ICECandidateInit) error {
	cands := pending[name]
	delete(pending, name)
	var errs []error
	for _, c := range cands {
		if err := pc.AddICECandidate(c); err != nil {
			errs = append(errs, fmt.Errorf("add %s candidate: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
