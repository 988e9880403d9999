package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/redistest"
)

// BenchmarkInviteLimits: the three checks an invite makes, on each kind
// of store, for many callers and callees.
func BenchmarkInviteLimits(b *testing.B) {
	ctx := context.Background()
	r := PerMinute(10, 10)
	run := func(b *testing.B, l RateLimiter) {
		b.ReportAllocs()
		now := time.Now()
		for i := 0; b.Loop(); i++ {
			caller, callee := fmt.Sprint("u", i%1000), fmt.Sprint("u", (i+1)%1000)
			for _, k := range []string{"caller:" + caller, "pair:" + caller + ":" + callee, "callee:" + callee} {
				if _, err := l.Allow(ctx, k, r, now); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("memory", func(b *testing.B) { run(b, &MemoryLimiter{}) })
	b.Run("redis", func(b *testing.B) {
		r, err := OpenRedis(RedisConfig{Addrs: []string{redistest.Start(b).Addr}})
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		run(b, r)
	})
}

// BenchmarkLocalHistoryFlood: missed calls appended as fast as a flood
// writes them, for 10 users keeping 1000 each, with the file compacted
// while running and, for comparison, only at start; reports the file's
// size at the end (compacted, it stays within twice what is live).
func BenchmarkLocalHistoryFlood(b *testing.B) {
	for _, c := range []struct {
		name string
		min  int64
	}{{"compacting", defaultCompactMin}, {"append-only", 1 << 50}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			l, err := OpenLocal(dir, 1000)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			l.compactMin = c.min
			t0 := time.Now()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				e := CallEntry{CallID: fmt.Sprint("c", i), Peer: fmt.Sprint("caller", i%50), Direction: Incoming,
					StartedAt: t0, EndedAt: t0, Reason: "cancelled", Missed: true}
				if err := l.AppendCall(ctx, fmt.Sprint("user", i%10), e); err != nil {
					b.Fatal(err)
				}
			}
			l.idle()
			if st, err := os.Stat(filepath.Join(dir, callsFile)); err == nil {
				b.ReportMetric(float64(st.Size())/(1<<20), "MiB-file")
			}
		})
	}
}
