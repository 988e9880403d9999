package server

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/signaling/protocol"
	"github.com/tandemcall/tandem/web"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/ws", s.hub)
	mux.Handle("/api/v1/calls", s.hub.HistoryHandler())
	mux.Handle("/api/v1/assist/log", s.hub.AssistLogHandler())
	me := s.hub.MeHandler()
	mux.Handle("/api/v1/me", me)
	mux.Handle("/api/v1/me/", me)
	mux.Handle("/api/v1/admin/", s.hub.AdminHandler())
	mux.HandleFunc("GET /api/v1/info", s.info)
	if s.accounts != nil {
		mux.Handle("/api/v1/account/", s.accounts.Handler(s.hub))
		admin := s.accounts.AdminHandler(s.hub)
		mux.Handle("/api/v1/admin/invites", admin)
		mux.Handle("/api/v1/admin/people", admin)
		mux.Handle("/api/v1/admin/people/", admin)
	}
	if s.cfg.Dev {
		mux.HandleFunc("/api/v1/dev/token", s.devToken)
	}
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", s.ready)
	s.whipRoutes(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /sw.js", s.serveWorker)
	static, _ := fs.Sub(web.Files, ".")
	mux.Handle("/", securityHeaders(http.FileServerFS(static)))
	return s.withHTTPLimits(mux)
}

// contentSecurityPolicy is the web client's CSP for a page served on
// host. connect-src allows the page's own origin and the signaling
// WebSocket on its host: CSP Level 3 counts ws: and wss: URLs of the
// page's own host as 'self', but Safari before 16 (iPhones that stay on
// iOS 15) does not, so the host is named too; a Host that is not a plain
// host name or address gets 'self' alone. No page posts a form, and no
// page needs a <base>.
func contentSecurityPolicy(host string) string {
	connect := "'self'"
	if plainHost(host) {
		connect += " wss://" + host + " ws://" + host
	}
	return "default-src 'self'; connect-src " + connect + "; media-src 'self' blob:; img-src 'self' data: blob:; " +
		"style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
}

// plainHost reports whether a Host header is a name or address with an
// optional port, and nothing that could add to a header it is put in.
func plainHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self)")
		hd.Set("Content-Security-Policy", contentSecurityPolicy(r.Host))
		if strings.HasSuffix(r.URL.Path, ".js") || r.URL.Path == "/" || strings.HasSuffix(r.URL.Path, ".html") {
			hd.Set("Cache-Control", "no-cache")
		}
		h.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	info := map[string]any{"name": "tandem", "version": Version, "protocol": protocol.Version, "dev": s.cfg.Dev, "accounts": s.accounts != nil}
	if s.accounts != nil && s.accounts.PushKey() != "" {
		info["push_key"] = s.accounts.PushKey() // the VAPID key devices subscribe with
	}
	if s.accounts != nil && s.accounts.OIDCName() != "" {
		info["oidc"] = s.accounts.OIDCName() // the sign-in button's name for the identity provider
	}
	writeJSON(w, info)
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		// New calls are refused: take this node out of rotation.
		writeError(w, http.StatusServiceUnavailable, protocol.CodeShuttingDown, "draining: new calls are refused")
		return
	}
	if s.node != nil && !s.node.Healthy() {
		// Alive (calls in progress keep their media) but degraded: new
		// calls fail until Redis answers again.
		writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "degraded: Redis is unreachable, new calls fail")
		return
	}
	io.WriteString(w, "ok\n")
}

// devToken mints a token for any name: dev mode only, loopback only, and
// only for a request to a loopback host from no page or one of this
// server's own.
func (s *Server) devToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	if why := devRequestRefusal(r); why != "" {
		writeError(w, http.StatusForbidden, protocol.CodeForbidden, why)
		return
	}
	var req struct {
		User   string `json:"user"`
		Device string `json:"device"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, protocol.CodeBadMessage, "body must be JSON {\"user\":…,\"device\":…}")
		return
	}
	if req.Device == "" {
		req.Device = "web"
	}
	if !auth.ValidID(req.User) || !auth.ValidID(req.Device) {
		writeError(w, http.StatusBadRequest, protocol.CodeBadMessage, "user and device must be 1–128 characters without spaces")
		return
	}
	tok, exp, err := s.authority.Mint(req.User, req.Device, nil, s.cfg.Auth.DevTokenTTL)
	if err != nil {
		writeError(w, http.StatusInternalServerError, protocol.CodeInternal, "could not mint a token")
		return
	}
	writeJSON(w, map[string]any{"token": tok, "expires_at": exp.UTC().Format(time.RFC3339), "user": req.User, "device": req.Device})
}
