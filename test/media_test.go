package test

import (
	"slices"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// TestCallRingsEveryDeviceAndCarriesMedia is the first slice end to end:
// Bob is signed in on a phone and a laptop; Alice calls him; both ring; he
// answers on the laptop; the phone stops with answered_elsewhere; audio and
// video flow both ways through the SFU; mute is seen by the other side.
func TestCallRingsEveryDeviceAndCarriesMedia(t *testing.T) {
	leaks := testkit.LeakCheck(t, 2)
	ts := startServer(t, nil)
	bobPhone := ts.dial(t, "bob", "phone")
	bobLaptop := ts.dial(t, "bob", "laptop")
	alice := ts.dial(t, "alice", "phone")
	ctx := testCtx(t, 60*time.Second)

	id, err := alice.Invite(ctx, "bob", true)
	if err != nil {
		t.Fatal(err)
	}
	// The caller connects media while it rings.
	aliceMedia, err := alice.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*client.Client{bobPhone, bobLaptop} {
		in := waitType(t, d, func(m *protocol.Incoming) bool { return m.CallID == id })
		if in.From.User != "alice" || !in.Video {
			t.Errorf("incoming = %+v", in)
		}
		if err := d.Ringing(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	rung := map[string]bool{}
	for len(rung) < 2 {
		r := waitType(t, alice, func(m *protocol.RingingEvent) bool { return m.CallID == id })
		rung[r.Device] = true
	}
	if !rung["phone"] || !rung["laptop"] {
		t.Fatalf("ringing devices = %v", rung)
	}

	if err := bobLaptop.Accept(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	if r := ended(t, bobPhone, id).Reason; r != protocol.ReasonAnsweredElsewhere {
		t.Errorf("phone got %q, want answered_elsewhere", r)
	}
	acc := waitType(t, alice, func(m *protocol.Accepted) bool { return m.CallID == id })
	if acc.By.User != "bob" || acc.By.Device != "laptop" {
		t.Errorf("accepted by %+v", acc.By)
	}
	bobMedia, err := bobLaptop.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true})
	if err != nil {
		t.Fatal(err)
	}

	const want = 40 // about a second of audio, more than a second of video
	testkit.Eventually(t, 20*time.Second, "media both ways", func() bool {
		a, b := aliceMedia.Stats(), bobMedia.Stats()
		return a.Audio.PacketsReceived > want && a.Video.PacketsReceived > want &&
			b.Audio.PacketsReceived > want && b.Video.PacketsReceived > want
	})
	if s := bobMedia.RemoteStreams(); !slices.Equal(s, []string{"alice"}) {
		t.Errorf("bob's remote streams = %v, want [alice]", s)
	}
	if s := aliceMedia.RemoteStreams(); !slices.Equal(s, []string{"bob"}) {
		t.Errorf("alice's remote streams = %v, want [bob]", s)
	}
	if bobMedia.Stats().KeyframesReceived == 0 {
		t.Error("bob decoded no keyframe from alice")
	}

	// Mute and camera-off are visible to the other side.
	if err := alice.Send(ctx, protocol.TypeMedia, &protocol.Media{CallID: id, Audio: false, Video: true}); err != nil {
		t.Fatal(err)
	}
	m := waitType(t, bobLaptop, func(m *protocol.Media) bool { return m.CallID == id })
	if m.User != "alice" || m.Audio || !m.Video {
		t.Errorf("bob saw media state %+v", m)
	}

	if err := alice.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if r := ended(t, bobLaptop, id).Reason; r != protocol.ReasonCompleted {
		t.Errorf("bob got %q", r)
	}
	aliceMedia.Close()
	bobMedia.Close()
	for _, c := range []*client.Client{alice, bobPhone, bobLaptop} {
		c.Close()
	}
	ts.stop(t)
	leaks()
}

// TestPLIReachesPublisher: a subscriber's keyframe request goes through the
// SFU to the publisher, which answers with a keyframe.
func TestPLIReachesPublisher(t *testing.T) {
	ts := startServer(t, nil)
	alice := ts.dial(t, "alice", "phone")
	bob := ts.dial(t, "bob", "laptop")
	ctx := testCtx(t, 60*time.Second)
	id := answeredCall(t, alice, bob, true)
	am, bm := startMedia(t, ctx, id, alice, bob)
	testkit.Eventually(t, 20*time.Second, "video at bob", func() bool { return bm.Stats().Video.PacketsReceived > 10 })
	before := am.Stats().PLIsReceived
	testkit.Eventually(t, 10*time.Second, "PLI at alice", func() bool {
		_ = bm.RequestKeyframe()
		return am.Stats().PLIsReceived > before
	})
}
