package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// writeHTTPError answers with Tandem's JSON error shape.
func writeHTTPError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// Authenticate checks the request's bearer token, answering 401 itself
// when it is missing or bad.
func (h *Hub) Authenticate(w http.ResponseWriter, r *http.Request) (auth.Identity, bool) {
	tok, ok := auth.BearerToken(r.Header.Get("Authorization"))
	if !ok {
		writeHTTPError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, "send Authorization: Bearer <token>")
		return auth.Identity{}, false
	}
	id, err := h.Verify(tok)
	switch {
	case errors.Is(err, auth.ErrExpired):
		writeHTTPError(w, http.StatusUnauthorized, protocol.CodeTokenExpired, "the access token has expired")
		return auth.Identity{}, false
	case errors.Is(err, ErrRevoked):
		writeHTTPError(w, http.StatusUnauthorized, protocol.CodeTokenRevoked, err.Error())
		return auth.Identity{}, false
	case errors.Is(err, store.ErrUnavailable):
		writeHTTPError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "the token's revocations cannot be read now; try again shortly")
		return auth.Identity{}, false
	case err != nil:
		writeHTTPError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, "the access token is not valid")
		return auth.Identity{}, false
	}
	return id, true
}

// HistoryHandler serves GET /api/v1/calls: the caller's call history.
func (h *Hub) HistoryHandler() http.Handler {
	return h.listHandler(50, func(ctx context.Context, id auth.Identity, limit int) (any, error) {
		calls, err := h.store.Calls(ctx, id.User, limit)
		if calls == nil {
			calls = []store.CallEntry{}
		}
		return map[string]any{"calls": calls}, err
	})
}

// listHandler serves a GET of the caller's own list, at most ?limit
// entries (1 to 1000, default def), as the JSON list returns. It waits
// first for the caller's writes still under way (a call's history, an
// assistance's audit entries): a client that reads on hearing of an end
// finds it.
func (h *Hub) listHandler(def int, list func(ctx context.Context, id auth.Identity, limit int) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			writeHTTPError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
			return
		}
		id, ok := h.Authenticate(w, r)
		if !ok {
			return
		}
		limit := def
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				writeHTTPError(w, http.StatusBadRequest, protocol.CodeBadMessage, "limit must be 1 to 1000")
				return
			}
			limit = n
		}
		wctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		h.pending.wait(wctx, id.User)
		cancel()
		body, err := list(r.Context(), id, limit)
		if err != nil {
			writeHTTPError(w, http.StatusInternalServerError, protocol.CodeInternal, "not available now")
			return
		}
		writeJSON(w, http.StatusOK, body)
	})
}

// AssistLogHandler serves GET /api/v1/assist/log: the caller's remote
// assistance audit log, newest first: every assistance they gave or
// received, and what was granted, asked for, denied and taken back when.
func (h *Hub) AssistLogHandler() http.Handler {
	return h.listHandler(100, func(ctx context.Context, id auth.Identity, limit int) (any, error) {
		entries, err := h.store.AssistEntries(ctx, id.User, limit)
		if entries == nil {
			entries = []store.AssistEntry{}
		}
		return map[string]any{"entries": entries}, err
	})
}
