package sfu

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/testkit"
)

// nopEvents records what the SFU reports.
type nopEvents struct {
	mu     sync.Mutex
	cands  []webrtc.ICECandidateInit
	offers int
}

func (e *nopEvents) SubscriberOffer(string) {
	e.mu.Lock()
	e.offers++
	e.mu.Unlock()
}

func (e *nopEvents) ICECandidate(_ string, c *webrtc.ICECandidateInit) {
	if c == nil {
		return
	}
	e.mu.Lock()
	e.cands = append(e.cands, *c)
	e.mu.Unlock()
}

func (e *nopEvents) ConnectionState(string, webrtc.PeerConnectionState) {}
func (e *nopEvents) Layers(string, map[string]bool)                     {}
func (e *nopEvents) Speakers([]Speaker)                                 {}

func (e *nopEvents) candidates() []webrtc.ICECandidateInit {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]webrtc.ICECandidateInit(nil), e.cands...)
}

// clientOffer returns an offer from a loopback pion client that wants to
// send audio and video. The client is closed at cleanup and is never
// connected to anything.
func clientOffer(t *testing.T) string {
	t.Helper()
	pc := newClientPC(t)
	t.Cleanup(func() { _ = pc.Close() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

func TestNewBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{UDPListen: "127.0.0.1:0", PublicIPs: []string{"not-an-ip"}},
		{UDPListen: "127.0.0.1:notaport"},
	} {
		if s, err := New(cfg, nil); !errors.Is(err, ErrBadConfig) {
			if s != nil {
				_ = s.Close()
			}
			t.Errorf("New(%+v) error = %v, want ErrBadConfig", cfg, err)
		}
	}
}

func TestJoinErrors(t *testing.T) {
	s := newTestSFU(t)
	r := s.Room("r")
	p, err := r.Join("a", "user-a", &nopEvents{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Join("a", "user-a", &nopEvents{}); !errors.Is(err, ErrDuplicateParticipant) {
		t.Errorf("duplicate Join error = %v, want ErrDuplicateParticipant", err)
	}
	if err := p.HandleAnswer("v=0"); !errors.Is(err, ErrNoOffer) {
		t.Errorf("HandleAnswer without offer = %v, want ErrNoOffer", err)
	}
	if err := p.AddICECandidate("data", webrtc.ICECandidateInit{}); !errors.Is(err, ErrUnknownPC) {
		t.Errorf("AddICECandidate(data) = %v, want ErrUnknownPC", err)
	}
	if err := p.AddICECandidate(PCPub, webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host"}); err != nil {
		t.Errorf("candidate before offer should be held, got %v", err)
	}

	s.CloseRoom("r")
	if _, err := r.Join("b", "user-b", &nopEvents{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Join on closed room = %v, want ErrClosed", err)
	}
	if _, err := p.HandleOffer(clientOffer(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("HandleOffer after CloseRoom = %v, want ErrClosed", err)
	}
	if s.Room("r") == r {
		t.Error("CloseRoom did not forget the room")
	}
}

// TestHandleOfferBadSDP checks that malformed offers are rejected with
// ErrBadSDP and that a good offer still works afterwards.
func TestHandleOfferBadSDP(t *testing.T) {
	s := newTestSFU(t)
	p, err := s.Room("r").Join("a", "user-a", &nopEvents{})
	if err != nil {
		t.Fatal(err)
	}
	good := clientOffer(t)
	for name, bad := range map[string]string{
		"empty":          "",
		"garbage":        "hello\r\n",
		"no media":       "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
		"no ice creds":   "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\n",
		"truncated":      good[:len(good)/3],
		"binary":         "\x00\xff\xfe v=0",
		"no fingerprint": strings.ReplaceAll(good, "a=fingerprint:", "a=x-fingerprint:"),
	} {
		if _, err := p.HandleOffer(bad); !errors.Is(err, ErrBadSDP) {
			t.Errorf("%s: HandleOffer error = %v, want ErrBadSDP", name, err)
		}
	}
	ans, err := p.HandleOffer(good)
	if err != nil {
		t.Fatalf("good offer after bad ones: %v", err)
	}
	if !strings.Contains(ans, "a=recvonly") {
		t.Errorf("answer does not receive:\n%s", ans)
	}
}

// TestPublicIPs checks that candidates advertise the configured public
// address instead of the bound one. Nothing is connected, so no traffic goes
// to that address.
func TestPublicIPs(t *testing.T) {
	const public = "192.0.2.10" // TEST-NET-1, never contacted
	s, err := New(Config{UDPListen: "127.0.0.1:0", PublicIPs: []string{public}}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ev := &nopEvents{}
	p, err := s.Room("r").Join("a", "user-a", ev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.HandleOffer(clientOffer(t)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "a pub candidate", func() bool { return len(ev.candidates()) > 0 })
	port := s.UDPAddr().Port
	for _, c := range ev.candidates() {
		f := strings.Fields(c.Candidate)
		if len(f) < 6 {
			t.Fatalf("bad candidate %q", c.Candidate)
		}
		if ip := net.ParseIP(f[4]); !ip.Equal(net.ParseIP(public)) {
			t.Errorf("candidate address %s, want %s: %s", f[4], public, c.Candidate)
		}
		if f[5] != strconv.Itoa(port) {
			t.Errorf("candidate port %s, want the shared port %d", f[5], port)
		}
	}
}

// TestSubscriberBadAnswer checks that a malformed sub answer is rejected and
// the same offer can still be answered properly.
func TestSubscriberBadAnswer(t *testing.T) {
	s := newTestSFU(t)
	r := s.Room("r")
	a := joinClient(t, r, "A")
	b := joinClient(t, r, "B", func(c *client) { c.garbageAnswer = true })
	a.publish()
	testkit.Eventually(t, 10*time.Second, "B to receive A's video", func() bool {
		v := b.trackFrom("user-A", webrtc.RTPCodecTypeVideo)
		return v != nil && v.packets.Load() > 10
	})
	b.mu.Lock()
	gErr := b.garbageErr
	b.mu.Unlock()
	if !errors.Is(gErr, ErrBadSDP) {
		t.Errorf("garbage answer error = %v, want ErrBadSDP", gErr)
	}
	if errs := b.errors(); len(errs) > 0 {
		t.Errorf("B signaling errors: %v", errs)
	}
}
