package client

import (
	"context"
	"slices"
	"sync"

	"github.com/tandemcall/tandem/signaling/protocol"
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
	// claims are the ids of requests a Request waits on: a take of any
	// message (Next) passes over their replies, so that a goroutine
	// reading every message does not take the reply from under another
	// that made a request.
	claims map[string]struct{}
}

// claim keeps the reply to request id for a matching take.
func (b *inbox) claim(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.claims == nil {
		b.claims = map[string]struct{}{}
	}
	b.claims[id] = struct{}{}
}

// unclaim ends claim: a reply that comes later is anyone's.
func (b *inbox) unclaim(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.claims, id)
}

// claimedLocked reports whether m answers a claimed request. b.mu must be
// held.
func (b *inbox) claimedLocked(m any) bool {
	var re string
	switch r := m.(type) {
	case *protocol.Ack:
		re = r.Re
	case *protocol.Error:
		re = r.Re
	}
	_, ok := b.claims[re]
	return re != "" && ok
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
// message but a claimed reply when match is nil), leaving the others in
// order. It waits for one until ctx is done or the inbox has failed and
// holds no match.
func (b *inbox) take(ctx context.Context, match func(any) bool) (any, error) {
	for {
		b.mu.Lock()
		for i, m := range b.msgs {
			if match == nil && !b.claimedLocked(m) || match != nil && match(m) {
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
