package signaling

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/tandemcall/tandem/internal/adminapi"
	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/sfu"
	"github.com/tandemcall/tandem/signaling/callcore"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// The admin API (docs/operations.md, "Admin API"), for tokens with the
// admin grant. It shows what this node holds: on a deployment of several,
// ask each node.

// AdminHandler serves /api/v1/admin/.
func (h *Hub) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/admin/rooms", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"rooms": h.Rooms()})
	})
	mux.HandleFunc("GET /api/v1/admin/rooms/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := h.RoomView(r.PathValue("id"))
		if !ok {
			writeHTTPError(w, http.StatusNotFound, protocol.CodeNotFound, "no such call or room on this node")
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	mux.HandleFunc("DELETE /api/v1/admin/rooms/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !h.EndCall(r.PathValue("id")) {
			writeHTTPError(w, http.StatusNotFound, protocol.CodeNotFound, "no such call or room on this node")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /api/v1/admin/rooms/{id}/participants/{user}", func(w http.ResponseWriter, r *http.Request) {
		if !h.RemoveParticipant(r.PathValue("id"), r.PathValue("user")) {
			writeHTTPError(w, http.StatusNotFound, protocol.CodeNotInCall, "that user is not in that call or room on this node")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /api/v1/admin/users/{user}/sessions", func(w http.ResponseWriter, r *http.Request) {
		user := r.PathValue("user")
		writeJSON(w, http.StatusOK, map[string]any{"user": user, "devices": h.devicesOf(user)})
	})
	mux.HandleFunc("GET /api/v1/admin/users/{user}/export", func(w http.ResponseWriter, r *http.Request) {
		h.serveExport(w, r, r.PathValue("user"))
	})
	mux.HandleFunc("DELETE /api/v1/admin/users/{user}", func(w http.ResponseWriter, r *http.Request) {
		h.serveErase(w, r, r.PathValue("user"))
	})
	h.adminRevokeRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeHTTPError(w, http.StatusNotFound, "not_found", "no such admin endpoint (docs/operations.md, \"Admin API\")")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := h.Authenticate(w, r)
		if !ok {
			return
		}
		if !id.Has(auth.GrantAdmin) {
			writeHTTPError(w, http.StatusForbidden, protocol.CodeForbidden, "this token has no admin grant")
			return
		}
		if r.Method != http.MethodGet {
			h.log.Info("admin action", "method", r.Method, "path", r.URL.Path, "admin", id.User)
		}
		mux.ServeHTTP(w, r)
	})
}

// Rooms lists the calls and rooms on this node, oldest first.
func (h *Hub) Rooms() []adminapi.RoomView {
	h.mu.Lock()
	ids := make([]string, 0, len(h.calls))
	for id := range h.calls {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	out := []adminapi.RoomView{}
	for _, id := range ids {
		if v, ok := h.RoomView(id); ok {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b adminapi.RoomView) int {
		return cmp.Or(a.StartedAt.Compare(b.StartedAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// adminapi.RoomView describes call id with its members' tracks and quality.
func (h *Hub) RoomView(id string) (adminapi.RoomView, bool) {
	h.mu.Lock()
	c := h.calls[id]
	if c == nil || c.Phase == callcore.PhaseEnded {
		h.mu.Unlock()
		return adminapi.RoomView{}, false
	}
	v := adminapi.RoomView{ID: c.ID, Kind: "call", Video: c.Video, StartedAt: c.Started, State: "active"}
	if c.Room != "" {
		v.Kind, v.Room, v.Mode = "room", c.Room, "group"
		if c.floor != nil {
			v.Mode = protocol.ModePTT
		}
	}
	if c.Phase == callcore.PhaseRinging {
		v.State = "ringing"
	}
	if !c.Answered.IsZero() {
		a := c.Answered
		v.AnsweredAt = &a
	}
	for _, m := range c.members {
		mv := adminapi.MemberView{User: m.User, Tracks: []adminapi.TrackView{}}
		switch m.State {
		case callcore.MemberJoined:
			mv.State = "joined"
			j := m.Joined
			mv.JoinedAt = &j
			if m.Dev != nil {
				mv.Device, mv.Session = m.Dev.device, m.Dev.id
			}
		case callcore.MemberRinging:
			mv.State = "ringing"
		default:
			continue
		}
		v.Members = append(v.Members, mv)
	}
	h.mu.Unlock()

	if h.media != nil {
		legs := map[sfu.LegID]sfu.ParticipantInfo{}
		for _, p := range h.media.Participants(sfu.RoomID(id)) {
			legs[p.ID] = p
		}
		for i := range v.Members {
			p, ok := legs[sfu.LegID(v.Members[i].Session)]
			if !ok {
				continue
			}
			v.Members[i].Tracks = trackViews(p.Tracks)
			if p.Sampled {
				v.Members[i].Quality = qualityView(p)
			}
		}
	}
	slices.SortFunc(v.Members, func(a, b adminapi.MemberView) int { return cmp.Compare(a.User, b.User) })
	return v, true
}

func trackViews(ts []sfu.TrackInfo) []adminapi.TrackView {
	out := make([]adminapi.TrackView, 0, len(ts))
	for _, t := range ts {
		tv := adminapi.TrackView{ID: t.ID, Kind: t.Kind, Codec: t.Codec, Screen: t.Screen, Subscribers: t.Subscribers}
		for _, l := range t.Layers {
			tv.Layers = append(tv.Layers, adminapi.LayerView{RID: l.RID, Width: l.Width, Height: l.Height, Kbps: l.Bps / 1000})
		}
		out = append(out, tv)
	}
	return out
}

func qualityView(p sfu.ParticipantInfo) *adminapi.QualityView {
	q := legQuality(p.Quality)
	st := p.Stats
	return &adminapi.QualityView{
		Level: q.Level, RTTMs: q.RTTMs, JitterMs: q.JitterMs, SendKbps: q.SendKbps, RecvKbps: q.RecvKbps,
		LossUpPct: roundTenth(100 * p.Quality.LossUp), LossDownPct: roundTenth(100 * p.Quality.LossDown),
		PacketsReceived:  st.Audio.PacketsReceived + st.Video.PacketsReceived,
		PacketsForwarded: st.Audio.PacketsForwarded + st.Video.PacketsForwarded,
		NACKs:            st.Audio.NACKsReceived + st.Video.NACKsReceived,
		KeyframeRequests: st.Video.KeyframeRequests,
	}
}

// EndCall ends call or room id for everyone, with reason
// ended_by_operator, and reports whether it was here.
func (h *Hub) EndCall(id string) bool {
	h.mu.Lock()
	c := h.calls[id]
	if c == nil || c.Phase == callcore.PhaseEnded {
		h.mu.Unlock()
		return false
	}
	e := h.endLocked(c, protocol.ReasonEndedByOperator, nil)
	h.mu.Unlock()
	h.finish(e)
	return true
}

// RemoveParticipant takes user out of call or room id (their device hears
// ended with reason removed; ringing for them stops), and reports whether
// they were in it.
func (h *Hub) RemoveParticipant(id, user string) bool {
	h.mu.Lock()
	c := h.calls[id]
	var m *member
	if c != nil && c.Phase != callcore.PhaseEnded {
		m = c.members[user]
	}
	var e *endResult
	switch {
	case m == nil:
		h.mu.Unlock()
		return false
	case m.State == callcore.MemberJoined:
		e = h.leaveLocked(c, m, protocol.ReasonRemoved, nil)
	case m.State == callcore.MemberRinging:
		e = h.unringLocked(c, m, protocol.ReasonRemoved, nil)
	default:
		h.mu.Unlock()
		return false
	}
	h.mu.Unlock()
	if e != nil {
		h.finish(e)
	}
	return true
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
