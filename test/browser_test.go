package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandemcall/tandem/internal/config"
)

// findChromium locates the browser. A missing browser fails the test: the
// browser tests are never skipped silently (make test installs it).
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TANDEM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: install the Debian package chromium (make test does this) or set TANDEM_CHROMIUM")
	return ""
}

// browser is one headless Chromium with its own profile: one device.
type browser struct {
	t    *testing.T
	name string
	ctx  context.Context

	// console holds the page's last warnings, errors and uncaught
	// exceptions, shown when the test fails.
	consoleMu sync.Mutex
	console   []string
}

// consoleKept is how many console lines a browser keeps.
const consoleKept = 40

// watchConsole keeps the page's warnings, errors and exceptions until the
// browser closes, and shows them if the test fails. The returned channel
// is closed once it has stopped.
func (b *browser) watchConsole() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range chromedp.Console(b.ctx) {
			if err != nil {
				return
			}
			switch m.Type {
			case chromedp.ConsoleWarning, chromedp.ConsoleError, chromedp.ConsoleException:
			default:
				continue
			}
			if strings.Contains(m.Text, "navigator.vibrate") {
				continue // the ring stops vibrating on a page never tapped
			}
			line := m.Time.Format("15:04:05.000") + " " + m.String()
			b.consoleMu.Lock()
			b.console = append(b.console, line)
			if len(b.console) > consoleKept {
				b.console = b.console[len(b.console)-consoleKept:]
			}
			b.consoleMu.Unlock()
		}
	}()
	b.t.Cleanup(func() {
		if !b.t.Failed() {
			return
		}
		if lines := b.consoleLines(); lines != "" {
			b.t.Logf("%s's console, last warnings and errors:\n%s", b.name, lines)
		}
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		if tr, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.tandem && window.tandem.trace ? window.tandem.trace.join('\n') : ''`)); err == nil && tr != "" {
			b.t.Logf("%s's last messages and states:\n%s", b.name, tr)
		}
	})
	return done
}

// consoleLines are the kept console lines, one per line.
func (b *browser) consoleLines() string {
	b.consoleMu.Lock()
	defer b.consoleMu.Unlock()
	return strings.Join(b.console, "\n")
}

// newBrowser starts a headless Chromium; extra options (more flags) go
// after the standard ones.
func newBrowser(t *testing.T, name string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	dir := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(findChromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		// Media stays on loopback: no mDNS names, loopback candidates allowed.
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns"),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1024, 700),
	}
	opts = append(opts, extra...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	// The first Run starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelA()
		t.Fatalf("start %s's browser: %v", name, err)
	}
	b := &browser{t: t, name: name, ctx: ctx}
	var watched <-chan struct{}
	t.Cleanup(func() { cancel(); cancelA(); <-watched })
	watched = b.watchConsole()
	return b
}

func (b *browser) do(timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", b.name, err)
	}
}

// eval runs JS (awaiting a promise) and decodes the result into T.
func eval[T any](b *browser, js string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: eval %q: %v", b.name, js, err)
	}
	return v
}

// waitJS polls a JS boolean expression until true.
func (b *browser) waitJS(what, js string, d time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js, chromedp.EvalAwaitPromise))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			st, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`JSON.stringify({state: window.tandem && window.tandem.state, status: document.querySelector('#status') && document.querySelector('#status').textContent, ended: window.tandem && window.tandem.lastEnded})`))
			tr, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`window.tandem && window.tandem.trace ? window.tandem.trace.join('\n') : ''`))
			b.screenshot(what)
			b.t.Fatalf("%s: timed out waiting for %s (err %v; page %s); its last messages and states:\n%s", b.name, what, err, st, tr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenshot saves what the page shows, for a person to look at when a
// test fails.
func (b *browser) screenshot(what string) {
	dir := os.Getenv("TANDEM_TEST_ARTIFACTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
		name := strings.NewReplacer(" ", "_", "/", "_").Replace(b.t.Name() + "-" + b.name + "-" + what)
		_ = os.MkdirAll(dir, 0o755)
		_ = os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
	}
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.waitJS("visible "+sel, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && !e.disabled && e.offsetParent !== null })()`, sel), 15*time.Second)
	eval[bool](b, fmt.Sprintf(`(() => { document.querySelector(%q).click(); return true })()`, sel))
}

func (b *browser) setValue(sel, v string) {
	b.t.Helper()
	eval[bool](b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; e.dispatchEvent(new Event('input', {bubbles: true})); return true })()`, sel, v))
}

// submitSignIn fills in and submits the sign-in form at url without
// waiting for the home screen (a room link goes straight into the room).
func (b *browser) submitSignIn(url, user, device string) {
	b.t.Helper()
	b.do(20*time.Second, chromedp.Navigate(url))
	b.waitJS("sign-in form", `!!document.querySelector('#signin-user') && document.querySelector('#signin-user').offsetParent !== null`, 15*time.Second)
	b.setValue("#signin-user", user)
	b.setValue("#signin-device", device)
	b.click("#signin-submit")
}

func (b *browser) signIn(url, user, device string) {
	b.t.Helper()
	b.submitSignIn(url, user, device)
	b.waitJS("signed in", `window.tandem && window.tandem.state === 'idle'`, 15*time.Second)
}

func (b *browser) state(s string, d time.Duration) {
	b.t.Helper()
	b.waitJS("state "+s, fmt.Sprintf(`window.tandem && window.tandem.state === %q`, s), d)
}

type pageStats struct {
	FramesDecoded        float64 `json:"framesDecoded"`
	AudioPacketsReceived float64 `json:"audioPacketsReceived"`
	AudioBytesReceived   float64 `json:"audioBytesReceived"`
}

func (b *browser) stats() pageStats {
	b.t.Helper()
	raw := eval[string](b, `window.tandem.stats().then(s => JSON.stringify(s))`)
	var s pageStats
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		b.t.Fatalf("%s: stats %q: %v", b.name, raw, err)
	}
	return s
}

// browserCall signs Alice and Bob in on two browsers at url, has Alice
// video-call Bob and Bob answer from the incoming screen, and returns once
// both are in the call.
func browserCall(t *testing.T, url string) (alice, bob *browser) {
	t.Helper()
	alice = newBrowser(t, "alice")
	bob = newBrowser(t, "bob")
	alice.signIn(url, "alice", "laptop")
	bob.signIn(url, "bob", "phone")
	alice.setValue("#call-to", "bob")
	alice.click("#call-video")
	alice.state("calling", 15*time.Second)
	bob.state("ringing", 15*time.Second)
	bob.waitJS("incoming screen", `document.querySelector('#incoming').offsetParent !== null || !document.querySelector('#incoming').hidden`, 5*time.Second)
	bob.click("#accept")
	alice.state("in-call", 15*time.Second)
	bob.state("in-call", 15*time.Second)
	return alice, bob
}

// TestBrowserVideoCall drives two real browsers through the web client:
// Alice calls Bob, Bob answers, each side decodes the other's video and
// receives audio, Alice hangs up, and the call shows in both histories.
func TestBrowserVideoCall(t *testing.T) {
	ts := startServer(t, nil)
	alice, bob := browserCall(t, ts.URL()+"/")

	for _, b := range []*browser{alice, bob} {
		b.waitJS("decoded video and received audio", `window.tandem.stats().then(s => s.framesDecoded > 30 && s.audioPacketsReceived > 50)`, 40*time.Second)
		s := b.stats()
		t.Logf("%s: %.0f frames decoded, %.0f audio packets (%.0f bytes)", b.name, s.FramesDecoded, s.AudioPacketsReceived, s.AudioBytesReceived)
		b.screenshot("in-call")
	}

	// Mute on Alice's side is shown on Bob's.
	alice.click("#mute")
	bob.waitJS("remote mute shown", `!!document.querySelector('[data-muted="true"], .muted-indicator:not([hidden]), .tile.muted, .tile[data-audio="false"]')`, 10*time.Second)

	alice.click("#hangup")
	for _, b := range []*browser{alice, bob} {
		b.state("idle", 15*time.Second)
		if r := eval[string](b, `window.tandem.lastEnded.reason`); r != "completed" {
			t.Errorf("%s: call ended with %q, want completed", b.name, r)
		}
		b.waitJS("call in history", `document.querySelectorAll('#history li.call[data-reason="completed"]').length === 1`, 10*time.Second)
	}
}

// TestBrowserTokenFromApp: outside dev mode there is no demo sign-in; an
// app backend hands the web client a token in the URL fragment, which the
// client uses and then removes from the address bar.
func TestBrowserTokenFromApp(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Dev = false
		c.Auth.Secret = "an-app-backend-secret-of-32-bytes!!"
	})
	b := newBrowser(t, "carol")
	b.do(20*time.Second, chromedp.Navigate(ts.URL()+"/"))
	b.waitJS("no dev sign-in", `window.tandem && window.tandem.state === 'signed-out' && document.querySelector('#signin-user').offsetParent === null`, 15*time.Second)

	tok := ts.token(t, "carol", "tablet")
	b.do(20*time.Second, chromedp.Navigate(ts.URL()+"/#token="+tok))
	b.state("idle", 15*time.Second)
	if u := eval[string](b, `location.href`); strings.Contains(u, tok) {
		t.Errorf("token left in the address bar: %s", u)
	}
	if who := eval[string](b, `window.tandem.user`); who != "carol" {
		t.Errorf("signed in as %q", who)
	}
}

// selectedPairJS reports the candidate types of the sub PeerConnection's
// selected pair, e.g. "relay/host".
const selectedPairJS = `(async () => {
	const pc = window.tandem.pcs && window.tandem.pcs.sub;
	if (!pc) return '';
	const stats = await pc.getStats();
	let pair = null;
	stats.forEach(s => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
	if (!pair) stats.forEach(s => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
	if (!pair) return '';
	const l = stats.get(pair.localCandidateId), r = stats.get(pair.remoteCandidateId);
	return (l ? l.candidateType : '?') + '/' + (r ? r.candidateType : '?');
})()`

// TestBrowserCallOverTURN: both browsers may only use relay candidates, so
// every packet goes through Tandem's TURN server; media still flows and
// getStats shows a relay pair.
func TestBrowserCallOverTURN(t *testing.T) {
	ts := startServer(t, nil)
	alice, bob := browserCall(t, ts.URL()+"/?ice=relay")
	for _, b := range []*browser{alice, bob} {
		b.waitJS("media over TURN", `window.tandem.stats().then(s => s.framesDecoded > 30 && s.audioPacketsReceived > 50)`, 40*time.Second)
		pair := eval[string](b, selectedPairJS)
		if !strings.HasPrefix(pair, "relay/") {
			t.Errorf("%s: selected pair %q, want a local relay candidate", b.name, pair)
		}
		t.Logf("%s: selected pair %s", b.name, pair)
	}
	var relayed uint64
	for _, n := range ts.TURN().Stats().RelayedPackets {
		relayed += n
	}
	if st := ts.TURN().Stats(); relayed == 0 {
		t.Errorf("TURN relayed nothing: %+v", st)
	}
	alice.click("#hangup")
	bob.state("idle", 15*time.Second)
}
