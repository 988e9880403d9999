package store

import (
	"context"
	"time"
)

var (
	_ CallGrouping = (*Local)(nil)
	_ CallGrouping = (*Redis)(nil)
)

// groupable reports whether e may stand for several calls: an unanswered
// one-to-one call with someone.
func groupable(e CallEntry) bool {
	return e.AnsweredAt == nil && len(e.Participants) == 0 && e.Peer != "" &&
		(e.Direction == Incoming || e.Direction == Outgoing)
}

// groupsWith reports whether the new entry e joins old (see GroupCall).
func groupsWith(old, e CallEntry, within time.Duration) bool {
	return groupable(old) && old.Peer == e.Peer && old.Direction == e.Direction && old.Missed == e.Missed &&
		!old.EndedAt.Before(e.StartedAt.Add(-within))
}

// calls is how many calls e stands for.
func (e CallEntry) calls() int { return max(e.Count, 1) }

// merged is e standing for itself and old as well.
func merged(old, e CallEntry) CallEntry {
	e.Count = old.calls() + e.calls()
	first := old.StartedAt
	if old.FirstStartedAt != nil {
		first = *old.FirstStartedAt
	}
	e.FirstStartedAt = &first
	return e
}

// GroupCall implements CallGrouping.
func (l *Local) GroupCall(ctx context.Context, user string, e CallEntry, within time.Duration) error {
	if err := l.lock(ctx); err != nil {
		return err
	}
	defer l.mu.Unlock()
	list := l.calls[user]
	at := -1
	if within > 0 && groupable(e) {
		for i := len(list) - 1; i >= 0 && i >= len(list)-GroupScan; i-- {
			if list[i].Peer != e.Peer {
				continue
			}
			if groupsWith(list[i], e, within) {
				at = i
			}
			break // the newest entry with the peer decides
		}
	}
	if at < 0 {
		l.appendMem(user, e)
		return l.written(&l.callsF, callRecord{User: user, Call: e})
	}
	m := merged(list[at], e)
	l.calls[user] = replaced(list, at, m)
	return l.written(&l.callsF, callRecord{User: user, Call: m, Replaces: list[at].CallID})
}

// replaced returns a new list: list without its entry at, and e last.
// list itself is left as it was: lists are shared (a compaction may be
// writing this one out), never changed in place.
func replaced(list []CallEntry, at int, e CallEntry) []CallEntry {
	out := make([]CallEntry, 0, len(list))
	out = append(out, list[:at]...)
	out = append(out, list[at+1:]...)
	return append(out, e)
}

// replayCall applies one record of the calls file to memory.
func (l *Local) replayCall(r callRecord) {
	if r.Replaces != "" {
		list := l.calls[r.User]
		for i := len(list) - 1; i >= 0; i-- {
			if list[i].CallID == r.Replaces {
				l.calls[r.User] = replaced(list, i, r.Call)
				return
			}
		}
	}
	l.appendMem(r.User, r.Call)
}
