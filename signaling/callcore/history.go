package callcore

import (
	"slices"
	"time"

	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// Facts is what a call's history entries are made of.
type Facts struct {
	ID             string
	Caller, Callee string // who called whom first; "" for a room
	Room           string // the room's name; "" for a call
	Video          bool
	Started        time.Time
	Answered       time.Time // zero: never answered
	Members        []MemberFacts
}

// MemberFacts is one member's part in a call.
type MemberFacts struct {
	User    string
	Inviter string    // who rang them in; "" for the caller
	Joined  time.Time // zero: never joined
	Left    time.Time // zero: there until the end
	Reason  string    // why they left or stopped ringing, if before the end
}

// History is every member's entry in their call history for a call that
// ended now for reason. Rooms keep no history.
//
// Each entry is from its member's side: the peer is whom they called or
// who rang them in; it ends when they left; a call that rang them and that
// they never answered is missed if nobody answered it (no answer) or the
// caller gave up (cancelled), not if they declined or were busy. In a
// group, each entry names everyone else who ever joined.
func History(f Facts, reason string, now time.Time) map[string]store.CallEntry {
	if f.Room != "" {
		return nil
	}
	var everJoined []string
	for _, m := range f.Members {
		if !m.Joined.IsZero() {
			everJoined = append(everJoined, m.User)
		}
	}
	slices.Sort(everJoined)
	out := make(map[string]store.CallEntry, len(f.Members))
	for _, m := range f.Members {
		e := store.CallEntry{CallID: f.ID, Video: f.Video, StartedAt: f.Started, EndedAt: now, Reason: reason}
		if m.Reason != "" {
			e.Reason = m.Reason
		}
		if !m.Left.IsZero() {
			e.EndedAt = m.Left
		}
		answered := m.Joined
		if m.User == f.Caller {
			e.Peer, e.Direction, answered = f.Callee, store.Outgoing, f.Answered
		} else {
			e.Peer, e.Direction = f.Caller, store.Incoming
			if m.Inviter != "" {
				e.Peer = m.Inviter
			}
			e.Missed = answered.IsZero() && (e.Reason == protocol.ReasonNoAnswer || e.Reason == protocol.ReasonCancelled)
		}
		if !answered.IsZero() {
			a := answered
			e.AnsweredAt = &a
			e.DurationMS = e.EndedAt.Sub(a).Milliseconds()
		}
		if len(f.Members) > 2 {
			for _, o := range everJoined {
				if o != m.User {
					e.Participants = append(e.Participants, o)
				}
			}
		}
		out[m.User] = e
	}
	return out
}
