// Package store holds Tandem's state behind small interfaces. Local keeps it
// in memory and, when given a directory, in append-only files there so that
// what must survive a restart (call history, known users) does. Every call
// takes a context.
package store

import (
	"context"
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
}

// History keeps each user's calls.
type History interface {
	// AppendCall records a finished call in user's history.
	AppendCall(ctx context.Context, user string, e CallEntry) error
	// Calls lists user's calls, newest first, at most limit.
	Calls(ctx context.Context, user string, limit int) ([]CallEntry, error)
}

// Assistance audit events (AssistEntry.Event).
const (
	AssistStart   = "start"   // assistance began
	AssistRequest = "request" // the helper asked for grants
	AssistGrant   = "grant"   // the helped device granted these
	AssistRevoke  = "revoke"  // these grants were taken back
	AssistDenied  = "denied"  // a request went unanswered in time
	AssistEnd     = "end"     // assistance ended
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

// ErrClosed is returned after Close.
var ErrClosed = errors.New("store: closed")
