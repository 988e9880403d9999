package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// TestLocalEraseAndPruneSurviveReopen: what was erased or pruned stays
// gone after a restart, is gone from the files themselves, and entries
// written after the files were rewritten are kept; revocation marks are
// kept too.
func TestLocalEraseAndPruneSurviveReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := OpenLocal(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	cut := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	old, recent := cut.Add(-time.Hour), cut.Add(time.Hour)
	must(t, l.AppendCall(ctx, "alice", CallEntry{CallID: "a1", Peer: "zebediah-quist", EndedAt: recent}))
	must(t, l.AppendAssist(ctx, "alice", AssistEntry{At: recent, CallID: "a1", Helper: "zebediah-quist", Helped: "alice", Event: AssistStart}))
	must(t, l.TouchUser(ctx, "alice"))
	must(t, l.AppendCall(ctx, "bob", CallEntry{CallID: "b-old", Peer: "carol", EndedAt: old}))
	must(t, l.AppendCall(ctx, "bob", CallEntry{CallID: "b-new", Peer: "alice", EndedAt: recent}))
	must(t, l.AppendAssist(ctx, "bob", AssistEntry{At: old, CallID: "b-old", Event: AssistStart}))
	must(t, l.AppendAssist(ctx, "bob", AssistEntry{At: recent, CallID: "b-new", Event: AssistStart}))
	must(t, l.TouchUser(ctx, "bob"))

	must(t, l.EraseUser(ctx, "alice"))
	erased, _ := l.TokensRevoked(ctx, "alice")
	if n, err := l.PruneCalls(ctx, cut); n != 1 || err != nil {
		t.Fatalf("PruneCalls: %d, %v; want 1", n, err)
	}
	if n, err := l.PruneAssist(ctx, cut); n != 1 || err != nil {
		t.Fatalf("PruneAssist: %d, %v; want 1", n, err)
	}
	bobMark := time.Date(2026, 2, 3, 4, 5, 6, 7000, time.UTC)
	must(t, l.RevokeTokens(ctx, "bob", bobMark))
	// Written after the files were replaced: must go to the new files.
	must(t, l.AppendCall(ctx, "bob", CallEntry{CallID: "b-after", Peer: "dave", EndedAt: recent}))
	must(t, l.AppendAssist(ctx, "bob", AssistEntry{At: recent, CallID: "b-after", Event: AssistEnd}))
	must(t, l.TouchUser(ctx, "dave"))
	must(t, l.Close())

	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{`"user":"alice"`, "zebediah-quist", "b-old"} {
			if strings.Contains(string(b), s) {
				t.Errorf("%s still holds %q", f.Name(), s)
			}
		}
		if f.Name() == usersFile || f.Name() == revokedFile {
			if strings.Contains(string(b), "alice") {
				t.Errorf("%s still names alice: %s", f.Name(), b)
			}
		}
		if strings.HasSuffix(f.Name(), ".tmp") {
			t.Errorf("%s left behind", f.Name())
		}
	}

	l2, err := OpenLocal(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if calls, _ := l2.Calls(ctx, "alice", 0); len(calls) != 0 {
		t.Errorf("alice's history came back: %+v", calls)
	}
	if entries, _ := l2.AssistEntries(ctx, "alice", 0); len(entries) != 0 {
		t.Errorf("alice's log came back: %+v", entries)
	}
	if known, _ := l2.KnownUser(ctx, "alice"); known {
		t.Error("alice known again after reopening")
	}
	if calls, _ := l2.Calls(ctx, "bob", 0); fmt.Sprint(callIDs(calls)) != "[b-after b-new]" {
		t.Errorf("bob's history after reopening: %v, want [b-after b-new]", callIDs(calls))
	}
	if entries, _ := l2.AssistEntries(ctx, "bob", 0); len(entries) != 2 || entries[0].CallID != "b-after" || entries[1].CallID != "b-new" {
		t.Errorf("bob's log after reopening: %+v, want b-after then b-new", entries)
	}
	for _, u := range []string{"bob", "dave"} {
		if known, _ := l2.KnownUser(ctx, u); !known {
			t.Errorf("%s forgotten", u)
		}
	}
	if m, _ := l2.TokensRevoked(ctx, "alice"); erased.IsZero() || !m.Equal(erased) {
		t.Errorf("alice's mark after reopening: %v, want %v", m, erased)
	}
	if m, _ := l2.TokensRevoked(ctx, "bob"); !m.Equal(bobMark) {
		t.Errorf("bob's mark after reopening: %v, want %v", m, bobMark)
	}
	// A mark does not move back after reopening either.
	must(t, l2.RevokeTokens(ctx, "bob", bobMark.Add(-time.Hour)))
	if m, _ := l2.TokensRevoked(ctx, "bob"); !m.Equal(bobMark) {
		t.Errorf("bob's mark moved back to %v", m)
	}
}

// TestLocalClosedOwner: after Close, the owner's writes fail with ErrClosed.
func TestLocalClosedOwner(t *testing.T) {
	ctx := context.Background()
	l, err := OpenLocal(t.TempDir(), 10)
	if err != nil {
		t.Fatal(err)
	}
	must(t, l.Close())
	if err := l.EraseUser(ctx, "alice"); !errors.Is(err, ErrClosed) {
		t.Errorf("EraseUser after Close: %v", err)
	}
	if _, err := l.PruneCalls(ctx, time.Now()); !errors.Is(err, ErrClosed) {
		t.Errorf("PruneCalls after Close: %v", err)
	}
	if err := l.RevokeTokens(ctx, "alice", time.Now()); !errors.Is(err, ErrClosed) {
		t.Errorf("RevokeTokens after Close: %v", err)
	}
}

// TestLocalOwnerRacesAppends: appends running while files are rewritten
// by erasing and pruning are all kept, on disk as in memory.
func TestLocalOwnerRacesAppends(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	l, err := OpenLocal(dir, 1000)
	if err != nil {
		t.Fatal(err)
	}
	cut := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	users := []string{"alice", "bob", "carol"}
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			for i := range 100 {
				ended := cut.Add(time.Duration(i%2*2-1) * time.Hour) // old, new, old, ...
				if err := l.AppendCall(ctx, u, CallEntry{CallID: fmt.Sprint(u, i), EndedAt: ended}); err != nil {
					t.Error(err)
					return
				}
				if err := l.AppendAssist(ctx, u, AssistEntry{CallID: fmt.Sprint(u, i), At: ended}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	for range 20 {
		must(t, l.EraseUser(ctx, "mallory"))
		must(t, l.AppendCall(ctx, "mallory", CallEntry{CallID: "m"}))
		if _, err := l.PruneCalls(ctx, cut); err != nil {
			t.Fatal(err)
		}
		if _, err := l.PruneAssist(ctx, cut); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	want := map[string]string{}
	for _, u := range append(users, "mallory") {
		calls, _ := l.Calls(ctx, u, 0)
		entries, _ := l.AssistEntries(ctx, u, 0)
		want[u] = fmt.Sprint(callIDs(calls), len(entries))
	}
	must(t, l.Close())
	l2, err := OpenLocal(dir, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	for u, w := range want {
		calls, _ := l2.Calls(ctx, u, 0)
		entries, _ := l2.AssistEntries(ctx, u, 0)
		if got := fmt.Sprint(callIDs(calls), len(entries)); got != w {
			t.Errorf("%s after reopening: %s, want %s", u, got, w)
		}
	}
	if calls, _ := l2.Calls(ctx, "alice", 0); len(calls) < 50 {
		t.Errorf("alice kept %d calls, want at least the 50 recent ones", len(calls))
	}
}

// TestLocalRevocationsSurviveReopen: device marks and revoked token ids
// are on disk; ids whose tokens have all expired are left out when the
// store opens, and swept while it runs once the table has grown, so the
// table and its file hold only live ones.
func TestLocalRevocationsSurviveReopen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dir := t.TempDir()
	l, err := OpenLocal(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	must(t, l.RevokeDevice(ctx, "alice", "obs", at))
	must(t, l.RevokeTokenID(ctx, "live", time.Now().Add(time.Hour)))
	must(t, l.RevokeTokenID(ctx, "brief", time.Now().Add(100*time.Millisecond)))
	must(t, l.Close())
	time.Sleep(150 * time.Millisecond) // "brief" has expired

	l2, err := OpenLocal(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if m, _ := l2.Revoked(ctx, "alice", "obs", "live"); !m.Device.Equal(at) || !m.ID {
		t.Errorf("after reopening: %+v, want alice/obs's mark and the live id", m)
	}
	b, err := os.ReadFile(filepath.Join(dir, revokedIDsFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 1 || strings.Contains(string(b), tokenRevocationID("brief")) {
		t.Errorf("%s holds %d lines after reopening, want the live id only:\n%s", revokedIDsFile, n, b)
	}
	for _, s := range []string{"alice", "live", "obs"} {
		if raw, _ := os.ReadFile(filepath.Join(dir, revokedFile)); strings.Contains(string(raw)+string(b), s) {
			t.Errorf("the revocation files hold %q in clear", s)
		}
	}

	// Many brief revocations, then one more once they expired: the table
	// and the file shrink back to the live ones.
	l2.mu.Lock()
	l2.idSweepAt = 8
	l2.mu.Unlock()
	for i := range 6 {
		must(t, l2.RevokeTokenID(ctx, fmt.Sprint("brief", i), time.Now().Add(50*time.Millisecond)))
	}
	time.Sleep(100 * time.Millisecond)
	must(t, l2.RevokeTokenID(ctx, "last", time.Now().Add(time.Hour)))
	l2.mu.Lock()
	n := len(l2.revokedIDs)
	l2.mu.Unlock()
	if n != 2 {
		t.Errorf("%d revoked ids kept, want the 2 live ones", n)
	}
	b, _ = os.ReadFile(filepath.Join(dir, revokedIDsFile))
	if lines := strings.Count(string(b), "\n"); lines != 2 {
		t.Errorf("%s holds %d lines after the sweep, want 2", revokedIDsFile, lines)
	}
	if m, _ := l2.Revoked(ctx, "bob", "x", "live"); !m.ID {
		t.Error("the sweep dropped a live id")
	}
}
