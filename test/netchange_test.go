package test

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// maxNetworkChangeGap is how long media may stop when a device's address
// changes mid-call.
const maxNetworkChangeGap = 2 * time.Second

// TestNetworkChange: Alice's device reaches the server from an address of
// its own (on a veth in the test's private network namespace); mid-call
// that address goes and another comes, as when a phone leaves Wi-Fi for
// cellular. Her client notices and restarts ICE; the server answers and
// restarts ICE on the path it sends her media on. Media must flow again
// both ways within 2 s, on the tracks Bob already had (he never
// renegotiates), and the call must not end.
func TestNetworkChange(t *testing.T) {
	if !inPrivateNetns(t) {
		return
	}
	ipCmd(t, "link", "add", "tnd0", "type", "veth", "peer", "name", "tnd1")
	ipCmd(t, "link", "set", "tnd0", "up")
	ipCmd(t, "link", "set", "tnd1", "up")
	ipCmd(t, "addr", "add", "10.77.0.2/24", "dev", "tnd0")
	_, home, err := net.ParseCIDR("10.77.0.0/24")
	if err != nil {
		t.Fatal(err)
	}

	ts := startServer(t, nil)
	ctx := testCtx(t, 60*time.Second)
	alice, bob := ts.dial(t, "alice", "phone"), ts.dial(t, "bob", "phone")
	id := answeredCall(t, alice, bob, true)
	var atAlice, atBob arrivals
	aliceMedia, err := alice.StartMedia(ctx, id, client.MediaOptions{
		Audio: true, Video: true, Tag: 0xa1, Network: home, OnRTP: atAlice.onRTP,
	})
	if err != nil {
		t.Fatal(err)
	}
	bobMedia, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, Tag: 0xb1, OnRTP: atBob.onRTP})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "Alice and Bob receiving each other", func() bool {
		return atBob.has(0xa1, time.Time{}) && atAlice.has(0xb1, time.Time{})
	})
	time.Sleep(500 * time.Millisecond)
	bobBefore := bobMedia.Stats()

	ipCmd(t, "addr", "del", "10.77.0.2/24", "dev", "tnd0")
	changed := time.Now()
	ipCmd(t, "addr", "add", "10.77.0.3/24", "dev", "tnd0")

	// Media from before the change may still be arriving; wait for media
	// sent from the new address, well after it.
	after := changed.Add(maxNetworkChangeGap + time.Second)
	testkit.Eventually(t, 15*time.Second, "media flowing both ways again", func() bool {
		return atBob.has(0xa1, after) && atAlice.has(0xb1, after)
	})
	window := func(a *arrivals) (audio, video time.Duration) {
		a.mu.Lock()
		defer a.mu.Unlock()
		return maxGap(a.audio, changed, after), maxGap(a.video, changed, after)
	}
	bobAudio, bobVideo := window(&atBob)
	aliceAudio, aliceVideo := window(&atAlice)
	t.Logf("longest gap after the address change: at Bob audio %v, video %v; at Alice audio %v, video %v",
		bobAudio.Round(time.Millisecond), bobVideo.Round(time.Millisecond),
		aliceAudio.Round(time.Millisecond), aliceVideo.Round(time.Millisecond))
	for what, gap := range map[string]time.Duration{
		"Bob's audio from Alice": bobAudio, "Bob's video from Alice": bobVideo,
		"Alice's audio from Bob": aliceAudio, "Alice's video from Bob": aliceVideo,
	} {
		if gap > maxNetworkChangeGap {
			t.Errorf("%s stopped for %v, want at most %v", what, gap.Round(time.Millisecond), maxNetworkChangeGap)
		}
	}

	if n := aliceMedia.Stats().ICERestarts; n != 1 {
		t.Errorf("Alice's client restarted ICE %d times, want once", n)
	}
	bobAfter := bobMedia.Stats()
	if bobAfter.SubOffers != bobBefore.SubOffers || len(bobAfter.RemoteTracks) != len(bobBefore.RemoteTracks) {
		t.Errorf("Bob renegotiated: sub offers %d → %d, tracks %d → %d", bobBefore.SubOffers, bobAfter.SubOffers,
			len(bobBefore.RemoteTracks), len(bobAfter.RemoteTracks))
	}
	if err := aliceMedia.Err(); err != nil {
		t.Errorf("Alice's media: %v", err)
	}

	// The call lived through it: the first end either side hears is Bob's
	// hangup.
	if err := bob.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if e := ended(t, alice, id); e.Reason != protocol.ReasonCompleted {
		t.Errorf("Alice's call ended with %q, want completed", e.Reason)
	}
}

// ipCmd runs ip with args in the test's private network namespace.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	mustBePrivateNetns(t)
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, bytesTrim(out))
	}
}
