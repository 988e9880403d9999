package clock

import (
	"testing"
	"time"
)

func TestManualCallsTimersInOrder(t *testing.T) {
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	c := NewManual(start)
	var got []string
	var at []time.Duration
	note := func(s string) func() {
		return func() { got = append(got, s); at = append(at, c.Now().Sub(start)) }
	}
	c.AfterFunc(3*time.Second, note("c"))
	c.AfterFunc(time.Second, note("a"))
	stopped := c.AfterFunc(2*time.Second, note("never"))
	c.AfterFunc(time.Second, func() {
		note("b")()
		// Armed while the clock moves: due within this Advance, so it runs.
		c.AfterFunc(time.Second, note("d"))
	})
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report true once, then false")
	}
	c.Advance(2500 * time.Millisecond)
	if want := "a b d"; join(got) != want {
		t.Fatalf("after 2.5 s called %q, want %q", join(got), want)
	}
	if at[2] != 2*time.Second {
		t.Fatalf("d ran at %v, want 2s", at[2])
	}
	if c.Now().Sub(start) != 2500*time.Millisecond {
		t.Fatalf("clock reads %v past start", c.Now().Sub(start))
	}
	c.Advance(time.Second)
	if join(got) != "a b d c" || c.Pending() != 0 {
		t.Fatalf("called %q with %d pending", join(got), c.Pending())
	}
}

func join(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out
}
