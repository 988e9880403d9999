package sfu

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// maxPendingCandidates bounds the candidates buffered before a remote
// description arrives.
const maxPendingCandidates = 64

// peer is one of a participant's PeerConnections. Its mutex serializes
// signaling on the PC and keeps candidates that arrive before the remote
// description in order.
type peer struct {
	name string
	pc   *webrtc.PeerConnection
	log  *slog.Logger

	mu          sync.Mutex
	pending     []webrtc.ICECandidateInit
	remoteUfrag string // of the last remote description applied
}

// parseSDP checks that s is a session description pion can apply without
// failing half-way: it parses, every media section has a mid, and ICE
// credentials and a DTLS fingerprint are present. pion cannot roll back a
// remote offer, so these checks must come before SetRemoteDescription. It
// also refuses an ICE-lite client, as the SFU is one. It returns the
// description's ICE username fragment.
func parseSDP(s string) (ufrag string, err error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(s); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	if len(d.MediaDescriptions) == 0 {
		return "", fmt.Errorf("%w: no media sections", ErrBadSDP)
	}
	if isICELite(&d) {
		// Two lite agents would use a pair nobody checked: the client
		// must check the server's candidates itself.
		return "", fmt.Errorf("%w: a=ice-lite: the server is an ICE-lite agent, so the client must be a full one", ErrBadSDP)
	}
	attr := func(key string) string {
		if v, ok := d.Attribute(key); ok && v != "" {
			return v
		}
		for _, m := range d.MediaDescriptions {
			if v, ok := m.Attribute(key); ok && v != "" {
				return v
			}
		}
		return ""
	}
	for _, m := range d.MediaDescriptions {
		if mid, ok := m.Attribute("mid"); !ok || mid == "" {
			return "", fmt.Errorf("%w: media section without mid", ErrBadSDP)
		}
	}
	for _, key := range []string{"ice-ufrag", "ice-pwd", "fingerprint"} {
		if attr(key) == "" {
			return "", fmt.Errorf("%w: no %s", ErrBadSDP, key)
		}
	}
	return attr("ice-ufrag"), nil
}

// setRemote applies a remote description and then any buffered candidates.
// The caller holds p.mu.
func (p *peer) setRemoteLocked(desc webrtc.SessionDescription) error {
	if err := p.pc.SetRemoteDescription(desc); err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrBadSDP, p.name, desc.Type, err)
	}
	pending := p.pending
	p.pending = nil
	for _, c := range pending {
		// A stale candidate from before an ICE restart is not an error
		// worth failing the description for.
		_ = p.pc.AddICECandidate(c)
	}
	return nil
}

// answer applies a client offer and returns the SFU's answer. restarted
// reports that the offer restarted ICE: it carries other credentials than
// the last one. On failure it rolls the PC back to stable, so a later good
// offer still works.
func (p *peer) answer(offer string) (ans string, restarted bool, err error) {
	ufrag, err := parseSDP(offer)
	if err != nil {
		return "", false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.setRemoteLocked(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		p.rollbackLocked()
		return "", false, err
	}
	a, err := p.pc.CreateAnswer(nil)
	if err != nil {
		p.rollbackLocked()
		return "", false, fmt.Errorf("%w: create answer: %w", ErrBadSDP, err)
	}
	if err := p.pc.SetLocalDescription(a); err != nil {
		p.rollbackLocked()
		return "", false, fmt.Errorf("%w: set answer: %w", ErrBadSDP, err)
	}
	restarted = p.remoteUfrag != "" && p.remoteUfrag != ufrag
	p.remoteUfrag = ufrag
	return a.SDP, restarted, nil
}

// rollbackLocked returns the PC to the stable state after a failed offer.
// pion has no remote rollback, so it completes the negotiation with an
// answer that is never sent; if even that fails, the PC stays where it is.
func (p *peer) rollbackLocked() {
	if p.pc.SignalingState() != webrtc.SignalingStateHaveRemoteOffer {
		return
	}
	ans, err := p.pc.CreateAnswer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(ans)
	}
	if err != nil {
		p.log.Warn("cannot return to stable after a bad offer", "pc", p.name, "err", err)
	}
}

// offer creates and applies a local offer; with restart it carries new ICE
// credentials and candidates.
func (p *peer) offer(restart bool) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, err := p.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: restart})
	if err != nil {
		return "", fmt.Errorf("sfu: create offer: %w", err)
	}
	if err := p.pc.SetLocalDescription(o); err != nil {
		return "", fmt.Errorf("sfu: set offer: %w", err)
	}
	return o.SDP, nil
}

// acceptAnswer applies the client's answer to our offer. It reports whether
// the offer is still awaiting an answer afterwards: a malformed answer is
// rejected before it changes anything (pion cannot roll back a local offer),
// so the client may answer the same offer again.
func (p *peer) acceptAnswer(answer string) (pending bool, err error) {
	ufrag, err := parseSDP(answer)
	if err != nil {
		return true, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	err = p.setRemoteLocked(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer})
	if err == nil {
		p.remoteUfrag = ufrag
	}
	return err != nil && p.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer, err
}

// addCandidate adds a remote candidate, buffering it while no remote
// description is set. An empty candidate string means end of candidates.
func (p *peer) addCandidate(c webrtc.ICECandidateInit) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pc.RemoteDescription() == nil {
		if len(p.pending) >= maxPendingCandidates {
			return fmt.Errorf("%w: %s: too many candidates before description", ErrBadCandidate, p.name)
		}
		p.pending = append(p.pending, c)
		return nil
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrBadCandidate, p.name, err)
	}
	return nil
}

// isICELite reports whether a description says its agent is ICE-lite.
func isICELite(d *sdp.SessionDescription) bool {
	if _, ok := d.Attribute(sdp.AttrKeyICELite); ok {
		return true
	}
	for _, m := range d.MediaDescriptions {
		if _, ok := m.Attribute(sdp.AttrKeyICELite); ok {
			return true
		}
	}
	return false
}
