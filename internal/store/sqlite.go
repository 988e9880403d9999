package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var _ Accounts = (*SQLite)(nil)

// dbFile is the embedded database's file in a data directory.
const dbFile = "tandem.db"

// SQLite is the single-node store's embedded database (pure Go: the
// binary stays static). Its schema is versioned: each migration runs once,
// in order, in a transaction, and the database says which it has had.
type SQLite struct {
	db     *sql.DB
	dir    string // "" in memory
	limit  int    // history and audit entries kept per user
	limits MemoryLimiter
}

// migrations are the schema's versions: migrations[i] takes the database
// from version i to i+1. Never edit one that has shipped; add the next.
var migrations = []string{
	// 1: accounts.
	`CREATE TABLE people (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		role TEXT NOT NULL,
		disabled INTEGER NOT NULL DEFAULT 0,
		can_invite INTEGER NOT NULL DEFAULT 0,
		created INTEGER NOT NULL
	);
	CREATE TABLE invites (
		hash TEXT PRIMARY KEY,
		by_user TEXT NOT NULL,
		for_name TEXT NOT NULL,
		role TEXT NOT NULL,
		uses INTEGER NOT NULL,
		used INTEGER NOT NULL DEFAULT 0,
		expires INTEGER NOT NULL,
		created INTEGER NOT NULL
	);
	CREATE TABLE devices (
		user TEXT NOT NULL,
		id TEXT NOT NULL,
		name TEXT NOT NULL,
		credential_hash TEXT NOT NULL UNIQUE,
		created INTEGER NOT NULL,
		last_used INTEGER NOT NULL,
		PRIMARY KEY (user, id)
	);
	CREATE TABLE passkeys (
		id BLOB PRIMARY KEY,
		user TEXT NOT NULL,
		data BLOB NOT NULL,
		created INTEGER NOT NULL,
		last_used INTEGER NOT NULL
	);
	CREATE INDEX passkeys_user ON passkeys (user);
	CREATE TABLE pairings (
		id TEXT PRIMARY KEY,
		secret_hash TEXT NOT NULL,
		expires INTEGER NOT NULL,
		user TEXT NOT NULL DEFAULT '',
		device_name TEXT NOT NULL DEFAULT ''
	);
	CREATE TABLE contacts (
		user TEXT NOT NULL,
		contact TEXT NOT NULL,
		since INTEGER NOT NULL,
		PRIMARY KEY (user, contact)
	);`,
	// 2: sign-in ceremonies.
	`CREATE TABLE ceremonies (
		id TEXT PRIMARY KEY,
		data BLOB NOT NULL,
		expires INTEGER NOT NULL
	);`,
	// 3: contact requests.
	`CREATE TABLE contact_requests (
		from_user TEXT NOT NULL,
		to_user TEXT NOT NULL,
		since INTEGER NOT NULL,
		PRIMARY KEY (to_user, from_user)
	);`,
	// 4: identity provider (OIDC) subjects.
	`CREATE TABLE oidc_subjects (
		issuer TEXT NOT NULL,
		subject TEXT NOT NULL,
		user TEXT NOT NULL,
		PRIMARY KEY (issuer, subject)
	);
	CREATE INDEX oidc_subjects_user ON oidc_subjects (user);`,
	// 5: history, audit log, users and revocations (sqlite_history.go).
	historyMigration,
	// 6: pictures of people.
	`CREATE TABLE avatars (user TEXT PRIMARY KEY, png BLOB NOT NULL);`,
	// 7: devices' push subscriptions.
	`ALTER TABLE devices ADD COLUMN push BLOB;`,
}

// OpenSQLite opens (creating it if need be) the database in dir and brings
// its schema up to date; with dir "" the database lives in memory only.
// What an earlier Tandem kept in JSON-lines files in dir is moved in, once.
// Each user keeps their newest limit history and audit entries (1000 for
// 0).
func OpenSQLite(dir string, limit int) (*SQLite, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	var dsn string
	if dir == "" {
		// A name of its own: each store in a process is its own database.
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		dsn = "file:mem-" + hex.EncodeToString(b) + "?mode=memory&cache=shared"
	} else {
		dsn = "file:" + (&url.URL{Path: filepath.Join(dir, dbFile)}).EscapedPath() + "?_txlock=immediate"
	}
	// WAL lets readers go on while one writes; a writer waits for another
	// up to busy_timeout instead of failing at once.
	// secure_delete: a row deleted (an erasure, a pruned entry) is
	// overwritten in the file, not only unlinked.
	dsn += "&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=secure_delete(1)"
	if dir != "" {
		dsn += "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open database: %w", err)
	}
	if dir == "" {
		// A memory database lives as long as a connection to it does.
		db.SetMaxIdleConns(1)
		db.SetConnMaxIdleTime(0)
		db.SetConnMaxLifetime(0)
	}
	s := &SQLite{db: db, dir: dir, limit: limit}
	if err := s.migrate(context.Background()); err != nil {
		_ = db.Close()
		return nil, err
	}
	if dir != "" {
		if _, err := s.importLocal(context.Background(), dir); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return s, nil
}

// migrate runs the migrations the database has not had.
func (s *SQLite) migrate(ctx context.Context) error {
	var version int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("store: read the schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("store: the database's schema is version %d, newer than this Tandem knows (%d): run a newer Tandem", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("store: migrate the schema to version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: migrate the schema to version %d: %w", v+1, err)
		}
	}
	return nil
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// isConstraint reports whether err is a uniqueness or key violation.
func isConstraint(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
	}
	return false
}

func (s *SQLite) CreatePerson(ctx context.Context, p Person) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO people (id, name, role, disabled, can_invite, created) VALUES (?, ?, ?, ?, ?, ?)",
		p.ID, p.Name, p.Role, p.Disabled, p.CanInvite, micros(p.Created))
	if isConstraint(err) {
		return ErrExists
	}
	return err
}

const personCols = "id, name, role, disabled, can_invite, created"

func scanPerson(row interface{ Scan(...any) error }) (Person, error) {
	var p Person
	var created int64
	if err := row.Scan(&p.ID, &p.Name, &p.Role, &p.Disabled, &p.CanInvite, &created); err != nil {
		return Person{}, err
	}
	p.Created = fromMicros(created)
	return p, nil
}

func (s *SQLite) Person(ctx context.Context, id string) (Person, error) {
	p, err := scanPerson(s.db.QueryRowContext(ctx, "SELECT "+personCols+" FROM people WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Person{}, ErrNotFound
	}
	return p, err
}

func (s *SQLite) People(ctx context.Context) ([]Person, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+personCols+" FROM people ORDER BY created, id")
	if err != nil {
		return nil, err
	}
	return collect(rows, scanPerson)
}

// collect reads every row with scan.
func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *SQLite) UpdatePerson(ctx context.Context, p Person) error {
	res, err := s.db.ExecContext(ctx, "UPDATE people SET name = ?, role = ?, disabled = ?, can_invite = ? WHERE id = ?",
		p.Name, p.Role, p.Disabled, p.CanInvite, p.ID)
	return affected(res, err)
}

// affected turns an update or delete that changed no row into ErrNotFound.
func affected(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return ErrNotFound
	}
	return nil
}

func (s *SQLite) CreateInvite(ctx context.Context, inv Invite) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO invites (hash, by_user, for_name, role, uses, used, expires, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		inv.Hash, inv.By, inv.For, inv.Role, inv.Uses, inv.Used, micros(inv.Expires), micros(inv.Created))
	if isConstraint(err) {
		return ErrExists
	}
	return err
}

const inviteCols = "hash, by_user, for_name, role, uses, used, expires, created"

func scanInvite(row interface{ Scan(...any) error }) (Invite, error) {
	var inv Invite
	var expires, created int64
	if err := row.Scan(&inv.Hash, &inv.By, &inv.For, &inv.Role, &inv.Uses, &inv.Used, &expires, &created); err != nil {
		return Invite{}, err
	}
	inv.Expires, inv.Created = fromMicros(expires), fromMicros(created)
	return inv, nil
}

func (s *SQLite) Invite(ctx context.Context, hash string) (Invite, error) {
	inv, err := scanInvite(s.db.QueryRowContext(ctx, "SELECT "+inviteCols+" FROM invites WHERE hash = ?", hash))
	if errors.Is(err, sql.ErrNoRows) {
		return Invite{}, ErrNotFound
	}
	return inv, err
}

func (s *SQLite) RedeemInvite(ctx context.Context, hash string, now time.Time) (Invite, error) {
	// One statement takes the use only while one is left and the invite
	// holds: two redeeming the last use cannot both have it.
	res, err := s.db.ExecContext(ctx, "UPDATE invites SET used = used + 1 WHERE hash = ? AND used < uses AND expires > ?", hash, micros(now))
	if err != nil {
		return Invite{}, err
	}
	inv, ierr := s.Invite(ctx, hash)
	if ierr != nil {
		return Invite{}, ierr
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return inv, nil
	}
	if !inv.Expires.After(now) {
		return Invite{}, ErrExpired
	}
	return Invite{}, ErrUsedUp
}

func (s *SQLite) Invites(ctx context.Context, now time.Time) ([]Invite, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+inviteCols+" FROM invites WHERE expires > ? ORDER BY created DESC", micros(now))
	if err != nil {
		return nil, err
	}
	return collect(rows, scanInvite)
}

func (s *SQLite) RevokeInvite(ctx context.Context, hash string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM invites WHERE hash = ?", hash)
	return affected(res, err)
}

func (s *SQLite) AddDevice(ctx context.Context, d Device) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO devices (user, id, name, credential_hash, created, last_used) VALUES (?, ?, ?, ?, ?, ?)",
		d.User, d.ID, d.Name, d.CredentialHash, micros(d.Created), micros(d.LastUsed))
	if isConstraint(err) {
		return ErrExists
	}
	return err
}

const deviceCols = "user, id, name, credential_hash, created, last_used"

func scanDevice(row interface{ Scan(...any) error }) (Device, error) {
	var d Device
	var created, used int64
	if err := row.Scan(&d.User, &d.ID, &d.Name, &d.CredentialHash, &created, &used); err != nil {
		return Device{}, err
	}
	d.Created, d.LastUsed = fromMicros(created), fromMicros(used)
	return d, nil
}

func (s *SQLite) DeviceByCredential(ctx context.Context, hash string) (Device, error) {
	d, err := scanDevice(s.db.QueryRowContext(ctx, "SELECT "+deviceCols+" FROM devices WHERE credential_hash = ?", hash))
	if errors.Is(err, sql.ErrNoRows) {
		return Device{}, ErrNotFound
	}
	return d, err
}

func (s *SQLite) TouchDevice(ctx context.Context, user, id string, t time.Time) error {
	res, err := s.db.ExecContext(ctx, "UPDATE devices SET last_used = max(last_used, ?) WHERE user = ? AND id = ?", micros(t), user, id)
	return affected(res, err)
}

func (s *SQLite) Devices(ctx context.Context, user string) ([]Device, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+deviceCols+" FROM devices WHERE user = ? ORDER BY created, id", user)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanDevice)
}

func (s *SQLite) SetPush(ctx context.Context, user, device string, sub []byte) error {
	res, err := s.db.ExecContext(ctx, "UPDATE devices SET push = ? WHERE user = ? AND id = ?", sub, user, device)
	return affected(res, err)
}

func (s *SQLite) Pushes(ctx context.Context, user string) (map[string][]byte, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, push FROM devices WHERE user = ? AND push IS NOT NULL", user)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]byte{}
	for rows.Next() {
		var id string
		var sub []byte
		if err := rows.Scan(&id, &sub); err != nil {
			return nil, err
		}
		out[id] = sub
	}
	return out, rows.Err()
}

func (s *SQLite) RemoveDevice(ctx context.Context, user, id string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM devices WHERE user = ? AND id = ?", user, id)
	return affected(res, err)
}

func (s *SQLite) AddPasskey(ctx context.Context, k Passkey) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO passkeys (id, user, data, created, last_used) VALUES (?, ?, ?, ?, ?)",
		k.ID, k.User, k.Data, micros(k.Created), micros(k.LastUsed))
	if isConstraint(err) {
		return ErrExists
	}
	return err
}

const passkeyCols = "id, user, data, created, last_used"

func scanPasskey(row interface{ Scan(...any) error }) (Passkey, error) {
	var k Passkey
	var created, used int64
	if err := row.Scan(&k.ID, &k.User, &k.Data, &created, &used); err != nil {
		return Passkey{}, err
	}
	k.Created, k.LastUsed = fromMicros(created), fromMicros(used)
	return k, nil
}

func (s *SQLite) Passkey(ctx context.Context, id []byte) (Passkey, error) {
	k, err := scanPasskey(s.db.QueryRowContext(ctx, "SELECT "+passkeyCols+" FROM passkeys WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Passkey{}, ErrNotFound
	}
	return k, err
}

func (s *SQLite) Passkeys(ctx context.Context, user string) ([]Passkey, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+passkeyCols+" FROM passkeys WHERE user = ? ORDER BY created", user)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanPasskey)
}

func (s *SQLite) UpdatePasskey(ctx context.Context, id []byte, data []byte, t time.Time) error {
	res, err := s.db.ExecContext(ctx, "UPDATE passkeys SET data = ?, last_used = max(last_used, ?) WHERE id = ?", data, micros(t), id)
	return affected(res, err)
}

func (s *SQLite) CreatePairing(ctx context.Context, p Pairing) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM pairings WHERE expires <= ?", micros(time.Now()))
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, "INSERT INTO pairings (id, secret_hash, expires, user, device_name) VALUES (?, ?, ?, ?, ?)",
		p.ID, p.SecretHash, micros(p.Expires), p.User, p.DeviceName)
	if isConstraint(err) {
		return ErrExists
	}
	return err
}

func (s *SQLite) Pairing(ctx context.Context, id string, now time.Time) (Pairing, error) {
	var p Pairing
	var expires int64
	err := s.db.QueryRowContext(ctx, "SELECT id, secret_hash, expires, user, device_name FROM pairings WHERE id = ? AND expires > ?", id, micros(now)).
		Scan(&p.ID, &p.SecretHash, &expires, &p.User, &p.DeviceName)
	if errors.Is(err, sql.ErrNoRows) {
		return Pairing{}, ErrNotFound
	}
	p.Expires = fromMicros(expires)
	return p, err
}

func (s *SQLite) ApprovePairing(ctx context.Context, id, user, deviceName string, now time.Time) error {
	res, err := s.db.ExecContext(ctx, "UPDATE pairings SET user = ?, device_name = ? WHERE id = ? AND expires > ? AND user = ''",
		user, deviceName, id, micros(now))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := s.Pairing(ctx, id, now); err != nil {
		return err
	}
	return ErrUsedUp
}

func (s *SQLite) FinishPairing(ctx context.Context, id string, now time.Time) (Pairing, error) {
	p, err := s.Pairing(ctx, id, now)
	if err != nil {
		return Pairing{}, err
	}
	if !p.Approved() {
		return Pairing{}, ErrNotFound
	}
	res, err := s.db.ExecContext(ctx, "DELETE FROM pairings WHERE id = ? AND user != ''", id)
	if err = affected(res, err); err != nil {
		return Pairing{}, err // another finished it first
	}
	return p, nil
}

func (s *SQLite) AddContact(ctx context.Context, a, b string, t time.Time) error {
	if a == b {
		return nil
	}
	_, err := s.db.ExecContext(ctx, "INSERT OR IGNORE INTO contacts (user, contact, since) VALUES (?, ?, ?), (?, ?, ?)",
		a, b, micros(t), b, a, micros(t))
	return err
}

func (s *SQLite) Contacts(ctx context.Context, user string) ([]Contact, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT contact, since FROM contacts WHERE user = ? ORDER BY since, contact", user)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanContact)
}

// scanContact reads a row of a user and since (µs) as a contact.
func scanContact(row interface{ Scan(...any) error }) (Contact, error) {
	var c Contact
	var since int64
	err := row.Scan(&c.User, &since)
	c.Since = fromMicros(since)
	return c, err
}

func (s *SQLite) RemoveContact(ctx context.Context, a, b string) error {
	_, err := s.db.ExecContext(ctx, "DELETE FROM contacts WHERE (user = ? AND contact = ?) OR (user = ? AND contact = ?)", a, b, b, a)
	return err
}

func (s *SQLite) EraseAccount(ctx context.Context, user string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range []string{
		"DELETE FROM people WHERE id = ?1",
		"DELETE FROM devices WHERE user = ?1",
		"DELETE FROM passkeys WHERE user = ?1",
		"DELETE FROM contacts WHERE user = ?1 OR contact = ?1",
		"DELETE FROM contact_requests WHERE from_user = ?1 OR to_user = ?1",
		"DELETE FROM oidc_subjects WHERE user = ?1",
		"DELETE FROM avatars WHERE user = ?1",
		"DELETE FROM invites WHERE by_user = ?1",
		"DELETE FROM pairings WHERE user = ?1",
	} {
		if _, err := tx.ExecContext(ctx, q, user); err != nil {
			return fmt.Errorf("store: erase account: %s: %w", strings.Fields(q)[2], err)
		}
	}
	return tx.Commit()
}

func (s *SQLite) PutCeremony(ctx context.Context, id string, data []byte, expires time.Time) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM ceremonies WHERE expires <= ?", micros(time.Now())); err != nil {
		return err
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO ceremonies (id, data, expires) VALUES (?, ?, ?)", id, data, micros(expires))
	if isConstraint(err) {
		return ErrExists
	}
	return err
}

func (s *SQLite) TakeCeremony(ctx context.Context, id string, now time.Time) ([]byte, error) {
	var data []byte
	err := s.db.QueryRowContext(ctx, "DELETE FROM ceremonies WHERE id = ? AND expires > ? RETURNING data", id, micros(now)).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return data, err
}

func (s *SQLite) RequestContact(ctx context.Context, from, to string, t time.Time) error {
	_, err := s.db.ExecContext(ctx, "INSERT OR IGNORE INTO contact_requests (from_user, to_user, since) VALUES (?, ?, ?)", from, to, micros(t))
	return err
}

func (s *SQLite) ContactRequests(ctx context.Context, user string) ([]Contact, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT from_user, since FROM contact_requests WHERE to_user = ? ORDER BY since, from_user", user)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanContact)
}

func (s *SQLite) RemoveContactRequest(ctx context.Context, from, to string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM contact_requests WHERE from_user = ? AND to_user = ?", from, to)
	return affected(res, err)
}

func (s *SQLite) LinkSubject(ctx context.Context, issuer, subject, user string) error {
	_, err := s.db.ExecContext(ctx, "INSERT INTO oidc_subjects (issuer, subject, user) VALUES (?, ?, ?)", issuer, subject, user)
	if isConstraint(err) {
		return ErrExists
	}
	return err
}

func (s *SQLite) SubjectUser(ctx context.Context, issuer, subject string) (string, error) {
	var user string
	err := s.db.QueryRowContext(ctx, "SELECT user FROM oidc_subjects WHERE issuer = ? AND subject = ?", issuer, subject).Scan(&user)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return user, err
}

func (s *SQLite) SetAvatar(ctx context.Context, user string, png []byte) error {
	if _, err := s.Person(ctx, user); err != nil {
		return err
	}
	if png == nil {
		_, err := s.db.ExecContext(ctx, "DELETE FROM avatars WHERE user = ?", user)
		return err
	}
	_, err := s.db.ExecContext(ctx, "INSERT INTO avatars (user, png) VALUES (?, ?) ON CONFLICT (user) DO UPDATE SET png = excluded.png", user, png)
	return err
}

func (s *SQLite) Avatar(ctx context.Context, user string) ([]byte, error) {
	var png []byte
	err := s.db.QueryRowContext(ctx, "SELECT png FROM avatars WHERE user = ?", user).Scan(&png)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return png, err
}

func (s *SQLite) HasAvatar(ctx context.Context, user string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM avatars WHERE user = ?", user).Scan(&n)
	return n > 0, err
}
