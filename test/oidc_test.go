package test

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/tandemcall/tandem/internal/config"
)

// An identity provider for the tests: zitadel/oidc's OpenID Provider (a
// certified implementation) with its example login page and users, on a
// loopback port of the test's own. Its user "test-user@localhost" signs
// in with the password "verysecure".

// oidcProvider binds the provider's port and returns its issuer, and a
// function that registers Tandem's redirect URI and starts serving.
func oidcProvider(t *testing.T) (issuer string, serve func(redirect string)) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer = fmt.Sprintf("http://localhost:%d/", ln.Addr().(*net.TCPAddr).Port)
	return issuer, func(redirect string) {
		storage.RegisterClients(storage.WebClient("tandem", "tandem-client-secret", redirect))
		srv := &http.Server{Handler: exampleop.SetupServer(issuer, storage.NewStorage(storage.NewUserStore(issuer)), nil, false),
			ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
}

// oidcNode is a node whose people sign in with the test's provider.
func oidcNode(t *testing.T) *testServer {
	issuer, serve := oidcProvider(t)
	ts := startServer(t, func(c *config.Config) {
		c.Dev, c.Auth.Secret = false, "a-family-server-secret-of-32-bytes!"
		c.Accounts.OIDC = config.OIDCConfig{Issuer: issuer, ClientID: "tandem", ClientSecret: "tandem-client-secret", Name: "Company SSO"}
	})
	serve(localURL(ts) + "/api/v1/account/oidc/callback")
	return ts
}

// TestBrowserSignInWithIdentityProvider: a deployment with an identity
// provider. The first person to sign in with it gets an account (the
// server's owner); signing out and in again is the same person.
func TestBrowserSignInWithIdentityProvider(t *testing.T) {
	ts := oidcNode(t)
	b := newBrowser(t, "employee")
	b.do(20*time.Second, chromedp.Navigate(localURL(ts)+"/"))
	b.waitJS("the provider's button", `!document.querySelector('#oidc-signin').hidden && document.querySelector('#oidc-signin').textContent === 'Sign in with Company SSO'`, 15*time.Second)
	signIn := func() {
		b.click("#oidc-signin")
		b.waitJS("the provider's login page", `!!document.querySelector('input[name=username]')`, 15*time.Second)
		b.setValue("input[name=username]", "test-user@localhost")
		b.setValue("input[name=password]", "verysecure")
		b.do(10*time.Second, chromedp.Submit("input[name=password]"))
		b.waitJS("signed in with the provider", `location.host === `+fmt.Sprintf("%q", strings.TrimPrefix(localURL(ts), "http://"))+` && window.tandem && window.tandem.connected`, 20*time.Second)
	}
	signIn()
	if u := eval[string](b, `window.tandem.user`); u != "test-user" {
		t.Fatalf("signed in as %q", u)
	}
	if loc := eval[string](b, `location.href`); strings.Contains(loc, "signin=") {
		t.Fatalf("the one-time code stayed in the address: %s", loc)
	}
	b.click("#signout")
	b.waitJS("signed out", `window.tandem.state === 'signed-out'`, 10*time.Second)
	signIn()
	if u := eval[string](b, `window.tandem.user`); u != "test-user" {
		t.Fatalf("signed in again as %q, want the same person", u)
	}
}

// TestIdentityProviderRefusals: a callback with a state nobody started
// (forged, or replayed after use) signs nobody in, and says so.
func TestIdentityProviderRefusals(t *testing.T) {
	ts := oidcNode(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(ts.URL() + "/api/v1/account/oidc/callback?state=forged&code=anything")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.Fragment, "signin-error=") {
		t.Fatalf("a forged callback: %d to %s", resp.StatusCode, loc)
	}
	if st := apiCall(t, "POST", ts.URL()+"/api/v1/account/oidc/finish", "", map[string]string{"code": "made-up"}, nil); st != http.StatusGone {
		t.Fatalf("collecting a made-up sign-in: %d, want 410", st)
	}
}
