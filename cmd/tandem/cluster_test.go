package main

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/redistest"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

const clusterSecret = "a-test-cluster-secret-of-32-bytes-or-more"

// clusterNode runs `tandem serve` as a node of the deployment sharing the
// Redis at addr.
func clusterNode(t *testing.T, addr string, env ...string) (*proc, string) {
	t.Helper()
	env = append([]string{"TANDEM_REDIS_ADDRS=" + addr, "TANDEM_AUTH_SECRET=" + clusterSecret}, env...)
	return devServer(t, t.TempDir(), env...)
}

func clusterToken(t *testing.T, user, device string) string {
	t.Helper()
	a, err := auth.New([]byte(clusterSecret), "")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := a.Mint(user, device, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// heard records when audio from one user last arrived, and the first
// arrival after a mark.
type heard struct {
	mu    sync.Mutex
	from  string
	last  time.Time
	first time.Time // first arrival at or after since
	since time.Time
}

func (h *heard) onRTP(tr client.RemoteTrack, _ *rtp.Packet, at time.Time) {
	if tr.Kind != "audio" || tr.StreamID != h.from {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = at
	if !h.since.IsZero() && h.first.IsZero() && !at.Before(h.since) {
		h.first = at
	}
}

func (h *heard) mark(t time.Time) {
	h.mu.Lock()
	h.since, h.first = t, time.Time{}
	h.mu.Unlock()
}

func (h *heard) times() (last, first time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last, h.first
}

// callAcross puts alice (on node a) and bob (on node b) in an answered
// call with media both ways; the call's home is a, alice's node.
func callAcross(t *testing.T, ctx context.Context, a, b string) (alice, bob *client.Client, id string, am, bm *client.Media, atBob, atAlice *heard) {
	t.Helper()
	alice = dial(t, a, clusterToken(t, "alice", "phone"))
	bob = dial(t, b, clusterToken(t, "bob", "phone"))
	id, err := alice.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatalf("invite across nodes: %v", err)
	}
	waitMsg(t, bob, func(m *protocol.Incoming) bool { return m.CallID == id })
	if err := bob.Accept(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	waitMsg(t, alice, func(m *protocol.Accepted) bool { return m.CallID == id })
	atBob, atAlice = &heard{from: "alice"}, &heard{from: "bob"}
	if am, err = alice.StartMedia(ctx, id, client.MediaOptions{Audio: true, OnRTP: atAlice.onRTP}); err != nil {
		t.Fatal(err)
	}
	if bm, err = bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, OnRTP: atBob.onRTP}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "audio both ways across nodes", func() bool {
		a, _ := atBob.times()
		b, _ := atAlice.times()
		return !a.IsZero() && !b.IsZero()
	})
	return alice, bob, id, am, bm, atBob, atAlice
}

// rejoin waits for c to hear that the call moved to another node and
// connects its media there anew, as the web client does.
func rejoin(t *testing.T, ctx context.Context, c *client.Client, id string, old *client.Media, h *heard) *client.Media {
	t.Helper()
	ctxW, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	// Errorf, not Fatalf: it also runs on a goroutine of its own.
	if _, err := client.WaitForType(ctxW, c, func(m *protocol.Resumed) bool { return m.CallID == id && m.Rejoin }); err != nil {
		t.Errorf("%s: no resumed with rejoin: %v", c.Welcome().User, err)
		return nil
	}
	if old != nil {
		old.Close()
	}
	m, err := c.StartMedia(ctx, id, client.MediaOptions{Audio: true, OnRTP: h.onRTP})
	if err != nil {
		t.Errorf("%s: media on the new node: %v", c.Welcome().User, err)
	}
	return m
}

// bothRejoin signs alice in again on the node at url and has her and bob
// connect the call's media to the node that took it over; it returns once
// each hears the other again after since, and gives alice's new client.
func bothRejoin(t *testing.T, ctx context.Context, url string, bob *client.Client, id string, bm *client.Media, atBob, atAlice *heard, since time.Time) *client.Client {
	t.Helper()
	atBob.mark(since)
	atAlice.mark(since)
	alice := dial(t, url, clusterToken(t, "alice", "phone"))
	var wg sync.WaitGroup
	wg.Go(func() { rejoin(t, ctx, alice, id, nil, atAlice) })
	rejoin(t, ctx, bob, id, bm, atBob)
	wg.Wait()
	testkit.Eventually(t, 15*time.Second, "audio both ways on the node that took the call over", func() bool {
		_, a := atBob.times()
		_, b := atAlice.times()
		return !a.IsZero() && !b.IsZero()
	})
	return alice
}

// TestKilledNodeCallGoesOn: three nodes; the node holding a call between
// alice (signed in there) and bob (on another node) is killed with
// SIGKILL. Another node finds it dead, takes the call over and tells
// both; alice signs in again on the third node; both connect their media
// to the new node and hear each other again. The gap bob hears is
// measured against the 5 s target.
func TestKilledNodeCallGoesOn(t *testing.T) {
	rdb := redistest.Start(t)
	pa, a := clusterNode(t, rdb.Addr)
	_, b := clusterNode(t, rdb.Addr)
	_, c := clusterNode(t, rdb.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, bob, id, _, bm, atBob, atAlice := callAcross(t, ctx, a, b)

	if err := pa.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-pa.done
	// Alice's socket died with the node: her phone signs in again, on
	// another node.
	alice2 := bothRejoin(t, ctx, c, bob, id, bm, atBob, atAlice, killed)
	_, back := atBob.times()
	gap := back.Sub(killed)
	t.Logf("bob heard alice again %v after her call's node was killed", gap.Round(time.Millisecond))
	if gap > 5*time.Second {
		t.Errorf("media gap after a node was killed: %v, want ≤ 5 s", gap)
	}

	// The call is whole: a hangup ends it for both.
	if err := alice2.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if e := waitMsg(t, bob, func(m *protocol.Ended) bool { return m.CallID == id }); e.Reason != protocol.ReasonCompleted {
		t.Errorf("bob's call ended with %q, want completed", e.Reason)
	}
}

// TestDrainHandsCallsOver: SIGTERM on the node holding a call stops new
// calls there at once; when its drain timeout ends with the call still
// up, the node hands the call to the others instead of ending it, and
// exits 0. The call goes on on another node.
func TestDrainHandsCallsOver(t *testing.T) {
	rdb := redistest.Start(t)
	pa, a := clusterNode(t, rdb.Addr, "TANDEM_SHUTDOWN_DRAIN_TIMEOUT=2s")
	_, b := clusterNode(t, rdb.Addr)
	_, c := clusterNode(t, rdb.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, bob, id, _, bm, atBob, atAlice := callAcross(t, ctx, a, b)

	pa.signal(t, syscall.SIGTERM)
	waitDraining(t, pa, a)
	// Calls from the draining node's devices go to the others.
	carol := dial(t, c, clusterToken(t, "carol", "phone"))
	dave := dial(t, a, clusterToken(t, "dave", "phone"))
	if _, err := dave.Invite(ctx, "carol", false); err != nil {
		t.Errorf("a call from a device on a draining node: %v", err)
	}
	waitMsg(t, carol, func(m *protocol.Incoming) bool { return true })

	if code := pa.exitCode(t, 15*time.Second); code != 0 {
		t.Errorf("exit status %d after the drain, want 0", code)
	}
	bothRejoin(t, ctx, c, bob, id, bm, atBob, atAlice, time.Now())
	if hasEnded(bob, id) {
		t.Error("bob's call ended during the handover")
	}
}

// TestKilledNodeRingingCallEnds: the node holding a call still ringing is
// killed. A ringing call is not taken over, so the device it rang on
// another node must hear it ended (failed), not ring on forever.
func TestKilledNodeRingingCallEnds(t *testing.T) {
	rdb := redistest.Start(t)
	pa, a := clusterNode(t, rdb.Addr, "TANDEM_CALLS_RING_TIMEOUT=5m")
	_, b := clusterNode(t, rdb.Addr, "TANDEM_CALLS_RING_TIMEOUT=5m")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := dial(t, a, clusterToken(t, "alice", "phone"))
	bob := dial(t, b, clusterToken(t, "bob", "phone"))
	id, err := alice.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatal(err)
	}
	waitMsg(t, bob, func(m *protocol.Incoming) bool { return m.CallID == id })
	if err := pa.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-pa.done
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	e, err := client.WaitForType(wctx, bob, func(m *protocol.Ended) bool { return m.CallID == id })
	if err != nil {
		t.Fatalf("bob's phone rings on for a call whose node was killed: %v", err)
	}
	t.Logf("bob's phone stopped ringing %v after the call's node was killed", time.Since(killed).Round(time.Millisecond))
	if e.Reason != protocol.ReasonFailed {
		t.Errorf("ended with %q, want failed", e.Reason)
	}
}

// TestKilledNodeRoomStaysOne: the node holding a room is killed, and
// someone joins the room by its name before another node has taken it
// over. The join waits (unavailable, try again) and lands in the room
// taken over, rather than starting a second room of the same name.
func TestKilledNodeRoomStaysOne(t *testing.T) {
	rdb := redistest.Start(t)
	pa, a := clusterNode(t, rdb.Addr) // alone at first: the room's home
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := dial(t, a, clusterToken(t, "alice", "phone"))
	first, err := alice.Request(ctx, protocol.TypeJoin, &protocol.Join{Room: "family"})
	if err != nil {
		t.Fatal(err)
	}
	_, b := clusterNode(t, rdb.Addr)
	_, _ = clusterNode(t, rdb.Addr)
	bob := dial(t, b, clusterToken(t, "bob", "phone"))
	if err := pa.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-pa.done
	var ack *protocol.Ack
	refused := 0
	for {
		ack, err = bob.Request(ctx, protocol.TypeJoin, &protocol.Join{Room: "family"})
		if !client.IsCode(err, protocol.CodeUnavailable) {
			break
		}
		refused++
		// Asked again at once: the window between the node found dead
		// and the room taken over is short, and this must land in it.
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("joining the room after its node was killed: %v", err)
	}
	t.Logf("the join was refused as unavailable %d times while the room was taken over", refused)
	if ack.CallID != first.CallID {
		t.Errorf("bob joined %s, alice is in %s: the room was split in two", ack.CallID, first.CallID)
	}
}

// TestKilledNodeEndsAssistance: Bob lets Alice see and control his screen
// in a call whose node is then killed. The node taking the call over
// cannot know what the dead one allowed since, so it ends the
// assistance: Bob's device hears it ended and stops honouring the grants,
// and his audit log shows them taken back and why. Without this his
// device went on trusting a grant no server tracked any more.
func TestKilledNodeEndsAssistance(t *testing.T) {
	rdb := redistest.Start(t)
	pa, a := clusterNode(t, rdb.Addr)
	_, b := clusterNode(t, rdb.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alice := dial(t, a, clusterToken(t, "alice", "phone"))
	bob := dial(t, b, clusterToken(t, "bob", "laptop"))
	id, err := alice.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatal(err)
	}
	waitMsg(t, bob, func(m *protocol.Incoming) bool { return m.CallID == id })
	if err := bob.Accept(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	if err := alice.Assist(ctx, id, "bob", protocol.AssistView); err != nil {
		t.Fatal(err)
	}
	waitMsg(t, bob, func(m *protocol.AssistState) bool { return m.Active && len(m.Requested) > 0 })
	if err := bob.AssistGrant(ctx, id, protocol.AssistView, protocol.AssistControl); err != nil {
		t.Fatal(err)
	}
	waitMsg(t, alice, func(m *protocol.AssistState) bool { return len(m.Granted) == 2 })

	if err := pa.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-pa.done
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	st, err := client.WaitForType(wctx, bob, func(m *protocol.AssistState) bool { return m.CallID == id && !m.Active })
	if err != nil {
		t.Fatalf("bob's device was never told the assistance ended after its node was killed: %v", err)
	}
	if len(st.Granted) != 0 {
		t.Errorf("the assistance ended with %v still granted", st.Granted)
	}
	if hasEnded(bob, id) {
		t.Error("the call itself ended: only the assistance should")
	}

	var log struct {
		Entries []store.AssistEntry `json:"entries"`
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b+"/api/v1/assist/log", nil)
	req.Header.Set("Authorization", "Bearer "+clusterToken(t, "bob", "laptop"))
	testkit.Eventually(t, 10*time.Second, "bob's audit log to show the grants taken back", func() bool {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&log) != nil {
			return false
		}
		for _, e := range log.Entries {
			if e.CallID == id && e.Event == store.AssistRevoke && e.Reason == "node_gone" &&
				slices.Equal(e.Grants, []string{protocol.AssistView, protocol.AssistControl}) {
				return true
			}
		}
		return false
	})
}

// TestKilledNodeEndsListening: Alice's TV listens along to her call when
// the call's node is killed. The node taking the call over cannot know
// where the TV's media stood, so the TV hears its part ended (failed)
// and may listen again, rather than stay on a call that no longer counts
// it, told nothing, as before.
func TestKilledNodeEndsListening(t *testing.T) {
	rdb := redistest.Start(t)
	pa, a := clusterNode(t, rdb.Addr)
	_, b := clusterNode(t, rdb.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, bob, id, _, _, _, _ := callAcross(t, ctx, a, b)
	tv := dial(t, b, clusterToken(t, "alice", "tv"))
	if err := tv.Listen(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitMsg(t, tv, func(m *protocol.Handoff) bool { return m.CallID == id && m.State == protocol.HandoffStarted })
	var atTV heard
	atTV.from = "bob"
	if _, err := tv.StartMedia(ctx, id, client.MediaOptions{ReceiveOnly: true, OnRTP: atTV.onRTP}); err != nil {
		t.Fatal(err)
	}
	waitMsg(t, tv, func(m *protocol.Handoff) bool { return m.CallID == id && m.State == protocol.HandoffDone })
	testkit.Eventually(t, 10*time.Second, "the TV hearing bob", func() bool { last, _ := atTV.times(); return !last.IsZero() })

	if err := pa.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-pa.done
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	e, err := client.WaitForType(wctx, tv, func(m *protocol.Ended) bool { return m.CallID == id })
	if err != nil {
		t.Fatalf("the TV was never told its listening ended after the call's node was killed: %v", err)
	}
	if e.Reason != protocol.ReasonFailed {
		t.Errorf("the TV heard %q, want failed", e.Reason)
	}
	if hasEnded(bob, id) {
		t.Error("bob's call ended: only the listening should")
	}
}
