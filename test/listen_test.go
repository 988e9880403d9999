package test

import (
	"slices"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// TestListenAlong: Alice's TV listens along to the call her phone holds
// with Bob. The TV receives Bob's audio and video and nothing of Alice's;
// Bob's client never hears of the TV (no renegotiation, no new track);
// Alice's devices are told the TV listens. A listening device that offers
// to send media is refused. The TV stops listening on its own, the call
// going on; it listens again and then takes the whole call, and the phone
// is released with handed_off.
func TestListenAlong(t *testing.T) {
	ts := startServer(t, nil)
	phone, tv := ts.dial(t, "alice", "phone"), ts.dial(t, "alice", "tv")
	bob := ts.dial(t, "bob", "phone")
	ctx := testCtx(t, 60*time.Second)
	id := answeredCall(t, phone, bob, true)
	phoneMedia, err := phone.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, Tag: 0xa1})
	if err != nil {
		t.Fatal(err)
	}
	var atBob arrivals
	bobMedia, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, Tag: 0xb1, OnRTP: atBob.onRTP})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "Bob receiving the phone", atBob.receiving(0xa1, time.Time{}))
	bobBefore := bobMedia.Stats()

	// The TV asks to listen; an offer to send is refused, a receive-only
	// one is taken.
	listen := func() (*client.Media, *arrivals) {
		t.Helper()
		if err := tv.Listen(ctx, id); err != nil {
			t.Fatal(err)
		}
		st := waitType(t, tv, func(m *protocol.Handoff) bool { return m.CallID == id })
		if st.State != protocol.HandoffStarted || !st.Listen || st.Device != "phone" || len(st.Members) != 2 {
			t.Fatalf("the TV got %+v, want started to listen to the phone's call", st)
		}
		var at arrivals
		m, err := tv.StartMedia(ctx, id, client.MediaOptions{ReceiveOnly: true, OnRTP: at.onRTP})
		if err != nil {
			t.Fatal(err)
		}
		if done := waitType(t, tv, func(m *protocol.Handoff) bool { return m.CallID == id }); done.State != protocol.HandoffDone || !done.Listen {
			t.Fatalf("the TV got %+v, want done", done)
		}
		return m, &at
	}
	if err := tv.Listen(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitType(t, tv, func(m *protocol.Handoff) bool { return m.CallID == id && m.State == protocol.HandoffStarted })
	sending, err := tv.StartMedia(ctx, id, client.MediaOptions{Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	if e := waitType(t, tv, func(m *protocol.Error) bool { return true }); e.Code != protocol.CodeInvalidState {
		t.Errorf("a listening device offering to send got %+v, want %s", e, protocol.CodeInvalidState)
	}
	_ = sending.Close()
	if err := tv.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if e := ended(t, tv, id); e.Reason != protocol.ReasonCompleted {
		t.Errorf("the TV's refused listen ended with %q", e.Reason)
	}

	tvMedia, atTV := listen()
	if ac := waitType(t, phone, func(m *protocol.ActiveCall) bool { return len(m.Listening) > 0 }); !slices.Equal(ac.Listening, []string{"tv"}) || ac.Device != "phone" {
		t.Errorf("the phone was told %+v, want the call on the phone with the TV listening", ac)
	}
	testkit.Eventually(t, 20*time.Second, "the TV receiving Bob", atTV.receiving(0xb1, time.Time{}))
	atTV.mu.Lock()
	for _, a := range append(slices.Clone(atTV.audio), atTV.video...) {
		if a.tag != 0xb1 {
			t.Errorf("the TV received media tagged %#x, not Bob's", a.tag)
			break
		}
	}
	atTV.mu.Unlock()
	if streams := tvMedia.RemoteStreams(); !slices.Equal(streams, []string{"bob"}) {
		t.Errorf("the TV receives streams %v, want only bob", streams)
	}

	// The TV stops listening; the call goes on between the phone and Bob.
	if err := tv.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if e := ended(t, tv, id); e.Reason != protocol.ReasonCompleted {
		t.Errorf("the TV's listening ended with %q, want completed", e.Reason)
	}
	_ = tvMedia.Close()
	stopped := time.Now()
	testkit.Eventually(t, 5*time.Second, "Bob receiving the phone after the TV left", atBob.receiving(0xa1, stopped))

	// It listens again, then takes the call.
	tvMedia, _ = listen()
	if err := tv.Handoff(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	waitType(t, tv, func(m *protocol.Handoff) bool {
		return m.CallID == id && m.State == protocol.HandoffStarted && !m.Listen
	})
	_ = tvMedia.Close()
	moved := time.Now()
	if _, err := tv.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, Tag: 0xa3}); err != nil {
		t.Fatal(err)
	}
	waitType(t, tv, func(m *protocol.Handoff) bool { return m.CallID == id && m.State == protocol.HandoffDone })
	if e := ended(t, phone, id); e.Reason != protocol.ReasonHandedOff {
		t.Errorf("the phone ended with %q, want handed_off", e.Reason)
	}
	_ = phoneMedia.Close()
	testkit.Eventually(t, 5*time.Second, "Bob receiving the TV", atBob.receiving(0xa3, moved))

	bobAfter := bobMedia.Stats()
	if bobAfter.SubOffers != bobBefore.SubOffers || !slices.Equal(bobAfter.RemoteTracks, bobBefore.RemoteTracks) {
		t.Errorf("Bob renegotiated: sub offers %d → %d, tracks %+v → %+v",
			bobBefore.SubOffers, bobAfter.SubOffers, bobBefore.RemoteTracks, bobAfter.RemoteTracks)
	}
	if err := bob.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if e := ended(t, tv, id); e.Reason != protocol.ReasonCompleted {
		t.Errorf("the TV's call ended with %q, want completed", e.Reason)
	}
}

// TestListenerEndsWithTheCall: when the phone holding Alice's place in a
// room loses its connection for longer than the grace window, she leaves
// the room, which goes on without her, and the TV listening along for her
// is told it ended, with her reason.
func TestListenerEndsWithTheCall(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Calls.ReconnectGrace = time.Second })
	phone, tv := ts.dial(t, "alice", "phone"), ts.dial(t, "alice", "tv")
	bob, carol := ts.dial(t, "bob", "phone"), ts.dial(t, "carol", "phone")
	ctx := testCtx(t, 30*time.Second)
	id, err := phone.Join(ctx, "family")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{bob, carol} {
		if _, err := c.Join(ctx, "family"); err != nil {
			t.Fatal(err)
		}
	}
	if err := tv.Listen(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitType(t, tv, func(m *protocol.Handoff) bool { return m.CallID == id && m.State == protocol.HandoffStarted })
	if _, err := tv.StartMedia(ctx, id, client.MediaOptions{ReceiveOnly: true}); err != nil {
		t.Fatal(err)
	}
	waitType(t, tv, func(m *protocol.Handoff) bool { return m.CallID == id && m.State == protocol.HandoffDone })
	phone.Drop()
	if e := ended(t, tv, id); e.Reason != protocol.ReasonConnectionLost {
		t.Errorf("the TV's listening ended with %q, want connection_lost", e.Reason)
	}
	if left := waitType(t, bob, func(m *protocol.MemberLeft) bool { return m.CallID == id }); left.User != "alice" || left.Reason != protocol.ReasonConnectionLost {
		t.Errorf("Bob saw %+v, want alice leaving with connection_lost", left)
	}
}
