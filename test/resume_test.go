package test

import (
	"strconv"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// TestSignalingResume: Alice's signaling socket is lost mid-call (no close
// frame, as when a network goes). Her media carries on to Bob throughout;
// her phone signs in again within the grace window and its new session
// takes the call over: it hears resumed, what it sends reaches Bob, and
// its hangup ends the call as completed for both.
func TestSignalingResume(t *testing.T) {
	ts := startServer(t, nil)
	alice, bob := ts.dial(t, "alice", "phone"), ts.dial(t, "bob", "phone")
	ctx := testCtx(t, 60*time.Second)
	id := answeredCall(t, alice, bob, true)
	if _, err := alice.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, Tag: 0xa1}); err != nil {
		t.Fatal(err)
	}
	var seen arrivals
	if _, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, OnRTP: seen.onRTP}); err != nil {
		t.Fatal(err)
	}
	fromAlice := func(since time.Time) func() bool {
		return func() bool {
			seen.mu.Lock()
			defer seen.mu.Unlock()
			_, ok := firstTagged(seen.audio, 0xa1, since)
			return ok
		}
	}
	testkit.Eventually(t, 20*time.Second, "Bob hearing Alice", fromAlice(time.Time{}))

	alice.Drop()
	dropped := time.Now()
	time.Sleep(time.Second) // the server notices and holds her place
	testkit.Eventually(t, 5*time.Second, "Bob hearing Alice while her signaling is gone", fromAlice(dropped.Add(time.Second)))

	again := ts.dial(t, "alice", "phone")
	r := waitType(t, again, func(m *protocol.Resumed) bool { return m.CallID == id })
	if len(r.Members) != 2 || !r.Video {
		t.Errorf("resumed = %+v, want both members and video", r)
	}
	if err := again.Send(ctx, protocol.TypeMedia, &protocol.Media{CallID: id, Audio: false, Video: true}); err != nil {
		t.Fatal(err)
	}
	if m := waitType(t, bob, func(m *protocol.Media) bool { return m.CallID == id }); m.User != "alice" || m.Audio {
		t.Errorf("Bob got %+v, want Alice muted", m)
	}
	if err := again.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if e := ended(t, bob, id); e.Reason != protocol.ReasonCompleted {
		t.Errorf("Bob's call ended with %q, want completed", e.Reason)
	}
	if e := ended(t, again, id); e.Reason != protocol.ReasonCompleted {
		t.Errorf("Alice's call ended with %q, want completed", e.Reason)
	}
}

// TestReconnectGraceEnds: a lost socket that does not come back within the
// grace window ends the leg with connection_lost, in both histories; a
// client that closes its socket on purpose leaves at once.
func TestReconnectGraceEnds(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Calls.ReconnectGrace = time.Second })
	alice, bob := ts.dial(t, "alice", "phone"), ts.dial(t, "bob", "phone")
	id := answeredCall(t, alice, bob, false)
	alice.Drop()
	dropped := time.Now()
	e := ended(t, bob, id)
	if e.Reason != protocol.ReasonConnectionLost {
		t.Errorf("Bob's call ended with %q, want connection_lost", e.Reason)
	}
	if waited := time.Since(dropped); waited < 900*time.Millisecond {
		t.Errorf("the call ended %v after the drop, before the 1 s grace window", waited)
	}
	testkit.Eventually(t, 5*time.Second, "both histories", func() bool {
		a, b := ts.history(t, "alice"), ts.history(t, "bob")
		return len(a) == 1 && len(b) == 1 && a[0].Reason == protocol.ReasonConnectionLost && b[0].Reason == protocol.ReasonConnectionLost
	})

	ts2 := startServer(t, func(c *config.Config) { c.Calls.ReconnectGrace = time.Minute })
	carol, dave := ts2.dial(t, "carol", "phone"), ts2.dial(t, "dave", "phone")
	id = answeredCall(t, carol, dave, false)
	carol.Close() // a close frame: she left
	if e := ended(t, dave, id); e.Reason != protocol.ReasonConnectionLost {
		t.Errorf("Dave's call ended with %q, want connection_lost", e.Reason)
	}
}

// TestResumeBeforeTheOldSocketIsGone: Alice's laptop changes network. Her
// old socket is not yet seen as lost when her new one signs in, and the
// first thing she sends on it is about the call (her ICE restart for the
// new network, here her media state). The new socket takes the call over
// at once: what she sends reaches Bob, and nothing is refused as coming
// from a device that is no leg of the call.
func TestResumeBeforeTheOldSocketIsGone(t *testing.T) {
	ts := startServer(t, nil)
	alice, bob := ts.dial(t, "alice", "laptop"), ts.dial(t, "bob", "phone")
	id := answeredCall(t, alice, bob, false)
	for i := range 5 {
		r := ts.raw(t)
		// hello and the call message back to back, as a client whose
		// queue held the message for the next socket sends them.
		r.send(`{"v":1,"type":"hello","token":"` + ts.token(t, "alice", "laptop") + `"}`)
		r.send(`{"v":1,"type":"media","id":"m` + strconv.Itoa(i) + `","call_id":"` + id + `","audio":true,"video":` + strconv.FormatBool(i%2 == 0) + `}`)
		var resumed bool
		for !resumed {
			m := r.next()
			switch m["type"] {
			case "error":
				t.Fatalf("socket %d: the server refused the call message: %v", i, m)
			case "resumed":
				resumed = true
			}
		}
		if m := waitType(t, bob, func(m *protocol.Media) bool { return m.CallID == id && m.Video == (i%2 == 0) }); m.User != "alice" {
			t.Fatalf("socket %d: Bob got %+v", i, m)
		}
	}
}
