package accounts

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/skip2/go-qrcode"

	"github.com/tandemcall/tandem/internal/adminapi"
	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/internal/webpush"
)

// Verifier checks access tokens (with their revocations).
type Verifier interface {
	Verify(token string) (auth.Identity, error)
}

// maxBody bounds a request body: a WebAuthn answer is a few KiB.
const maxBody = 64 << 10

// openDoor is how often one address may knock on the doors that need no
// sign-in (invites, passkey ceremonies, pairing): a family signs in a few
// times a day; a script trying invites or codes is slowed to a crawl.
var openDoor = store.Rate{Every: 2 * time.Second, Burst: 30}

// Handler serves the accounts API under /api/v1/account/ (docs/protocol.md,
// "Accounts"). v checks the access tokens of the calls that need one.
func (s *Service) Handler(v Verifier) http.Handler {
	mux := http.NewServeMux()
	open := func(pattern string, f func(w http.ResponseWriter, r *http.Request, body []byte)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if !s.allowAddr(w, r) {
				return
			}
			body, ok := readBody(w, r)
			if !ok {
				return
			}
			f(w, r, body)
		})
	}
	signed := func(pattern string, f func(w http.ResponseWriter, r *http.Request, id auth.Identity, body []byte)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			id, ok := s.bearer(w, r, v)
			if !ok {
				return
			}
			body, ok := readBody(w, r)
			if !ok {
				return
			}
			f(w, r, id, body)
		})
	}

	open("POST /api/v1/account/invite", func(w http.ResponseWriter, r *http.Request, body []byte) {
		var req struct {
			Invite string `json:"invite"`
		}
		if !decode(w, body, &req) {
			return
		}
		info, err := s.CheckInvite(r.Context(), req.Invite)
		s.reply(w, info, err)
	})
	open("POST /api/v1/account/register/begin", func(w http.ResponseWriter, r *http.Request, body []byte) {
		var req struct {
			Invite string `json:"invite"`
			Name   string `json:"name"`
		}
		if !decode(w, body, &req) {
			return
		}
		b, err := s.BeginRegister(r.Context(), r, req.Invite, req.Name)
		s.reply(w, b, err)
	})
	// A ceremony's finish: the browser's answer, and the new device's name.
	finish := func(f func(ctx context.Context, r *http.Request, ceremony string, answer []byte, device string) (SignedIn, error)) func(http.ResponseWriter, *http.Request, []byte) {
		return func(w http.ResponseWriter, r *http.Request, body []byte) {
			var req struct {
				Ceremony   string          `json:"ceremony"`
				Credential json.RawMessage `json:"credential"`
				DeviceName string          `json:"device_name"`
			}
			if !decode(w, body, &req) {
				return
			}
			in, err := f(r.Context(), r, req.Ceremony, req.Credential, req.DeviceName)
			s.reply(w, in, err)
		}
	}
	open("POST /api/v1/account/register/finish", finish(s.FinishRegister))
	open("POST /api/v1/account/login/begin", func(w http.ResponseWriter, r *http.Request, body []byte) {
		b, err := s.BeginLogin(r.Context(), r)
		s.reply(w, b, err)
	})
	open("POST /api/v1/account/login/finish", finish(s.FinishLogin))
	open("POST /api/v1/account/token", func(w http.ResponseWriter, r *http.Request, body []byte) {
		var req struct {
			Credential string `json:"credential"`
		}
		if !decode(w, body, &req) {
			return
		}
		in, err := s.Token(r.Context(), req.Credential)
		s.reply(w, in, err)
	})
	open("POST /api/v1/account/pair/start", func(w http.ResponseWriter, r *http.Request, body []byte) {
		p, err := s.StartPairing(r.Context(), baseURL(r))
		s.reply(w, p, err)
	})
	// The QR code a new device shows: the link to approve it, which the
	// signed-in device opens with its camera app. Only a pairing code of
	// the right shape is drawn, so the endpoint draws nothing else.
	mux.HandleFunc("GET /api/v1/account/pair/qr", func(w http.ResponseWriter, r *http.Request) {
		code := normalCode(r.URL.Query().Get("code"))
		if len(code) != codeLen || strings.Trim(code, codeAlphabet) != "" {
			writeError(w, http.StatusBadRequest, "bad_request", "no such pairing code")
			return
		}
		png, err := qrcode.Encode(s.link(baseURL(r), "pair", code), qrcode.Medium, 320)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal", "the code could not be drawn")
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(png)
	})
	open("POST /api/v1/account/pair/finish", func(w http.ResponseWriter, r *http.Request, body []byte) {
		var req struct {
			Code   string `json:"code"`
			Secret string `json:"secret"`
		}
		if !decode(w, body, &req) {
			return
		}
		in, err := s.FinishPairing(r.Context(), req.Code, req.Secret)
		if errors.Is(err, ErrPairingPending) {
			w.WriteHeader(http.StatusAccepted)
			writeJSON(w, map[string]any{"pending": true, "message": err.Error()})
			return
		}
		s.reply(w, in, err)
	})

	s.oidcRoutes(mux, open)

	signed("PUT /api/v1/account/push", func(w http.ResponseWriter, r *http.Request, id auth.Identity, body []byte) {
		var req struct {
			Subscription *webpush.Subscription `json:"subscription"`
		}
		if !decode(w, body, &req) {
			return
		}
		if req.Subscription == nil {
			writeError(w, http.StatusBadRequest, "bad_request", ErrBadSubscription.Error())
			return
		}
		s.reply(w, map[string]bool{"push": true}, s.SetPush(r.Context(), id.User, id.Device, req.Subscription))
	})
	signed("DELETE /api/v1/account/push", func(w http.ResponseWriter, r *http.Request, id auth.Identity, _ []byte) {
		s.reply(w, map[string]bool{"push": false}, s.SetPush(r.Context(), id.User, id.Device, nil))
	})
	open("POST /api/v1/account/push/decline", func(w http.ResponseWriter, r *http.Request, body []byte) {
		var req struct {
			Credential string `json:"credential"`
			CallID     string `json:"call_id"`
		}
		if !decode(w, body, &req) {
			return
		}
		s.reply(w, map[string]bool{"declined": true}, s.DeclineByCredential(r.Context(), req.Credential, req.CallID))
	})

	signed("POST /api/v1/account/pair/approve", func(w http.ResponseWriter, r *http.Request, id auth.Identity, body []byte) {
		var req struct {
			Code       string `json:"code"`
			DeviceName string `json:"device_name"`
		}
		if !decode(w, body, &req) {
			return
		}
		s.reply(w, map[string]bool{"approved": true}, s.ApprovePairing(r.Context(), id.User, req.Code, req.DeviceName))
	})
	signed("GET /api/v1/account/me", func(w http.ResponseWriter, r *http.Request, id auth.Identity, _ []byte) {
		p, err := s.active(r.Context(), id.User)
		s.reply(w, map[string]any{"user": p.ID, "name": p.Name, "role": p.Role, "device": id.Device,
			"can_invite": p.Role != store.RoleMember || p.CanInvite}, err)
	})
	signed("GET /api/v1/account/devices", func(w http.ResponseWriter, r *http.Request, id auth.Identity, _ []byte) {
		ds, err := s.Devices(r.Context(), id.User)
		type view struct {
			ID       string    `json:"id"`
			Name     string    `json:"name"`
			Created  time.Time `json:"created"`
			LastUsed time.Time `json:"last_used"`
			This     bool      `json:"this,omitempty"`
		}
		out := make([]view, 0, len(ds))
		for _, d := range ds {
			out = append(out, view{ID: d.ID, Name: d.Name, Created: d.Created, LastUsed: d.LastUsed, This: d.ID == id.Device})
		}
		s.reply(w, map[string]any{"devices": out}, err)
	})
	signed("DELETE /api/v1/account/devices/{id}", func(w http.ResponseWriter, r *http.Request, id auth.Identity, _ []byte) {
		err := s.RemoveDevice(r.Context(), id.User, id.User, r.PathValue("id"))
		s.reply(w, map[string]bool{"removed": true}, err)
	})
	signed("POST /api/v1/account/invites", func(w http.ResponseWriter, r *http.Request, id auth.Identity, body []byte) {
		var req struct {
			For      string `json:"for"`
			Uses     int    `json:"uses"`
			TTLHours int    `json:"ttl_hours"`
		}
		if !decode(w, body, &req) {
			return
		}
		link, inv, err := s.CreateInvite(r.Context(), id.User, InviteOptions{For: req.For, Uses: req.Uses,
			TTL: time.Duration(req.TTLHours) * time.Hour}, baseURL(r))
		s.reply(w, map[string]any{"link": link, "expires_at": inv.Expires, "uses": inv.Uses, "for": inv.For}, err)
	})
	signed("GET /api/v1/account/contacts", func(w http.ResponseWriter, r *http.Request, id auth.Identity, _ []byte) {
		cs, err := s.Contacts(r.Context(), id.User)
		s.reply(w, map[string]any{"contacts": cs}, err)
	})
	// A picture is uploaded as the request's body (PUT), at most
	// MaxAvatarBytes; it is served to its person and their contacts.
	mux.HandleFunc("PUT /api/v1/account/avatar", func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.bearer(w, r, v)
		if !ok {
			return
		}
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxAvatarBytes))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", ErrAvatar.Error())
			return
		}
		s.reply(w, map[string]bool{"avatar": true}, s.SetAvatar(r.Context(), id.User, b))
	})
	signed("DELETE /api/v1/account/avatar", func(w http.ResponseWriter, r *http.Request, id auth.Identity, _ []byte) {
		s.reply(w, map[string]bool{"avatar": false}, s.SetAvatar(r.Context(), id.User, nil))
	})
	signed("GET /api/v1/account/avatar/{user}", func(w http.ResponseWriter, r *http.Request, id auth.Identity, _ []byte) {
		b, err := s.Avatar(r.Context(), id.User, r.PathValue("user"))
		if err != nil {
			s.reply(w, nil, err)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "private, max-age=300")
		w.Header().Set("Content-Security-Policy", "default-src 'none'")
		_, _ = w.Write(b)
	})
	signed("GET /api/v1/account/contacts/requests", func(w http.ResponseWriter, r *http.Request, id auth.Identity, _ []byte) {
		rs, err := s.ContactRequests(r.Context(), id.User)
		s.reply(w, map[string]any{"requests": rs}, err)
	})
	signed("POST /api/v1/account/contacts/requests", func(w http.ResponseWriter, r *http.Request, id auth.Identity, body []byte) {
		var req struct {
			User string `json:"user"`
		}
		if !decode(w, body, &req) {
			return
		}
		added, err := s.RequestContact(r.Context(), id.User, strings.TrimSpace(req.User))
		state := "requested"
		if added {
			state = "added"
		}
		s.reply(w, map[string]string{"state": state}, err)
	})
	signed("POST /api/v1/account/contacts/requests/{user}/accept", func(w http.ResponseWriter, r *http.Request, id auth.Identity, _ []byte) {
		s.reply(w, map[string]bool{"added": true}, s.AcceptContact(r.Context(), id.User, r.PathValue("user")))
	})
	signed("DELETE /api/v1/account/contacts/requests/{user}", func(w http.ResponseWriter, r *http.Request, id auth.Identity, _ []byte) {
		s.reply(w, map[string]bool{"declined": true}, s.DeclineContact(r.Context(), id.User, r.PathValue("user")))
	})
	mux.HandleFunc("/api/v1/account/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	return mux
}

// bearer is the identity of the request's access token, or false with
// the answer written.
func (s *Service) bearer(w http.ResponseWriter, r *http.Request, v Verifier) (auth.Identity, bool) {
	tok, ok := auth.BearerToken(r.Header.Get("Authorization"))
	if !ok {
		writeError(w, http.StatusUnauthorized, "unauthorized", "sign in first: send Authorization: Bearer <access token>")
		return auth.Identity{}, false
	}
	id, err := v.Verify(tok)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "unauthorized", "the access token is not valid; get a new one")
		return auth.Identity{}, false
	}
	return id, true
}

// allowAddr rate-limits the open doors per client address.
func (s *Service) allowAddr(w http.ResponseWriter, r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	d, err := s.store.Allow(ctx, "account-open:"+host, openDoor, s.now())
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the server cannot reach its store; try again shortly")
		return false
	}
	if !d.Allowed {
		w.Header().Set("Retry-After", strconv.Itoa(int(d.RetryAfter/time.Second)+1))
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many attempts: wait a little and try again")
		return false
	}
	return true
}

// reply writes v, or err as the error a person is told.
func (s *Service) reply(w http.ResponseWriter, v any, err error) {
	if err == nil {
		writeJSON(w, v)
		return
	}
	var retry *RetryError
	switch {
	case errors.As(err, &retry):
		w.Header().Set("Retry-After", strconv.Itoa(int(retry.After/time.Second)+1))
		writeError(w, http.StatusTooManyRequests, "rate_limited", err.Error())
	case errors.Is(err, ErrInviteInvalid), errors.Is(err, ErrPairingUnknown), errors.Is(err, ErrNoSuchPerson), errors.Is(err, ErrNoRequest):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, ErrInviteExpired), errors.Is(err, ErrInviteUsedUp), errors.Is(err, ErrCeremony):
		writeError(w, http.StatusGone, "gone", err.Error())
	case errors.Is(err, ErrNotSignedIn), errors.Is(err, ErrPasskey), errors.Is(err, ErrOIDC):
		writeError(w, http.StatusUnauthorized, "unauthorized", err.Error())
	case errors.Is(err, ErrDisabled), errors.Is(err, ErrForbidden):
		writeError(w, http.StatusForbidden, "forbidden", err.Error())
	case errors.Is(err, ErrHostName):
		writeError(w, http.StatusMisdirectedRequest, "host_name_needed", err.Error())
	case errors.Is(err, ErrBadSubscription):
		writeError(w, http.StatusBadRequest, "bad_subscription", err.Error())
	case errors.Is(err, ErrNoPush):
		writeError(w, http.StatusNotImplemented, "no_push", err.Error())
	case errors.Is(err, ErrCallGone):
		writeError(w, http.StatusGone, "gone", err.Error())
	case errors.Is(err, ErrNoAvatar):
		writeError(w, http.StatusNotFound, "not_found", "no picture: show their initials")
	case errors.Is(err, ErrAvatar):
		writeError(w, http.StatusUnsupportedMediaType, "bad_picture", err.Error())
	case errors.Is(err, ErrBadName), errors.Is(err, ErrBadRole), errors.Is(err, ErrSelf):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such device")
	case errors.Is(err, store.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the server cannot reach its store; try again shortly")
	default:
		s.log.Error("account request failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", "the server failed on this request")
	}
}

// baseURL is the address a request came to, for links when no public URL
// is set.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Method == http.MethodGet || r.Method == http.MethodDelete {
		return nil, true
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "the request body is too large")
		return nil, false
	}
	return b, true
}

func decode(w http.ResponseWriter, body []byte, v any) bool {
	if len(body) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "the body must be a JSON object as docs/protocol.md says")
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	// The shape of every Tandem API error (docs/protocol.md, "HTTP API").
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// AdminHandler serves the accounts' part of the admin API, for tokens
// with the admin grant (docs/operations.md, "Admin API"): invites, and
// people and their devices.
func (s *Service) AdminHandler(v Verifier) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/admin/invites", func(w http.ResponseWriter, r *http.Request) {
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		var req adminapi.InviteRequest
		if !decode(w, body, &req) {
			return
		}
		link, inv, err := s.CreateInvite(r.Context(), "", InviteOptions{For: req.For, Uses: req.Uses,
			TTL: time.Duration(req.TTLHours) * time.Hour, Owner: req.Owner}, baseURL(r))
		s.reply(w, adminapi.InviteAnswer{Link: link, ExpiresAt: inv.Expires, Uses: inv.Uses, For: inv.For, Role: inv.Role}, err)
	})
	mux.HandleFunc("GET /api/v1/admin/people", func(w http.ResponseWriter, r *http.Request) {
		people, err := s.store.People(r.Context())
		out := make([]adminapi.PersonView, 0, len(people))
		for _, p := range people {
			if err != nil {
				break
			}
			v := adminapi.PersonView{ID: p.ID, Name: p.Name, Role: p.Role, Disabled: p.Disabled, CanInvite: p.CanInvite,
				Created: p.Created, Devices: []adminapi.DeviceView{}}
			var ds []store.Device
			ds, err = s.store.Devices(r.Context(), p.ID)
			for _, d := range ds {
				v.Devices = append(v.Devices, adminapi.DeviceView{ID: d.ID, Name: d.Name, Created: d.Created, LastUsed: d.LastUsed})
			}
			out = append(out, v)
		}
		s.reply(w, map[string]any{"people": out}, err)
	})
	mux.HandleFunc("PATCH /api/v1/admin/people/{user}", func(w http.ResponseWriter, r *http.Request) {
		body, ok := readBody(w, r)
		if !ok {
			return
		}
		var req adminapi.PersonChange
		if !decode(w, body, &req) {
			return
		}
		p, err := s.UpdatePerson(r.Context(), r.PathValue("user"), req.Disabled, req.Role, req.CanInvite)
		s.reply(w, adminapi.PersonView{ID: p.ID, Name: p.Name, Role: p.Role, Disabled: p.Disabled, CanInvite: p.CanInvite, Created: p.Created}, err)
	})
	mux.HandleFunc("DELETE /api/v1/admin/people/{user}/devices/{device}", func(w http.ResponseWriter, r *http.Request) {
		err := s.removeDevice(r.Context(), r.PathValue("user"), r.PathValue("device"), "admin")
		s.reply(w, map[string]bool{"removed": true}, err)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := auth.BearerToken(r.Header.Get("Authorization"))
		if !ok {
			writeError(w, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <admin token>")
			return
		}
		id, err := v.Verify(tok)
		if err != nil {
			writeError(w, http.StatusUnauthorized, "unauthorized", "the access token is not valid")
			return
		}
		if !id.Has(auth.GrantAdmin) {
			writeError(w, http.StatusForbidden, "forbidden", "this token has no admin grant")
			return
		}
		mux.ServeHTTP(w, r)
	})
}
