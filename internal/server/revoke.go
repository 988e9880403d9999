package server

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/tandemcall/tandem/internal/auth"
)

// revoked is told of every revocation and erasure (signaling's OnRevoke),
// made on this node or another, after signaling closed its sessions: it
// ends the WHIP and WHEP sessions of the revoked tokens and, for a user's
// tokens, their TURN allocations. TURN credentials name only the user, so
// a device's or a token id's revocation does not reach TURN.
func (s *Server) revoked(r auth.Revocation) {
	for _, res := range s.whip.revoke(r) {
		s.log.Info("whip session ended: its token was revoked", "kind", res.kind, "room", res.room, "session", res.id, "user", res.user)
		s.whipEnded(res)
	}
	if r.ID != "" || r.Device != "" || s.turn == nil {
		return
	}
	s.turnMarks.heard(r.User, r.Before)
	s.turn.CloseUser(r.User)
}

// sweepRevoked checks, every interval until ctx ends, the tokens of the
// node's signaling, WHIP and WHEP sessions against the revocation marks
// in the shared store, and ends what a revoked one opened (signaling's
// SweepRevoked). A revocation reaches every node by broadcast at once;
// this ends, within one interval, the sessions on a node that missed the
// broadcast.
func (s *Server) sweepRevoked(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.hub.SweepRevoked(s.whip.identities()); err != nil {
			s.log.Warn("revocation sweep not completed; trying again at the next", "err", err)
		}
	}
}

const (
	// turnMarkFresh is how long a user's mark read from the store is used
	// without reading it again.
	turnMarkFresh = 5 * time.Second
	// turnMarkLookup bounds a read of the store on the TURN request path.
	turnMarkLookup = 250 * time.Millisecond
	// maxTURNMarks bounds the users remembered.
	maxTURNMarks = 1 << 16
)

// turnMarks tells the TURN server whether a user's credential was
// revoked, without a store round trip per request: revocations heard here
// or from another node are known at once, and a user not heard of is read
// from the store at most once per turnMarkFresh. A store that cannot be
// read leaves what was known: calls keep their relays while Redis is away.
type turnMarks struct {
	ttl    time.Duration // the credentials' lifetime, turn.credential_ttl
	lookup func(ctx context.Context, user string) (time.Time, error)
	log    *slog.Logger
	now    func() time.Time

	mu    sync.Mutex
	marks map[string]turnMark
}

type turnMark struct {
	mark  time.Time // the user's revocation mark; zero: none
	fresh time.Time // until then, mark needs no new read
}

func newTURNMarks(ttl time.Duration, lookup func(context.Context, string) (time.Time, error), log *slog.Logger) *turnMarks {
	return &turnMarks{ttl: ttl, lookup: lookup, log: log, now: time.Now, marks: map[string]turnMark{}}
}

// revoked is turn.Config.Revoked.
func (t *turnMarks) revoked(user string, expiry time.Time) bool {
	now := t.now()
	t.mu.Lock()
	e, ok := t.marks[user]
	t.mu.Unlock()
	if !ok || now.After(e.fresh) {
		ctx, cancel := context.WithTimeout(context.Background(), turnMarkLookup)
		mark, err := t.lookup(ctx, user)
		cancel()
		if err != nil {
			t.log.Debug("turn: revocation mark not read; using what is known", "user", user, "err", err)
		}
		e = t.put(user, mark, now.Add(turnMarkFresh))
	}
	return credentialRevoked(expiry, e.mark, t.ttl)
}

// heard records a revocation of user's tokens up to mark, made here or
// told by another node: it stands without a read for as long as a
// credential minted before it may be used.
func (t *turnMarks) heard(user string, mark time.Time) {
	t.put(user, mark, mark.Add(t.ttl+2*time.Second))
}

// put moves user's mark and freshness forward (never back) and returns
// the entry.
func (t *turnMarks) put(user string, mark, fresh time.Time) turnMark {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.marks[user]
	if !ok && len(t.marks) >= maxTURNMarks {
		now := t.now()
		for u, m := range t.marks {
			if now.After(m.fresh) {
				delete(t.marks, u)
			}
		}
		if len(t.marks) >= maxTURNMarks {
			clear(t.marks) // all are in the store; they are read again
		}
	}
	if mark.After(e.mark) {
		e.mark = mark
	}
	if fresh.After(e.fresh) {
		e.fresh = fresh
	}
	t.marks[user] = e
	return e
}

// credentialRevoked reports whether a credential that expires at expiry,
// of a lifetime of ttl, may have been minted in or before the second of
// mark: signaling refuses tokens of that second too, so it hands out no
// credential then. A credential minted exactly on the next second's
// boundary is refused as well; its device gets fresh ones.
func credentialRevoked(expiry, mark time.Time, ttl time.Duration) bool {
	if mark.IsZero() {
		return false
	}
	return expiry.Unix() <= mark.Unix()+1+int64(math.Ceil(ttl.Seconds()))
}
