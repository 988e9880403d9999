package test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestLabCallsAcrossNetworks: Go clients in homes behind a port-preserving
// NAT, a symmetric NAT and a firewall that lets out only TCP 443 call each
// other, and so does one in an IPv6-only network, every pair. Each
// call connects and carries audio and video both ways. Only a device that
// cannot reach the server's media port over UDP goes through TURN (over
// TLS on 443); every other one goes straight to the server, whatever its
// NAT, as the selected candidate pairs show. The time from the invite to
// the first whole video frame is logged per path.
func TestLabCallsAcrossNetworks(t *testing.T) {
	if !inPrivateNetns(t, "nft", "nsenter", "unshare", "sysctl") {
		return
	}
	l := newLab(t)
	ts := l.startServer(nil)
	homes := []*home{
		l.home("cone", natPortPreserving),
		l.home("symmetric", natSymmetric),
		l.home("tcp443", natTCP443),
		l.home("v6only", natIPv6Only),
	}
	connect := map[string][]float64{}
	for i, a := range homes {
		for _, b := range homes[i+1:] {
			caller, callee := fmt.Sprintf("u%s", a.name), fmt.Sprintf("u%s", b.name)
			t.Run(a.name+"→"+b.name, func(t *testing.T) {
				bob := l.deviceIn(t, b, callee, labDeviceSpec{URL: l.wsURL(b), Token: ts.token(t, callee, "phone"), Role: "answer", Tag: 0xb1, PeerTag: 0xa1})
				bob.wait("signed in", 20*time.Second, func(r labReport) bool { return r.Event == "signed_in" })
				alice := l.deviceIn(t, a, caller, labDeviceSpec{URL: l.wsURL(a), Token: ts.token(t, caller, "phone"), Role: "call", Peer: callee, Tag: 0xa1, PeerTag: 0xb1})
				fa := alice.wait("Alice's first frame", 30*time.Second, func(r labReport) bool { return r.Event == "first_frame" })
				bob.wait("Bob's first frame", 30*time.Second, func(r labReport) bool { return r.Event == "first_frame" })
				flowing := func(r labReport) bool {
					return r.Event == "stats" && r.Frames >= 30 && r.Audio >= 50 && len(r.Paths) == 2
				}
				sa := alice.wait("media flowing at Alice", 30*time.Second, flowing)
				sb := bob.wait("media flowing at Bob", 30*time.Second, flowing)
				checkLabPaths(t, a, sa)
				checkLabPaths(t, b, sb)
				key := pathKind(a) + " → " + pathKind(b)
				connect[key] = append(connect[key], fa.FirstFrameMs)
				t.Logf("%s: invite to first frame %.0f ms; caller %v, callee %v", key, fa.FirstFrameMs, sa.Paths["pub"], sb.Paths["pub"])
			})
		}
	}
	keys := make([]string, 0, len(connect))
	for k := range connect {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sum strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sum, "\n  %s: %v ms", k, connect[k])
	}
	t.Logf("invite to the caller's first frame of the callee:%s", sum.String())
}

// pathKind names the path a home's device takes to the server.
func pathKind(h *home) string {
	if h.nat == natTCP443 {
		return h.nat.String() + " (TURN/TLS)"
	}
	return h.nat.String()
}

// checkLabPaths checks that a device's media went the way its network
// allows: relayed through TURN only when UDP to the server is blocked.
func checkLabPaths(t *testing.T, h *home, r labReport) {
	t.Helper()
	for _, pc := range []string{"pub", "sub"} {
		p, ok := r.Paths[pc]
		if !ok {
			t.Errorf("%s: %s has no selected path", h.name, pc)
			continue
		}
		relayed := p.Local == "relay"
		switch {
		case h.nat == natTCP443 && !relayed:
			t.Errorf("%s: %s went %v, want through TURN: UDP is blocked there", h.name, pc, p)
		case h.nat != natTCP443 && relayed:
			t.Errorf("%s: %s went %v, want straight to the server: nothing there needs a relay", h.name, pc, p)
		case h.nat == natIPv6Only && !strings.Contains(p.RemoteAddr, "[2001:db8:ff::10]"):
			t.Errorf("%s: %s went %v, want to the server's IPv6 address", h.name, pc, p)
		case h.nat != natIPv6Only && !relayed && !slices.Contains([]string{"host", "srflx", "prflx"}, p.Local):
			t.Errorf("%s: %s went %v, want from its own address", h.name, pc, p)
		}
	}
}

// TestLabCallMovesBetweenNetworks: Alice is in a call from home, behind a
// port-preserving NAT, and takes her laptop to a hotel whose firewall lets
// out only TCP 443: the address under the call goes and another comes.
// Her client sees it, opens its signaling socket again from the new
// address, the server resumes her call on it, and her media restarts ICE
// and comes back through TURN over TLS. The call goes on: her video keeps
// reaching Bob and his reaches her.
func TestLabCallMovesBetweenNetworks(t *testing.T) {
	if !inPrivateNetns(t, "nft", "nsenter", "unshare", "sysctl") {
		return
	}
	l := newLab(t)
	ts := l.startServer(nil)
	aliceHome, bobHome, hotel := l.home("home", natPortPreserving), l.home("bob", natSymmetric), l.home("hotel", natTCP443)
	bob := l.deviceIn(t, bobHome, "bob", labDeviceSpec{URL: l.wsURL(), Token: ts.token(t, "bob", "phone"), Role: "answer", Tag: 0xb1, PeerTag: 0xa1})
	bob.wait("signed in", 20*time.Second, func(r labReport) bool { return r.Event == "signed_in" })
	alice := l.deviceIn(t, aliceHome, "alice", labDeviceSpec{URL: l.wsURL(), Token: ts.token(t, "alice", "laptop"), Role: "call", Peer: "bob", Tag: 0xa1, PeerTag: 0xb1})
	flowing := func(r labReport) bool { return r.Event == "stats" && r.Frames >= 30 && len(r.Paths) == 2 }
	before := alice.wait("media at Alice", 30*time.Second, flowing)
	atBob := bob.wait("media at Bob", 30*time.Second, flowing)
	checkLabPaths(t, aliceHome, before)

	moved := time.Now()
	l.moveHost(aliceHome, hotel)
	after := alice.wait("Alice's media through the hotel", 30*time.Second, func(r labReport) bool {
		return r.Event == "stats" && r.Paths["pub"].Local == "relay" && r.Paths["sub"].Local == "relay" && r.Frames >= before.Frames+30
	})
	back := time.Since(moved)
	bob.wait("Bob still receiving Alice", 30*time.Second, func(r labReport) bool {
		return r.Event == "stats" && r.Frames >= atBob.Frames+60
	})
	t.Logf("Alice moved from %v to %v; her path through the hotel within %v", before.Paths["pub"], after.Paths["pub"], back.Round(10*time.Millisecond))
}

// TestLabCongestionControl: a Go client with congestion control sends
// 2.5 Mbit/s of video from a home whose uplink carries 500 kbit/s; its
// estimate of the path falls to what the link carries, which a sender
// that encodes its own frames (the desktop agent) then follows. From a
// home with no cap, sending 600 kbit/s, the estimate does not fall.
func TestLabCongestionControl(t *testing.T) {
	if !inPrivateNetns(t, "nft", "nsenter", "unshare", "sysctl") {
		return
	}
	l := newLab(t)
	ts := l.startServer(nil)
	const capKbps = 500
	capped := l.home("capped", natPortPreserving, linkShape{Delay: 10 * time.Millisecond, RateKbps: capKbps})
	open := l.home("open", natSymmetric, linkShape{Delay: 10 * time.Millisecond})
	for _, c := range []struct {
		from     *home
		sendKbps int
		fell     bool
	}{{capped, 2500, true}, {open, 600, false}} {
		t.Run(c.from.name, func(t *testing.T) {
			callee := "peer-of-" + c.from.name
			peer := l.deviceIn(t, open, callee, labDeviceSpec{URL: l.wsURL(), Token: ts.token(t, callee, "phone"), Role: "answer", Tag: 0xb1, PeerTag: 0xa1})
			peer.wait("signed in", 20*time.Second, func(r labReport) bool { return r.Event == "signed_in" })
			sender := l.deviceIn(t, c.from, "sender", labDeviceSpec{
				URL: l.wsURL(), Token: ts.token(t, "sender-"+c.from.name, "laptop"), Role: "call", Peer: callee, Tag: 0xa1, PeerTag: 0xb1,
				VideoKbps: c.sendKbps, EstimateBandwidth: true,
			})
			start := time.Now()
			first := sender.wait("an estimate", 20*time.Second, func(r labReport) bool { return r.Event == "stats" && r.TargetKbps > 0 })
			if c.fell {
				if first.TargetKbps <= capKbps*5/4 {
					t.Fatalf("the estimate began at %d kbit/s, already under the link's rate: nothing to show", first.TargetKbps)
				}
				r := sender.wait("the estimate under the link's rate", 30*time.Second, func(r labReport) bool {
					return r.Event == "stats" && r.TargetKbps > 0 && r.TargetKbps <= capKbps*5/4
				})
				t.Logf("sending %d kbit/s into %d kbit/s: estimate %d kbit/s at first, %d kbit/s after %v",
					c.sendKbps, capKbps, first.TargetKbps, r.TargetKbps, time.Since(start).Round(100*time.Millisecond))
				return
			}
			time.Sleep(8 * time.Second)
			r := sender.wait("an estimate now", 5*time.Second, func(r labReport) bool { return r.Event == "stats" && time.Since(start) > 8*time.Second })
			t.Logf("sending %d kbit/s on an open link: estimate %d kbit/s at first, %d kbit/s after %v", c.sendKbps, first.TargetKbps, r.TargetKbps, time.Since(start).Round(100*time.Millisecond))
			if r.TargetKbps < 900 {
				t.Errorf("on an open link the estimate fell to %d kbit/s", r.TargetKbps)
			}
		})
	}
}
