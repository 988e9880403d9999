package signaling

import (
	"context"
	"net/http"
	"time"

	"github.com/tandemcall/tandem/internal/adminapi"
	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/cluster"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/signaling/callcore"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// A user's data is theirs: they can take all of it (adminapi.Export) or have it
// erased (Erase) at any time, and so can an operator for them.

// exportLimit bounds the entries read per list: more than any store keeps.
const exportLimit = 1 << 20

// adminapi.Export gathers everything Tandem holds about user.
func (h *Hub) Export(ctx context.Context, user string) (*adminapi.Export, error) {
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	h.pending.wait(wctx, user)
	cancel()
	x := &adminapi.Export{Format: adminapi.ExportFormat, ExportedAt: h.now().UTC(), User: user, Devices: h.devicesOf(user)}
	var err error
	if x.Known, err = h.store.KnownUser(ctx, user); err != nil {
		return nil, err
	}
	if x.Calls, err = h.store.Calls(ctx, user, exportLimit); err != nil {
		return nil, err
	}
	if x.AssistLog, err = h.store.AssistEntries(ctx, user, exportLimit); err != nil {
		return nil, err
	}
	if h.contacts != nil {
		if x.Account, err = h.contacts.ExportAccount(ctx, user); err != nil {
			return nil, err
		}
	}
	if x.Calls == nil {
		x.Calls = []store.CallEntry{}
	}
	if x.AssistLog == nil {
		x.AssistLog = []store.AssistEntry{}
	}
	return x, nil
}

// devicesOf lists user's devices connected to this node.
func (h *Hub) devicesOf(user string) []adminapi.DeviceInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := []adminapi.DeviceInfo{}
	for _, s := range h.devices[user] {
		d := adminapi.DeviceInfo{Device: s.device, Session: s.id, Grants: s.ident.Grants, ExpiresAt: s.ident.ExpiresAt, TokenID: s.ident.ID}
		if s.remote != nil {
			d.Node = s.remote.node
		} else if h.cluster != nil {
			d.Node = h.cluster.ID()
		}
		if c := h.userCall[user]; c != nil && c.joinedBy(s) != nil {
			d.Call = c.ID
		}
		out = append(out, d)
	}
	return out
}

// Erase removes everything Tandem holds about user: no new session may
// open with a token issued until now; the calls they are in go on without
// them (their history entries are written, then erased with the rest);
// their devices are signed out; then their history, assistance log and
// the record that they ever signed in are deleted. Other users' own
// history of calls with them stays: it is those users' data.
func (h *Hub) Erase(ctx context.Context, user string) error {
	mark := h.now()
	if err := h.store.RevokeTokens(ctx, user, mark); err != nil {
		return err
	}
	if h.cluster != nil {
		// The other nodes sign out the devices they hold and take the
		// user out of the calls they home, then erase what that wrote.
		h.cluster.Broadcast(&cluster.Envelope{Kind: cluster.KindErased, User: user, At: mark.UnixMicro()})
	}
	h.noteRevoked(auth.Revocation{User: user, Before: mark})
	n := h.signOutUser(ctx, user)
	h.erasureHook(user, mark)
	if err := h.store.EraseUser(ctx, user); err != nil {
		return err
	}
	if h.contacts != nil {
		if err := h.contacts.EraseAccount(ctx, user); err != nil {
			return err
		}
	}
	h.log.Info("user data erased", "user", user, "sessions", n)
	return nil
}

// signOutUser takes user out of the calls on this node, closes their
// sessions here and waits for the history that wrote; it returns how many
// sessions it closed.
func (h *Hub) signOutUser(ctx context.Context, user string) int {
	h.mu.Lock()
	ends := h.removeUserLocked(user, protocol.ReasonCompleted)
	var sessions []*Session
	for _, s := range h.devices[user] {
		sessions = append(sessions, s)
	}
	h.mu.Unlock()
	for _, e := range ends {
		h.finish(e)
	}
	for _, s := range sessions {
		s.closeWith(protocol.CodeTokenRevoked, "this account's data was erased", CloseUnauthorized)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// Signed out means gone: the devices have left the hub when this
	// returns, so nothing lists them after the erasure.
	for _, s := range sessions {
		if s.ended != nil {
			select {
			case <-s.ended:
			case <-wctx.Done():
			}
		}
	}
	h.pending.wait(wctx, user)
	return len(sessions)
}

// erasedElsewhere is another node's erasure of user, marked at mark: what
// this node held of them goes too.
func (h *Hub) erasedElsewhere(user string, mark time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Whatever else their tokens opened here (WHIP, TURN) ends, whether or
	// not they had a session here.
	h.noteRevoked(auth.Revocation{User: user, Before: mark})
	defer h.erasureHook(user, mark)
	h.mu.Lock()
	_, here := h.devices[user]
	involved := here || h.userCall[user] != nil
	h.mu.Unlock()
	if !involved {
		return
	}
	n := h.signOutUser(ctx, user)
	if err := h.store.EraseUser(ctx, user); err != nil {
		h.log.Error("erasure not completed here", "user", user, "err", err)
		return
	}
	h.log.Info("user data erased on another node; signed out here", "user", user, "sessions", n)
}

// removeUserLocked takes user out of every call on this node for reason:
// a call they placed that still rings is cancelled, ringing for them
// stops. The caller holds h.mu and finishes the results.
func (h *Hub) removeUserLocked(user, reason string) []*endResult {
	var ends []*endResult
	for _, c := range h.calls {
		m := c.members[user]
		if m == nil || c.Phase == callcore.PhaseEnded {
			continue
		}
		var e *endResult
		switch {
		case m.State == callcore.MemberJoined && c.Phase == callcore.PhaseRinging:
			e = h.endLocked(c, protocol.ReasonCancelled, nil)
		case m.State == callcore.MemberJoined:
			e = h.leaveLocked(c, m, reason, nil)
		case m.State == callcore.MemberRinging:
			e = h.unringLocked(c, m, protocol.ReasonDeclined, nil)
		}
		if e != nil {
			ends = append(ends, e)
		}
	}
	return ends
}

// MeHandler serves the caller's own data: GET /api/v1/me/export gives the
// archive, DELETE /api/v1/me erases everything.
func (h *Hub) MeHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/me/export", func(w http.ResponseWriter, r *http.Request) {
		if id, ok := h.Authenticate(w, r); ok {
			h.serveExport(w, r, id.User)
		}
	})
	mux.HandleFunc("DELETE /api/v1/me", func(w http.ResponseWriter, r *http.Request) {
		if id, ok := h.Authenticate(w, r); ok {
			h.serveErase(w, r, id.User)
		}
	})
	mux.HandleFunc("/api/v1/me/", func(w http.ResponseWriter, r *http.Request) {
		writeHTTPError(w, http.StatusNotFound, "not_found", "GET /api/v1/me/export or DELETE /api/v1/me")
	})
	mux.HandleFunc("/api/v1/me", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "DELETE")
		writeHTTPError(w, http.StatusMethodNotAllowed, "method_not_allowed", "DELETE /api/v1/me erases your data; GET /api/v1/me/export gives it")
	})
	return mux
}

func (h *Hub) serveExport(w http.ResponseWriter, r *http.Request, user string) {
	x, err := h.Export(r.Context(), user)
	if err != nil {
		h.log.Error("export failed", "user", user, "err", err)
		writeHTTPError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "your data cannot be read now; try again shortly")
		return
	}
	w.Header().Set("Content-Disposition", `attachment; filename="tandem-`+user+`.json"`)
	writeJSON(w, http.StatusOK, x)
}

func (h *Hub) serveErase(w http.ResponseWriter, r *http.Request, user string) {
	if err := h.Erase(r.Context(), user); err != nil {
		h.log.Error("erase failed", "user", user, "err", err)
		writeHTTPError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "the erasure did not complete; try again shortly")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
