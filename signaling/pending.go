package signaling

import (
	"context"
	"sync"
)

// pendingWrites counts history writes not yet in the store, per user. A
// call's end is announced under the hub lock, but its history is written
// after; the history API waits for a user's pending writes so that a
// client which reloads its history on "ended" sees that call.
type pendingWrites struct {
	mu      sync.Mutex
	n       map[string]int
	changed chan struct{}
}

func newPendingWrites() *pendingWrites {
	return &pendingWrites{n: map[string]int{}, changed: make(chan struct{})}
}

func (p *pendingWrites) add(users ...string) {
	p.mu.Lock()
	for _, u := range users {
		p.n[u]++
	}
	p.mu.Unlock()
}

func (p *pendingWrites) done(users ...string) {
	p.mu.Lock()
	for _, u := range users {
		if p.n[u]--; p.n[u] <= 0 {
			delete(p.n, u)
		}
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
}

// wait returns once user has no pending writes, or ctx ends.
func (p *pendingWrites) wait(ctx context.Context, user string) {
	for {
		p.mu.Lock()
		if p.n[user] == 0 {
			p.mu.Unlock()
			return
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}
