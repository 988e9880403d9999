package test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandemcall/tandem/internal/config"
)

// TestBrowserSignInLinkAsksBeforeSwitchingUser: a sign-in link for
// someone else does not silently replace the signed-in user. Opened in a
// new page load or in the open page, it asks first; "stay" keeps the user,
// "sign in" switches; a link for the same user and device just refreshes
// the token without asking.
func TestBrowserSignInLinkAsksBeforeSwitchingUser(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Dev = false
		c.Auth.Secret = "an-app-backend-secret-of-32-bytes!!"
	})
	mint := func(user string, ttl time.Duration) string {
		tok, _, err := ts.Authority().Mint(user, "laptop", nil, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	b := newBrowser(t, "shared-laptop")
	who := func() string { return eval[string](b, `window.tandem.user || ''`) }
	question := func() string {
		b.waitJS("the switch question", `!document.querySelector('#switch-user').hidden`, 15*time.Second)
		return eval[string](b, `document.querySelector('#switch-user-text').textContent`)
	}
	storedToken := func() string {
		return eval[string](b, `JSON.parse(localStorage.getItem('tandem.auth') || '{}').token || ''`)
	}

	b.do(20*time.Second, chromedp.Navigate(ts.URL()+"/#token="+mint("alice", time.Hour)))
	b.state("idle", 15*time.Second)
	b.waitJS("alice online", `window.tandem.user === 'alice' && window.tandem.connected`, 15*time.Second)

	// A new page load with Bob's link: asked, and Alice stays.
	bob := mint("bob", time.Hour)
	b.do(20*time.Second, chromedp.Navigate(ts.URL()+"/?from=app#token="+bob))
	if q := question(); q != "You are signed in as alice. Sign in as bob instead?" {
		t.Fatalf("asked %q", q)
	}
	if s := eval[string](b, `window.tandem.state`); s != "signed-out" || who() != "" {
		t.Fatalf("signed in as %q (state %s) before the answer", who(), s)
	}
	b.click("#switch-user-no")
	b.state("idle", 15*time.Second)
	b.waitJS("alice online again", `window.tandem.user === 'alice' && window.tandem.connected`, 15*time.Second)
	if u := eval[string](b, `location.href`); strings.Contains(u, bob) {
		t.Errorf("token left in the address bar: %s", u)
	}

	// The same link opened in the page: asked again, and this time Bob
	// signs in.
	eval[bool](b, fmt.Sprintf(`(() => { location.hash = 'token=%s'; return true })()`, bob))
	if q := question(); !strings.Contains(q, "Sign in as bob instead?") {
		t.Fatalf("asked %q", q)
	}
	if who() != "alice" {
		t.Fatalf("switched to %q before the answer", who())
	}
	b.click("#switch-user-yes")
	b.waitJS("bob online", `window.tandem.user === 'bob' && window.tandem.connected`, 15*time.Second)

	// A fresh link for Bob on this laptop: no question, the new token is
	// kept, the session stays.
	fresh := mint("bob", 2*time.Hour)
	eval[bool](b, fmt.Sprintf(`(() => { location.hash = 'token=%s'; return true })()`, fresh))
	b.waitJS("the fresh token stored", fmt.Sprintf(`JSON.parse(localStorage.getItem('tandem.auth') || '{}').token === %q`, fresh), 10*time.Second)
	if open := eval[bool](b, `!document.querySelector('#switch-user').hidden`); open || who() != "bob" {
		t.Fatalf("same user's link: question shown %v, user %q", open, who())
	}
	// And on a new page load.
	fresher := mint("bob", 3*time.Hour)
	b.do(20*time.Second, chromedp.Navigate(ts.URL()+"/?again=1#token="+fresher))
	b.waitJS("bob online with the newer token", fmt.Sprintf(`window.tandem.user === 'bob' && window.tandem.connected && JSON.parse(localStorage.getItem('tandem.auth') || '{}').token === %q`, fresher), 15*time.Second)
	if open := eval[bool](b, `!document.querySelector('#switch-user').hidden`); open {
		t.Fatal("asked before refreshing the same user's token")
	}
	if storedToken() != fresher {
		t.Fatal("the newer token was not kept")
	}
}

// TestBrowserSignInNamesTheDevice: the sign-in page proposes a device name
// from the platform, so that a family's devices do not all start as the
// same word: this Linux desktop is "linux-pc", an iPhone "iphone", an
// Android tablet "android-tablet". A new user's history says it is loading,
// then that there are no calls yet.
func TestBrowserSignInNamesTheDevice(t *testing.T) {
	ts := startServer(t, nil)
	for _, tc := range []struct{ ua, want string }{
		{"", "linux-pc"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", "iphone"},
		{"Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "android-tablet"},
	} {
		var extra []chromedp.ExecAllocatorOption
		if tc.ua != "" {
			extra = append(extra, chromedp.UserAgent(tc.ua))
		}
		b := newBrowser(t, tc.want, extra...)
		b.do(20*time.Second, chromedp.Navigate(ts.URL()+"/"))
		b.waitJS("sign-in form", `!!document.querySelector('#signin-device') && document.querySelector('#signin-device').offsetParent !== null`, 15*time.Second)
		if got := eval[string](b, `document.querySelector('#signin-device').value`); got != tc.want {
			t.Errorf("with user agent %q the proposed device name is %q, want %q", tc.ua, got, tc.want)
		}
		if tc.ua == "" {
			if got := eval[string](b, `document.querySelector('#history-empty').textContent`); !strings.Contains(got, "Loading") {
				t.Errorf("before the history loaded it says %q", got)
			}
			b.setValue("#signin-user", "dora")
			b.click("#signin-submit")
			b.waitJS("an empty history", `document.querySelector('#history-empty').textContent.startsWith('No calls yet') && !document.querySelector('#history-empty').hidden`, 15*time.Second)
		}
	}
}
