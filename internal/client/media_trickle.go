package client

import (
	"net"
	"strings"
	"sync"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// trickle sends one PeerConnection's local candidates. It holds them until
// the description they belong to has been sent, so that the server never
// gets a candidate before the SDP.
type trickle struct {
	m  *Media
	pc string

	mu    sync.Mutex
	ready bool
	held  []protocol.ICECandidate
}

func newTrickle(m *Media, pc string) *trickle {
	return &trickle{m: m, pc: pc}
}

// onCandidate is the pion OnICECandidate callback; it never blocks. A nil
// candidate (gathering done) is sent as end of candidates.
func (t *trickle) onCandidate(c *webrtc.ICECandidate) {
	var cand protocol.ICECandidate
	if c != nil {
		cand = fromInit(c.ToJSON())
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.ready {
		t.held = append(t.held, cand)
		return
	}
	t.sendLocked(cand)
}

// hold keeps later candidates back until release: a new description (an
// ICE restart) is about to be made and must reach the server first.
func (t *trickle) hold() {
	t.mu.Lock()
	t.ready = false
	t.mu.Unlock()
}

// release sends the held candidates and lets later ones through at once.
func (t *trickle) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ready {
		return
	}
	t.ready = true
	for _, c := range t.held {
		t.sendLocked(c)
	}
	t.held = nil
}

// sendLocked queues one candidate without waiting. t.mu must be held, which
// keeps candidates in order.
func (t *trickle) sendLocked(c protocol.ICECandidate) {
	b, err := protocol.Encode(protocol.TypeICE, &protocol.ICE{CallID: t.m.callID, PC: t.pc, Candidate: c})
	if err == nil {
		err = t.m.c.enqueue(nil, b)
	}
	if err != nil {
		t.m.log.Warn("local candidate not sent", "pc", t.pc, "err", err)
	}
}

// fromInit converts a pion candidate to its wire form.
func fromInit(c webrtc.ICECandidateInit) protocol.ICECandidate {
	return protocol.ICECandidate{
		Candidate:        c.Candidate,
		SDPMid:           c.SDPMid,
		SDPMLineIndex:    c.SDPMLineIndex,
		UsernameFragment: c.UsernameFragment,
	}
}

// toInit converts a wire candidate for pion.
func toInit(c protocol.ICECandidate) webrtc.ICECandidateInit {
	return webrtc.ICECandidateInit{
		Candidate:        c.Candidate,
		SDPMid:           c.SDPMid,
		SDPMLineIndex:    c.SDPMLineIndex,
		UsernameFragment: c.UsernameFragment,
	}
}

// loopbackCandidate reports whether a remote candidate may be used: end of
// candidates, or an address in 127.0.0.0/8. Unparsable candidates pass, so
// that pion reports them.
func loopbackCandidate(s string) bool {
	s = strings.TrimPrefix(s, "candidate:")
	if s == "" {
		return true
	}
	c, err := ice.UnmarshalCandidate(s)
	if err != nil {
		return true
	}
	ip := net.ParseIP(c.Address())
	return ip != nil && ip.IsLoopback()
}
