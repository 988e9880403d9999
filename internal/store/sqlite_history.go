package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

var (
	_ History      = (*SQLite)(nil)
	_ Users        = (*SQLite)(nil)
	_ AssistLog    = (*SQLite)(nil)
	_ Owner        = (*SQLite)(nil)
	_ CallGrouping = (*SQLite)(nil)
	_ Revocations  = (*SQLite)(nil)
	_ RateLimiter  = (*SQLite)(nil)
)

// The single node's history, audit log, users and revocations, in the
// embedded database beside the accounts. Entries are kept as their JSON,
// with the columns they are found and pruned by; each user keeps their
// newest limit entries of each. Deleted rows are overwritten on disk
// (secure_delete), so an erasure leaves nothing of the user in the file.

// historyMigration is schema version 5.
const historyMigration = `
	CREATE TABLE calls (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		user TEXT NOT NULL,
		call_id TEXT NOT NULL,
		ended INTEGER NOT NULL,
		entry BLOB NOT NULL
	);
	CREATE INDEX calls_user ON calls (user, seq);
	CREATE INDEX calls_ended ON calls (ended);
	CREATE TABLE assist (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		user TEXT NOT NULL,
		at INTEGER NOT NULL,
		entry BLOB NOT NULL
	);
	CREATE INDEX assist_user ON assist (user, seq);
	CREATE INDEX assist_at ON assist (at);
	CREATE TABLE users (user TEXT PRIMARY KEY);
	CREATE TABLE revoked (id TEXT PRIMARY KEY, mark INTEGER NOT NULL);
	CREATE TABLE revoked_ids (id TEXT PRIMARY KEY, until INTEGER NOT NULL);`

// defaultLimit is how many entries of each kind a user keeps unless said.
const defaultLimit = 1000

func (s *SQLite) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func insertCall(ctx context.Context, tx *sql.Tx, user string, e CallEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, "INSERT INTO calls (user, call_id, ended, entry) VALUES (?, ?, ?, ?)", user, e.CallID, micros(e.EndedAt), b)
	return err
}

// trim keeps user's newest limit rows of table.
func (s *SQLite) trim(ctx context.Context, tx *sql.Tx, table, user string) error {
	_, err := tx.ExecContext(ctx, "DELETE FROM "+table+" WHERE user = ?1 AND seq <= (SELECT seq FROM "+table+
		" WHERE user = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)", user, s.limit)
	return err
}

// AppendCall implements History.
func (s *SQLite) AppendCall(ctx context.Context, user string, e CallEntry) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := insertCall(ctx, tx, user, e); err != nil {
			return err
		}
		return s.trim(ctx, tx, "calls", user)
	})
}

// GroupCall implements CallGrouping: the newest entry with the same peer
// among the user's newest GroupScan decides, in one transaction.
func (s *SQLite) GroupCall(ctx context.Context, user string, e CallEntry, within time.Duration) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if within > 0 && groupable(e) {
			rows, err := tx.QueryContext(ctx, "SELECT seq, entry FROM calls WHERE user = ? ORDER BY seq DESC LIMIT ?", user, GroupScan)
			if err != nil {
				return err
			}
			var seq int64
			var old CallEntry
			found := false
			for rows.Next() && !found {
				var b []byte
				var cur CallEntry
				if err := rows.Scan(&seq, &b); err != nil {
					rows.Close()
					return err
				}
				if json.Unmarshal(b, &cur) == nil && cur.Peer == e.Peer {
					found, old = true, cur
				}
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if found && groupsWith(old, e, within) {
				if _, err := tx.ExecContext(ctx, "DELETE FROM calls WHERE seq = ?", seq); err != nil {
					return err
				}
				e = merged(old, e)
			}
		}
		if err := insertCall(ctx, tx, user, e); err != nil {
			return err
		}
		return s.trim(ctx, tx, "calls", user)
	})
}

// Calls implements History.
func (s *SQLite) Calls(ctx context.Context, user string, limit int) ([]CallEntry, error) {
	return newestRows[CallEntry](ctx, s, "calls", user, limit)
}

// newestRows reads user's newest limit entries of table (all for 0),
// newest first.
func newestRows[T any](ctx context.Context, s *SQLite, table, user string, limit int) ([]T, error) {
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.db.QueryContext(ctx, "SELECT entry FROM "+table+" WHERE user = ? ORDER BY seq DESC LIMIT ?", user, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		var e T
		if err := json.Unmarshal(b, &e); err != nil {
			return nil, fmt.Errorf("store: a %s entry of %s: %w", table, user, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// AppendAssist implements AssistLog.
func (s *SQLite) AppendAssist(ctx context.Context, user string, e AssistEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO assist (user, at, entry) VALUES (?, ?, ?)", user, micros(e.At), b); err != nil {
			return err
		}
		return s.trim(ctx, tx, "assist", user)
	})
}

// AssistEntries implements AssistLog.
func (s *SQLite) AssistEntries(ctx context.Context, user string, limit int) ([]AssistEntry, error) {
	return newestRows[AssistEntry](ctx, s, "assist", user, limit)
}

// TouchUser implements Users. Every sign-in touches its user: one who is
// known already costs a read, not a write.
func (s *SQLite) TouchUser(ctx context.Context, user string) error {
	if known, err := s.KnownUser(ctx, user); err != nil || known {
		return err
	}
	_, err := s.db.ExecContext(ctx, "INSERT OR IGNORE INTO users (user) VALUES (?)", user)
	return err
}

// KnownUser implements Users.
func (s *SQLite) KnownUser(ctx context.Context, user string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE user = ?", user).Scan(&n)
	return n > 0, err
}

// EraseUser implements Owner: the revocation and the deletions are one
// transaction, and the write-ahead log is emptied into the database, so
// that nothing of the user stays in either file.
func (s *SQLite) EraseUser(ctx context.Context, user string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := markTx(ctx, tx, revocationID(user), time.Now()); err != nil {
			return err
		}
		for _, q := range []string{"DELETE FROM calls WHERE user = ?", "DELETE FROM assist WHERE user = ?", "DELETE FROM users WHERE user = ?"} {
			if _, err := tx.ExecContext(ctx, q, user); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.checkpoint(ctx)
}

// checkpoint moves the write-ahead log into the database and empties it.
func (s *SQLite) checkpoint(ctx context.Context) error {
	if s.dir == "" {
		return nil
	}
	_, err := s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

// PruneCalls implements Owner.
func (s *SQLite) PruneCalls(ctx context.Context, before time.Time) (int, error) {
	return s.prune(ctx, "DELETE FROM calls WHERE ended < ?", before)
}

// PruneAssist implements Owner.
func (s *SQLite) PruneAssist(ctx context.Context, before time.Time) (int, error) {
	return s.prune(ctx, "DELETE FROM assist WHERE at < ?", before)
}

func (s *SQLite) prune(ctx context.Context, q string, before time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, q, micros(before))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if n > 0 {
		err = errors.Join(err, s.checkpoint(ctx))
	}
	return int(n), err
}

// markTx moves the revocation mark id forward to t, never back; a zero t
// revokes nothing.
func markTx(ctx context.Context, tx interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, id string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO revoked (id, mark) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET mark = max(mark, excluded.mark)",
		id, markMicros(t))
	return err
}

// RevokeTokens implements Owner.
func (s *SQLite) RevokeTokens(ctx context.Context, user string, t time.Time) error {
	return markTx(ctx, s.db, revocationID(user), t)
}

// TokensRevoked implements Owner.
func (s *SQLite) TokensRevoked(ctx context.Context, user string) (time.Time, error) {
	return s.mark(ctx, revocationID(user))
}

func (s *SQLite) mark(ctx context.Context, id string) (time.Time, error) {
	var us int64
	err := s.db.QueryRowContext(ctx, "SELECT mark FROM revoked WHERE id = ?", id).Scan(&us)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMicro(us), nil
}

// RevokeDevice implements Revocations.
func (s *SQLite) RevokeDevice(ctx context.Context, user, device string, t time.Time) error {
	return markTx(ctx, s.db, deviceRevocationID(user, device), t)
}

// RevokeTokenID implements Revocations; ids whose tokens have all
// expired are swept out as new ones come.
func (s *SQLite) RevokeTokenID(ctx context.Context, id string, until time.Time) error {
	if id == "" {
		return errors.New("store: revoke token id: empty id")
	}
	now := time.Now()
	if !until.After(now) {
		return nil // every token with that id has expired
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "DELETE FROM revoked_ids WHERE until < ?", now.UnixMicro()); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO revoked_ids (id, until) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET until = max(until, excluded.until)",
			tokenRevocationID(id), markMicros(until))
		return err
	})
}

// Revoked implements Revocations.
func (s *SQLite) Revoked(ctx context.Context, user, device, id string) (Marks, error) {
	var m Marks
	var err error
	if m.User, err = s.mark(ctx, revocationID(user)); err != nil {
		return Marks{}, err
	}
	if m.Device, err = s.mark(ctx, deviceRevocationID(user, device)); err != nil {
		return Marks{}, err
	}
	if id != "" {
		var until int64
		err := s.db.QueryRowContext(ctx, "SELECT until FROM revoked_ids WHERE id = ?", tokenRevocationID(id)).Scan(&until)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return Marks{}, err
		default:
			m.ID = until >= time.Now().UnixMicro()
		}
	}
	return m, nil
}

// Allow implements RateLimiter, in memory: limits are one node's.
func (s *SQLite) Allow(ctx context.Context, key string, r Rate, now time.Time) (Decision, error) {
	return s.limits.Allow(ctx, key, r, now)
}

// importLocal moves what an earlier Tandem kept in JSON-lines files in
// dir (Local) into the database, once: the files go once their contents
// are committed. It reports how many entries it moved.
func (s *SQLite) importLocal(ctx context.Context, dir string) (int, error) {
	files := []string{callsFile, usersFile, assistFile, revokedFile, revokedIDsFile}
	found := false
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			found = true
		}
	}
	if !found {
		return 0, nil
	}
	l, err := OpenLocal(dir, max(s.limit, 1))
	if err != nil {
		return 0, fmt.Errorf("store: reading the files to import: %w", err)
	}
	n := 0
	err = s.tx(ctx, func(tx *sql.Tx) error {
		for user, list := range l.calls {
			for _, e := range list { // oldest first: their order is kept
				if err := insertCall(ctx, tx, user, e); err != nil {
					return err
				}
				n++
			}
		}
		for user, list := range l.assists {
			for _, e := range list {
				b, _ := json.Marshal(e)
				if _, err := tx.ExecContext(ctx, "INSERT INTO assist (user, at, entry) VALUES (?, ?, ?)", user, micros(e.At), b); err != nil {
					return err
				}
				n++
			}
		}
		for user := range l.users {
			if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO users (user) VALUES (?)", user); err != nil {
				return err
			}
			n++
		}
		for id, us := range l.revoked {
			if _, err := tx.ExecContext(ctx, "INSERT INTO revoked (id, mark) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET mark = max(mark, excluded.mark)", id, us); err != nil {
				return err
			}
			n++
		}
		for id, until := range l.revokedIDs {
			if _, err := tx.ExecContext(ctx, "INSERT INTO revoked_ids (id, until) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET until = max(until, excluded.until)", id, until); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if cerr := l.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("store: importing the files: %w", err)
	}
	if err := s.checkpoint(ctx); err != nil {
		return n, err
	}
	for _, f := range files {
		for _, name := range []string{f, f + ".compact"} {
			if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
				return n, fmt.Errorf("store: the imported %s stays: %w", name, err)
			}
		}
	}
	return n, nil
}
