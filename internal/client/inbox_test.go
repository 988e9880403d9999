package client

import (
	"context"
	"errors"
	"testing"

	"github.com/tandemcall/tandem/signaling/protocol"
)

func TestInboxFullAndFail(t *testing.T) {
	b := newInbox()
	for i := range maxBuffered {
		if err := b.push(i); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if err := b.push(-1); !errors.Is(err, ErrBufferFull) {
		t.Fatalf("push past the limit = %v, want ErrBufferFull", err)
	}
	b.fail(ErrBufferFull)
	ctx := context.Background()
	// Buffered messages come out before the error.
	m, err := b.take(ctx, func(m any) bool { return m.(int) == 7 })
	if err != nil || m.(int) != 7 {
		t.Fatalf("take = %v, %v", m, err)
	}
	m, err = b.take(ctx, nil)
	if err != nil || m.(int) != 0 {
		t.Fatalf("take = %v, %v", m, err)
	}
	if _, err := b.take(ctx, func(any) bool { return false }); !errors.Is(err, ErrBufferFull) {
		t.Fatalf("take without match = %v, want ErrBufferFull", err)
	}
}

// TestInboxClaimedReplies: a reader taking every message (Next) passes
// over the reply a Request waits for, and takes it once nobody does.
func TestInboxClaimedReplies(t *testing.T) {
	b := newInbox()
	b.claim("r1")
	for _, m := range []any{&protocol.Ack{Re: "r1"}, &protocol.Ack{Re: "r2"}, &protocol.Error{Re: "r1"}, "event"} {
		if err := b.push(m); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	for _, want := range []string{"r2", "event"} {
		m, err := b.take(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a, ok := m.(*protocol.Ack); ok && a.Re == want || m == want {
			continue
		}
		t.Fatalf("Next took %#v, want %s", m, want)
	}
	if m, err := b.take(ctx, func(m any) bool { a, ok := m.(*protocol.Ack); return ok && a.Re == "r1" }); err != nil || m.(*protocol.Ack).Re != "r1" {
		t.Fatalf("the request's own take = %v, %v", m, err)
	}
	b.unclaim("r1")
	if m, err := b.take(ctx, nil); err != nil || m.(*protocol.Error).Re != "r1" {
		t.Fatalf("a reply nobody waits for any more: %v, %v", m, err)
	}
}
