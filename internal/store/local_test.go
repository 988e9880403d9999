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

// TestLocalAssistLogSurvivesReopen: the assistance audit log is kept per
// user, newest first, bounded, and read back after a restart.
func TestLocalAssistLogSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := OpenLocal(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	events := []string{AssistStart, AssistRequest, AssistGrant, AssistRevoke, AssistEnd}
	for i, ev := range events {
		e := AssistEntry{At: time.Unix(int64(i), 0), CallID: "c1", Helper: "bob", Helped: "alice", Event: ev}
		if err := l.AppendAssist(ctx, "alice", e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.AppendAssist(ctx, "bob", AssistEntry{CallID: "c1", Event: AssistStart}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := OpenLocal(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	got, err := l2.AssistEntries(ctx, "alice", 10)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range got {
		names = append(names, e.Event)
	}
	if want := []string{AssistEnd, AssistRevoke, AssistGrant}; fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("alice's log after reopening: %v, want %v (newest first, 3 kept)", names, want)
	}
	if b, _ := l2.AssistEntries(ctx, "bob", 10); len(b) != 1 {
		t.Errorf("bob's log has %d entries, want 1", len(b))
	}
}
