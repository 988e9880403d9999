package store

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestSQLiteImportsTheFiles: what an earlier Tandem kept in JSON-lines
// files is in the database after the first start, in the same order,
// grouped entries and revocations included; the files are gone, and a
// second start imports nothing twice.
func TestSQLiteImportsTheFiles(t *testing.T) {
	dir := t.TempDir()
	ctx := dirCtx(t)
	l, err := OpenLocal(dir, 10)
	mustOK(t, err)
	for i, peer := range []string{"bob", "carol", "bob"} {
		at := t0.Add(time.Duration(i) * time.Minute)
		mustOK(t, l.GroupCall(ctx, "alice", CallEntry{CallID: "c" + peer + at.Format("0405"), Peer: peer, Direction: Outgoing,
			StartedAt: at, EndedAt: at.Add(10 * time.Second), Reason: "no_answer"}, time.Hour))
	}
	mustOK(t, l.AppendAssist(ctx, "alice", AssistEntry{At: t0, CallID: "c1", Event: AssistStart}))
	mustOK(t, l.TouchUser(ctx, "alice"))
	mustOK(t, l.RevokeDevice(ctx, "alice", "old-phone", t0))
	mustOK(t, l.RevokeTokenID(ctx, "stream-key", time.Now().Add(time.Hour)))
	want, err := l.Calls(ctx, "alice", 0)
	mustOK(t, err)
	mustOK(t, l.Close())

	s, err := OpenSQLite(dir, 10)
	mustOK(t, err)
	got, err := s.Calls(ctx, "alice", 0)
	mustOK(t, err)
	if len(got) != 2 || got[0].Count != 2 || got[0].Peer != "bob" || !slices.EqualFunc(got, want, func(a, b CallEntry) bool { return a.CallID == b.CallID }) {
		t.Fatalf("imported calls %+v, want %+v", got, want)
	}
	if as, _ := s.AssistEntries(ctx, "alice", 0); len(as) != 1 {
		t.Fatalf("imported audit log %+v", as)
	}
	if known, _ := s.KnownUser(ctx, "alice"); !known {
		t.Fatal("alice unknown after the import")
	}
	m, err := s.Revoked(ctx, "alice", "old-phone", "stream-key")
	mustOK(t, err)
	if m.Device.IsZero() || !m.ID {
		t.Fatalf("imported revocations %+v", m)
	}
	for _, f := range []string{callsFile, usersFile, assistFile, revokedFile, revokedIDsFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s is still there after the import: %v", f, err)
		}
	}
	mustOK(t, s.Close())
	s, err = OpenSQLite(dir, 10)
	mustOK(t, err)
	defer s.Close()
	if got, _ := s.Calls(ctx, "alice", 0); len(got) != 2 {
		t.Fatalf("after a second start %d entries, want 2", len(got))
	}
}

// TestSQLiteErasureLeavesNothingOnDisk: after erasing a user, neither the
// database file nor its write-ahead log holds their entries' bytes.
func TestSQLiteErasureLeavesNothingOnDisk(t *testing.T) {
	dir := t.TempDir()
	ctx := dirCtx(t)
	s, err := OpenSQLite(dir, 100)
	mustOK(t, err)
	defer s.Close()
	const secret = "peer-only-alice-ever-called"
	for i := range 50 {
		mustOK(t, s.AppendCall(ctx, "alice", CallEntry{CallID: "c" + string(rune('a'+i%26)), Peer: secret, EndedAt: t0}))
		mustOK(t, s.AppendAssist(ctx, "alice", AssistEntry{At: t0, CallID: secret}))
		mustOK(t, s.AppendCall(ctx, "bob", CallEntry{CallID: "b", Peer: "carol", EndedAt: t0}))
	}
	onDisk := func() bool {
		for _, f := range []string{dbFile, dbFile + "-wal"} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(secret)) {
				return true
			}
		}
		return false
	}
	if !onDisk() {
		t.Fatal("the entries are not on disk to begin with: the check could not fail")
	}
	mustOK(t, s.EraseUser(ctx, "alice"))
	if onDisk() {
		t.Fatal("alice's entries are still in the database files after her erasure")
	}
	if got, _ := s.Calls(ctx, "bob", 0); len(got) != 50 {
		t.Fatalf("bob's history: %d entries, want his 50", len(got))
	}
}
