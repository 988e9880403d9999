package callcore

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestFloor walks a push-to-talk floor through requests, releases, a
// member leaving and the longest talk time, with the timer fired by hand.
func TestFloor(t *testing.T) {
	const maxTalk = 60 * time.Second
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var f Floor[string]
	armed := map[uint64]bool{} // timers armed and not disarmed, by grant
	var lastGen uint64
	type step struct {
		do, user string
		at       int // seconds after t0
		changed  bool
		holder   string
		queue    []string
		timers   []string
	}
	fire := func(at int) (bool, []Effect[string]) {
		return f.Timeout(lastGen, t0.Add(time.Duration(at)*time.Second), maxTalk)
	}
	for i, s := range []step{
		{do: "request", user: "ann", at: 0, changed: true, holder: "ann", timers: []string{"arm ann 1m0s"}},
		{do: "request", user: "ann", at: 1, holder: "ann"},
		{do: "request", user: "ben", at: 2, changed: true, holder: "ann", queue: []string{"ben"}},
		{do: "request", user: "cat", at: 3, changed: true, holder: "ann", queue: []string{"ben", "cat"}},
		{do: "request", user: "ben", at: 4, holder: "ann", queue: []string{"ben", "cat"}},
		{do: "release", user: "ann", at: 10, changed: true, holder: "ben", queue: []string{"cat"}, timers: []string{"disarm", "arm ben 1m0s"}},
		{do: "release", user: "dan", at: 11, holder: "ben", queue: []string{"cat"}},
		{do: "timeout", at: 70, changed: true, holder: "cat", timers: []string{"disarm", "arm cat 1m0s"}},
		{do: "stale", at: 71, holder: "cat"},
		{do: "request", user: "ben", at: 72, changed: true, holder: "cat", queue: []string{"ben"}},
		{do: "release", user: "ben", at: 73, changed: true, holder: "cat"},
		{do: "release", user: "cat", at: 80, changed: true, timers: []string{"disarm"}},
		{do: "timeout", at: 130},
	} {
		at := t0.Add(time.Duration(s.at) * time.Second)
		var changed bool
		var effs []Effect[string]
		switch s.do {
		case "request":
			changed, effs = f.Request(s.user, at, maxTalk)
		case "release":
			changed, effs = f.Release(s.user, at, maxTalk)
		case "timeout":
			changed, effs = fire(s.at)
		case "stale":
			changed, effs = f.Timeout(lastGen-1, at, maxTalk)
		}
		var timers []string
		for _, e := range effs {
			switch e.Kind {
			case ArmTimer:
				timers = append(timers, fmt.Sprint("arm ", e.User, " ", e.After))
				armed[e.Gen], lastGen = true, e.Gen
			case DisarmTimer:
				timers = append(timers, "disarm")
			}
		}
		if changed != s.changed || f.Holder() != s.holder || !slices.Equal(f.Queue(), s.queue) || !slices.Equal(timers, s.timers) {
			t.Fatalf("step %d (%s %s): changed %v, holder %q, queue %q, timers %q; want %v, %q, %q, %q",
				i+1, s.do, s.user, changed, f.Holder(), f.Queue(), timers, s.changed, s.holder, s.queue, s.timers)
		}
		if s.holder != "" && s.do == "timeout" && f.Left(at) != maxTalk {
			t.Fatalf("step %d: the next holder has %v to talk, want %v", i+1, f.Left(at), maxTalk)
		}
	}
	if f.Left(t0) != 0 {
		t.Fatalf("a free floor has %v left", f.Left(t0))
	}
}
