package accounts

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tandemcall/tandem/internal/store"
)

// Signing in with an identity provider a deployment already has
// (Authentik, Keycloak, a company's SSO), by OpenID Connect's
// authorization code flow with PKCE: the browser goes to the provider and
// comes back to /api/v1/account/oidc/callback, where the code is traded
// for an ID token whose subject is the person. Someone signing in for the
// first time gets an account (the first person on the server is its
// owner). The new device's sign-in is handed to the page under a one-time
// code in the address's fragment, never the credential itself.

// OIDCConfig is an identity provider.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// Name is what the sign-in button calls it ("Company SSO").
	Name string
}

// oidcState is what a sign-in with the provider keeps between its start
// and the provider's answer, and then for the page to collect.
type oidcState struct {
	Verifier string    `json:"verifier,omitempty"`
	Nonce    string    `json:"nonce,omitempty"`
	Base     string    `json:"base,omitempty"`   // the address the page came from
	Device   string    `json:"device,omitempty"` // its name for the new device
	SignedIn *SignedIn `json:"signed_in,omitempty"`
}

// oidcClient is the provider, discovered on first use.
type oidcClient struct {
	mu       sync.Mutex
	provider *oidc.Provider
}

func (s *Service) oidcProvider(ctx context.Context) (*oidc.Provider, error) {
	s.oidc.mu.Lock()
	defer s.oidc.mu.Unlock()
	if s.oidc.provider == nil {
		p, err := oidc.NewProvider(ctx, s.cfg.OIDC.Issuer)
		if err != nil {
			return nil, fmt.Errorf("the identity provider %s cannot be reached: %w", s.cfg.OIDC.Issuer, err)
		}
		s.oidc.provider = p
	}
	return s.oidc.provider, nil
}

// OIDCName is the identity provider's name for the sign-in button; ""
// when none is configured.
func (s *Service) OIDCName() string {
	if s.cfg.OIDC.Issuer == "" {
		return ""
	}
	return s.cfg.OIDC.Name
}

func (s *Service) oauth(p *oidc.Provider, base string) *oauth2.Config {
	return &oauth2.Config{ClientID: s.cfg.OIDC.ClientID, ClientSecret: s.cfg.OIDC.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: base + "/api/v1/account/oidc/callback", Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
}

// StartOIDC returns where to send the browser to sign in with the
// provider; base is the address the page came from.
func (s *Service) StartOIDC(ctx context.Context, base, device string) (string, error) {
	p, err := s.oidcProvider(ctx)
	if err != nil {
		return "", err
	}
	base = strings.TrimRight(cmp.Or(s.cfg.PublicURL, base), "/")
	st := oidcState{Verifier: oauth2.GenerateVerifier(), Nonce: secret(18), Base: base, Device: device}
	b, _ := json.Marshal(ceremony{Kind: "oidc", Data: mustJSON(st)})
	state := secret(18)
	if err := s.store.PutCeremony(ctx, state, b, s.now().Add(ceremonyTTL*2)); err != nil {
		return "", err
	}
	return s.oauth(p, base).AuthCodeURL(state, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), nil
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// ErrOIDC is a sign-in with the provider that did not work out.
var ErrOIDC = errors.New("the sign-in with your identity provider did not work")

// FinishOIDCCallback takes the provider's answer, signs the person in on
// a new device, and returns where to send the browser: the page with a
// one-time code to collect the sign-in, or with the reason it failed.
func (s *Service) FinishOIDCCallback(ctx context.Context, q url.Values) (redirect string) {
	st, base, err := s.oidcCallback(ctx, q)
	if base == "" {
		base = s.cfg.PublicURL
	}
	if err != nil {
		s.metrics.signIn("oidc", "refused")
		s.log.Info("identity provider sign-in refused", "err", err)
		return base + "/#signin-error=" + url.QueryEscape(err.Error())
	}
	code := secret(18)
	b, _ := json.Marshal(ceremony{Kind: "oidc-done", Data: mustJSON(st)})
	if err := s.store.PutCeremony(ctx, code, b, s.now().Add(ceremonyTTL)); err != nil {
		return base + "/#signin-error=" + url.QueryEscape("the server could not keep your sign-in; try again")
	}
	s.metrics.signIn("oidc", "ok")
	return base + "/#signin=" + code
}

func (s *Service) oidcCallback(ctx context.Context, q url.Values) (oidcState, string, error) {
	c, err := s.takeCeremony(ctx, q.Get("state"), "oidc")
	if err != nil {
		return oidcState{}, "", ErrCeremony
	}
	var st oidcState
	if err := json.Unmarshal(c.Data, &st); err != nil {
		return oidcState{}, "", ErrCeremony
	}
	if e := q.Get("error"); e != "" {
		return st, st.Base, fmt.Errorf("%w: the provider said %s", ErrOIDC, truncate(e, 60))
	}
	p, err := s.oidcProvider(ctx)
	if err != nil {
		return st, st.Base, err
	}
	tok, err := s.oauth(p, st.Base).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		return st, st.Base, fmt.Errorf("%w: the code was not accepted", ErrOIDC)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: s.cfg.OIDC.ClientID}).Verify(ctx, raw)
	if err != nil || idt.Nonce != st.Nonce {
		return st, st.Base, fmt.Errorf("%w: its answer did not verify", ErrOIDC)
	}
	var claims struct {
		Name              string `json:"name"`
		GivenName         string `json:"given_name"`
		PreferredUsername string `json:"preferred_username"`
		Email             string `json:"email"`
	}
	_ = idt.Claims(&claims)
	if claims.Name == "" && claims.GivenName == "" {
		if ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
			_ = ui.Claims(&claims)
		}
	}
	person, err := s.oidcPerson(ctx, idt.Subject, firstOf(claims.Name, claims.GivenName, claims.PreferredUsername, strings.Split(claims.Email, "@")[0], "Someone"))
	if err != nil {
		return st, st.Base, err
	}
	in, err := s.newDevice(ctx, person, st.Device)
	if err != nil {
		return st, st.Base, err
	}
	st.SignedIn = &in
	st.Verifier, st.Nonce = "", ""
	return st, st.Base, nil
}

// oidcPerson is whom the provider's subject signs in as: their person, or
// a new one on the first sign-in.
func (s *Service) oidcPerson(ctx context.Context, subject, name string) (store.Person, error) {
	issuer := s.cfg.OIDC.Issuer
	if user, err := s.store.SubjectUser(ctx, issuer, subject); err == nil {
		return s.active(ctx, user)
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Person{}, err
	}
	if len([]rune(name)) > 64 {
		name = string([]rune(name)[:64])
	}
	name, err := cleanName(name)
	if err != nil {
		name = "Someone"
	}
	role := store.RoleMember
	if people, err := s.store.People(ctx); err == nil && len(people) == 0 {
		role = store.RoleOwner // the server's first person sets it up
	}
	id, err := s.freeID(ctx, name)
	if err != nil {
		return store.Person{}, err
	}
	p := store.Person{ID: id, Name: name, Role: role, Created: s.now()}
	if err := s.store.CreatePerson(ctx, p); err != nil {
		return store.Person{}, err
	}
	if err := s.store.LinkSubject(ctx, issuer, subject, p.ID); err != nil {
		return store.Person{}, err
	}
	if err := s.store.TouchUser(ctx, p.ID); err != nil {
		return store.Person{}, err
	}
	s.welcomeToFamily(ctx, p.ID)
	s.log.Info("person created by their identity provider", "user", p.ID, "role", role)
	return p, nil
}

// CollectOIDC hands the page the sign-in its one-time code stands for.
func (s *Service) CollectOIDC(ctx context.Context, code string) (SignedIn, error) {
	c, err := s.takeCeremony(ctx, code, "oidc-done")
	if err != nil {
		return SignedIn{}, err
	}
	var st oidcState
	if err := json.Unmarshal(c.Data, &st); err != nil || st.SignedIn == nil {
		return SignedIn{}, ErrCeremony
	}
	return *st.SignedIn, nil
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// oidcRoutes adds the provider's sign-in to mux.
func (s *Service) oidcRoutes(mux *http.ServeMux, open func(string, func(http.ResponseWriter, *http.Request, []byte))) {
	if s.cfg.OIDC.Issuer == "" {
		return
	}
	open("GET /api/v1/account/oidc/start", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		device := strings.TrimSpace(r.URL.Query().Get("device"))
		to, err := s.StartOIDC(r.Context(), baseURL(r), device)
		if err != nil {
			s.log.Warn("identity provider sign-in not started", "err", err)
			http.Redirect(w, r, "/#signin-error="+url.QueryEscape("the identity provider cannot be reached now; try again shortly"), http.StatusFound)
			return
		}
		http.Redirect(w, r, to, http.StatusFound)
	})
	open("GET /api/v1/account/oidc/callback", func(w http.ResponseWriter, r *http.Request, _ []byte) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, s.FinishOIDCCallback(r.Context(), r.URL.Query()), http.StatusFound)
	})
	open("POST /api/v1/account/oidc/finish", func(w http.ResponseWriter, r *http.Request, body []byte) {
		var req struct {
			Code string `json:"code"`
		}
		if !decode(w, body, &req) {
			return
		}
		in, err := s.CollectOIDC(r.Context(), req.Code)
		s.reply(w, in, err)
	})
}
