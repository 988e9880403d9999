package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"
)

var _ Revocations = (*Local)(nil)

// minIDSweep is the size of the revoked token id table below which
// expired ids are not swept while the store runs (opening it always does).
const minIDSweep = 1024

// revokedIDRecord is a revoked token id, by tokenRevocationID, and when
// the entry may go, in Unix microseconds.
type revokedIDRecord struct {
	ID    string `json:"id"`
	Until int64  `json:"until"`
}

func revokedIDRecords(ids map[string]int64) iter.Seq[any] {
	return func(yield func(any) bool) {
		for id, until := range ids {
			if !yield(revokedIDRecord{ID: id, Until: until}) {
				return
			}
		}
	}
}

// replayRevokedIDs reads the revoked token ids, leaving out those whose
// tokens have all expired.
func (l *Local) replayRevokedIDs() error {
	now := time.Now().UnixMicro()
	return replay(l.path(revokedIDsFile), func(b []byte) error {
		var r revokedIDRecord
		if err := json.Unmarshal(b, &r); err != nil {
			return err
		}
		if r.ID == "" {
			return errors.New("revoked token id without an id")
		}
		if r.Until >= now && r.Until > l.revokedIDs[r.ID] {
			l.revokedIDs[r.ID] = r.Until
		}
		return nil
	})
}

// RevokeDevice implements Revocations.
func (l *Local) RevokeDevice(ctx context.Context, user, device string, t time.Time) error {
	if err := l.lock(ctx); err != nil {
		return err
	}
	defer l.mu.Unlock()
	return l.markLocked(deviceRevocationID(user, device), t)
}

// RevokeTokenID implements Revocations. The entry is synced to the file
// before it counts, as marks are; once the table has grown, expired
// entries are swept out of memory and the file.
func (l *Local) RevokeTokenID(ctx context.Context, id string, until time.Time) error {
	if id == "" {
		return errors.New("store: revoke token id: empty id")
	}
	if err := l.lock(ctx); err != nil {
		return err
	}
	defer l.mu.Unlock()
	now := time.Now()
	if !until.After(now) {
		return nil // every token with that id has expired
	}
	key, us := tokenRevocationID(id), markMicros(until)
	if cur, ok := l.revokedIDs[key]; ok && cur >= us {
		return nil
	}
	if err := writeLine(l.revokedIDsF, revokedIDRecord{ID: key, Until: us}); err != nil {
		return err
	}
	if l.revokedIDsF != nil {
		if err := l.revokedIDsF.Sync(); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	l.revokedIDs[key] = us
	if len(l.revokedIDs) >= l.idSweepAt {
		// The revocation holds already (synced above): a sweep that cannot
		// rewrite the file leaves expired ids in it a while longer, and
		// must not make the caller think nothing was revoked.
		_ = l.sweepIDsLocked(now)
	}
	return nil
}

// sweepIDsLocked drops the expired token ids and rewrites the file to
// what is left; the next sweep waits until the table has doubled.
func (l *Local) sweepIDsLocked(now time.Time) error {
	kept := make(map[string]int64, len(l.revokedIDs))
	for id, until := range l.revokedIDs {
		if until >= now.UnixMicro() {
			kept[id] = until
		}
	}
	l.idSweepAt = max(minIDSweep, 2*len(kept))
	if len(kept) == len(l.revokedIDs) {
		return nil
	}
	return l.replace(revokedIDsFile, &l.revokedIDsF, revokedIDRecords(kept), func() { l.revokedIDs = kept })
}

// Revoked implements Revocations.
func (l *Local) Revoked(ctx context.Context, user, device, id string) (Marks, error) {
	if err := ctx.Err(); err != nil {
		return Marks{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var m Marks
	if us, ok := l.revoked[revocationID(user)]; ok {
		m.User = time.UnixMicro(us)
	}
	if us, ok := l.revoked[deviceRevocationID(user, device)]; ok {
		m.Device = time.UnixMicro(us)
	}
	if id != "" {
		until, ok := l.revokedIDs[tokenRevocationID(id)]
		m.ID = ok && until >= time.Now().UnixMicro()
	}
	return m, nil
}
