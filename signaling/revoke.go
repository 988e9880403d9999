package signaling

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tandemcall/tandem/internal/adminapi"
	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/cluster"
	"github.com/tandemcall/tandem/signaling/callcore"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// Tokens can be taken back: all of a user's (as their erasure does, or an
// operator without erasing anything), one device's, or one token by its
// id. Every endpoint that takes a token checks it through Verify, and a
// revocation ends the sessions its tokens opened, here and, through the
// cluster, on every node: signaling sessions here, and what the hook set
// with OnRevoke ends (WHIP and WHEP sessions, TURN allocations).

// ErrRevoked is a valid token that was revoked; the error wrapping it
// says how, in words a client can show.
var ErrRevoked = errors.New("the access token was revoked")

// Verify checks a token's signature and claims, then its revocation marks:
// its user's (their erasure, or an operator's revocation), its device's
// and its id's. The error wraps auth.ErrExpired, auth.ErrInvalid,
// ErrRevoked, or the store's error when the marks cannot be read.
func (h *Hub) Verify(tok string) (auth.Identity, error) {
	id, err := h.verifier.Verify(tok)
	if err != nil {
		return id, err
	}
	if err := h.CheckRevocation(id); err != nil {
		return auth.Identity{}, err
	}
	return id, nil
}

// CheckRevocation reads the revocation marks of the token that gave id:
// nil if none covers it, an error wrapping ErrRevoked if one does, or the
// store's error.
func (h *Hub) CheckRevocation(id auth.Identity) error {
	r, revoked, err := h.revocationOf(id)
	switch {
	case err != nil:
		return err
	case !revoked:
		return nil
	case r.ID != "":
		return fmt.Errorf("%w: this token was revoked by its id", ErrRevoked)
	case r.Device != "":
		return fmt.Errorf("%w: it was issued before the tokens of device %s were revoked", ErrRevoked, id.Device)
	default:
		return fmt.Errorf("%w: it was issued before the account's tokens were revoked or its data erased", ErrRevoked)
	}
}

// revocationOf reads the revocation marks of the token that gave id and
// returns the revocation that covers it, if one does.
func (h *Hub) revocationOf(id auth.Identity) (auth.Revocation, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	m, err := h.store.Revoked(ctx, id.User, id.Device, id.ID)
	if err != nil {
		return auth.Revocation{}, false, fmt.Errorf("revocation of %s: %w", id.User, err)
	}
	switch {
	case m.ID:
		return auth.Revocation{ID: id.ID}, true, nil
	case auth.IssuedBy(id.IssuedAt, m.User):
		return auth.Revocation{User: id.User, Before: m.User}, true, nil
	case auth.IssuedBy(id.IssuedAt, m.Device):
		return auth.Revocation{User: id.User, Device: id.Device, Before: m.Device}, true, nil
	}
	return auth.Revocation{}, false, nil
}

// SweepRevoked checks the tokens of this node's signaling sessions, and
// those of others (the WHIP and WHEP sessions the assembly holds), against
// the revocation marks, and ends what a revoked one opened, as a
// revocation heard of does. A revocation reaches every node by broadcast;
// this catches one a node missed (cut off from Redis for a moment). It
// reads the store once per distinct token and returns how many tokens it
// found revoked.
func (h *Hub) SweepRevoked(others []auth.Identity) (int, error) {
	h.mu.Lock()
	ids := append([]auth.Identity(nil), others...)
	for _, devs := range h.devices {
		for _, s := range devs {
			if s.remote == nil { // a proxy's own node checks its device
				ids = append(ids, s.ident)
			}
		}
	}
	h.mu.Unlock()
	type tokenKey struct {
		user, device, id string
		iat              int64
	}
	seen := make(map[tokenKey]bool, len(ids))
	found := 0
	for _, id := range ids {
		k := tokenKey{id.User, id.Device, id.ID, id.IssuedAt.Unix()}
		if seen[k] {
			continue
		}
		seen[k] = true
		r, revoked, err := h.revocationOf(id)
		if err != nil {
			return found, err
		}
		if !revoked {
			continue
		}
		found++
		if n := h.endRevoked(r); n > 0 {
			h.log.Info("revoked tokens found by the sweep; sessions closed here", "user", r.User, "device", r.Device, "token_id", r.ID, "sessions", n)
		}
	}
	return found, nil
}

// OnRevoke sets f to be told of every revocation and erasure, made here or
// on another node, after this node's signaling sessions of the revoked
// tokens were closed: f ends what else those tokens opened. Set it before
// the hub serves; f runs on the goroutine of the revocation.
func (h *Hub) OnRevoke(f func(auth.Revocation)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onRevoke = f
}

// tokenIDKept is how long a revoked token id is remembered: every token
// with that id expires before (the longest lifetime, plus the clock skew
// auth allows).
func (h *Hub) tokenIDKept() time.Duration {
	if h.cfg.MaxTokenTTL > 0 {
		return h.cfg.MaxTokenTTL + auth.Leeway
	}
	return auth.DefaultMaxTTL + auth.Leeway
}

// Revoke takes back the tokens r names (with a zero r.Before, those
// issued until now), tells the other nodes, and ends their sessions on
// this one. It returns r as recorded.
func (h *Hub) Revoke(ctx context.Context, r auth.Revocation) (auth.Revocation, error) {
	if r.Before.IsZero() {
		r.Before = h.now()
	}
	var err error
	switch {
	case r.ID != "":
		r.User, r.Device = "", ""
		err = h.store.RevokeTokenID(ctx, r.ID, r.Before.Add(h.tokenIDKept()))
	case r.Device != "":
		err = h.store.RevokeDevice(ctx, r.User, r.Device, r.Before)
	default:
		err = h.store.RevokeTokens(ctx, r.User, r.Before)
	}
	if err != nil {
		return r, err
	}
	if h.cluster != nil {
		h.cluster.Broadcast(&cluster.Envelope{Kind: cluster.KindRevoked, User: r.User, Device: r.Device,
			Token: r.ID, At: r.Before.UnixMicro()})
	}
	n := h.endRevoked(r)
	h.log.Info("tokens revoked", "user", r.User, "device", r.Device, "token_id", r.ID, "sessions", n)
	return r, nil
}

// revokedElsewhere is another node's revocation: the sessions here of the
// tokens it names end too.
func (h *Hub) revokedElsewhere(e *cluster.Envelope) {
	r := auth.Revocation{User: e.User, Device: e.Device, ID: e.Token, Before: time.UnixMicro(e.At)}
	if e.At == 0 {
		r.Before = h.now()
	}
	if n := h.endRevoked(r); n > 0 {
		h.log.Info("tokens revoked on another node; sessions closed here", "user", r.User, "device", r.Device, "token_id", r.ID, "sessions", n)
	}
}

// endRevoked closes the signaling sessions on this node whose tokens r
// covers (their calls go on without them), ends at once the legs of calls
// homed here whose device was lost with such a token (they would
// otherwise keep their media for the reconnect grace), then tells the
// hook. It returns how many sessions it closed.
func (h *Hub) endRevoked(r auth.Revocation) int {
	var sessions []*Session
	var ends []*endResult
	h.mu.Lock()
	h.noteRevokedLocked(r)
	collect := func(devs map[string]*Session) {
		for _, s := range devs {
			// A proxy's own node closes the device's socket.
			if s.remote == nil && r.Covers(s.ident) {
				sessions = append(sessions, s)
			}
		}
	}
	if r.ID != "" {
		for _, devs := range h.devices {
			collect(devs)
		}
	} else {
		collect(h.devices[r.User])
	}
	for _, c := range h.calls {
		for _, m := range c.members {
			if m.State != callcore.MemberJoined || m.detached == nil || m.Dev == nil || !r.Covers(m.Dev.ident) {
				continue
			}
			m.detached.Stop()
			m.detached = nil
			if e := h.leaveLocked(c, m, protocol.ReasonConnectionLost, m.Dev); e != nil {
				ends = append(ends, e)
			}
		}
	}
	hook := h.onRevoke
	h.mu.Unlock()
	for _, e := range ends {
		h.finish(e)
	}
	for _, s := range sessions {
		s.closeWith(protocol.CodeTokenRevoked, "this session's access token was revoked", CloseUnauthorized)
	}
	h.revokeHook(hook, r)
	return len(sessions)
}

// revokeHook tells the hook, if any, of r.
func (h *Hub) revokeHook(hook func(auth.Revocation), r auth.Revocation) {
	if hook != nil {
		hook(r)
	}
}

// noteRevokedLocked remembers r for recentlyRevokedLocked; the caller
// holds h.mu.
func (h *Hub) noteRevokedLocked(r auth.Revocation) {
	h.recent.Note(r, h.now())
}

// noteRevoked is noteRevokedLocked for a caller without the lock.
func (h *Hub) noteRevoked(r auth.Revocation) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.noteRevokedLocked(r)
}

// recentlyRevokedLocked returns an error wrapping ErrRevoked if a
// revocation of the last minute covers id; the caller holds h.mu.
func (h *Hub) recentlyRevokedLocked(id auth.Identity) error {
	if h.recent.Covers(id) {
		return fmt.Errorf("%w while this session was opening", ErrRevoked)
	}
	return nil
}

// erasureHook tells the hook of user's erasure, marked at mark.
func (h *Hub) erasureHook(user string, mark time.Time) {
	h.mu.Lock()
	hook := h.onRevoke
	h.mu.Unlock()
	h.revokeHook(hook, auth.Revocation{User: user, Before: mark})
}

// adminRevokeRoutes adds the admin API's revocations to mux.
func (h *Hub) adminRevokeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/v1/admin/users/{user}/revoke", func(w http.ResponseWriter, r *http.Request) {
		h.serveRevoke(w, r, auth.Revocation{User: r.PathValue("user")})
	})
	mux.HandleFunc("POST /api/v1/admin/users/{user}/devices/{device}/revoke", func(w http.ResponseWriter, r *http.Request) {
		h.serveRevoke(w, r, auth.Revocation{User: r.PathValue("user"), Device: r.PathValue("device")})
	})
	mux.HandleFunc("POST /api/v1/admin/tokens/{id}/revoke", func(w http.ResponseWriter, r *http.Request) {
		h.serveRevoke(w, r, auth.Revocation{ID: r.PathValue("id")})
	})
}

func (h *Hub) serveRevoke(w http.ResponseWriter, req *http.Request, r auth.Revocation) {
	switch {
	case r.ID != "" && !auth.ValidID(r.ID):
		writeHTTPError(w, http.StatusBadRequest, protocol.CodeBadMessage, "a token id is 1-128 printable characters without spaces")
		return
	case r.ID == "" && !auth.ValidID(r.User):
		writeHTTPError(w, http.StatusBadRequest, protocol.CodeBadMessage, "a user id is 1-128 printable characters without spaces")
		return
	case r.ID == "" && r.Device != "" && !auth.ValidID(r.Device):
		writeHTTPError(w, http.StatusBadRequest, protocol.CodeBadMessage, "a device id is 1-128 printable characters without spaces")
		return
	}
	r, err := h.Revoke(req.Context(), r)
	if err != nil {
		h.log.Error("revocation failed", "user", r.User, "device", r.Device, "token_id", r.ID, "err", err)
		writeHTTPError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "the revocation was not recorded; try again shortly")
		return
	}
	a := adminapi.RevokeAnswer{User: r.User, Device: r.Device, TokenID: r.ID}
	if r.ID != "" {
		until := r.Before.Add(h.tokenIDKept()).UTC()
		a.Until = &until
	} else {
		at := r.Before.UTC()
		a.IssuedBefore = &at
	}
	writeJSON(w, http.StatusOK, a)
}
