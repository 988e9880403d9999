package signaling

import (
	"testing"
)

// TestWelcomeGoesFirst: a message for a session that is registered but
// has not been welcomed yet (another node resumed its call at once) waits,
// and goes out right after the welcome: a device's first message is
// always welcome.
func TestWelcomeGoesFirst(t *testing.T) {
	s := &Session{hub: &Hub{cfg: Config{SendQueue: 8}}, done: make(chan struct{})}
	s.writing = true // no writer: the test reads the queue
	s.enqueue(outFrame{data: []byte(`{"type":"resumed"}`)})
	s.enqueue(outFrame{ping: true})
	if len(s.queue) != 1 || !s.queue[0].ping {
		t.Fatalf("before the welcome the queue holds %+v, want the ping only", s.queue)
	}
	s.enqueue(outFrame{data: []byte(`{"type":"welcome"}`), welcome: true})
	s.enqueue(outFrame{data: []byte(`{"type":"incoming"}`)})
	var got []string
	for _, f := range s.queue {
		if f.data != nil {
			got = append(got, string(f.data))
		}
	}
	want := []string{`{"type":"welcome"}`, `{"type":"resumed"}`, `{"type":"incoming"}`}
	if len(got) != len(want) {
		t.Fatalf("queue %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("queue %v, want %v", got, want)
		}
	}
}
