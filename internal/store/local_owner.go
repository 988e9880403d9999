package store

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"os"
	"time"
)

// EraseUser implements Owner. The files are rewritten without user's
// entries, so that they are gone from the disk, not only from memory.
func (l *Local) EraseUser(ctx context.Context, user string) error {
	if err := l.lock(ctx); err != nil {
		return err
	}
	defer l.mu.Unlock()
	// Revoke first: should a rewrite fail, the tokens are no good already.
	if err := l.revokeLocked(user, time.Now()); err != nil {
		return err
	}
	if _, ok := l.calls[user]; ok {
		kept := maps.Clone(l.calls)
		delete(kept, user)
		if err := l.replace(callsFile, &l.callsF, listRecords(kept, callRecordOf), func() { l.calls = kept }); err != nil {
			return err
		}
	}
	if _, ok := l.assists[user]; ok {
		kept := maps.Clone(l.assists)
		delete(kept, user)
		if err := l.replace(assistFile, &l.assistF, listRecords(kept, assistRecordOf), func() { l.assists = kept }); err != nil {
			return err
		}
	}
	if l.users[user] {
		kept := maps.Clone(l.users)
		delete(kept, user)
		if err := l.replace(usersFile, &l.usersF, userRecords(kept), func() { l.users = kept }); err != nil {
			return err
		}
	}
	return nil
}

// PruneCalls implements Owner.
func (l *Local) PruneCalls(ctx context.Context, before time.Time) (int, error) {
	return pruneLocal(ctx, l, &l.calls, callsFile, &l.callsF, callRecordOf,
		func(e CallEntry) bool { return e.EndedAt.Before(before) })
}

// PruneAssist implements Owner.
func (l *Local) PruneAssist(ctx context.Context, before time.Time) (int, error) {
	return pruneLocal(ctx, l, &l.assists, assistFile, &l.assistF, assistRecordOf,
		func(e AssistEntry) bool { return e.At.Before(before) })
}

// RevokeTokens implements Owner.
func (l *Local) RevokeTokens(ctx context.Context, user string, t time.Time) error {
	if err := l.lock(ctx); err != nil {
		return err
	}
	defer l.mu.Unlock()
	return l.revokeLocked(user, t)
}

// TokensRevoked implements Owner.
func (l *Local) TokensRevoked(ctx context.Context, user string) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	us, ok := l.revoked[revocationID(user)]
	if !ok {
		return time.Time{}, nil
	}
	return time.UnixMicro(us), nil
}

// revokeLocked moves user's revocation mark forward to t, never back, and
// syncs it to the file: a revocation lost in a crash would let a token back in.
// A zero t revokes nothing.
func (l *Local) revokeLocked(user string, t time.Time) error {
	return l.markLocked(revocationID(user), t)
}

// markLocked moves the revocation mark id (a user's or a device's) forward
// to t, as revokeLocked says.
func (l *Local) markLocked(id string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	us := markMicros(t)
	if cur, ok := l.revoked[id]; ok && cur >= us {
		return nil
	}
	if err := writeLine(l.revokedF, revokedRecord{ID: id, US: us}); err != nil {
		return err
	}
	if l.revokedF != nil {
		if err := l.revokedF.Sync(); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	l.revoked[id] = us
	return nil
}

// replace makes recs the whole content of the file name and then calls
// commit, which puts the matching state in memory. The file is replaced
// atomically; the append handle *f moves to the new file. Unless the file
// was replaced, commit is not called and memory is left as it was.
func (l *Local) replace(name string, f **os.File, recs iter.Seq[any], commit func()) error {
	if l.dir == "" {
		commit()
		return nil
	}
	nf, err := rewrite(l.path(name), recs)
	if nf != nil {
		// The old handle writes to the file just replaced: its content is
		// all in recs, and it is gone from the directory.
		(*f).Close()
		*f = nf
		l.rewrote(f)
		commit()
	}
	return err
}

// pruneLocal drops the entries of *lists that old picks, rewriting the file
// name, and returns how many went.
func pruneLocal[T any](ctx context.Context, l *Local, lists *map[string][]T, name string, f **os.File,
	record func(user string, e T) any, old func(T) bool) (int, error) {
	if err := l.lock(ctx); err != nil {
		return 0, err
	}
	defer l.mu.Unlock()
	kept, n := pruneLists(*lists, old)
	if n == 0 {
		return 0, nil
	}
	done := false
	err := l.replace(name, f, listRecords(kept, record), func() { *lists, done = kept, true })
	if !done {
		n = 0
	}
	return n, err
}

// pruneLists returns lists without the entries old picks (and without
// users left with none), sharing the lists it does not change, and how
// many entries it left out. lists itself is not changed.
func pruneLists[T any](lists map[string][]T, old func(T) bool) (map[string][]T, int) {
	kept := make(map[string][]T, len(lists))
	n := 0
	for user, list := range lists {
		drop := 0
		for _, e := range list {
			if old(e) {
				drop++
			}
		}
		n += drop
		switch drop {
		case 0:
			kept[user] = list
		case len(list):
		default:
			keep := make([]T, 0, len(list)-drop)
			for _, e := range list {
				if !old(e) {
					keep = append(keep, e)
				}
			}
			kept[user] = keep
		}
	}
	return kept, n
}
