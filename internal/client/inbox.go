package client

import (
	"context"
	"slices"
	"sync"
)

// maxBuffered is the number of unread server messages after which the client
// gives up on the connection instead of dropping messages.
const maxBuffered = 1 << 16

// inbox is the ordered buffer of server messages. It grows as needed up to
// maxBuffered, and after fail it hands out what it holds, then the error.
type inbox struct {
	mu      sync.Mutex
	msgs    []any
	err     error
	changed chan struct{} // closed and replaced on every change
}

func newInbox() *inbox {
	return &inbox{changed: make(chan struct{})}
}

// notifyLocked wakes every waiter. b.mu must be held.
func (b *inbox) notifyLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// push appends m; it fails with ErrBufferFull when the buffer is full.
func (b *inbox) push(m any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return b.err
	}
	if len(b.msgs) >= maxBuffered {
		return ErrBufferFull
	}
	b.msgs = append(b.msgs, m)
	b.notifyLocked()
	return nil
}

// drop empties the buffer and reports how many messages it held.
func (b *inbox) drop() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.msgs)
	b.msgs = b.msgs[:0]
	return n
}

// fail records that no more messages will arrive. The first error wins.
func (b *inbox) fail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = err
		b.notifyLocked()
	}
}

// take removes and returns the oldest message that match accepts (any
// message when match is nil), leaving the others in order. It waits for one
// until ctx is done or the inbox has failed and holds no match.
func (b *inbox) take(ctx context.Context, match func(any) bool) (any, error) {
	for {
		b.mu.Lock()
		for i, m := range b.msgs {
			if match == nil || match(m) {
				b.msgs = slices.Delete(b.msgs, i, i+1)
				b.mu.Unlock()
				return m, nil
			}
		}
		err, changed := b.err, b.changed
		b.mu.Unlock()
		if err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-changed:
		}
	}
}

// takeAll removes and returns, in order, every buffered message that match
// accepts, without waiting.
func (b *inbox) takeAll(match func(any) bool) []any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var taken []any
	b.msgs = slices.DeleteFunc(b.msgs, func(m any) bool {
		if match(m) {
			taken = append(taken, m)
			return true
		}
		return false
	})
	return taken
}
