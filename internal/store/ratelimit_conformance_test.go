package store

import (
	"context"
	"testing"
	"time"
)

// TestRateLimitersAgree: every store's limiter allows a burst, then one
// event per interval, says how long to wait when it refuses, does not
// count refusals, and keeps keys apart. The clock is the test's.
func TestRateLimitersAgree(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	every := 6 * time.Second
	r := Rate{Every: every, Burst: 3}
	// One key's events: when (after t0), and what the limiter must say.
	steps := []struct {
		at    time.Duration
		allow bool
		retry time.Duration
	}{
		{0, true, 0},
		{0, true, 0},
		{time.Second, true, 0},
		{time.Second, false, 5 * time.Second}, // the burst is spent
		{2 * time.Second, false, 4 * time.Second},
		{3 * time.Second, false, 3 * time.Second}, // refusals cost nothing
		{6 * time.Second, true, 0},                // one interval: one more
		{6 * time.Second, false, 6 * time.Second},
		{12 * time.Second, true, 0},
		{time.Hour, true, 0}, // a quiet spell: the whole burst again
		{time.Hour, true, 0},
		{time.Hour, true, 0},
		{time.Hour, false, every},
	}
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for i, st := range steps {
				d, err := s.Allow(ctx, "caller:mallory", r, t0.Add(st.at))
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed != st.allow || d.RetryAfter != st.retry {
					t.Errorf("step %d at +%v: allowed %v, retry after %v; want %v, %v", i, st.at, d.Allowed, d.RetryAfter, st.allow, st.retry)
				}
			}
			// Another key has its own budget.
			for i := range 3 {
				if d, _ := s.Allow(ctx, "caller:alice", r, t0.Add(time.Hour)); !d.Allowed {
					t.Errorf("alice's event %d refused: mallory's budget is not hers", i)
				}
			}
			// No limit allows everything.
			for range 10 {
				if d, err := s.Allow(ctx, "caller:mallory", Rate{}, t0.Add(time.Hour)); !d.Allowed || err != nil {
					t.Fatalf("with no limit: %+v, %v", d, err)
				}
			}
		})
	}
}

// TestRateLimitersPerMinute: a limit set per minute keeps to it over an
// hour of events, one a second.
func TestRateLimitersPerMinute(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	r := PerMinute(10, 5)
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			allowed := 0
			for i := range 3600 {
				d, err := s.Allow(ctx, "flood", r, t0.Add(time.Duration(i)*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed {
					allowed++
				}
			}
			// An hour at 10 a minute, and the first burst.
			if allowed < 600 || allowed > 605 {
				t.Errorf("%d allowed in an hour, want 600 and the burst of 5 at most", allowed)
			}
		})
	}
}

// TestRateLimitersHonourContext: a done context is an error.
func TestRateLimitersHonourContext(t *testing.T) {
	done, stop := context.WithCancel(context.Background())
	stop()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := s.Allow(done, "k", Rate{Every: time.Second, Burst: 1}, time.Now()); err == nil {
				t.Error("allowed with a done context")
			}
		})
	}
}
