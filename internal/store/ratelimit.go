package store

import (
	"context"
	"sync"
	"time"
)

// Rate is a limit on how often something may happen: once every Every on
// average, with up to Burst at once after a quiet spell. A Rate with
// Every or Burst not positive limits nothing.
type Rate struct {
	Every time.Duration
	Burst int
}

// PerMinute is n times a minute with bursts of burst; n <= 0 is no limit.
func PerMinute(n, burst int) Rate {
	if n <= 0 {
		return Rate{}
	}
	return Rate{Every: time.Minute / time.Duration(n), Burst: burst}
}

// Off reports whether r limits nothing.
func (r Rate) Off() bool { return r.Every <= 0 || r.Burst <= 0 }

// Decision is a rate limiter's answer.
type Decision struct {
	Allowed bool
	// RetryAfter is, when refused, how long until the same request would
	// be allowed.
	RetryAfter time.Duration
}

// RateLimiter counts events per key against a Rate, in a way that holds
// for every connection and, on a shared store, every node.
type RateLimiter interface {
	// Allow decides whether one more event under key fits r at time now,
	// and counts it if it does. A refused event is not counted: whoever
	// keeps trying gets through at the rate r allows, no faster and no
	// slower. The same key must always be used with the same r.
	Allow(ctx context.Context, key string, r Rate, now time.Time) (Decision, error)
}

// The limiter is GCRA (the generic cell rate algorithm): per key it keeps
// one time, the theoretical arrival time tat of the next event were they
// spaced exactly Every apart. An event at now is allowed when
// max(tat, now) + Every - now <= Burst × Every, and then moves tat there.
// A tat in the past means a full burst is available; the key can then be
// forgotten.

// gcra decides for one key: tat is the key's time (zero if none); it
// returns the decision and the new time to keep (when allowed).
func gcra(tat, now time.Time, r Rate) (Decision, time.Time) {
	if tat.Before(now) {
		tat = now
	}
	next := tat.Add(r.Every)
	allowAt := next.Add(-time.Duration(r.Burst) * r.Every)
	if now.Before(allowAt) {
		return Decision{RetryAfter: allowAt.Sub(now)}, tat
	}
	return Decision{Allowed: true}, next
}

// MemoryLimiter is a RateLimiter in memory, for one node. The zero value
// is ready to use.
type MemoryLimiter struct {
	mu    sync.Mutex
	tat   map[string]time.Time
	sweep int // sweep expired keys when there are this many
}

// minSweep is the least number of keys a MemoryLimiter keeps before it
// looks for expired ones.
const minSweep = 1024

var _ RateLimiter = (*MemoryLimiter)(nil)

var _ RateLimiter = (*Local)(nil)

// Allow implements RateLimiter: a Local store serves one node, whose
// limits are kept in memory (they start afresh with the process).
func (l *Local) Allow(ctx context.Context, key string, r Rate, now time.Time) (Decision, error) {
	return l.limits.Allow(ctx, key, r, now)
}

// Allow implements RateLimiter.
func (m *MemoryLimiter) Allow(ctx context.Context, key string, r Rate, now time.Time) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	if r.Off() {
		return Decision{Allowed: true}, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tat == nil {
		m.tat, m.sweep = map[string]time.Time{}, minSweep
	}
	d, next := gcra(m.tat[key], now, r)
	if d.Allowed {
		m.tat[key] = next
		if len(m.tat) >= m.sweep {
			m.sweepLocked(now)
		}
	}
	return d, nil
}

// sweepLocked forgets the keys whose time has passed (a full burst is
// theirs again, as for a key never seen), and sets the next sweep for when
// the keys have doubled: the work stays proportional to the events.
func (m *MemoryLimiter) sweepLocked(now time.Time) {
	for k, t := range m.tat {
		if !t.After(now) {
			delete(m.tat, k)
		}
	}
	m.sweep = max(2*len(m.tat), minSweep)
}

// keys is how many keys m holds, for tests.
func (m *MemoryLimiter) keys() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tat)
}
