package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/tandemcall/tandem/internal/config"
)

// withPasskeys gives b's page a virtual platform authenticator that keeps
// passkeys (as a phone or laptop does) and passes user verification.
func (b *browser) withPasskeys() {
	b.t.Helper()
	b.do(10*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
			Options: &webauthn.VirtualAuthenticatorOptions{
				Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
				Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true,
				HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
			}})
		return err
	}))
}

// localURL is a node's web client at localhost: a passkey's relying party
// is a host name, never an address.
func localURL(ts *testServer) string {
	return strings.Replace(ts.URL(), "127.0.0.1", "localhost", 1)
}

// accountNode is a node with built-in accounts and no dev sign-in, on
// dataDir.
func accountNode(t *testing.T, dataDir string) *testServer {
	return startServer(t, func(c *config.Config) {
		c.Dev = false
		c.Auth.Secret = "a-family-server-secret-of-32-bytes!"
		c.DataDir = dataDir
	})
}

// join opens an invite link in b, names the person, and waits until they
// are signed in with a passkey.
func (b *browser) join(link, name string) {
	b.t.Helper()
	b.do(20*time.Second, chromedp.Navigate(link))
	b.waitJS("the join page", `!document.querySelector('#screen-join').hidden && !document.querySelector('#join-submit').disabled`, 15*time.Second)
	b.setValue("#join-name", name)
	b.click("#join-submit")
	b.waitJS(name+" signed in", `window.tandem.connected && window.tandem.state === 'idle'`, 20*time.Second)
}

// makeInvite makes an invite link for forName from b's page, as its
// person does under "Your devices and invites".
func (b *browser) makeInvite(forName string) string {
	b.t.Helper()
	if !eval[bool](b, `document.querySelector('#account-box').open`) {
		b.click("#account-box summary")
	}
	b.setValue("#invite-for", forName)
	b.click("#invite-create")
	b.waitJS("the invite link", `document.querySelector('#invite-link').value.includes('#invite=')`, 10*time.Second)
	return eval[string](b, `document.querySelector('#invite-link').value`)
}

// TestBrowserFamilySignsUp: a family sets a server up with nothing but
// the server. The first-run link makes Mom the owner with a passkey; she
// invites Grandpa, who registers his own; each is the other's contact and
// they call each other from it. Grandpa adds a tablet by approving the
// code it shows, then removes it: the tablet is signed out at once and
// its credential is refused. After a restart both sign in again with
// their passkeys.
func TestBrowserFamilySignsUp(t *testing.T) {
	dataDir := t.TempDir()
	ts := accountNode(t, dataDir)
	setup := ts.SetupLink()
	if !strings.Contains(setup, "#invite=") {
		t.Fatalf("no setup link on first start: %q", setup)
	}
	mom := newBrowser(t, "mom")
	mom.withPasskeys()
	mom.join(strings.Replace(setup, "127.0.0.1", "localhost", 1), "Mom")
	if u := eval[string](mom, `window.tandem.user`); u != "mom" {
		t.Fatalf("the owner is %q", u)
	}

	// Mom invites Grandpa from her devices and invites.
	invite := mom.makeInvite("Grandpa")

	// No back-forward cache: leaving the page closes Tandem, as closing
	// the tab does.
	grandpa := newBrowser(t, "grandpa", chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns,BackForwardCache"))
	grandpa.withPasskeys()
	grandpa.do(20*time.Second, chromedp.Navigate(strings.Replace(invite, "127.0.0.1", "localhost", 1)))
	grandpa.waitJS("his name proposed", `document.querySelector('#join-name').value === 'Grandpa' && document.querySelector('#join-text').textContent.includes('Mom invited you')`, 15*time.Second)
	grandpa.click("#join-submit")
	grandpa.waitJS("grandpa signed in", `window.tandem.connected && window.tandem.user === 'grandpa'`, 20*time.Second)
	grandpa.waitJS("Mom among his people", `[...document.querySelectorAll('#contacts li')].some((li) => li.dataset.user === 'mom')`, 10*time.Second)

	// Mom's page lists him at once, available, without a reload.
	mom.waitJS("Grandpa among her people, available", `document.querySelector('#contacts li[data-user="grandpa"]')?.dataset.presence === 'available'`, 10*time.Second)
	grandpa.waitJS("Mom available", `window.tandem.presence.mom === 'available'`, 10*time.Second)

	// The invite was for one person: opened again, it is refused.
	carol := newBrowser(t, "carol")
	carol.withPasskeys()
	carol.do(20*time.Second, chromedp.Navigate(strings.Replace(invite, "127.0.0.1", "localhost", 1)))
	carol.waitJS("the used invite refused", `document.querySelector('#join-error').textContent.includes('has been used')`, 15*time.Second)
	// Carol joins from the operator's invite: nobody's contact, she sees
	// nobody's presence.
	carol.join(strings.Replace(adminInvite(t, ts), "127.0.0.1", "localhost", 1), "Carol")

	// Mom calls Grandpa from her people; Grandpa's page shows her in a call.
	mom.click(`#contacts li[data-user="grandpa"] button[data-act="audio"]`)
	grandpa.waitJS("the call ringing", `!document.querySelector('#incoming').hidden`, 15*time.Second)
	grandpa.click("#accept")
	mom.state("in-call", 20*time.Second)
	grandpa.state("in-call", 20*time.Second)
	grandpa.waitJS("Mom in a call", `window.tandem.presence.mom === 'in_call'`, 10*time.Second)
	mom.click("#hangup")
	grandpa.state("idle", 15*time.Second)
	grandpa.waitJS("Mom available again", `window.tandem.presence.mom === 'available'`, 10*time.Second)
	if seen := eval[string](carol, `JSON.stringify(window.tandem.presence)`); seen != "{}" {
		t.Fatalf("Carol, nobody's contact, was told %s", seen)
	}

	// A tablet without passkeys is added by Grandpa approving its code.
	tablet := newBrowser(t, "tablet")
	tablet.do(20*time.Second, chromedp.Navigate(localURL(ts)+"/"))
	tablet.waitJS("the signed-out page", `!document.querySelector('#account-signin').hidden`, 15*time.Second)
	tablet.click("#pair-start")
	tablet.waitJS("its code", `document.querySelector('#pair-code').textContent.length >= 8 && document.querySelector('#pair-qr').naturalWidth > 0`, 15*time.Second)
	code := eval[string](tablet, `document.querySelector('#pair-code').textContent`)
	grandpa.click("#account-box summary")
	grandpa.setValue("#pair-approve-code", code)
	grandpa.setValue("#pair-approve-name", "Tablet")
	grandpa.click("#pair-approve")
	tablet.waitJS("the tablet signed in as grandpa", `window.tandem.connected && window.tandem.user === 'grandpa'`, 20*time.Second)
	cred := eval[string](tablet, `JSON.parse(localStorage.getItem('tandem.auth')).credential`)
	tabletID := eval[string](tablet, `window.tandem.device`)

	// Grandpa removes it: signed out at once, its credential refused.
	grandpa.waitJS("the tablet in his devices", fmt.Sprintf(`!!document.querySelector('#device-list li[data-device=%q] button')`, tabletID), 15*time.Second)
	grandpa.click(fmt.Sprintf(`#device-list li[data-device=%q] button`, tabletID))
	tablet.waitJS("the tablet signed out", `window.tandem.state === 'signed-out' && !window.tandem.connected`, 10*time.Second)
	if st := apiCall(t, "POST", ts.URL()+"/api/v1/account/token", "", map[string]string{"credential": cred}, nil); st != http.StatusUnauthorized {
		t.Fatalf("the removed tablet's credential got %d, want 401", st)
	}

	// Mom sets her picture.
	pic := filepath.Join(t.TempDir(), "mom.png")
	var buf bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 600, 400))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pic, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	mom.do(10*time.Second, chromedp.SetUploadFiles("#avatar-file", []string{pic}))
	mom.waitJS("her picture set", `document.querySelector('#account-status').textContent.startsWith('Your picture is set')`, 10*time.Second)

	// Grandpa closes Tandem: Mom sees him offline, last seen just now.
	grandpa.do(10*time.Second, chromedp.Navigate("about:blank"))
	mom.waitJS("Grandpa offline", `document.querySelector('#contacts li[data-user="grandpa"]')?.dataset.presence === 'offline' && document.querySelector('#contacts li[data-user="grandpa"] .contact-presence').textContent === 'Last seen just now'`, 10*time.Second)

	// A restart: the same data, another port (another origin, so the
	// pages hold nothing), and each signs in with their passkey.
	ts.stop(t)
	ts = accountNode(t, dataDir)
	if ts.SetupLink() != "" {
		t.Fatal("a setup link was made again though the server has an owner")
	}
	for _, b := range []*browser{mom, grandpa} {
		b.do(20*time.Second, chromedp.Navigate(localURL(ts)+"/"))
		b.waitJS("the passkey button", `!document.querySelector('#account-signin').hidden`, 15*time.Second)
		b.click("#passkey-signin")
		b.waitJS("signed in again", `window.tandem.connected && window.tandem.state === 'idle'`, 20*time.Second)
	}
	if u := eval[string](mom, `window.tandem.user`) + " " + eval[string](grandpa, `window.tandem.user`); u != "mom grandpa" {
		t.Fatalf("signed in again as %q", u)
	}
	// Grandpa's page shows her picture, not her initials.
	grandpa.waitJS("Mom's picture", `document.querySelector('#contacts li[data-user="mom"] .avatar img')?.naturalWidth === 256`, 15*time.Second)
}

// adminInvite makes an invite link with the node's admin API, as
// `tandem admin invite` does.
func adminInvite(t *testing.T, ts *testServer) string {
	t.Helper()
	tok, _, err := ts.Authority().Mint("ops", "cli", []string{"admin"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", ts.URL()+"/api/v1/admin/invites", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct {
		Link string `json:"link"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || a.Link == "" {
		t.Fatalf("admin invite: %d %v", resp.StatusCode, err)
	}
	return a.Link
}

// TestBrowserFamilyAcrossNodes: the same family on a deployment of three
// nodes sharing Redis, each person on another node: the owner set up on
// the first, her invitee on the second, his tablet on the third. Invite,
// contacts and presence, a call, the tablet's code approved from another
// node, and its removal signing it out on its own node.
func TestBrowserFamilyAcrossNodes(t *testing.T) {
	cfg := testConfig(t)
	cfg.Dev = false
	ts := startCluster(t, cfg, 3)
	node := func(i int) string {
		u := ts.URL()
		if i > 0 {
			u = ts.others[i-1].URL()
		}
		return strings.Replace(u, "127.0.0.1", "localhost", 1)
	}
	setup := ts.SetupLink()
	if setup == "" {
		t.Fatal("no setup link on the first node")
	}
	mom := newBrowser(t, "mom")
	mom.withPasskeys()
	mom.join(strings.Replace(setup, "127.0.0.1", "localhost", 1), "Mom")

	_, secret, _ := strings.Cut(mom.makeInvite("Grandpa"), "#invite=")

	grandpa := newBrowser(t, "grandpa")
	grandpa.withPasskeys()
	grandpa.join(node(1)+"/#invite="+secret, "Grandpa")
	mom.waitJS("Grandpa available, from another node", `document.querySelector('#contacts li[data-user="grandpa"]')?.dataset.presence === 'available'`, 15*time.Second)
	grandpa.waitJS("Mom available", `window.tandem.presence.mom === 'available'`, 10*time.Second)

	grandpa.click(`#contacts li[data-user="mom"] button[data-act="audio"]`)
	mom.waitJS("the call ringing", `!document.querySelector('#incoming').hidden`, 15*time.Second)
	mom.click("#accept")
	mom.state("in-call", 20*time.Second)
	grandpa.state("in-call", 20*time.Second)
	mom.waitJS("Grandpa in a call", `document.querySelector('#contacts li[data-user="grandpa"]')?.dataset.presence === 'in_call'`, 15*time.Second)
	grandpa.click("#hangup")
	mom.state("idle", 15*time.Second)
	mom.waitJS("Grandpa available again", `document.querySelector('#contacts li[data-user="grandpa"]')?.dataset.presence === 'available'`, 15*time.Second)

	tablet := newBrowser(t, "tablet")
	tablet.do(20*time.Second, chromedp.Navigate(node(2)+"/"))
	tablet.waitJS("the signed-out page", `!document.querySelector('#account-signin').hidden`, 15*time.Second)
	tablet.click("#pair-start")
	tablet.waitJS("its code", `document.querySelector('#pair-code').textContent.length >= 8`, 15*time.Second)
	code := eval[string](tablet, `document.querySelector('#pair-code').textContent`)
	grandpa.click("#account-box summary")
	grandpa.setValue("#pair-approve-code", code)
	grandpa.setValue("#pair-approve-name", "Tablet")
	grandpa.click("#pair-approve")
	tablet.waitJS("the tablet signed in as grandpa", `window.tandem.connected && window.tandem.user === 'grandpa'`, 20*time.Second)
	tabletID := eval[string](tablet, `window.tandem.device`)

	grandpa.waitJS("the tablet in his devices", fmt.Sprintf(`!!document.querySelector('#device-list li[data-device=%q] button')`, tabletID), 15*time.Second)
	grandpa.click(fmt.Sprintf(`#device-list li[data-device=%q] button`, tabletID))
	tablet.waitJS("the tablet signed out on its node", `window.tandem.state === 'signed-out' && !window.tandem.connected`, 10*time.Second)
}
