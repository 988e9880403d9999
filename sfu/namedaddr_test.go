package sfu

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/internal/udptrap"
)

// withCandidates returns an SDP with lines added after its first mid.
func withCandidates(desc string, cands ...string) string {
	i := strings.Index(desc, "a=mid:")
	if i < 0 {
		return desc
	}
	i += strings.Index(desc[i:], "\n") + 1
	var b strings.Builder
	for _, c := range cands {
		b.WriteString("a=candidate:" + c + "\r\n")
	}
	return desc[:i] + b.String() + desc[i:]
}

// TestNamedAddressesGetNoChecks: candidates that name addresses where
// nobody runs ICE (loopback sockets here), in a pub offer, a sub answer
// and trickled on both PCs, get nothing from the SFU, while the clients'
// own media flows: the SFU learns addresses only from the clients' checks.
func TestNamedAddressesGetNoChecks(t *testing.T) {
	trap := udptrap.New(t, 16)
	var named []string
	for i := range 16 {
		named = append(named, trap.Candidate(i))
	}
	room := newTestSFU(t).Room("named")
	a := joinClient(t, room, "A", func(c *client) {
		c.mangleOffer = func(s string) string { return withCandidates(s, named[:4]...) }
	})
	b := joinClient(t, room, "B", func(c *client) {
		c.mangleAnswer = func(s string) string { return withCandidates(s, named[4:8]...) }
	})
	for i, cand := range named[8:] {
		pc := PCPub
		if i%2 == 1 {
			pc = PCSub
		}
		for _, c := range []*client{a, b} {
			c.q.post(func() { c.check(c.p.AddICECandidate(pc, webrtc.ICECandidateInit{Candidate: "candidate:" + cand})) })
		}
	}
	a.publish()
	b.publish()
	testkit.Eventually(t, 10*time.Second, "B to receive A's video", func() bool {
		v := b.trackFrom("user-A", webrtc.RTPCodecTypeVideo)
		return v != nil && v.packets.Load() > 50
	})
	// An agent given these candidates checks every pair within a second
	// or two.
	time.Sleep(2 * time.Second)
	if n := trap.Packets(); n != 0 {
		t.Fatalf("the SFU sent %d packets to addresses clients only named", n)
	}
	for _, c := range []*client{a, b} {
		if errs := c.errors(); len(errs) > 0 {
			t.Errorf("%s: %v", c.name, errs)
		}
	}
}

// TestICELiteClientRefused: a sub answer saying a=ice-lite (with the DTLS
// server role and a candidate naming a trap) is refused, also when the
// attribute carries a trailing space, as pion reads it: a lite client
// sends no checks, and against a lite agent pion would pick a pair nobody
// checked and send its DTLS handshake there.
func TestICELiteClientRefused(t *testing.T) {
	for name, attr := range map[string]string{"plain": "a=ice-lite\r\n", "trailing space": "a=ice-lite \r\n"} {
		t.Run(name, func(t *testing.T) { iceLiteRefused(t, attr) })
	}
}

func iceLiteRefused(t *testing.T, attr string) {
	trap := udptrap.New(t, 1)
	room := newTestSFU(t).Room("lite")
	a := joinClient(t, room, "A")
	b := joinClient(t, room, "B", func(c *client) {
		c.mangleAnswer = func(s string) string {
			var out []string
			for _, l := range strings.SplitAfter(s, "\n") {
				if strings.HasPrefix(l, "a=candidate:") {
					continue
				}
				l = strings.Replace(l, "a=setup:active", "a=setup:passive", 1)
				out = append(out, l)
				if strings.HasPrefix(l, "t=") {
					out = append(out, attr)
				}
			}
			return withCandidates(strings.Join(out, ""), trap.Candidate(0))
		}
	})
	a.publish()
	testkit.Eventually(t, 10*time.Second, "B's answer", func() bool {
		return len(b.errors()) > 0 || b.p.sub.pc.RemoteDescription() != nil
	})
	time.Sleep(2 * time.Second)
	if n := trap.Packets(); n != 0 {
		t.Errorf("the SFU sent %d packets to a lite client's candidate", n)
	}
	if errs := b.errors(); len(errs) == 0 || !errors.Is(errs[0], ErrBadSDP) || !strings.Contains(errs[0].Error(), "ice-lite") {
		t.Fatalf("lite answer: %v", errs)
	}
}
