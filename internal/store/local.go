package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

var (
	_ History   = (*Local)(nil)
	_ Users     = (*Local)(nil)
	_ AssistLog = (*Local)(nil)
)

// Local is the single-node store: memory, written through to append-only
// JSON-lines files in a directory when one is given.
type Local struct {
	limit int

	mu      sync.Mutex
	calls   map[string][]CallEntry // oldest first
	users   map[string]bool
	assists map[string][]AssistEntry // oldest first
	callsF  *os.File
	usersF  *os.File
	assistF *os.File
	closed  bool
}

type assistRecord struct {
	User  string      `json:"user"`
	Entry AssistEntry `json:"entry"`
}

type callRecord struct {
	User string    `json:"user"`
	Call CallEntry `json:"call"`
}

type userRecord struct {
	User string `json:"user"`
}

// OpenLocal opens (creating if needed) the store in dir, keeping at most
// limit calls per user. An empty dir keeps everything in memory only.
func OpenLocal(dir string, limit int) (*Local, error) {
	if limit <= 0 {
		limit = 1000
	}
	l := &Local{limit: limit, calls: map[string][]CallEntry{}, users: map[string]bool{}, assists: map[string][]AssistEntry{}}
	if dir == "" {
		return l, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	callsPath := filepath.Join(dir, "calls.jsonl")
	usersPath := filepath.Join(dir, "users.jsonl")
	if err := replay(callsPath, func(b []byte) error {
		var r callRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		l.appendMem(r.User, r.Call)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := replay(usersPath, func(b []byte) error {
		var r userRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		l.users[r.User] = true
		return nil
	}); err != nil {
		return nil, err
	}
	assistPath := filepath.Join(dir, "assist.jsonl")
	if err := replay(assistPath, func(b []byte) error {
		var r assistRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		l.appendAssistMem(r.User, r.Entry)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := rewrite(callsPath, l.calls, func(u string, e CallEntry) any { return callRecord{User: u, Call: e} }); err != nil {
		return nil, err
	}
	if err := rewrite(assistPath, l.assists, func(u string, e AssistEntry) any { return assistRecord{User: u, Entry: e} }); err != nil {
		return nil, err
	}
	var err error
	if l.callsF, err = os.OpenFile(callsPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if l.usersF, err = os.OpenFile(usersPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		l.callsF.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	if l.assistF, err = os.OpenFile(assistPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		l.callsF.Close()
		l.usersF.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	return l, nil
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

// rewrite replaces the file at path with one record per kept entry, so
// that it holds no more than what is kept.
func rewrite[T any](path string, lists map[string][]T, record func(user string, e T) any) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for user, entries := range lists {
		for _, e := range entries {
			if err := enc.Encode(record(user, e)); err != nil {
				f.Close()
				return fmt.Errorf("store: %w", err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("store: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("store: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
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

// record keeps an entry: add puts it in memory, then rec goes to f.
func (l *Local) record(ctx context.Context, f *os.File, add func(), rec any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	add()
	return writeLine(f, rec)
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
	return l.record(ctx, l.callsF, func() { l.appendMem(user, e) }, callRecord{User: user, Call: e})
}

// Calls implements History.
func (l *Local) Calls(ctx context.Context, user string, limit int) ([]CallEntry, error) {
	return read(ctx, l, l.calls, user, limit)
}

// TouchUser implements Users.
func (l *Local) TouchUser(ctx context.Context, user string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
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

// Close syncs and closes the files.
func (l *Local) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	for _, f := range []*os.File{l.callsF, l.usersF, l.assistF} {
		if f != nil {
			errs = append(errs, f.Sync(), f.Close())
		}
	}
	return errors.Join(errs...)
}

func (l *Local) appendAssistMem(user string, e AssistEntry) {
	l.assists[user] = appendBounded(l.assists[user], e, l.limit)
}

// AppendAssist implements AssistLog.
func (l *Local) AppendAssist(ctx context.Context, user string, e AssistEntry) error {
	return l.record(ctx, l.assistF, func() { l.appendAssistMem(user, e) }, assistRecord{User: user, Entry: e})
}

// AssistEntries implements AssistLog.
func (l *Local) AssistEntries(ctx context.Context, user string, limit int) ([]AssistEntry, error) {
	return read(ctx, l, l.assists, user, limit)
}
