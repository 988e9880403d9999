package webhook

import "time"

// pending is an event waiting for delivery.
type pending struct {
	ev       Event     // Data is the json.RawMessage Send made
	enqueued time.Time // with a monotonic reading, for tandem_webhook_delivery_seconds
}

// ring is a fixed-capacity FIFO of pending events. The Sender's mutex guards it.
type ring struct {
	buf        []*pending
	head, size int
}

func newRing(capacity int) *ring { return &ring{buf: make([]*pending, capacity)} }

func (r *ring) len() int { return r.size }

func (r *ring) full() bool { return r.size == len(r.buf) }

// push appends p; the caller makes room first.
func (r *ring) push(p *pending) {
	r.buf[(r.head+r.size)%len(r.buf)] = p
	r.size++
}

// pop removes and returns the oldest event, or nil if the ring is empty.
func (r *ring) pop() *pending {
	if r.size == 0 {
		return nil
	}
	p := r.buf[r.head]
	r.buf[r.head] = nil
	r.head = (r.head + 1) % len(r.buf)
	r.size--
	return p
}
