package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// missedFrom is bob's entry for an unanswered call from peer that started
// at start and rang 45 s.
func missedFrom(id, peer string, start time.Time) CallEntry {
	return CallEntry{CallID: id, Peer: peer, Direction: Incoming, StartedAt: start, EndedAt: start.Add(45 * time.Second),
		Reason: "no_answer", Missed: true}
}

// groupsOf describes a history: each entry's call id, with ×count and
// the first call's start (minutes after t0) when it stands for several.
func groupsOf(list []CallEntry, t0 time.Time) string {
	var parts []string
	for _, e := range list {
		p := e.CallID
		if e.Count > 0 || e.FirstStartedAt != nil {
			first := "-"
			if e.FirstStartedAt != nil {
				first = fmt.Sprint(e.FirstStartedAt.Sub(t0).Minutes())
			}
			p += fmt.Sprintf("×%d@%s", e.Count, first)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

// TestGroupCall: repeated unanswered calls with the same person become
// one entry that counts them, newest first, in every store; calls of
// another kind, the other way, or after a long gap stay apart.
func TestGroupCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	at := func(min float64) time.Time { return t0.Add(time.Duration(min * float64(time.Minute))) }
	answered := at(31)
	// Times in other zones, to the nanosecond: they group by the instant.
	east := time.FixedZone("UTC+5:30", 5*3600+1800)
	west := time.FixedZone("UTC-8", -8*3600)

	steps := []struct {
		name string
		e    CallEntry
		want string // bob's history after it, newest first
	}{
		{"first", missedFrom("a1", "alice", at(0)), "a1"},
		{"again", missedFrom("a2", "alice", at(2)), "a2×2@0"},
		{"and again", missedFrom("a3", "alice", at(10)), "a3×3@0"},
		{"someone else", missedFrom("c1", "carol", at(11)), "c1 a3×3@0"},
		{"alice between carol's", missedFrom("a4", "alice", at(12)), "a4×4@0 c1"},
		{"carol again, past alice", missedFrom("c2", "carol", at(13)), "c2×2@11 a4×4@0"},
		{"bob calls alice back, unanswered", CallEntry{CallID: "o1", Peer: "alice", Direction: Outgoing, StartedAt: at(20), EndedAt: at(21), Reason: "no_answer"},
			"o1 c2×2@11 a4×4@0"},
		{"alice again: a new group", missedFrom("a5", "alice", at(22)), "a5 o1 c2×2@11 a4×4@0"},
		{"alice answered", CallEntry{CallID: "a6", Peer: "alice", Direction: Incoming, StartedAt: at(30), AnsweredAt: &answered, EndedAt: at(40), Reason: "completed"},
			"a6 a5 o1 c2×2@11 a4×4@0"},
		{"missed after the answered one", missedFrom("a7", "alice", at(50)), "a7 a6 a5 o1 c2×2@11 a4×4@0"},
		{"declined is not missed", CallEntry{CallID: "a8", Peer: "alice", Direction: Incoming, StartedAt: at(51), EndedAt: at(51), Reason: "declined"},
			"a8 a7 a6 a5 o1 c2×2@11 a4×4@0"},
		{"declined again", CallEntry{CallID: "a9", Peer: "alice", Direction: Incoming, StartedAt: at(52), EndedAt: at(52), Reason: "declined"},
			"a9×2@51 a7 a6 a5 o1 c2×2@11 a4×4@0"},
		{"a group call", CallEntry{CallID: "g1", Peer: "dave", Direction: Incoming, StartedAt: at(53), EndedAt: at(54), Reason: "no_answer", Missed: true, Participants: []string{"erin"}},
			"g1 a9×2@51 a7 a6 a5 o1 c2×2@11 a4×4@0"},
		{"dave after a group call", missedFrom("d1", "dave", at(55)), "d1 g1 a9×2@51 a7 a6 a5 o1 c2×2@11 a4×4@0"},
		// erin's first call ends 10:00:45+05:30 = 04:30:45Z; one an hour
		// later groups, one over an hour after that call's end does not.
		{"erin, in a zone east", missedFrom("e1", "erin", at(60).In(east).Add(-5*time.Hour+30*time.Minute+123456789)), ""},
		{"erin, within the hour, in a zone west", missedFrom("e2", "erin", at(60).Add(-5*time.Hour+30*time.Minute+45*time.Second+time.Hour).In(west)), ""},
		{"erin, over an hour after", missedFrom("e3", "erin", at(60).Add(-5*time.Hour+30*time.Minute+2*time.Hour+2*45*time.Second+time.Second)), ""},
	}
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for _, st := range steps {
				must(t, s.GroupCall(ctx, "bob", st.e, time.Hour))
				if st.want == "" {
					continue
				}
				list, err := s.Calls(ctx, "bob", 0)
				if err != nil {
					t.Fatal(err)
				}
				// The store keeps 3: compare the newest 3.
				want := strings.Fields(st.want)
				want = want[:min(3, len(want))]
				if got := groupsOf(list, t0); got != strings.Join(want, " ") {
					t.Errorf("%s: bob's history %s, want %s", st.name, got, strings.Join(want, " "))
				}
			}
			list, _ := s.Calls(ctx, "bob", 0)
			if got := fmt.Sprint(callIDs(list)); got != "[e3 e2 d1]" {
				t.Errorf("erin's calls across zones: %s, want [e3 e2 d1]", got)
			}
			if len(list) > 1 && (list[1].Count != 2 || !list[1].FirstStartedAt.Equal(steps[14].e.StartedAt)) {
				t.Errorf("erin's grouped entry %+v, want 2 calls from the first's start", list[1])
			}
			// A grouped entry is the newest call's, whole.
			if len(list) > 1 && (!list[1].StartedAt.Equal(steps[15].e.StartedAt) || !list[1].EndedAt.Equal(steps[15].e.EndedAt) || list[1].Reason != "no_answer" || !list[1].Missed) {
				t.Errorf("erin's grouped entry %+v, want the second call's details", list[1])
			}
		})
	}
}

// TestGroupCallBoundsAFlood: a flood of missed calls from a few people
// leaves one entry each, with the count of their calls, and the rest of
// the history; with no grouping the limit still holds.
func TestGroupCallBoundsAFlood(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			must(t, s.AppendCall(ctx, "bob", CallEntry{CallID: "mum", Peer: "mum", Direction: Incoming, StartedAt: t0, EndedAt: t0.Add(time.Minute), Reason: "completed"}))
			for i := range 300 {
				from := []string{"mallory", "trudy"}[i%2]
				must(t, s.GroupCall(ctx, "bob", missedFrom(fmt.Sprint("m", i), from, t0.Add(time.Minute+time.Duration(i)*time.Second)), time.Hour))
			}
			list, err := s.Calls(ctx, "bob", 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(callIDs(list)); got != "[m299 m298 mum]" {
				t.Fatalf("bob's history after the flood: %s, want [m299 m298 mum]", got)
			}
			if list[0].Count != 150 || list[1].Count != 150 {
				t.Errorf("counts %d and %d, want 150 each", list[0].Count, list[1].Count)
			}
			for i := range 10 {
				must(t, s.GroupCall(ctx, "carol", missedFrom(fmt.Sprint("x", i), "mallory", t0.Add(time.Duration(i)*time.Second)), 0))
			}
			if list, _ := s.Calls(ctx, "carol", 0); len(list) != 3 || list[0].Count != 0 {
				t.Errorf("without grouping: %d entries (%s), want the newest 3 alone", len(list), groupsOf(list, t0))
			}
		})
	}
}

// TestLocalGroupsSurviveReopen: a reopened local store has the groups as
// they were, counts and order, from its file.
func TestLocalGroupsSurviveReopen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dir := t.TempDir()
	l, err := OpenLocal(dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for i := range 12 {
		from := []string{"mallory", "trudy", "carol"}[i%3]
		must(t, l.GroupCall(ctx, "bob", missedFrom(fmt.Sprint(from, i), from, t0.Add(time.Duration(i)*time.Minute)), time.Hour))
	}
	before, _ := l.Calls(ctx, "bob", 0)
	must(t, l.Close())
	if l, err = OpenLocal(dir, 5); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	after, _ := l.Calls(ctx, "bob", 0)
	if a, b := groupsOf(after, t0), groupsOf(before, t0); a != b || a != "carol11×4@2 trudy10×4@1 mallory9×4@0" {
		t.Errorf("after reopening: %s; before: %s; want carol11×4@2 trudy10×4@1 mallory9×4@0", a, b)
	}
}
