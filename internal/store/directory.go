package store

import (
	"context"
	"time"
)

// The call directory: how the nodes of a deployment find each other's
// calls (DESIGN.md, "Multi-node"). A call lives on one node, its home; the
// directory says which node is home to the call a user is in and to a
// named room, keeps a snapshot of every call from which another node can
// rebuild it, lists each node's calls for when it dies, and decides which
// node takes over a dead node's call.
//
// Entries expire (DirectoryTTL) unless written again, so a deployment that
// lost every node forgets its calls within a day; a home node rewrites
// what it holds more often than that.

// DirectoryTTL is how long a directory entry lives unless written again.
const DirectoryTTL = 24 * time.Hour

// Home names the node holding a call: a user's, or a named room's. A zero
// Home means none is known. Call is "" for a room being created.
type Home struct {
	Node string
	Call string
}

// CallSnapshot is what another node needs to rebuild a call and resume
// its members.
type CallSnapshot struct {
	ID       string           `json:"id"`
	Home     string           `json:"home"`
	Room     string           `json:"room,omitempty"`
	PTT      bool             `json:"ptt,omitempty"`
	Caller   string           `json:"caller,omitempty"`
	Callee   string           `json:"callee,omitempty"`
	Video    bool             `json:"video,omitempty"`
	Started  time.Time        `json:"started"`
	Answered time.Time        `json:"answered"`
	Members  []MemberSnapshot `json:"members"`
	// Assist is the remote assistance running in the call, if any: the
	// node taking the call over ends it, telling both members and
	// logging the grants it takes back.
	Assist *AssistSnapshot `json:"assist,omitempty"`
}

// AssistSnapshot is the assistance of a snapshotted call.
type AssistSnapshot struct {
	Helper  string   `json:"helper"`
	Helped  string   `json:"helped"`
	Granted []string `json:"granted,omitempty"`
}

// MemberSnapshot is a joined member of a snapshotted call.
type MemberSnapshot struct {
	User    string    `json:"user"`
	Device  string    `json:"device"`
	Joined  time.Time `json:"joined"`
	Inviter string    `json:"inviter,omitempty"`
	// Aside are the member's other devices in the call beside the one
	// holding it: listening along, or taking the call over (a handoff
	// under way). The node taking the call over ends their part, telling
	// them: it cannot know where their media stood.
	Aside []string `json:"aside,omitempty"`
}

// takeable reports whether another node could take the call over: it was
// answered, or it is a room.
func (s CallSnapshot) takeable() bool { return !s.Answered.IsZero() || s.Room != "" }

// HomeChange sets or clears the home of a user's call or of a room. A
// clear (Clear) removes the entry only if it still names Call on the
// writing node: another node may have written it since.
type HomeChange struct {
	Key   string // the user, or the room's name
	Call  string
	Clear bool
}

// CallChanges is what changed in a node's calls since its last write.
type CallChanges struct {
	Users []HomeChange
	Rooms []HomeChange
	// Snapshots are written whole; an answered call or a room is also
	// listed among the node's calls.
	Snapshots []CallSnapshot
	// Ended calls lose their snapshot and leave the node's list.
	Ended []string
}

// Empty reports whether c changes nothing.
func (c CallChanges) Empty() bool {
	return len(c.Users) == 0 && len(c.Rooms) == 0 && len(c.Snapshots) == 0 && len(c.Ended) == 0
}

// CallDirectory is the shared directory of a deployment's calls.
type CallDirectory interface {
	// WriteCalls records what changed in node's calls, all of it in one
	// exchange with the shared state.
	WriteCalls(ctx context.Context, node string, c CallChanges) error
	// UserHomes returns the home of the call each user is in (a zero Home
	// for none), in the order of users.
	UserHomes(ctx context.Context, users ...string) ([]Home, error)
	// RoomHome returns the home of the named room, zero if none.
	RoomHome(ctx context.Context, name string) (Home, error)
	// ClaimRoom makes node the home of a room being created, for ttl,
	// unless another node claimed it first. With replace it claims over
	// an existing entry (whose node is gone) rather than only a missing
	// one. It reports whether the claim won.
	ClaimRoom(ctx context.Context, name, node string, ttl time.Duration, replace bool) (bool, error)
	// CallSnapshot returns a call's snapshot; false if there is none.
	CallSnapshot(ctx context.Context, id string) (CallSnapshot, bool, error)
	// NodeCalls lists the ids of the calls node holds that another node
	// could take over.
	NodeCalls(ctx context.Context, node string) ([]string, error)
	// ClaimCall makes node the one to take call id over, for ttl, unless
	// another node claimed it first; it reports whether the claim won.
	ClaimCall(ctx context.Context, id, node string, ttl time.Duration) (bool, error)
	// ForgetNodeCall takes call id off node's list.
	ForgetNodeCall(ctx context.Context, node, id string) error
}
