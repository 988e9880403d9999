package callcore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// Devices in these tests are named user/device.
func party(d string) protocol.Party {
	user, device, _ := strings.Cut(d, "/")
	return protocol.Party{User: user, Device: device}
}

// says writes a Call's effects the way the tables below expect them.
func says(effs []Effect[string]) []string {
	var out []string
	for _, e := range effs {
		switch e.Kind {
		case Send:
			var what string
			switch m := e.Msg.(type) {
			case *protocol.Accepted:
				what = fmt.Sprintf("peer %s by %s members %d", m.Peer.User, m.By.User, len(m.Members))
			case *protocol.Ended:
				what = fmt.Sprintf("%s %dms", m.Reason, m.DurationMS)
			case *protocol.MemberJoined:
				what = m.Member.User + "/" + m.Member.Device
			case *protocol.MemberLeft:
				what = m.User + " " + m.Reason
			}
			out = append(out, e.Type+" "+e.Device+" "+what)
		default:
			for _, s := range show([]Effect[string]{e}) {
				if e.User != "" {
					s = e.User + ": " + s
				}
				out = append(out, s)
			}
		}
	}
	return out
}

var t0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

// oneToOne is alice (on her laptop) calling bob, whose phone and tablet
// ring.
func oneToOne(t *testing.T, waiting bool) (*Call[string], []*Member[string]) {
	t.Helper()
	c := &Call[string]{ID: "c1", Caller: "alice", Callee: "bob", Video: true, Started: t0, Party: party}
	alice := &Member[string]{User: "alice", Dev: "alice/laptop", State: MemberJoined, Joined: t0}
	bob := &Member[string]{User: "bob", Inviter: "alice/laptop"}
	bob.Ring, _ = NewRing([]string{"bob/phone", "bob/tablet"}, waiting, timeouts)
	return c, []*Member[string]{alice, bob}
}

func check(t *testing.T, what string, effs []Effect[string], want ...string) {
	t.Helper()
	got := says(effs)
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func TestAnswerOneToOne(t *testing.T) {
	c, ms := oneToOne(t, false)
	alice, bob := ms[0], ms[1]
	for _, tc := range []struct {
		m   *Member[string]
		dev string
		err error
	}{
		{alice, "alice/laptop", ErrOwnCall},
		{bob, "bob/watch", ErrNotRung},
		{nil, "carol/phone", ErrNotRung},
	} {
		if _, _, err := c.Answer(tc.m, tc.dev, ms, t0); !errors.Is(err, tc.err) {
			t.Errorf("answer on %s: %v, want %v", tc.dev, err, tc.err)
		}
	}
	effs, first, err := c.Answer(bob, "bob/tablet", ms, t0.Add(3*time.Second))
	if err != nil || !first {
		t.Fatalf("bob answering: first %v, %v", first, err)
	}
	check(t, "bob answers on his tablet", effs,
		"bob: disarm", "bob: ended bob/phone answered_elsewhere",
		"accepted alice/laptop peer bob by bob members 2",
		"accepted bob/tablet peer alice by bob members 2")
	if c.Phase != PhaseActive || !c.Answered.Equal(t0.Add(3*time.Second)) || bob.State != MemberJoined || bob.Dev != "bob/tablet" {
		t.Errorf("after the answer: phase %v answered %v, bob %v on %q", c.Phase, c.Answered, bob.State, bob.Dev)
	}
	if _, _, err := c.Answer(bob, "bob/tablet", ms, t0); !errors.Is(err, ErrAnswered) {
		t.Errorf("a second answer: %v", err)
	}
	if got := c.Parties(ms); len(got) != 2 || got[0] != party("alice/laptop") || got[1] != party("bob/tablet") {
		t.Errorf("parties %v, want alice then bob", got)
	}
}

// TestFirstRingEnds: while the call waits for its first answer, a refusal
// ends the whole call, each device told in its own terms.
func TestFirstRingEnds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		waiting bool
		reason  string
		by      string
		want    []string
	}{
		{"declined on the phone", false, protocol.ReasonDeclined, "bob/phone", []string{
			"ended alice/laptop declined 0ms",
			"bob: disarm", "bob: ended bob/phone declined", "bob: ended bob/tablet declined_elsewhere",
		}},
		{"no answer", false, protocol.ReasonNoAnswer, "", []string{
			"ended alice/laptop no_answer 0ms",
			"bob: disarm", "bob: ended bob/phone no_answer", "bob: ended bob/tablet no_answer",
		}},
		{"declined while in another call is busy", true, protocol.ReasonDeclined, "bob/tablet", []string{
			"ended alice/laptop busy 0ms",
			"bob: disarm", "bob: ended bob/phone declined_elsewhere", "bob: ended bob/tablet declined",
		}},
		{"not answered while in another call is busy", true, protocol.ReasonNoAnswer, "", []string{
			"ended alice/laptop busy 0ms",
			"bob: disarm", "bob: ended bob/phone busy", "bob: ended bob/tablet busy",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ms := oneToOne(t, tc.waiting)
			effs, reason := c.Unring(ms[1], ms, tc.reason, tc.by, t0)
			if effs != nil || reason == "" {
				t.Fatalf("unring of the first invite: %v, end reason %q", says(effs), reason)
			}
			effs, dur := c.End(ms, reason, tc.by, t0.Add(time.Second))
			check(t, "end", effs, tc.want...)
			if c.Phase != PhaseEnded || dur != 0 {
				t.Errorf("phase %v, duration %v", c.Phase, dur)
			}
		})
	}
	// The caller hangs up before an answer: cancelled for everyone.
	c, ms := oneToOne(t, false)
	effs, _ := c.End(ms, protocol.ReasonCancelled, "", t0)
	check(t, "cancelled", effs, "ended alice/laptop cancelled 0ms",
		"bob: disarm", "bob: ended bob/phone cancelled", "bob: ended bob/tablet cancelled")
}

// group is alice and bob in a call carol is being rung into by bob.
func group(t *testing.T) (*Call[string], []*Member[string]) {
	t.Helper()
	c, ms := oneToOne(t, false)
	if _, _, err := c.Answer(ms[1], "bob/phone", ms, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	carol := &Member[string]{User: "carol", Inviter: "bob/phone"}
	carol.Ring, _ = NewRing([]string{"carol/laptop"}, false, timeouts)
	return c, append(ms, carol)
}

func TestGroupCall(t *testing.T) {
	c, ms := group(t)
	alice, bob, carol := ms[0], ms[1], ms[2]
	effs, first, err := c.Answer(carol, "carol/laptop", ms, t0.Add(5*time.Second))
	if err != nil || first {
		t.Fatalf("carol answering: first %v, %v", first, err)
	}
	check(t, "carol joins", effs, "carol: disarm",
		"accepted carol/laptop peer bob by carol members 3",
		"member_joined alice/laptop carol/laptop", "member_joined bob/phone carol/laptop")

	// bob leaves: the call goes on with two.
	effs, ends := c.Leave(bob, ms, protocol.ReasonCompleted, "", t0.Add(10*time.Second))
	if ends {
		t.Fatal("a group of three ended when one left")
	}
	check(t, "bob leaves", effs, "ended bob/phone completed 9000ms",
		"member_left alice/laptop bob completed", "member_left carol/laptop bob completed")
	if bob.State != MemberGone || bob.Reason != protocol.ReasonCompleted || !bob.Left.Equal(t0.Add(10*time.Second)) {
		t.Errorf("bob after leaving: %+v", bob)
	}
	// carol's connection drops: with one left, the call ends, and her
	// device, gone, hears nothing.
	if effs, ends := c.Leave(carol, ms, protocol.ReasonConnectionLost, "carol/laptop", t0); !ends || effs != nil {
		t.Fatalf("the last but one leaving: %v, ends %v", says(effs), ends)
	}
	effs, dur := c.End(ms, protocol.ReasonConnectionLost, "carol/laptop", t0.Add(21*time.Second))
	check(t, "the call ends", effs, "ended alice/laptop connection_lost 20000ms")
	if dur != 20*time.Second || alice.State != MemberJoined {
		t.Errorf("duration %v; alice %v", dur, alice.State)
	}
}

// TestRingIntoRunningCall: a user rung into a running call who does not
// answer, declines or is still ringing when it ends.
func TestRingIntoRunningCall(t *testing.T) {
	for _, tc := range []struct {
		reason string
		by     string
		want   []string
	}{
		{protocol.ReasonNoAnswer, "", []string{"carol: disarm", "carol: ended carol/laptop no_answer",
			"member_left alice/laptop carol no_answer", "member_left bob/phone carol no_answer"}},
		{protocol.ReasonDeclined, "carol/laptop", []string{"carol: disarm", "carol: ended carol/laptop declined",
			"member_left alice/laptop carol declined", "member_left bob/phone carol declined"}},
	} {
		c, ms := group(t)
		effs, end := c.Unring(ms[2], ms, tc.reason, tc.by, t0.Add(40*time.Second))
		if end != "" {
			t.Fatalf("%s ended the running call (%s)", tc.reason, end)
		}
		check(t, tc.reason, effs, tc.want...)
		if ms[2].State != MemberGone || ms[2].Reason != tc.reason || c.Phase != PhaseActive {
			t.Errorf("%s: carol %v (%s), call %v", tc.reason, ms[2].State, ms[2].Reason, c.Phase)
		}
	}
	// The call ends while carol rings: for her it was cancelled, in her
	// history too.
	c, ms := group(t)
	effs, dur := c.End(ms, protocol.ReasonCompleted, "", t0.Add(31*time.Second))
	check(t, "ended while ringing carol", effs,
		"ended alice/laptop completed 30000ms", "ended bob/phone completed 30000ms",
		"carol: disarm", "carol: ended carol/laptop cancelled")
	if ms[2].Reason != protocol.ReasonCancelled || dur != 30*time.Second {
		t.Errorf("carol's reason %q, duration %v", ms[2].Reason, dur)
	}
}

func TestRoomLeave(t *testing.T) {
	c := &Call[string]{ID: "r1", Room: "kitchen", Phase: PhaseActive, Party: party}
	a := &Member[string]{User: "a", Dev: "a/1", State: MemberJoined, Joined: t0}
	b := &Member[string]{User: "b", Dev: "b/1", State: MemberJoined, Joined: t0.Add(time.Second)}
	ms := []*Member[string]{a, b}
	effs, ends := c.Leave(a, ms, protocol.ReasonCompleted, "", t0.Add(2*time.Second))
	if ends {
		t.Fatal("a room ended with one member left in it")
	}
	check(t, "a leaves the room", effs, "ended a/1 completed 2000ms", "member_left b/1 a completed")
	if _, ends := c.Leave(b, ms, protocol.ReasonCompleted, "", t0); !ends {
		t.Error("an empty room goes on")
	}
}

func TestLeaveEnds(t *testing.T) {
	for _, tc := range []struct {
		room   bool
		joined int
		ends   bool
	}{
		{room: false, joined: 2, ends: true},  // one-to-one: the other is alone
		{room: false, joined: 3, ends: false}, // a group goes on with two
		{room: true, joined: 2, ends: false},  // a room goes on with one
		{room: true, joined: 1, ends: true},   // and ends empty
		{room: false, joined: 1, ends: true},
	} {
		if got := LeaveEnds(tc.room, tc.joined); got != tc.ends {
			t.Errorf("room %v, %d joined: ends %v, want %v", tc.room, tc.joined, got, tc.ends)
		}
	}
}

func TestRingEndReason(t *testing.T) {
	if r := RingEndReason(false, "no_answer"); r != "no_answer" {
		t.Errorf("unanswered call: %q", r)
	}
	if r := RingEndReason(true, "completed"); r != "cancelled" {
		t.Errorf("running call ended while ringing someone in: %q", r)
	}
}
