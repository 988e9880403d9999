package server

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/sdpfrag"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/sfu"
	"github.com/tandemcall/tandem/signaling"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// WHIP (RFC 9725) and WHEP over HTTP: POST /whip/{room} publishes into a
// room and POST /whep/{room} plays it; each creates a session resource at
// /whip/{room}/{id} (resp. /whep/…) that PATCH (trickle ICE, ICE restart)
// and DELETE act on. The media side is sfu.WHIPSession; this file is the HTTP:
// tokens, resources, entity tags, ICE servers in Link headers and CORS for
// clients on pages of other origins. docs/protocol.md describes it.

const (
	sdpMediaType  = "application/sdp"
	fragMediaType = "application/trickle-ice-sdpfrag"

	// whipMaxBody bounds an offer or a fragment.
	whipMaxBody = 64 << 10
	// whipMaxPerUser and whipMaxSessions bound the sessions one user, and
	// the node, may hold at once.
	whipMaxPerUser  = 8
	whipMaxSessions = 1000
	// whipTimeout bounds the negotiation of a POST or PATCH.
	whipTimeout = 10 * time.Second
)

// WHIP endpoint kinds, also the first path segment.
const (
	kindWHIP = "whip"
	kindWHEP = "whep"
)

// whipResource is one WHIP or WHEP session.
type whipResource struct {
	id, kind string
	room     string // the room name in the URL
	sfuRoom  string // the SFU room it is in
	user     string
	// ident is the token's identity that created the session: a
	// revocation that covers it ends the session.
	ident auth.Identity
	sess  *sfu.WHIPSession
	// watching is set for a WHEP viewer of a call's room, counted among
	// the call's watchers (signaling's AddWatcher) until it ends.
	watching bool

	mu   sync.Mutex // serializes PATCH; guards etag
	etag string     // the current ICE session's entity tag, quoted
}

// whipRegistry holds the node's sessions and one watcher goroutine per
// session, which removes it when its PeerConnection fails or its room
// closes.
type whipRegistry struct {
	mu      sync.Mutex
	closed  bool
	byID    map[string]*whipResource
	perUser map[string]int // sessions and reservations
	total   int
	// recent are the revocations of the last minute: a session whose
	// token was checked before one and that registers after it is
	// refused (a POST negotiates for up to whipTimeout).
	recent auth.Recent
	wg     sync.WaitGroup
}

// Errors from whipRegistry.add.
var (
	errWHIPClosed  = errors.New("whip: the server is shutting down")
	errWHIPRevoked = errors.New("whip: the token was revoked while the session was being created")
)

func newWHIPRegistry() *whipRegistry {
	return &whipRegistry{byID: map[string]*whipResource{}, perUser: map[string]int{}}
}

// reserve takes one of the user's places, reporting false when the user or
// the node has none left.
func (g *whipRegistry) reserve(user string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed || g.perUser[user] >= whipMaxPerUser || g.total >= whipMaxSessions {
		return false
	}
	g.perUser[user]++
	g.total++
	return true
}

// unreserve gives a place back.
func (g *whipRegistry) unreserve(user string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.unreserveLocked(user)
}

func (g *whipRegistry) unreserveLocked(user string) {
	if g.perUser[user]--; g.perUser[user] <= 0 {
		delete(g.perUser, user)
	}
	g.total--
}

// add registers a session in a reserved place and starts its watcher,
// which calls ended when the session is over. It fails after close, and
// for a session whose token a recent revocation covers.
func (g *whipRegistry) add(res *whipResource, ended func(*whipResource)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return errWHIPClosed
	}
	if g.recent.Covers(res.ident) {
		return errWHIPRevoked
	}
	g.byID[res.id] = res
	g.wg.Go(func() {
		select {
		case <-res.sess.Done():
		case <-res.sess.Failed():
		}
		ended(res)
	})
	return nil
}

// remove forgets a session and frees its place; it reports whether the
// session was still registered.
func (g *whipRegistry) remove(res *whipResource) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byID[res.id] != res {
		return false
	}
	delete(g.byID, res.id)
	g.unreserveLocked(res.user)
	return true
}

func (g *whipRegistry) get(id string) *whipResource {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.byID[id]
}

// revoke remembers r for sessions still being created, and returns the
// registered sessions whose tokens r revoked.
func (g *whipRegistry) revoke(r auth.Revocation) []*whipResource {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.recent.Note(r, time.Now())
	var out []*whipResource
	for _, res := range g.byID {
		if r.Covers(res.ident) {
			out = append(out, res)
		}
	}
	return out
}

// identities lists the token identities of the registered sessions.
func (g *whipRegistry) identities() []auth.Identity {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]auth.Identity, 0, len(g.byID))
	for _, res := range g.byID {
		out = append(out, res.ident)
	}
	return out
}

// count returns how many sessions of kind are registered.
func (g *whipRegistry) count(kind string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, r := range g.byID {
		if r.kind == kind {
			n++
		}
	}
	return n
}

// close refuses new sessions and waits for the watchers, which end once
// the SFU has closed every room.
func (g *whipRegistry) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}

// registerWHIPMetrics exports the number of sessions by kind.
func (s *Server) registerWHIPMetrics(reg prometheus.Registerer) {
	for _, kind := range []string{kindWHIP, kindWHEP} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "tandem_whip_sessions",
			Help:        "WHIP publishers and WHEP viewers connected now, by kind.",
			ConstLabels: prometheus.Labels{"kind": kind},
		}, func() float64 { return float64(s.whip.count(kind)) }))
	}
}

// whipRoutes registers the endpoints and the session resources of both
// kinds.
func (s *Server) whipRoutes(mux *http.ServeMux) {
	for _, kind := range []string{kindWHIP, kindWHEP} {
		mux.HandleFunc("/"+kind+"/{room}", func(w http.ResponseWriter, r *http.Request) {
			whipCORS(w)
			switch r.Method {
			case http.MethodPost:
				s.whipCreate(w, r, kind)
			case http.MethodOptions:
				w.Header().Set("Accept-Post", sdpMediaType)
				whipOptions(w, r, "POST, OPTIONS")
			default:
				w.Header().Set("Allow", "POST, OPTIONS")
				whipError(w, http.StatusMethodNotAllowed, "use POST with an SDP offer")
			}
		})
		mux.HandleFunc("/"+kind+"/{room}/{id}", func(w http.ResponseWriter, r *http.Request) {
			whipCORS(w)
			w.Header().Set("Accept-Patch", fragMediaType)
			switch r.Method {
			case http.MethodPatch, http.MethodDelete:
				s.whipSession(w, r, kind)
			case http.MethodOptions:
				whipOptions(w, r, "PATCH, DELETE, OPTIONS")
			default:
				w.Header().Set("Allow", "PATCH, DELETE, OPTIONS")
				whipError(w, http.StatusMethodNotAllowed, "use PATCH or DELETE")
			}
		})
	}
}

// whipCORS lets pages of any origin use the endpoints: they take a bearer
// token, never cookies, so a page can do nothing its token does not allow.
func whipCORS(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Location, Link, ETag, Accept-Patch, Accept-Post")
	h.Set("Cache-Control", "no-store")
}

// whipOptions answers OPTIONS: a CORS preflight, or a plain request for
// the allowed methods.
func whipOptions(w http.ResponseWriter, r *http.Request, allow string) {
	h := w.Header()
	h.Set("Allow", allow)
	if r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
		h.Set("Access-Control-Max-Age", "86400")
	}
	w.WriteHeader(http.StatusNoContent)
}

// whipError answers with a one-line text body, which WHIP clients show or
// log as it is.
func whipError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

// whipAuth checks the bearer token and its revocations as every endpoint
// does (signaling's Hub.Verify), answering 401 itself (503 while the
// revocations cannot be read).
func (s *Server) whipAuth(w http.ResponseWriter, r *http.Request) (auth.Identity, bool) {
	tok, ok := auth.BearerToken(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tandem"`)
		whipError(w, http.StatusUnauthorized, "send Authorization: Bearer <token>")
		return auth.Identity{}, false
	}
	id, err := s.hub.Verify(tok)
	if errors.Is(err, store.ErrUnavailable) {
		w.Header().Set("Retry-After", "5")
		whipError(w, http.StatusServiceUnavailable, "the token cannot be checked now; try again shortly")
		return auth.Identity{}, false
	}
	if err != nil {
		msg := "the access token is not valid"
		switch {
		case errors.Is(err, auth.ErrExpired):
			msg = "the access token has expired"
		case errors.Is(err, signaling.ErrRevoked):
			msg = err.Error()
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="tandem", error="invalid_token"`)
		whipError(w, http.StatusUnauthorized, msg)
		return auth.Identity{}, false
	}
	return id, true
}

// hasMediaType reports whether the request body is of media type want
// (parameters such as charset are allowed).
func hasMediaType(r *http.Request, want string) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == want
}

// readWHIPBody reads at most whipMaxBody bytes, answering 413 or 400
// itself.
func readWHIPBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, whipMaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		whipError(w, http.StatusRequestEntityTooLarge, "the body is larger than 64 KiB")
		return "", false
	case err != nil:
		whipError(w, http.StatusBadRequest, "cannot read the body")
		return "", false
	}
	return string(b), true
}

// whipCreate handles POST /whip/{room} and POST /whep/{room}.
func (s *Server) whipCreate(w http.ResponseWriter, r *http.Request, kind string) {
	ident, ok := s.whipAuth(w, r)
	if !ok {
		return
	}
	room := r.PathValue("room")
	if err := protocol.CheckRoom(room); err != nil {
		whipError(w, http.StatusBadRequest, "bad room name: "+err.Error())
		return
	}
	grant := auth.GrantPublish
	if kind == kindWHEP {
		grant = auth.GrantSubscribe
	}
	if !ident.Has(grant) {
		whipError(w, http.StatusForbidden, "the access token lacks the "+grant+" grant")
		return
	}
	if !ident.NamesRoom(room) {
		whipError(w, http.StatusForbidden, roomRefusal(ident, grant, room))
		return
	}
	if s.draining.Load() {
		w.Header().Set("Retry-After", "10")
		whipError(w, http.StatusServiceUnavailable, "the server is shutting down")
		return
	}
	if !hasMediaType(r, sdpMediaType) {
		whipError(w, http.StatusUnsupportedMediaType, "the body must be an SDP offer (Content-Type: application/sdp)")
		return
	}
	offer, ok := readWHIPBody(w, r)
	if !ok {
		return
	}
	if !s.whip.reserve(ident.User) {
		whipError(w, http.StatusTooManyRequests, "too many WHIP and WHEP sessions")
		return
	}
	res := &whipResource{id: newWHIPID(), kind: kind, room: room, user: ident.User, ident: ident, etag: newETag()}
	ctx, cancel := context.WithTimeout(r.Context(), whipTimeout)
	answer, err := s.whipJoin(ctx, res, offer)
	cancel()
	if err != nil {
		s.whip.unreserve(ident.User)
		switch {
		case errors.Is(err, sfu.ErrBadSDP):
			whipError(w, http.StatusBadRequest, "the offer cannot be used: "+err.Error())
		case errors.Is(err, sfu.ErrNothingPublished):
			whipError(w, http.StatusConflict, "nothing is published in room "+room+" yet")
		case errors.Is(err, sfu.ErrClosed):
			whipError(w, http.StatusServiceUnavailable, "the room is closing; try again")
		default:
			s.log.Error("whip: join failed", "kind", kind, "room", room, "err", err)
			whipError(w, http.StatusInternalServerError, "the media server failed")
		}
		return
	}
	// The call's members learn of a viewer before it can receive
	// anything: its DTLS needs the answer, which is not sent yet.
	if kind == kindWHEP && res.sfuRoom != "whip:"+room {
		if !s.hub.AddWatcher(res.sfuRoom) {
			s.whip.unreserve(ident.User)
			_ = res.sess.Close()
			s.whipReleaseRoom(res)
			whipError(w, http.StatusServiceUnavailable, "the room is closing; try again")
			return
		}
		res.watching = true
	}
	if err := s.whip.add(res, s.whipEnded); err != nil {
		s.whip.unreserve(ident.User)
		_ = res.sess.Close()
		if res.watching {
			s.hub.RemoveWatcher(res.sfuRoom)
		}
		s.whipReleaseRoom(res)
		if errors.Is(err, errWHIPRevoked) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tandem", error="invalid_token"`)
			whipError(w, http.StatusUnauthorized, "the access token was revoked while the session was being created")
			return
		}
		whipError(w, http.StatusServiceUnavailable, "the server is shutting down")
		return
	}
	s.log.Info("whip session started", "kind", kind, "room", room, "sfu_room", res.sfuRoom, "user", ident.User, "session", res.id)

	h := w.Header()
	h.Set("Content-Type", sdpMediaType)
	h.Set("Location", "/"+kind+"/"+room+"/"+res.id)
	h.Set("ETag", res.etag)
	h.Set("Accept-Patch", fragMediaType)
	s.addICELinks(h, ident.User, r)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// roomRefusal says why a token's grant does not hold in room, and how to
// mint one that does.
func roomRefusal(id auth.Identity, grant, room string) string {
	how := "mint one with --room " + room + " (tandem token --grants " + grant + " --room " + room + ")"
	if len(id.Rooms) == 0 {
		return "the access token names no rooms, so its " + grant + " grant holds in none: " + how
	}
	return "the access token is not for room " + room + ": " + how
}

// whipJoin puts the session into the room's SFU room: the SFU room of the
// signaling room of that name while one runs, so that WHIP publishes into
// a call, else "whip:"+name, where WHIP and WHEP of that name meet.
func (s *Server) whipJoin(ctx context.Context, res *whipResource, offer string) (string, error) {
	for attempt := 0; ; attempt++ {
		res.sfuRoom = "whip:" + res.room
		if id, ok := s.hub.RoomCallID(res.room); ok {
			res.sfuRoom = id
		}
		room := s.sfu.Room(sfu.RoomID(res.sfuRoom))
		var (
			sess *sfu.WHIPSession
			ans  string
			err  error
		)
		if res.kind == kindWHIP {
			sess, ans, err = room.Publish(ctx, sfu.LegID(res.kind+"-"+res.id), res.user, offer)
		} else {
			sess, ans, err = room.View(ctx, sfu.LegID(res.kind+"-"+res.id), offer)
		}
		// The room closed under us (an empty WHIP room, or a call that
		// ended): once more, in whatever room the name now has.
		if errors.Is(err, sfu.ErrClosed) && attempt == 0 {
			continue
		}
		if err != nil {
			s.whipReleaseRoom(res)
			return "", err
		}
		res.sess = sess
		return ans, nil
	}
}

// whipEnded removes a session whose PeerConnection failed or whose room
// closed, or that was deleted.
func (s *Server) whipEnded(res *whipResource) {
	removed := s.whip.remove(res)
	_ = res.sess.Close()
	s.whipReleaseRoom(res)
	if removed {
		if res.watching {
			s.hub.RemoveWatcher(res.sfuRoom)
		}
		s.log.Info("whip session ended", "kind", res.kind, "room", res.room, "session", res.id)
	}
}

// whipReleaseRoom closes the session's SFU room if it is empty and no
// running call owns it.
func (s *Server) whipReleaseRoom(res *whipResource) {
	if id, ok := s.hub.RoomCallID(res.room); ok && id == res.sfuRoom {
		return
	}
	s.sfu.CloseRoomIfEmpty(sfu.RoomID(res.sfuRoom))
}

// whipSession handles PATCH and DELETE on a session resource.
func (s *Server) whipSession(w http.ResponseWriter, r *http.Request, kind string) {
	ident, ok := s.whipAuth(w, r)
	if !ok {
		return
	}
	res := s.whip.get(r.PathValue("id"))
	if res == nil || res.kind != kind || res.room != r.PathValue("room") {
		whipError(w, http.StatusNotFound, "no such session, or it has ended")
		return
	}
	if res.user != ident.User {
		whipError(w, http.StatusForbidden, "the session belongs to another user")
		return
	}
	// The token that opened the session may have been revoked on a node
	// whose word did not arrive: it ends now.
	if err := s.hub.CheckRevocation(res.ident); errors.Is(err, signaling.ErrRevoked) {
		s.log.Info("whip session ended: its token was revoked", "kind", kind, "session", res.id, "user", res.user)
		s.whipEnded(res)
		whipError(w, http.StatusNotFound, "the session has ended: the access token that opened it was revoked")
		return
	}
	if r.Method == http.MethodDelete {
		s.whipEnded(res)
		w.WriteHeader(http.StatusOK)
		return
	}
	s.whipPatch(w, r, res)
}

// whipPatch applies a trickle ICE or ICE restart fragment (RFC 9725
// §4.3): If-Match, when sent, must name the current ICE session or be *
// (412 otherwise); a restart answers 200 with the SFU's new credentials
// and a new ETag, a trickle 204.
//
// RFC 9725 asks clients to send If-Match on every PATCH, but common
// players (whep.js) trickle without it, so a trickle without If-Match is
// taken as meant for the current ICE session. A restart without it is
// refused (428): the RFC requires If-Match: * for one, and without it a
// trickle PATCH delayed past a restart, carrying the previous session's
// credentials, would look like a restart back to them.
func (s *Server) whipPatch(w http.ResponseWriter, r *http.Request, res *whipResource) {
	if !hasMediaType(r, fragMediaType) {
		whipError(w, http.StatusUnsupportedMediaType, "the body must be an ICE fragment (Content-Type: application/trickle-ice-sdpfrag)")
		return
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	im := r.Header.Get("If-Match")
	if im != "" && !etagMatches(im, res.etag) {
		whipError(w, http.StatusPreconditionFailed, "If-Match names another ICE session")
		return
	}
	body, ok := readWHIPBody(w, r)
	if !ok {
		return
	}
	frag, err := sdpfrag.Parse(body)
	if err != nil {
		whipError(w, http.StatusBadRequest, err.Error())
		return
	}
	if im == "" && res.sess.Restarts(frag) {
		whipError(w, http.StatusPreconditionRequired, "an ICE restart needs If-Match: *")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), whipTimeout)
	defer cancel()
	answer, restarted, err := res.sess.Patch(ctx, frag)
	switch {
	case errors.Is(err, sfu.ErrICEMismatch), errors.Is(err, sfu.ErrBadSDP):
		whipError(w, http.StatusUnprocessableEntity, err.Error())
		return
	case errors.Is(err, sfu.ErrTooManyCandidates):
		// Well-formed, but the session takes no more candidates until an
		// ICE restart.
		whipError(w, http.StatusUnprocessableEntity, err.Error()+"; restart ICE to send others")
		return
	case errors.Is(err, sfu.ErrBadCandidate):
		whipError(w, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, sfu.ErrClosed):
		whipError(w, http.StatusNotFound, "the session has ended")
		return
	case err != nil:
		s.log.Error("whip: patch failed", "session", res.id, "err", err)
		whipError(w, http.StatusInternalServerError, "the media server failed")
		return
	}
	if !restarted {
		w.Header().Set("ETag", res.etag)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	res.etag = newETag()
	w.Header().Set("Content-Type", fragMediaType)
	w.Header().Set("ETag", res.etag)
	// Fresh TURN credentials: the first ones may have expired by now.
	s.addICELinks(w.Header(), res.user, r)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, answer)
}

// etagMatches evaluates an If-Match field value against the current tag
// (RFC 9110 §13.1.1: "*" or a list, compared strongly; an unquoted tag,
// as some clients send, is taken as quoted).
func etagMatches(field, etag string) bool {
	for _, t := range strings.Split(field, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || t == etag || `"`+t+`"` == etag {
			return true
		}
	}
	return false
}

// addICELinks adds a Link header per ICE server for user.
func (s *Server) addICELinks(h http.Header, user string, r *http.Request) {
	if s.ice == nil {
		return
	}
	servers, _ := s.ice(user, requestHost(r))
	for _, l := range iceLinks(servers) {
		h.Add("Link", l)
	}
}

// iceLinks renders ICE servers as RFC 9725 §4.6 Link header values.
func iceLinks(servers []protocol.ICEServer) []string {
	var out []string
	for _, is := range servers {
		for _, u := range is.URLs {
			if u == "" || strings.ContainsAny(u, "<> \t\r\n") {
				continue
			}
			v := "<" + u + `>; rel="ice-server"`
			if is.Username != "" || is.Credential != "" {
				user, okU := quoteParam(is.Username)
				cred, okC := quoteParam(is.Credential)
				if !okU || !okC {
					continue
				}
				v += "; username=" + user + "; credential=" + cred + `; credential-type="password"`
			}
			out = append(out, v)
		}
	}
	return out
}

// quoteParam makes an HTTP quoted-string; it fails on control characters.
func quoteParam(s string) (string, bool) {
	if strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
		return "", false
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`, true
}

var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newWHIPID returns an unguessable session id (128 random bits).
func newWHIPID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return lowerBase32.EncodeToString(b)
}

// newETag returns a fresh strong entity tag for an ICE session.
func newETag() string {
	b := make([]byte, 9)
	_, _ = rand.Read(b)
	return `"` + lowerBase32.EncodeToString(b) + `"`
}

// requestHost is the host name (without port) the client used.
func requestHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		return strings.Trim(h, "[]")
	}
	return strings.Trim(r.Host, "[]")
}
