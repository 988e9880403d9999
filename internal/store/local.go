package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

var (
	_ History   = (*Local)(nil)
	_ Users     = (*Local)(nil)
	_ AssistLog = (*Local)(nil)
	_ Owner     = (*Local)(nil)
)

// The files of a Local store's directory.
const (
	callsFile   = "calls.jsonl"
	usersFile   = "users.jsonl"
	assistFile  = "assist.jsonl"
	revokedFile = "revoked.jsonl"
	// revokedIDsFile holds revoked token ids (local_revocation.go).
	revokedIDsFile = "revoked_ids.jsonl"
)

// Local is the single-node store: memory, written through to append-only
// JSON-lines files in a directory when one is given.
type Local struct {
	limit int
	dir   string // "" keeps everything in memory only

	mu       sync.Mutex
	calls    map[string][]CallEntry // oldest first
	users    map[string]bool
	assists  map[string][]AssistEntry // oldest first
	revoked  map[string]int64         // revocationID or deviceRevocationID → markMicros
	callsF   *os.File
	usersF   *os.File
	assistF  *os.File
	revokedF *os.File
	closed   bool

	// The history and audit files are compacted while the store runs
	// (compact.go).
	compactables []*compactable
	compactMin   int64       // the least size a file is compacted at
	compactHook  func()      // tests: runs while a compaction writes
	stopping     atomic.Bool // Close was called: compactions give up
	bg           sync.WaitGroup

	limits MemoryLimiter // RateLimiter

	revokedIDs  map[string]int64 // tokenRevocationID → until, Unix µs
	revokedIDsF *os.File
	idSweepAt   int // sweep expired ids once the table holds this many
}

type assistRecord struct {
	User  string      `json:"user"`
	Entry AssistEntry `json:"entry"`
}

type callRecord struct {
	User string    `json:"user"`
	Call CallEntry `json:"call"`
	// Replaces names the entry (by call id) that Call takes the place of:
	// a group of unanswered calls that grew (GroupCall).
	Replaces string `json:"replaces,omitempty"`
}

type userRecord struct {
	User string `json:"user"`
}

// revokedRecord is a revocation mark: the user by revocationID, and the
// mark in Unix microseconds.
type revokedRecord struct {
	ID string `json:"id"`
	US int64  `json:"us"`
}

func callRecordOf(user string, e CallEntry) any     { return callRecord{User: user, Call: e} }
func assistRecordOf(user string, e AssistEntry) any { return assistRecord{User: user, Entry: e} }

// OpenLocal opens (creating if needed) the store in dir, keeping at most
// limit calls per user. An empty dir keeps everything in memory only.
func OpenLocal(dir string, limit int) (*Local, error) {
	if limit <= 0 {
		limit = 1000
	}
	l := &Local{limit: limit, dir: dir, calls: map[string][]CallEntry{}, users: map[string]bool{},
		assists: map[string][]AssistEntry{}, revoked: map[string]int64{}, compactMin: defaultCompactMin,
		revokedIDs: map[string]int64{}, idSweepAt: minIDSweep}
	l.compactables = []*compactable{
		{name: callsFile, f: &l.callsF, records: func() iter.Seq[any] { return listRecords(maps.Clone(l.calls), callRecordOf) }},
		{name: assistFile, f: &l.assistF, records: func() iter.Seq[any] { return listRecords(maps.Clone(l.assists), assistRecordOf) }},
	}
	if dir == "" {
		return l, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// A compaction cut short by a crash leaves its unfinished file, which
	// may hold what an erasure since took out of the real one.
	if err := removeUnfinished(dir, callsFile, assistFile); err != nil {
		return nil, err
	}
	if err := replay(l.path(callsFile), func(b []byte) error {
		var r callRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		l.replayCall(r)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := replay(l.path(usersFile), func(b []byte) error {
		var r userRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		l.users[r.User] = true
		return nil
	}); err != nil {
		return nil, err
	}
	if err := replay(l.path(assistFile), func(b []byte) error {
		var r assistRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		l.appendAssistMem(r.User, r.Entry)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := replay(l.path(revokedFile), func(b []byte) error {
		var r revokedRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		if cur, ok := l.revoked[r.ID]; !ok || r.US > cur {
			l.revoked[r.ID] = r.US
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := l.replayRevokedIDs(); err != nil {
		return nil, err
	}
	// Compact each file to what is kept, and keep it open for appending.
	var err error
	if l.callsF, err = rewrite(l.path(callsFile), listRecords(l.calls, callRecordOf)); err != nil {
		return nil, errors.Join(err, l.closeFiles())
	}
	if l.usersF, err = rewrite(l.path(usersFile), userRecords(l.users)); err != nil {
		return nil, errors.Join(err, l.closeFiles())
	}
	if l.assistF, err = rewrite(l.path(assistFile), listRecords(l.assists, assistRecordOf)); err != nil {
		return nil, errors.Join(err, l.closeFiles())
	}
	if l.revokedF, err = rewrite(l.path(revokedFile), revokedRecords(l.revoked)); err != nil {
		return nil, errors.Join(err, l.closeFiles())
	}
	if l.revokedIDsF, err = rewrite(l.path(revokedIDsFile), revokedIDRecords(l.revokedIDs)); err != nil {
		return nil, errors.Join(err, l.closeFiles())
	}
	for _, c := range l.compactables {
		l.rewrote(c.f)
	}
	return l, nil
}

func (l *Local) path(name string) string { return filepath.Join(l.dir, name) }

// closeFiles syncs and closes the open files.
func (l *Local) closeFiles() error {
	var errs []error
	for _, f := range []*os.File{l.callsF, l.usersF, l.assistF, l.revokedF, l.revokedIDsF} {
		if f != nil {
			errs = append(errs, f.Sync(), f.Close())
		}
	}
	return errors.Join(errs...)
}

// replay feeds each line of path to fn. A torn last line (a crash during a
// write) is skipped; damage elsewhere is an error.
func replay(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var bad error
	line := 0
	for sc.Scan() {
		line++
		if bad != nil {
			return bad
		}
		if len(sc.Bytes()) == 0 {
			continue
		}
		if err := fn(sc.Bytes()); err != nil {
			bad = fmt.Errorf("store: %s line %d: %w", path, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", path, err)
	}
	return nil // a bad last line is a torn write
}

// rewrite replaces the file at path with recs, one JSON line each, and
// returns it open for appending. The replacement is atomic: recs go to a
// temporary file that is synced and renamed over path, and the directory
// is synced. A non-nil file means path now holds recs, even with an error
// (the directory could not be synced); with a nil one path is unchanged.
func rewrite(path string, recs iter.Seq[any]) (*os.File, error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	fail := func(err error) (*os.File, error) {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("store: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for r := range recs {
		if err := enc.Encode(r); err != nil {
			return fail(err)
		}
	}
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return f, fmt.Errorf("store: %w", err)
	}
	return f, nil
}

// syncDir makes a rename in dir durable.
// removeUnfinished removes what compactions of names left unfinished.
func removeUnfinished(dir string, names ...string) error {
	removed := false
	for _, n := range names {
		err := os.Remove(filepath.Join(dir, n+".compact"))
		switch {
		case err == nil:
			removed = true
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("store: %w", err)
		}
	}
	if removed {
		return syncDir(dir)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}

// listRecords yields record(user, e) for every entry of lists, each
// user's oldest first, so that a replay rebuilds the lists in order.
func listRecords[T any](lists map[string][]T, record func(user string, e T) any) iter.Seq[any] {
	return func(yield func(any) bool) {
		for user, entries := range lists {
			for _, e := range entries {
				if !yield(record(user, e)) {
					return
				}
			}
		}
	}
}

func userRecords(users map[string]bool) iter.Seq[any] {
	return func(yield func(any) bool) {
		for u := range users {
			if !yield(userRecord{User: u}) {
				return
			}
		}
	}
}

func revokedRecords(marks map[string]int64) iter.Seq[any] {
	return func(yield func(any) bool) {
		for id, us := range marks {
			if !yield(revokedRecord{ID: id, US: us}) {
				return
			}
		}
	}
}

// appendBounded appends e to list, keeping the newest limit entries.
func appendBounded[T any](list []T, e T, limit int) []T {
	list = append(list, e)
	if len(list) > limit {
		list = append([]T(nil), list[len(list)-limit:]...)
	}
	return list
}

// newestFirst returns up to limit entries of list (oldest first), newest
// first; limit <= 0 means all.
func newestFirst[T any](list []T, limit int) []T {
	if limit <= 0 || limit > len(list) {
		limit = len(list)
	}
	out := make([]T, 0, limit)
	for i := len(list) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, list[i])
	}
	return out
}

func (l *Local) appendMem(user string, e CallEntry) {
	l.calls[user] = appendBounded(l.calls[user], e, l.limit)
}

func writeLine(f *os.File, v any) error {
	if f == nil {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// lock takes l.mu for a write, unless ctx has ended or l is closed.
func (l *Local) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// record keeps an entry: add puts it in memory, then rec goes to *f (read
// under the lock: erasing, pruning and compacting replace the files).
func (l *Local) record(ctx context.Context, f **os.File, add func(), rec any) error {
	if err := l.lock(ctx); err != nil {
		return err
	}
	defer l.mu.Unlock()
	add()
	return l.written(f, rec)
}

// read returns up to limit entries of one user's list, newest first.
func read[T any](ctx context.Context, l *Local, lists map[string][]T, user string, limit int) ([]T, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return newestFirst(lists[user], limit), nil
}

// AppendCall implements History.
func (l *Local) AppendCall(ctx context.Context, user string, e CallEntry) error {
	return l.record(ctx, &l.callsF, func() { l.appendMem(user, e) }, callRecord{User: user, Call: e})
}

// Calls implements History.
func (l *Local) Calls(ctx context.Context, user string, limit int) ([]CallEntry, error) {
	return read(ctx, l, l.calls, user, limit)
}

// TouchUser implements Users.
func (l *Local) TouchUser(ctx context.Context, user string) error {
	if err := l.lock(ctx); err != nil {
		return err
	}
	defer l.mu.Unlock()
	if l.users[user] {
		return nil
	}
	l.users[user] = true
	return writeLine(l.usersF, userRecord{User: user})
}

// KnownUser implements Users.
func (l *Local) KnownUser(ctx context.Context, user string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.users[user], nil
}

// Close syncs and closes the files, and waits for a compaction under way
// to give up.
func (l *Local) Close() error {
	l.stopping.Store(true)
	defer l.bg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.closeFiles()
}

func (l *Local) appendAssistMem(user string, e AssistEntry) {
	l.assists[user] = appendBounded(l.assists[user], e, l.limit)
}

// AppendAssist implements AssistLog.
func (l *Local) AppendAssist(ctx context.Context, user string, e AssistEntry) error {
	return l.record(ctx, &l.assistF, func() { l.appendAssistMem(user, e) }, assistRecord{User: user, Entry: e})
}

// AssistEntries implements AssistLog.
func (l *Local) AssistEntries(ctx context.Context, user string, limit int) ([]AssistEntry, error) {
	return read(ctx, l, l.assists, user, limit)
}
