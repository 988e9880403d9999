// Package store holds Tandem's state behind small interfaces. Local keeps it
// in memory and, when given a directory, in append-only files there so that
// what must survive a restart (call history, known users) does. Every call
// takes a context.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// Call directions in history entries.
const (
	Outgoing = "outgoing"
	Incoming = "incoming"
)

// CallEntry is one call in one user's history.
type CallEntry struct {
	CallID     string     `json:"call_id"`
	Peer       string     `json:"peer"`
	Direction  string     `json:"direction"`
	Video      bool       `json:"video"`
	StartedAt  time.Time  `json:"started_at"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
	EndedAt    time.Time  `json:"ended_at"`
	DurationMS int64      `json:"duration_ms"`
	Reason     string     `json:"reason"`
	Missed     bool       `json:"missed"`
	// Participants are the other users who took part in a group call.
	Participants []string `json:"participants,omitempty"`
	// Quality summarises how the call went over the network, from RTCP;
	// absent for calls that never carried media.
	Quality *CallQuality `json:"quality,omitempty"`
	// Count is how many unanswered calls with the same person the entry
	// stands for, when more than one (see CallGrouping); its other fields
	// are the newest call's.
	Count int `json:"count,omitempty"`
	// FirstStartedAt is when the first of those calls started.
	FirstStartedAt *time.Time `json:"first_started_at,omitempty"`
}

// Quality levels.
const (
	QualityGood = "good"
	QualityPoor = "poor"
	QualityBad  = "bad"
)

// CallQuality is a call's network quality: each leg's (one device's
// connection to the server) figures over the call, and the worst leg's
// level.
type CallQuality struct {
	Level string       `json:"level"`
	Legs  []LegQuality `json:"legs"`
}

// LegQuality is one device's connection over a call, from the RTCP
// reports both ways: means over the time it was measured.
type LegQuality struct {
	User   string `json:"user"`
	Device string `json:"device"`
	Level  string `json:"level"` // good, poor or bad
	// RTTMs is the round trip between the server and the device.
	RTTMs float64 `json:"rtt_ms"`
	// LossPct is the share of packets lost, the worse of the two ways.
	LossPct float64 `json:"loss_pct"`
	// JitterMs is the interarrival jitter, the worse of the two ways.
	JitterMs float64 `json:"jitter_ms"`
	// SendKbps is what the device sent the server, RecvKbps what it got.
	SendKbps float64 `json:"send_kbps"`
	RecvKbps float64 `json:"recv_kbps"`
	// Seconds is how long the leg was measured.
	Seconds float64 `json:"seconds"`
}

// History keeps each user's calls.
type History interface {
	// AppendCall records a finished call in user's history.
	AppendCall(ctx context.Context, user string, e CallEntry) error
	// Calls lists user's calls, newest first, at most limit.
	Calls(ctx context.Context, user string, limit int) ([]CallEntry, error)
}

// CallGrouping keeps a person's repeated unanswered calls with someone as
// one history entry ("alice, 5 missed calls"), so that redialling, or a
// flood of invites, adds to a count rather than pushing real calls out of
// the history.
type CallGrouping interface {
	// GroupCall records e in user's history as AppendCall does, except
	// when e is an unanswered one-to-one call and the newest entry with
	// the same peer among user's newest GroupScan is one too, in the same
	// direction and with the same missed flag, that ended no earlier than
	// within before e started: then that entry goes and e takes its place
	// as the newest, counting both (Count) and keeping when the first
	// started (FirstStartedAt). Calls with others in between do not part
	// a group; a call with the peer of another kind (answered, the other
	// way) does. A within of 0 groups nothing.
	GroupCall(ctx context.Context, user string, e CallEntry, within time.Duration) error
}

// GroupScan is how many of a user's newest history entries GroupCall
// looks through for one to group with.
const GroupScan = 20

// Assistance audit events (AssistEntry.Event).
const (
	AssistStart   = "start"   // assistance began
	AssistRequest = "request" // the helper asked for grants
	AssistGrant   = "grant"   // the helped device granted these
	AssistRevoke  = "revoke"  // these grants were taken back
	AssistDenied  = "denied"  // a request went unanswered in time
	AssistEnd     = "end"     // assistance ended
	// AssistClipboard: clipboard text went across, Reason "from_helper"
	// or "from_helped" (what was copied is not kept).
	AssistClipboard = "clipboard"
)

// AssistEntry is one event of a remote assistance, kept for both the
// helped user and the helper, so that the person helped can see who was
// allowed to do what, and when.
type AssistEntry struct {
	At     time.Time `json:"at"`
	CallID string    `json:"call_id"`
	Helper string    `json:"helper"`
	Helped string    `json:"helped"`
	// Device is the helped user's device the event concerns.
	Device string   `json:"device,omitempty"`
	Event  string   `json:"event"`
	Grants []string `json:"grants,omitempty"`
	// Reason says why, for revokes and ends: "revoked", "control_idle",
	// "ended", "call_ended", "device_changed".
	Reason string `json:"reason,omitempty"`
}

// AssistLog keeps each user's assistance audit log.
type AssistLog interface {
	// AppendAssist records an event in user's log.
	AppendAssist(ctx context.Context, user string, e AssistEntry) error
	// AssistEntries lists user's events, newest first, at most limit.
	AssistEntries(ctx context.Context, user string, limit int) ([]AssistEntry, error)
}

// Users remembers which users have ever signed in, so that a call to a
// user who never has can be told apart from one to a user who is offline.
type Users interface {
	TouchUser(ctx context.Context, user string) error
	KnownUser(ctx context.Context, user string) (bool, error)
}

// Owner lets a user's data be erased, old entries expire, and a user's
// tokens be revoked.
type Owner interface {
	// EraseUser removes everything kept about user: their call history,
	// their assistance audit log, the record that they ever signed in, and
	// it revokes their tokens issued up to now (RevokeTokens(ctx, user, time.Now())).
	// Other users' own history entries that name user stay: they are those users' data.
	EraseUser(ctx context.Context, user string) error
	// PruneCalls removes every user's call history entries that ended before t,
	// and reports how many it removed.
	PruneCalls(ctx context.Context, before time.Time) (int, error)
	// PruneAssist removes every user's assistance audit entries from before t.
	PruneAssist(ctx context.Context, before time.Time) (int, error)
	// RevokeTokens makes user's tokens issued at or before t unusable
	// (a later call with an earlier t does not move the mark back).
	RevokeTokens(ctx context.Context, user string, t time.Time) error
	// TokensRevoked returns the mark RevokeTokens set for user (zero if none).
	TokensRevoked(ctx context.Context, user string) (time.Time, error)
}

// Revocations takes back fewer than all of a user's tokens: those of one
// device, or one token by its id (jti), as for a stream key.
type Revocations interface {
	// RevokeDevice makes user's tokens for device issued at or before t
	// unusable (a later call with an earlier t does not move the mark
	// back). A zero t revokes nothing.
	RevokeDevice(ctx context.Context, user, device string, t time.Time) error
	// RevokeTokenID makes the tokens with id unusable. The entry is kept
	// until until, when every token with that id has expired anyway, and
	// then forgotten; a later call can only keep it longer.
	RevokeTokenID(ctx context.Context, id string, until time.Time) error
	// Revoked returns the marks that apply to a token of user for device
	// with id (which may be empty): one read, for every token checked.
	Revoked(ctx context.Context, user, device, id string) (Marks, error)
}

// Marks are the revocations that apply to one token.
type Marks struct {
	// User and Device revoke the tokens issued at or before them: all of
	// the user's, or those of the device (zero: none).
	User, Device time.Time
	// ID says the token's id was revoked.
	ID bool
}

// revocationID is how the revocation marks name a user: a digest, so that
// the mark, which outlives EraseUser, does not keep the user's id in clear.
func revocationID(user string) string {
	sum := sha256.Sum256([]byte("tandem revoked tokens\x00" + user))
	return hex.EncodeToString(sum[:])
}

// deviceRevocationID names a device's revocation mark, beside its user's
// (revocationID) in the same table.
func deviceRevocationID(user, device string) string {
	sum := sha256.Sum256([]byte("tandem revoked device\x00" + user + "\x00" + device))
	return hex.EncodeToString(sum[:])
}

// tokenRevocationID names a revoked token id.
func tokenRevocationID(id string) string {
	sum := sha256.Sum256([]byte("tandem revoked token id\x00" + id))
	return hex.EncodeToString(sum[:])
}

// markMicros is a revocation mark as kept: Unix microseconds, rounded up so
// that a token issued at exactly t is still covered.
func markMicros(t time.Time) int64 {
	us := t.UnixMicro()
	if time.UnixMicro(us).Before(t) {
		us++
	}
	return us
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("store: closed")
