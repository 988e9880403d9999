package sfu

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// peer is one of a participant's PeerConnections. Its mutex serializes
// signaling on the PC and keeps candidates that arrive before the remote
// description in order.
type peer struct {
	name   string
	pc     *webrtc.PeerConnection
	log    *slog.Logger
	policy *candidatePolicy // screens the client's candidates (candidates.go)

	mu          sync.Mutex
	pending     []screenedCandidate // before a remote description; counted in cands' limit
	remoteUfrag string              // of the last remote description applied

	// cands are the keys of the usable candidates the PC was given in the
	// ICE generation of candsUfrag, the remote ufrag pion has now.
	cands      map[string]struct{}
	candsUfrag string
}

// parseSDP checks that s is a session description pion can apply without
// failing half-way: it parses, every media section has a mid, and ICE
// credentials and a DTLS fingerprint are present. pion cannot roll back a
// remote offer, so these checks must come before SetRemoteDescription. It
// also refuses an ICE-lite client (candidates.go). It returns the
// description's ICE username fragment.
func parseSDP(s string) (ufrag string, err error) {
	ufrag, _, err = parseSDPDesc(s)
	return ufrag, err
}

// parseSDPDesc is parseSDP returning the parsed description too.
func parseSDPDesc(s string) (ufrag string, _ *sdp.SessionDescription, err error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(s); err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	if len(d.MediaDescriptions) == 0 {
		return "", nil, fmt.Errorf("%w: no media sections", ErrBadSDP)
	}
	if isICELite(&d) {
		// A lite client sends no checks, and the server learns a
		// client's address only from its checks (candidates.go).
		return "", nil, fmt.Errorf("%w: a=ice-lite: the client must be a full ICE agent, which checks the server's address", ErrBadSDP)
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
			return "", nil, fmt.Errorf("%w: media section without mid", ErrBadSDP)
		}
	}
	for _, key := range []string{"ice-ufrag", "ice-pwd", "fingerprint"} {
		if attr(key) == "" {
			return "", nil, fmt.Errorf("%w: no %s", ErrBadSDP, key)
		}
	}
	return attr("ice-ufrag"), &d, nil
}

// setRemoteLocked screens the candidates of a client's description, whose
// ICE username fragment is ufrag, applies it and then any buffered
// candidates. A description whose usable candidates, with those of its
// ICE generation the PC already has, are more than maxRemoteCandidates is
// refused before it changes anything. The caller holds p.mu.
func (p *peer) setRemoteLocked(typ webrtc.SDPType, desc, ufrag string, d *sdp.SessionDescription) error {
	desc, sc, err := p.policy.screenSDP(desc, d)
	if err != nil {
		return fmt.Errorf("%s %s: %w", p.name, typ, err)
	}
	cands := make(map[string]struct{}, len(p.cands)+len(sc.keep))
	if ufrag == p.candsUfrag {
		for k := range p.cands {
			cands[k] = struct{}{}
		}
	}
	had := len(cands)
	for _, k := range sc.keep {
		cands[k.key] = struct{}{}
	}
	if len(cands) > maxRemoteCandidates {
		p.policy.count(dropOverLimit, len(cands)-had)
		return fmt.Errorf("%w: %w: %s %s: %d usable candidates, at most %d per ICE session",
			ErrBadSDP, ErrTooManyCandidates, p.name, typ, len(cands), maxRemoteCandidates)
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: typ, SDP: desc}); err != nil {
		return fmt.Errorf("%w: %s %s: %w", ErrBadSDP, p.name, typ, err)
	}
	p.policy.commit(&sc)
	p.cands, p.candsUfrag = cands, ufrag
	pending := p.pending
	p.pending = nil
	p.addLocked(pending)
	return nil
}

// addLocked notes the screened candidates of the current ICE generation
// that it does not have yet, up to the limit; the caller has checked the
// limit and holds p.mu. pion is not given them: the SFU learns the
// client's addresses from its checks (candidates.go).
func (p *peer) addLocked(cs []screenedCandidate) {
	for _, k := range cs {
		if k.key == "" {
			continue // the end of candidates
		}
		if _, dup := p.cands[k.key]; dup {
			continue
		}
		if k.ufrag != "" && k.ufrag != p.candsUfrag {
			continue // of an earlier ICE generation
		}
		if len(p.cands) >= maxRemoteCandidates {
			p.policy.count(dropOverLimit, 1)
			continue
		}
		p.cands[k.key] = struct{}{}
	}
}

// answer applies a client offer and returns the SFU's answer. restarted
// reports that the offer restarted ICE: it carries other credentials than
// the last one. On failure it rolls the PC back to stable, so a later good
// offer still works.
func (p *peer) answer(offer string) (ans string, restarted bool, err error) {
	ufrag, d, err := parseSDPDesc(offer)
	if err != nil {
		return "", false, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.setRemoteLocked(webrtc.SDPTypeOffer, offer, ufrag, d); err != nil {
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
	ufrag, d, err := parseSDPDesc(answer)
	if err != nil {
		return true, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	err = p.setRemoteLocked(webrtc.SDPTypeAnswer, answer, ufrag, d)
	if err == nil {
		p.remoteUfrag = ufrag
	}
	return err != nil && p.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer, err
}

// addCandidates screens and adds trickled client candidates, buffering
// them while no remote description is set. An empty candidate means end
// of candidates. Unusable candidates are dropped and counted; a malformed
// one refuses the batch with ErrBadCandidate, and so do candidates past
// the limit of the ICE generation, with ErrTooManyCandidates: either way
// nothing of the batch is added.
func (p *peer) addCandidates(cs []webrtc.ICECandidateInit) error {
	sc, err := p.policy.screen(p.name, cs)
	if err != nil {
		return err
	}
	return p.addScreened(sc)
}

// addScreened adds candidates screen has checked; see addCandidates.
func (p *peer) addScreened(sc screened) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var have map[string]struct{}
	if p.pc.RemoteDescription() == nil {
		have = make(map[string]struct{}, len(p.pending))
		for _, k := range p.pending {
			if k.key != "" {
				have[k.key] = struct{}{}
			}
		}
	} else {
		have = p.cands
	}
	fresh := map[string]struct{}{}
	for _, k := range sc.keep {
		if _, dup := have[k.key]; !dup && k.key != "" && (k.ufrag == "" || k.ufrag == p.candsUfrag || p.pc.RemoteDescription() == nil) {
			fresh[k.key] = struct{}{}
		}
	}
	if n := len(have) + len(fresh); len(fresh) > 0 && n > maxRemoteCandidates {
		p.policy.count(dropOverLimit, len(fresh))
		return fmt.Errorf("%w: %s: %d usable candidates in this ICE session, at most %d", ErrTooManyCandidates, p.name, n, maxRemoteCandidates)
	}
	p.policy.commit(&sc)
	if p.pc.RemoteDescription() == nil {
		p.pendLocked(sc.keep)
		return nil
	}
	p.addLocked(sc.keep)
	return nil
}

// pendLocked buffers candidates until a remote description arrives: each
// one once, and one end of candidates, so the buffer stays within the
// limit. The caller holds p.mu.
func (p *peer) pendLocked(cs []screenedCandidate) {
	for _, k := range cs {
		if !slices.ContainsFunc(p.pending, func(q screenedCandidate) bool { return q.key == k.key }) {
			p.pending = append(p.pending, k)
		}
	}
}

// isICELite reports whether a description says its agent is ICE-lite, as
// pion reads it (the attribute's key with spaces trimmed).
func isICELite(d *sdp.SessionDescription) bool {
	lite := func(attrs []sdp.Attribute) bool {
		return slices.ContainsFunc(attrs, func(a sdp.Attribute) bool {
			return strings.TrimSpace(a.Key) == sdp.AttrKeyICELite
		})
	}
	if lite(d.Attributes) {
		return true
	}
	for _, m := range d.MediaDescriptions {
		if lite(m.Attributes) {
			return true
		}
	}
	return false
}
