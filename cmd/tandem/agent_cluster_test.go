package main

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tandemcall/tandem/internal/agent"
	"github.com/tandemcall/tandem/internal/agent/x11/x11test"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/redistest"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// viewConsent answers every call and allows the helper to see.
type viewConsent struct{ asked atomic.Int32 }

func (c *viewConsent) AnswerCall(context.Context, string) bool { return true }
func (c *viewConsent) Grant(_ context.Context, _ string, requested []string) []string {
	c.asked.Add(1)
	if slices.Contains(requested, protocol.AssistView) {
		return []string{protocol.AssistView}
	}
	return nil
}

// screenFrames counts the screen's frames a helper receives.
type screenFrames struct{ n atomic.Int64 }

func (f *screenFrames) onRTP(t client.RemoteTrack, p *rtp.Packet, _ time.Time) {
	if t.Kind == "video" && p.Marker {
		f.n.Add(1)
	}
}

// TestAgentFollowsItsCallToAnotherNode: Bob helps Mom's desktop agent;
// the node holding the call (Bob's) is killed. Another node takes the call
// over and tells both to rejoin. The agent connects its media to the new
// node by itself, takes back every grant (the assistance did not move:
// Mom is asked again), and once Bob asks again and Mom allows it he sees
// her screen again.
func TestAgentFollowsItsCallToAnotherNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Xvfb, redis-server and three nodes")
	}
	display := x11test.StartXvfb(t)
	x11test.NewTestWindow(t, display, 200, 150, 640, 360)
	rdb := redistest.Start(t).Addr
	_, a := clusterNode(t, rdb)
	pb, b := clusterNode(t, rdb)
	_, c := clusterNode(t, rdb)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	consent := &viewConsent{}
	ag := agent.New(agent.Config{URL: "ws" + strings.TrimPrefix(a, "http") + "/ws", Token: clusterToken(t, "mom", "desktop"), Display: display, FPS: 15}, consent)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ag.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})

	bob := dial(t, b, clusterToken(t, "bob", "phone"))
	var id string
	testkit.Eventually(t, 10*time.Second, "the agent signed in, ringing", func() bool {
		var err error
		id, err = bob.Invite(ctx, "mom", false)
		return err == nil
	})
	waitMsg(t, bob, func(m *protocol.Accepted) bool { return m.CallID == id })
	var before screenFrames
	if _, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, Assist: true, OnRTP: before.onRTP}); err != nil {
		t.Fatal(err)
	}
	if err := bob.Assist(ctx, id, "mom", protocol.AssistView); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "Bob seeing Mom's screen", func() bool { return before.n.Load() > 5 })

	if err := pb.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-pb.done
	// Bob's phone signs in again on another node and rejoins; the agent,
	// whose node lives, is told to rejoin and does so by itself.
	bob2 := dial(t, c, clusterToken(t, "bob", "phone"))
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if _, err := client.WaitForType(wctx, bob2, func(m *protocol.Resumed) bool { return m.CallID == id && m.Rejoin }); err != nil {
		t.Fatalf("Bob's phone was not told to rejoin: %v", err)
	}
	var after screenFrames
	if _, err := bob2.StartMedia(ctx, id, client.MediaOptions{Audio: true, Assist: true, OnRTP: after.onRTP}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the agent rejoining", func() bool { return ag.Stats().Rejoins == 1 })
	asked := consent.asked.Load()
	time.Sleep(2 * time.Second)
	if n := after.n.Load(); n > 0 {
		t.Errorf("Bob got %d frames of Mom's screen on the new node before he asked again", n)
	}
	if err := bob2.Assist(ctx, id, "mom", protocol.AssistView); err != nil {
		t.Fatalf("asking again on the new node: %v", err)
	}
	testkit.Eventually(t, 20*time.Second, "Bob seeing Mom's screen again", func() bool { return after.n.Load() > 5 })
	t.Logf("Bob saw Mom's screen again %v after her call's node was killed", time.Since(killed).Round(time.Millisecond))
	if consent.asked.Load() == asked {
		t.Error("Mom was not asked again on the new node")
	}
}
