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

// Users remembers which users have ever signed in, so that a call to a
// user who never has can be told apart from one to a user who is offline.
type Users interface {
	TouchUser(ctx context.Context, user string) error
	KnownUser(ctx context.Context, user string) (bool, error)
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("store: closed")
