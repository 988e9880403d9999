package sfu

import (
	"errors"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/internal/udptrap"
)

func TestCandidateCheck(t *testing.T) {
	for _, c := range []struct {
		cand     string
		loopback bool
		want     dropReason
	}{
		{"1 1 udp 2122260223 192.0.2.10 50000 typ host", false, keepCandidate},
		{"candidate:1 1 udp 2122260223 192.0.2.10 50000 typ host generation 0 ufrag abcd", false, keepCandidate},
		{"2 1 udp 1686052607 198.51.100.7 61000 typ srflx raddr 10.0.0.2 rport 50000", false, keepCandidate},
		{"3 1 udp 41885439 203.0.113.9 49152 typ relay raddr 198.51.100.7 rport 61000", false, keepCandidate},
		{"4 1 udp 2122262783 2001:db8::5 50000 typ host", false, keepCandidate},
		{"5 1 udp 2122260223 10.1.2.3 50000 typ host", false, keepCandidate},
		{"6 1 udp 2122260223 127.0.0.1 50000 typ host", true, keepCandidate},
		{"6 1 udp 2122260223 127.0.0.1 50000 typ host", false, dropAddress},
		{"6 1 udp 2122260223 ::1 50000 typ host", false, dropAddress},
		{"7 1 udp 2122260223 0a1b2c3d-aaaa-bbbb-cccc-0123456789ab.local 50000 typ host", true, dropMDNS},
		{"8 1 tcp 1518280447 192.0.2.10 9 typ host tcptype active", false, dropTransport},
		{"8 1 tcp 1518280447 192.0.2.10 50000 typ host tcptype passive", false, dropTransport},
		{"9 1 udp 2122260223 0.0.0.0 50000 typ host", true, dropAddress},
		{"9 1 udp 2122260223 :: 50000 typ host", true, dropAddress},
		{"10 1 udp 2122260223 224.0.0.251 5353 typ host", true, dropAddress},
		{"10 1 udp 2122260223 ff02::1 50000 typ host", true, dropAddress},
		{"11 1 udp 2122260223 255.255.255.255 50000 typ host", true, dropAddress},
		{"12 1 udp 2122260223 169.254.1.1 50000 typ host", true, dropAddress},
		{"12 1 udp 2122260223 fe80::1 50000 typ host", true, dropAddress},
		{"13 1 udp 2122260223 192.0.2.10 0 typ host", true, dropAddress},
		{"14 1 udp 2122260223 ::ffff:127.0.0.1 50000 typ host", false, dropAddress},
		{"garbage", true, dropMalformed},
		{"15 1 udp 1 example.com 50000 typ host", true, dropMalformed},
		{"16 1 udp 1 192.0.2.10 70000 typ host", true, dropMalformed},
		{"", true, dropMalformed},
	} {
		cp := &candidatePolicy{loopback: c.loopback}
		key, _, why, err := cp.check(c.cand)
		if why != c.want {
			t.Errorf("check(%q, loopback %v) = %d (%v), want %d", c.cand, c.loopback, why, err, c.want)
		}
		if (why == dropMalformed) != (err != nil) {
			t.Errorf("check(%q): reason %d with error %v", c.cand, why, err)
		}
		if (why == keepCandidate) != (key != "") {
			t.Errorf("check(%q): reason %d with key %q", c.cand, why, key)
		}
	}
}

// TestCandidateLimit: a PC takes at most maxRemoteCandidates distinct
// usable candidates per ICE generation, by trickle or in offers; more are
// refused with ErrTooManyCandidates, duplicates and unusable ones change
// nothing, a flood of thousands leaves the goroutines bounded, the counts
// show in Totals, and an ICE restart starts afresh.
func TestCandidateLimit(t *testing.T) {
	s := newTestSFU(t)
	room := s.Room("limit")
	a := joinClient(t, room, "A")
	a.publish()
	testkit.Eventually(t, 10*time.Second, "A's pub PC to connect", func() bool {
		return a.pub.ConnectionState() == webrtc.PeerConnectionStateConnected
	})
	add := func(cand string) error {
		return a.p.AddICECandidate(PCPub, webrtc.ICECandidateInit{Candidate: "candidate:" + cand})
	}
	// The client's own candidates count too: wait until it has sent them.
	testkit.Eventually(t, 5*time.Second, "A's gathering", func() bool {
		return a.pub.ICEGatheringState() == webrtc.ICEGatheringStateComplete
	})
	drained := make(chan struct{})
	a.q.post(func() { close(drained) })
	<-drained
	a.p.pub.mu.Lock()
	own := len(a.p.pub.cands)
	a.p.pub.mu.Unlock()
	if own == 0 || own > 4 {
		t.Fatalf("A's pub PC holds %d candidates of its own", own)
	}
	port := func(i int) int { return 20000 + i }
	for i := range maxRemoteCandidates - own {
		if err := add(udptrap.HostCandidate(i, "127.0.0.1", port(i))); err != nil {
			t.Fatalf("candidate %d: %v", i, err)
		}
	}
	if err := add(udptrap.HostCandidate(99, "127.0.0.1", port(0))); err != nil {
		t.Errorf("a candidate the PC has already: %v", err)
	}
	for _, c := range []string{
		"1 1 udp 1 x.local 9 typ host", "1 1 tcp 1 127.0.0.1 9 typ host tcptype passive",
		"1 1 udp 1 0.0.0.0 9 typ host", "1 1 udp 1 224.0.0.1 9 typ host", "1 1 udp 1 127.0.0.1 0 typ host",
	} {
		if err := add(c); err != nil {
			t.Errorf("unusable %q: %v", c, err)
		}
	}
	if err := add("nonsense"); !errors.Is(err, ErrBadCandidate) {
		t.Errorf("malformed candidate: %v", err)
	}

	// The flood: every further distinct candidate is refused, and pion is
	// not even asked.
	before := runtime.NumGoroutine()
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if n := int64(runtime.NumGoroutine()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	const flood = 3000
	for i := range flood {
		if err := add(udptrap.HostCandidate(i, "127.0.0.1", port(100+i))); !errors.Is(err, ErrTooManyCandidates) {
			close(stop)
			t.Fatalf("candidate %d past the limit: %v", i, err)
		}
	}
	offer := withCandidates(a.pub.LocalDescription().SDP, udptrap.HostCandidate(1, "127.0.0.1", port(5000)))
	if _, err := a.p.HandleOffer(offer); !errors.Is(err, ErrTooManyCandidates) || !errors.Is(err, ErrBadSDP) {
		t.Errorf("an offer with one candidate too many: %v", err)
	}
	close(stop)
	<-sampled
	if p := peak.Load(); p > int64(before)+50 {
		t.Errorf("goroutines rose from %d to %d during the flood", before, p)
	}
	tot := s.Totals().Candidates
	want := CandidateDrops{Malformed: 1, MDNS: 1, Transport: 1, Address: 3, OverLimit: flood + 1}
	if tot != want {
		t.Errorf("Totals().Candidates = %+v, want %+v", tot, want)
	}

	// What pion holds: nothing past the limit.
	stats := a.p.pub.pc.GetStats()
	remote := 0
	for _, st := range stats {
		if cs, ok := st.(webrtc.ICECandidateStats); ok && cs.Type == webrtc.StatsTypeRemoteCandidate && cs.Port >= 20000 {
			remote++
		}
	}
	if remote > maxRemoteCandidates {
		t.Errorf("pion holds %d of the test's candidates", remote)
	}

	// An ICE restart is a new generation: room again. It goes through the
	// client's queue, as the SFU's candidates do, so that they follow the
	// answer.
	restarted := make(chan error, 1)
	a.q.post(func() {
		restart, err := a.pub.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
		if err == nil {
			err = a.pub.SetLocalDescription(restart)
		}
		var ans string
		if err == nil {
			ans, err = a.p.HandleOffer(restart.SDP)
		}
		if err == nil {
			err = a.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans})
		}
		restarted <- err
	})
	if err := <-restarted; err != nil {
		t.Fatalf("ICE restart: %v", err)
	}
	if err := add(udptrap.HostCandidate(7, "127.0.0.1", port(9000))); err != nil {
		t.Errorf("a candidate after the ICE restart: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, "A's pub PC to be connected after the restart", func() bool {
		return a.pub.ConnectionState() == webrtc.PeerConnectionStateConnected
	})
}

// TestOfferCandidatesScreened: pion is given no candidate of an offer,
// usable or not; unusable ones are counted, and an offer with a malformed
// one is refused.
func TestOfferCandidatesScreened(t *testing.T) {
	s := newTestSFU(t)
	room := s.Room("screened")
	a := joinClient(t, room, "A", func(c *client) {
		c.mangleOffer = func(sdp string) string {
			return withCandidates(sdp, "1 1 udp 1 x.local 9 typ host", "2 1 tcp 1 127.0.0.1 9 typ host tcptype passive", "3 1 udp 2122260223 127.0.0.1 9 typ host")
		}
	})
	a.publish()
	rd := a.p.pub.pc.RemoteDescription()
	if rd == nil || strings.Contains(rd.SDP, "a=candidate:") {
		t.Fatalf("pion was given the offer's candidates: %v", rd)
	}
	if got := s.Totals().Candidates; got.MDNS != 1 || got.Transport != 1 {
		t.Errorf("Totals().Candidates = %+v", got)
	}
	bad := withCandidates(a.pub.LocalDescription().SDP, "1 1 udp notanumber 127.0.0.1 9 typ host")
	if _, err := a.p.HandleOffer(bad); !errors.Is(err, ErrBadSDP) || !errors.Is(err, ErrBadCandidate) {
		t.Errorf("offer with a malformed candidate: %v", err)
	}
}

// FuzzScreenSDP feeds arbitrary descriptions to the candidate screen: it
// must not panic, must refuse with ErrBadSDP, and what it passes on must
// hold no candidate at all, as pion will parse it.
func FuzzScreenSDP(f *testing.F) {
	base := "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=fingerprint:sha-256 AA:BB\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
	f.Add(base + "a=candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host\r\n")
	f.Add(base + "a=candidate:1 1 udp 1 x.local 9 typ host\r\na=candidate:2 1 udp 1 127.0.0.1 9 typ host\r\n")
	f.Add(base + "a=candidate:1 1 tcp 1 127.0.0.1 9 typ host tcptype passive\ra=candidate:2 1 udp 1 0.0.0.0 9 typ host\n")
	f.Add(base + "a=candidate:3 1 udp 1 224.0.0.1 9 typ host\r\na=candidate:3 1 udp 1 224.0.0.1 9 typ host\r\r\n")
	f.Add(base + "a=ice-lite\r\n")
	f.Fuzz(func(t *testing.T, desc string) {
		cp := &candidatePolicy{loopback: true}
		_, d, err := parseSDPDesc(desc)
		if err != nil {
			return
		}
		clean, _, err := cp.screenSDP(desc, d)
		if err != nil {
			if !errors.Is(err, ErrBadSDP) {
				t.Fatalf("error %v does not wrap ErrBadSDP", err)
			}
			return
		}
		_, d2, err := parseSDPDesc(clean)
		if err != nil {
			t.Fatalf("screened description does not parse: %v\n%q", err, clean)
		}
		// pion is never given a candidate.
		for _, attrs := range append([][]sdp.Attribute{d2.Attributes}, mediaAttributes(d2)...) {
			for _, a := range attrs {
				if a.IsICECandidate() {
					t.Fatalf("screened description keeps %q", a.Value)
				}
			}
		}
	})
}

// FuzzScreenCandidate feeds arbitrary trickled candidates (ws ice
// messages, WHIP PATCH lines) to the screen: it must not panic, must
// refuse with ErrBadCandidate, and what it keeps must be an IP address and
// port a client could have.
func FuzzScreenCandidate(f *testing.F) {
	f.Add("candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host generation 0 ufrag abcd")
	f.Add("1 1 udp 1686052607 198.51.100.7 61000 typ srflx raddr 10.0.0.2 rport 50000")
	f.Add("1 1 udp 1 x.local 9 typ host")
	f.Add("1 1 tcp 1 127.0.0.1 9 typ host tcptype passive")
	f.Add("1 1 udp 1 ::ffff:0.0.0.0 9 typ relay raddr 0.0.0.0 rport 0")
	f.Add("")
	f.Fuzz(func(t *testing.T, cand string) {
		cp := &candidatePolicy{loopback: true}
		s, err := cp.screen(PCPub, []webrtc.ICECandidateInit{{Candidate: cand}})
		if err != nil {
			if !errors.Is(err, ErrBadCandidate) {
				t.Fatalf("error %v does not wrap ErrBadCandidate", err)
			}
			return
		}
		for _, k := range s.keep {
			if k.key == "" {
				continue // the end of candidates
			}
			_, hostport, _ := strings.Cut(k.key, " ")
			ap, err := netip.ParseAddrPort(hostport)
			if err != nil || !cp.usableAddr(ap.Addr(), int(ap.Port())) {
				t.Fatalf("kept %q as %q", cand, k.key)
			}
		}
	})
}
