package callcore

import (
	"errors"
	"testing"
	"time"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// TestListenAlong: bob's tablet listens while his phone holds the call;
// it stops, listens again, takes the call, or hears the call end.
func TestListenAlong(t *testing.T) {
	c, ms := inCall(t)
	bob := ms[1]
	for _, tc := range []struct {
		dev string
		err error
	}{
		{"bob/phone", ErrHolds},
	} {
		if _, err := c.Listen(bob, tc.dev, ms); !errors.Is(err, tc.err) {
			t.Errorf("listen on %s: %v, want %v", tc.dev, err, tc.err)
		}
	}
	if _, err := c.Listen(ms[0], "alice/phone", ms); err != nil {
		t.Errorf("alice's phone listening along with her laptop: %v", err)
	}
	effs, err := c.Listen(bob, "bob/tablet", ms)
	if err != nil {
		t.Fatal(err)
	}
	checkHandoff(t, "listen", effs, "handoff bob/tablet started device=phone")
	if h := effs[0].Msg.(*protocol.Handoff); !h.Listen || len(h.Members) != 2 {
		t.Errorf("started %+v", h)
	}
	if _, err := c.Listen(bob, "bob/tablet", ms); !errors.Is(err, ErrListening) {
		t.Errorf("listening twice: %v", err)
	}
	effs, err = c.StopListening(bob, "bob/tablet", protocol.ReasonCompleted, false)
	if err != nil {
		t.Fatal(err)
	}
	checkHandoff(t, "stop listening", effs, "ended bob/tablet completed 0ms")
	if _, err := c.StopListening(bob, "bob/tablet", protocol.ReasonCompleted, false); !errors.Is(err, ErrNotListener) {
		t.Errorf("stopping twice: %v", err)
	}
	// A listener whose connection dropped is told nothing.
	if _, err := c.Listen(bob, "bob/tablet", ms); err != nil {
		t.Fatal(err)
	}
	if effs, err := c.StopListening(bob, "bob/tablet", protocol.ReasonConnectionLost, true); err != nil || effs != nil {
		t.Errorf("a lost listener: %q, %v", handoffSays(effs), err)
	}
	// A listener takes the call: it listens no more.
	if _, err := c.Listen(bob, "bob/tablet", ms); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pull(bob, "bob/tablet", true, ms); err != nil {
		t.Fatal(err)
	}
	if bob.Listens("bob/tablet") {
		t.Error("the tablet still listens after taking the call")
	}
	if _, err := c.Listen(bob, "bob/tablet", ms); !errors.Is(err, ErrMovingHere) {
		t.Errorf("listening on the device the call moves to: %v", err)
	}
	// The call ends: listeners hear it.
	if _, _, err := c.Moved(bob, "bob/tablet", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Listen(bob, "bob/phone", ms); err != nil {
		t.Fatal(err)
	}
	effs, _ = c.End(ms, protocol.ReasonCompleted, "", t0.Add(time.Second))
	checkHandoff(t, "the call ends", effs, "ended alice/phone completed 1000ms", "ended alice/laptop completed 1000ms",
		"ended bob/phone completed 1000ms", "ended bob/tablet completed 1000ms")
	if len(bob.Listeners) != 0 {
		t.Errorf("listeners after the end: %v", bob.Listeners)
	}
}
