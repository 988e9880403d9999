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
	s.closeTURNRelays(r.User, r.Before)
}

// closeTURNRelays ends user's TURN relays opened with credentials minted
// until mark: the user's devices signed in again since keep theirs.
func (s *Server) closeTURNRelays(user string, mark time.Time) {
	ttl := s.turnMarks.ttl
	s.turn.CloseUser(user, func(expiry time.Time) bool { return credentialRevoked(expiry, mark, ttl) })
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
	// turnMarkWait is how long a TURN request waits for its user's mark
	// to be read: a TURN socket's read loop asks, and it carries every
	// client's media on that socket, so a slow store must not stall it.
	// The read goes on without it, bounded by turnMarkLookup.
	turnMarkWait   = 20 * time.Millisecond
	turnMarkLookup = 2 * time.Second
	// maxTURNMarks bounds the users remembered, maxTURNMarkReads the
	// reads under way at once.
	maxTURNMarks     = 1 << 16
	maxTURNMarkReads = 16
)

// turnMarks tells the TURN server whether a user's credential was
// revoked, without a store round trip per request: revocations heard here
// or from another node are known at once, and a user not heard of is read
// from the store at most once per turnMarkFresh, in the background; a
// request waits turnMarkWait for it at most, and goes by what is known
// if the store is slower. A mark read that is newer than what was known
// (a revocation this node did not hear of) is passed to closeRevoked,
// which ends the relays it covers. A store that cannot be read leaves what
// was known: calls keep their relays while Redis is away.
type turnMarks struct {
	ttl    time.Duration // the credentials' lifetime, turn.credential_ttl
	lookup func(ctx context.Context, user string) (time.Time, error)
	log    *slog.Logger
	now    func() time.Time
	wait   time.Duration
	// closeRevoked, if set, is told of a mark learned from the store.
	closeRevoked func(user string, mark time.Time)

	mu      sync.Mutex
	marks   map[string]turnMark
	reading map[string]chan struct{} // users whose mark is being read; closed when read
	wg      sync.WaitGroup
}

type turnMark struct {
	mark  time.Time // the user's revocation mark; zero: none
	fresh time.Time // until then, mark needs no new read
}

func newTURNMarks(ttl time.Duration, lookup func(context.Context, string) (time.Time, error), log *slog.Logger) *turnMarks {
	return &turnMarks{ttl: ttl, lookup: lookup, log: log, now: time.Now, wait: turnMarkWait,
		marks: map[string]turnMark{}, reading: map[string]chan struct{}{}}
}

// revoked is turn.Config.Revoked.
func (t *turnMarks) revoked(user string, expiry time.Time) bool {
	now := t.now()
	t.mu.Lock()
	e, ok := t.marks[user]
	var read chan struct{}
	if !ok || now.After(e.fresh) {
		read = t.readLocked(user)
	}
	t.mu.Unlock()
	if read != nil {
		wait := time.NewTimer(t.wait)
		select {
		case <-read:
			t.mu.Lock()
			e = t.marks[user]
			t.mu.Unlock()
		case <-wait.C:
		}
		wait.Stop()
	}
	return credentialRevoked(expiry, e.mark, t.ttl)
}

// readLocked starts reading user's mark, unless a read is under way (it
// returns that one's channel) or too many are (nil). The caller holds
// t.mu.
func (t *turnMarks) readLocked(user string) chan struct{} {
	if ch, ok := t.reading[user]; ok {
		return ch
	}
	if len(t.reading) >= maxTURNMarkReads {
		return nil
	}
	ch := make(chan struct{})
	t.reading[user] = ch
	t.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), turnMarkLookup)
		mark, err := t.lookup(ctx, user)
		cancel()
		if err != nil {
			t.log.Debug("turn: revocation mark not read; using what is known", "user", user, "err", err)
		}
		t.mu.Lock()
		known := t.marks[user].mark
		t.mu.Unlock()
		t.put(user, mark, t.now().Add(turnMarkFresh))
		t.mu.Lock()
		delete(t.reading, user)
		t.mu.Unlock()
		close(ch)
		if mark.After(known) && t.closeRevoked != nil {
			t.closeRevoked(user, mark)
		}
	})
	return ch
}

// close waits for the reads under way.
func (t *turnMarks) close() { t.wg.Wait() }

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
