package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/redistest"
)

// stores are the implementations every behaviour is checked against,
// each fresh and keeping 3 entries per user.
func stores(t *testing.T) map[string]interface {
	History
	Users
	AssistLog
} {
	t.Helper()
	local, err := OpenLocal(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	srv := redistest.Start(t)
	r, err := OpenRedis(RedisConfig{Addrs: []string{srv.Addr}, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return map[string]interface {
		History
		Users
		AssistLog
	}{"local": local, "redis": r}
}

// TestStoresAgree: both stores keep each user's newest entries, newest
// first, bounded, and tell known users from unknown ones.
func TestStoresAgree(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for i := range 5 {
				if err := s.AppendCall(ctx, "alice", CallEntry{CallID: fmt.Sprint("c", i), Reason: "completed"}); err != nil {
					t.Fatal(err)
				}
				if err := s.AppendAssist(ctx, "alice", AssistEntry{CallID: fmt.Sprint("c", i), Event: AssistStart}); err != nil {
					t.Fatal(err)
				}
			}
			calls, err := s.Calls(ctx, "alice", 10)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(callIDs(calls)); got != "[c4 c3 c2]" {
				t.Errorf("calls %s, want the newest 3, newest first", got)
			}
			if two, _ := s.Calls(ctx, "alice", 2); len(two) != 2 || two[0].CallID != "c4" {
				t.Errorf("limit 2 gave %+v", two)
			}
			entries, err := s.AssistEntries(ctx, "alice", 0)
			if err != nil || len(entries) != 3 || entries[0].CallID != "c4" {
				t.Errorf("assist log %+v, %v", entries, err)
			}
			if none, err := s.Calls(ctx, "bob", 10); err != nil || len(none) != 0 {
				t.Errorf("bob's history %+v, %v", none, err)
			}
			if known, _ := s.KnownUser(ctx, "alice"); known {
				t.Error("alice known before she signed in")
			}
			if err := s.TouchUser(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			if known, err := s.KnownUser(ctx, "alice"); !known || err != nil {
				t.Errorf("alice not known after signing in: %v", err)
			}
		})
	}
}

// TestRedisUnavailable: with Redis gone, calls fail quickly with
// ErrUnavailable, and work again when it is back, with no reconnect step.
func TestRedisUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	r, err := OpenRedis(RedisConfig{Addrs: []string{srv.Addr}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.TouchUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	_, err = r.KnownUser(ctx, "alice")
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("with Redis down: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("failing took %v, want well under 2 s", took)
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for r.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the store did not reach Redis again after it came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := r.AppendCall(ctx, "alice", CallEntry{CallID: "after"}); err != nil {
		t.Errorf("after Redis came back: %v", err)
	}
}

func callIDs(list []CallEntry) []string {
	var out []string
	for _, e := range list {
		out = append(out, e.CallID)
	}
	return out
}
