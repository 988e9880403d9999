package signaling

import "sync"

// maxQueuedEvents bounds a session's queue of events: far more than a
// working loop ever has waiting. Past it events are dropped and counted
// (tandem_signaling_events_dropped_total): the loop is stuck, and holding
// more would only hold more memory.
const maxQueuedEvents = 4096

// eventQueue is a session's queue of events for its loop: pion callbacks,
// the hub and a proxy's forwarded messages put events in it without ever
// waiting, and the loop takes them in order.
type eventQueue struct {
	mu    sync.Mutex
	q     []any
	ready chan struct{} // holds a token while q is not empty
}

func newEventQueue() *eventQueue { return &eventQueue{ready: make(chan struct{}, 1)} }

// put adds ev, unless the queue is full; it never blocks.
func (e *eventQueue) put(ev any) bool {
	e.mu.Lock()
	if len(e.q) >= maxQueuedEvents {
		e.mu.Unlock()
		return false
	}
	e.q = append(e.q, ev)
	e.mu.Unlock()
	select {
	case e.ready <- struct{}{}:
	default:
	}
	return true
}

// take returns every queued event, oldest first, and empties the queue.
func (e *eventQueue) take() []any {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := e.q
	e.q = nil
	return q
}

// len is how many events wait.
func (e *eventQueue) len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.q)
}
