package client

import (
	"context"
	"errors"
	"testing"
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
