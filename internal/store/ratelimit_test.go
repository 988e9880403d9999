package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestGCRA: the limiter's step, case by case.
func TestGCRA(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	r := Rate{Every: 10 * time.Second, Burst: 2}
	for _, c := range []struct {
		name     string
		tat, now time.Time
		allow    bool
		retry    time.Duration
		next     time.Time
	}{
		{"never seen", time.Time{}, t0, true, 0, t0.Add(10 * time.Second)},
		{"long ago", t0.Add(-time.Hour), t0, true, 0, t0.Add(10 * time.Second)},
		{"one used", t0.Add(10 * time.Second), t0, true, 0, t0.Add(20 * time.Second)},
		{"both used", t0.Add(20 * time.Second), t0, false, 10 * time.Second, time.Time{}},
		{"both used, 3 s later", t0.Add(20 * time.Second), t0.Add(3 * time.Second), false, 7 * time.Second, time.Time{}},
		{"both used, one interval later", t0.Add(20 * time.Second), t0.Add(10 * time.Second), true, 0, t0.Add(30 * time.Second)},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, next := gcra(c.tat, c.now, r)
			if d.Allowed != c.allow || d.RetryAfter != c.retry {
				t.Errorf("allowed %v retry %v, want %v %v", d.Allowed, d.RetryAfter, c.allow, c.retry)
			}
			if c.allow && !next.Equal(c.next) {
				t.Errorf("next %v, want %v", next, c.next)
			}
		})
	}
}

// TestRateOff: rates that limit nothing.
func TestRateOff(t *testing.T) {
	for _, c := range []struct {
		r   Rate
		off bool
	}{
		{Rate{}, true},
		{Rate{Every: time.Second}, true},
		{Rate{Burst: 3}, true},
		{PerMinute(0, 5), true},
		{PerMinute(10, 0), true},
		{PerMinute(10, 5), false},
	} {
		if c.r.Off() != c.off {
			t.Errorf("%+v: Off() = %v, want %v", c.r, c.r.Off(), c.off)
		}
	}
	if r := PerMinute(10, 5); r.Every != 6*time.Second || r.Burst != 5 {
		t.Errorf("PerMinute(10, 5) = %+v", r)
	}
}

// TestMemoryLimiterForgets: keys at rest are dropped as more come, so a
// flood of keys (one per caller and callee) does not grow the map forever.
func TestMemoryLimiterForgets(t *testing.T) {
	var m MemoryLimiter
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	r := Rate{Every: time.Second, Burst: 1}
	for i := range 100_000 {
		// Each key is used once and at rest a second later.
		if d, _ := m.Allow(ctx, fmt.Sprint("k", i), r, t0.Add(time.Duration(i)*time.Millisecond)); !d.Allowed {
			t.Fatalf("key %d refused", i)
		}
	}
	if n := m.keys(); n > 4*minSweep {
		t.Errorf("%d keys kept, want those of the last second or so (at most %d)", n, 4*minSweep)
	}
}
