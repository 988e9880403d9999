package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// idle waits until no compaction runs.
func (l *Local) idle() {
	for {
		l.mu.Lock()
		running := false
		for _, c := range l.compactables {
			running = running || c.running
		}
		l.mu.Unlock()
		if !running {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCompactionBoundsTheFiles: a flood of entries for a few users, who
// keep 10 each, keeps both files within twice their live size (or the
// least size compacted) while the store runs; a reopened store has every
// entry it had.
func TestCompactionBoundsTheFiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	l, err := OpenLocal(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	l.compactMin = 16 << 10
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for i := range 10_000 {
		user := fmt.Sprint("user", i%4)
		e := CallEntry{CallID: fmt.Sprint("c", i), Peer: "mallory", Direction: Incoming, StartedAt: t0, EndedAt: t0, Reason: "cancelled", Missed: true}
		must(t, l.AppendCall(ctx, user, e))
		must(t, l.AppendAssist(ctx, user, AssistEntry{CallID: e.CallID, At: t0, Event: AssistStart}))
		if i%1000 == 999 {
			l.idle()
			for _, name := range []string{callsFile, assistFile} {
				if size := fileSize(t, filepath.Join(dir, name)); size > 2*max(l.compactMin, 4*10*300) {
					t.Fatalf("after %d entries %s is %d bytes: more than twice the least size compacted or what is live", i+1, name, size)
				}
			}
		}
	}
	l.idle()
	want := map[string][]CallEntry{}
	for u := range 4 {
		user := fmt.Sprint("user", u)
		want[user], _ = l.Calls(ctx, user, 0)
	}
	must(t, l.Close())
	live := fileSize(t, filepath.Join(dir, callsFile))
	l, err = OpenLocal(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	for user, w := range want {
		got, _ := l.Calls(ctx, user, 0)
		if fmt.Sprint(callIDs(got)) != fmt.Sprint(callIDs(w)) {
			t.Errorf("%s after reopening: %v, want %v", user, callIDs(got), callIDs(w))
		}
	}
	t.Logf("calls file %d bytes with 40 entries live, after 10000 appended", live)
}

// TestCompactionKeepsWhatIsWrittenMeanwhile: entries appended and grouped
// while a compaction writes its snapshot are in the compacted file, and a
// reopened store has them.
func TestCompactionKeepsWhatIsWrittenMeanwhile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	l, err := OpenLocal(dir, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	l.compactMin = 4 << 10
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	var once sync.Once
	var ran atomic.Bool
	l.compactHook = func() {
		once.Do(func() {
			ran.Store(true)
			// The compaction has written its snapshot and not yet taken
			// the lock: these go to the old file and must reach the new.
			must(t, l.AppendCall(ctx, "late", CallEntry{CallID: "late1", Peer: "alice", Direction: Outgoing, StartedAt: t0, EndedAt: t0, Reason: "completed"}))
			must(t, l.GroupCall(ctx, "bob", missedFrom("g2", "mallory", t0.Add(time.Minute)), time.Hour))
			must(t, l.AppendAssist(ctx, "late", AssistEntry{CallID: "late1", At: t0, Event: AssistStart}))
		})
	}
	must(t, l.GroupCall(ctx, "bob", missedFrom("g1", "mallory", t0), time.Hour))
	for i := 0; !ran.Load() && i < 10_000; i++ {
		must(t, l.AppendCall(ctx, "filler", CallEntry{CallID: fmt.Sprint("f", i), Peer: "carol", Direction: Incoming, StartedAt: t0, EndedAt: t0, Reason: "completed"}))
	}
	l.idle()
	if !ran.Load() {
		t.Fatal("no compaction ran")
	}
	must(t, l.Close())
	l, err = OpenLocal(dir, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Calls(ctx, "late", 0); fmt.Sprint(callIDs(got)) != "[late1]" {
		t.Errorf("the entry written during the compaction after reopening: %v, want [late1]", callIDs(got))
	}
	if got, _ := l.AssistEntries(ctx, "late", 0); len(got) != 1 {
		t.Errorf("the audit entry written during the compaction after reopening: %+v", got)
	}
	if got, _ := l.Calls(ctx, "bob", 0); len(got) != 1 || got[0].CallID != "g2" || got[0].Count != 2 {
		t.Errorf("bob's calls grouped during the compaction, after reopening: %s, want g2×2", groupsOf(got, t0))
	}
	if _, err := os.Stat(filepath.Join(dir, callsFile+".compact")); !os.IsNotExist(err) {
		t.Errorf("the compaction's temporary file is left: %v", err)
	}
}

// TestCompactionYieldsToErasure: a user erased while a compaction writes
// its snapshot (which still holds them) stays erased on disk.
func TestCompactionYieldsToErasure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	l, err := OpenLocal(dir, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.Close() }()
	l.compactMin = 4 << 10
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	var once sync.Once
	var ran atomic.Bool
	l.compactHook = func() {
		once.Do(func() {
			ran.Store(true)
			must(t, l.EraseUser(ctx, "erased"))
			// No later compaction may hide what this one leaves.
			l.mu.Lock()
			l.compactMin = 1 << 40
			l.mu.Unlock()
		})
	}
	must(t, l.AppendCall(ctx, "erased", CallEntry{CallID: "secret", Peer: "bob", StartedAt: t0, EndedAt: t0}))
	for i := 0; !ran.Load() && i < 10_000; i++ {
		must(t, l.AppendCall(ctx, "filler", CallEntry{CallID: fmt.Sprint("f", i), Peer: "carol", StartedAt: t0, EndedAt: t0}))
	}
	l.idle()
	if !ran.Load() {
		t.Fatal("no compaction ran")
	}
	must(t, l.Close())
	b, err := os.ReadFile(filepath.Join(dir, callsFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b); n == 0 || bytes.Contains(b, []byte("secret")) {
		t.Errorf("after erasure during a compaction the file (%d bytes) still holds the erased entry", n)
	}
}

// TestCompactionGivesUpOnClose: Close during a compaction waits for it
// and leaves the file complete.
func TestCompactionGivesUpOnClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	// Entries past the limit make the dead space that starts a
	// compaction; on a busy machine it starts late, after more than limit
	// appends, and then the newest limit entries are what must be left.
	const limit = 1000
	l, err := OpenLocal(dir, limit)
	if err != nil {
		t.Fatal(err)
	}
	l.compactMin = 4 << 10
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	closed := make(chan error, 1)
	var once sync.Once
	var ran atomic.Bool
	l.compactHook = func() {
		once.Do(func() { ran.Store(true); go func() { closed <- l.Close() }(); time.Sleep(10 * time.Millisecond) })
	}
	n := 0
	for ; !ran.Load() && n < 10_000; n++ {
		err := l.AppendCall(ctx, "filler", CallEntry{CallID: fmt.Sprint("f", n), Peer: "carol", StartedAt: t0, EndedAt: t0})
		if errors.Is(err, ErrClosed) {
			break
		}
		must(t, err)
	}
	if !ran.Load() {
		t.Fatal("no compaction ran")
	}
	must(t, <-closed)
	l, err = OpenLocal(dir, limit)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if got, _ := l.Calls(ctx, "filler", 0); len(got) != min(n, limit) {
		t.Errorf("%d entries after reopening, want %d", len(got), min(n, limit))
	}
}

// TestUnfinishedCompactionIsRemovedAtOpen: a compaction cut short by a
// crash leaves its snapshot, which may hold a user erased since; the store
// removes it when it opens, so the erased data does not stay on disk.
func TestUnfinishedCompactionIsRemovedAtOpen(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{callsFile, assistFile} {
		stale := `{"user":"erased","entry":{"call_id":"c1"}}` + "\n"
		if err := os.WriteFile(filepath.Join(dir, name+".compact"), []byte(stale), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := OpenLocal(dir, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, name := range []string{callsFile, assistFile} {
		if _, err := os.Stat(filepath.Join(dir, name+".compact")); !os.IsNotExist(err) {
			t.Errorf("%s.compact is still there after open: %v", name, err)
		}
	}
}
