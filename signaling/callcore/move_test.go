package callcore

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// inCall is alice (laptop) in a call with bob, who answered on his
// phone and also has a tablet.
func inCall(t *testing.T) (*Call[string], []*Member[string]) {
	t.Helper()
	c, ms := oneToOne(t, false)
	if _, _, err := c.Answer(ms[1], "bob/phone", ms, t0); err != nil {
		t.Fatal(err)
	}
	return c, ms
}

func handoffSays(effs []Effect[string]) []string {
	var out []string
	for _, e := range effs {
		if h, ok := e.Msg.(*protocol.Handoff); ok {
			s := "handoff " + e.Device + " " + h.State + " device=" + h.Device
			if h.Keep {
				s += " keep"
			}
			if h.Message != "" {
				s += " (" + h.Message + ")"
			}
			out = append(out, s)
			continue
		}
		out = append(out, says([]Effect[string]{e})...)
	}
	return out
}

func checkHandoff(t *testing.T, what string, effs []Effect[string], want ...string) {
	t.Helper()
	if got := handoffSays(effs); !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func TestMoveCompletes(t *testing.T) {
	c, ms := inCall(t)
	bob := ms[1]
	if _, err := c.Pull(bob, "bob/phone", false, ms); !errors.Is(err, ErrHolds) {
		t.Errorf("the holding device pulling: %v", err)
	}
	effs, err := c.Pull(bob, "bob/tablet", true, ms)
	if err != nil {
		t.Fatal(err)
	}
	checkHandoff(t, "pull to the tablet", effs, "handoff bob/tablet started device=phone keep")
	if _, err := c.Pull(bob, "bob/watch", false, ms); !errors.Is(err, ErrMoving) {
		t.Errorf("a second pull while moving: %v", err)
	}
	if _, err := c.Offer(bob, "bob/phone", "bob/watch", ms); !errors.Is(err, ErrMoving) {
		t.Errorf("a push while moving: %v", err)
	}
	if bob.Dev != "bob/phone" {
		t.Errorf("before the new device's media took over, bob is on %q", bob.Dev)
	}
	if _, _, err := c.Moved(bob, "bob/watch", t0); !errors.Is(err, ErrNotMoving) {
		t.Errorf("completing a move to another device: %v", err)
	}
	effs, old, err := c.Moved(bob, "bob/tablet", t0.Add(90*time.Second))
	if err != nil || old != "bob/phone" {
		t.Fatalf("completing the move: from %q, %v", old, err)
	}
	checkHandoff(t, "moved", effs, "ended bob/phone handed_off 90000ms", "handoff bob/tablet done device=phone")
	if bob.Dev != "bob/tablet" || bob.Move != nil || !bob.Ring.Rings("bob/tablet") || bob.Ring.Rings("bob/phone") {
		t.Errorf("after the move: on %q, move %v", bob.Dev, bob.Move)
	}
	if p := c.Parties(ms); p[1] != party("bob/tablet") {
		t.Errorf("parties after the move: %v", p)
	}
}

func TestMoveFails(t *testing.T) {
	c, ms := inCall(t)
	bob := ms[1]
	if _, err := c.Pull(bob, "bob/tablet", false, ms); err != nil {
		t.Fatal(err)
	}
	if effs, mv := c.MoveFailed(bob, "bob/watch", "late"); effs != nil || mv != nil {
		t.Errorf("failing a move to another device: %q", handoffSays(effs))
	}
	effs, mv := c.MoveFailed(bob, "bob/tablet", "the new device did not connect in time")
	checkHandoff(t, "failed", effs,
		"handoff bob/tablet failed device= (the new device did not connect in time)",
		"handoff bob/phone failed device=tablet (the new device did not connect in time)")
	if mv == nil || mv.From != "bob/phone" || bob.Dev != "bob/phone" || bob.Move != nil {
		t.Errorf("after the failure: move %v, on %q", mv, bob.Dev)
	}
	// The call ends while moving: the device it moved to hears it too.
	if _, err := c.Pull(bob, "bob/tablet", false, ms); err != nil {
		t.Fatal(err)
	}
	effs, _ = c.End(ms, protocol.ReasonCompleted, "", t0.Add(time.Second))
	checkHandoff(t, "ended while moving", effs,
		"ended alice/laptop completed 1000ms", "ended bob/tablet completed 1000ms", "ended bob/phone completed 1000ms")
	if bob.Move != nil {
		t.Error("the move outlived the call")
	}
}

func TestPush(t *testing.T) {
	c, ms := inCall(t)
	bob := ms[1]
	if _, err := c.Offer(bob, "bob/tablet", "bob/phone", ms); !errors.Is(err, ErrNotHolder) {
		t.Errorf("a push from a device not holding the call: %v", err)
	}
	effs, err := c.Offer(bob, "bob/phone", "bob/tablet", ms)
	if err != nil {
		t.Fatal(err)
	}
	checkHandoff(t, "push", effs, "handoff bob/tablet offer device=phone")
	if bob.Move != nil {
		t.Error("an offer started the move before the tablet took it")
	}
	// Not in an answered call: nothing moves.
	c2, ms2 := oneToOne(t, false)
	if _, err := c2.Pull(ms2[0], "alice/phone", false, ms2); !errors.Is(err, ErrNotJoined) {
		t.Errorf("moving a call not answered yet: %v", err)
	}
}

// TestResume: bob's phone comes back on a new connection within the
// grace; after it, his place is gone (Leave with connection_lost, as in
// TestGroupCall).
func TestResume(t *testing.T) {
	c, ms := inCall(t)
	bob := ms[1]
	effs := c.Resume(bob, "bob/phone#2", false, ms)
	if len(effs) != 1 || effs[0].Device != "bob/phone#2" || effs[0].Type != protocol.TypeResumed {
		t.Fatalf("resume: %+v", effs)
	}
	r := effs[0].Msg.(*protocol.Resumed)
	if r.Rejoin || len(r.Members) != 2 || r.Members[1].Device != "phone#2" {
		t.Errorf("resumed %+v", r)
	}
	if bob.Dev != "bob/phone#2" || !bob.Ring.Rings("bob/phone#2") || bob.Ring.Rings("bob/phone") {
		t.Errorf("after resuming bob is on %q", bob.Dev)
	}
	if _, err := c.Pull(bob, "bob/phone#2", false, ms); !errors.Is(err, ErrHolds) {
		t.Errorf("the resumed device holds the call: %v", err)
	}
}
