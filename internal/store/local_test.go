package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLocalSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := OpenLocal(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		e := CallEntry{CallID: fmt.Sprint("c", i), Peer: "bob", Direction: Outgoing, EndedAt: time.Unix(int64(i), 0), Reason: "completed"}
		if err := l.AppendCall(ctx, "alice", e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.TouchUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A torn last line from a crash mid-write is ignored.
	f, _ := os.OpenFile(filepath.Join(dir, "calls.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"user":"alice","call":{"call_id":`)
	f.Close()

	l2, err := OpenLocal(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	got, err := l2.Calls(ctx, "alice", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].CallID != "c4" || got[2].CallID != "c2" {
		t.Fatalf("calls after reopen = %+v", got)
	}
	if ok, _ := l2.KnownUser(ctx, "alice"); !ok {
		t.Fatal("alice forgotten")
	}
	if ok, _ := l2.KnownUser(ctx, "mallory"); ok {
		t.Fatal("mallory known")
	}
}

func TestLocalDamagedFileIsAnError(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "calls.jsonl"), []byte("garbage\n{\"user\":\"a\",\"call\":{}}\n"), 0o600)
	if _, err := OpenLocal(dir, 10); err == nil {
		t.Fatal("damaged history opened without error")
	}
}
