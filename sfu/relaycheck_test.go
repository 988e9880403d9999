package sfu

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

func TestRelayChecksGiveTheDirectPathItsHeadStart(t *testing.T) {
	relay := netip.MustParseAddrPort("203.0.113.11:50000")
	direct := &net.UDPAddr{IP: net.ParseIP("198.51.100.7"), Port: 40000}
	relayed := net.UDPAddrFromAddrPort(relay)
	now := time.Unix(1000, 0)
	r := &relayChecks{now: func() time.Time { return now }}
	check := func(user string) []byte {
		m, err := stun.Build(stun.BindingRequest, stun.TransactionID, stun.NewUsername(user), stun.Fingerprint)
		if err != nil {
			t.Fatal(err)
		}
		return m.Raw
	}
	if r.hold(check("s:a"), relayed) {
		t.Fatal("held a check with no relay lookup set")
	}
	r.isRelay.Store(new(func(a netip.AddrPort) bool { return a == relay }))

	// Leg a: direct and relayed checks together. The relayed ones wait
	// while the direct path may win, then pass.
	if r.hold(check("s:a"), direct) {
		t.Error("held a direct check")
	}
	for _, step := range []struct {
		after time.Duration
		held  bool
	}{{0, true}, {relayHeadStart, true}, {relayHold - time.Millisecond, true}, {relayHold, false}} {
		now = time.Unix(1000, 0).Add(step.after)
		if got := r.hold(check("s:a"), relayed); got != step.held {
			t.Errorf("leg with a direct path, relayed check %v in: held %v, want %v", step.after, got, step.held)
		}
	}

	// Leg b: only relayed checks (UDP blocked at the client): they wait
	// the head start only.
	start := time.Unix(2000, 0)
	for _, step := range []struct {
		after time.Duration
		held  bool
	}{{0, true}, {relayHeadStart - time.Millisecond, true}, {relayHeadStart, false}} {
		now = start.Add(step.after)
		if got := r.hold(check("s:b"), relayed); got != step.held {
			t.Errorf("relay-only leg, check %v in: held %v, want %v", step.after, got, step.held)
		}
	}

	// Not STUN, or not a binding request: never held.
	if r.hold([]byte{0x80, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, relayed) {
		t.Error("held an RTP packet")
	}
	resp, _ := stun.Build(stun.BindingSuccess, stun.TransactionID, stun.Fingerprint)
	if r.hold(resp.Raw, relayed) {
		t.Error("held a binding response")
	}
}

// FuzzRelayHold: whatever arrives at the media port, deciding whether to
// hold it never panics.
func FuzzRelayHold(f *testing.F) {
	m, _ := stun.Build(stun.BindingRequest, stun.TransactionID, stun.NewUsername("s:c"), stun.Fingerprint)
	f.Add(m.Raw, true)
	f.Add([]byte{0x80, 0x60, 0, 1}, false)
	relay := netip.MustParseAddrPort("203.0.113.11:50000")
	f.Fuzz(func(t *testing.T, b []byte, fromRelay bool) {
		r := &relayChecks{now: time.Now}
		r.isRelay.Store(new(func(a netip.AddrPort) bool { return a == relay }))
		from := &net.UDPAddr{IP: net.ParseIP("198.51.100.7"), Port: 4000}
		if fromRelay {
			from = net.UDPAddrFromAddrPort(relay)
		}
		_ = r.hold(b, from)
	})
}
