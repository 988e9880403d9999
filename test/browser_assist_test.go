package test

import (
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// realClick clicks sel with a trusted mouse event, which gives the page
// the user activation getDisplayMedia needs.
func (b *browser) realClick(sel string) {
	b.t.Helper()
	b.waitJS("visible "+sel, `(() => { const e = document.querySelector('`+sel+`'); return !!e && !e.disabled && e.offsetParent !== null })()`, 15*time.Second)
	b.do(10*time.Second, chromedp.Click(sel))
}

// drawJS draws a short stroke with pointer events across the middle of
// the helper's view of the shared screen.
const drawJS = `(() => {
	const c = document.querySelector('#assist-canvas');
	const r = c.getBoundingClientRect();
	const at = (f) => ({clientX: r.left + r.width * f, clientY: r.top + r.height / 2, bubbles: true, pointerId: 1, button: 0});
	c.dispatchEvent(new PointerEvent('pointerdown', at(0.4)));
	c.dispatchEvent(new PointerEvent('pointermove', at(0.5)));
	c.dispatchEvent(new PointerEvent('pointerup', at(0.6)));
	return true;
})()`

// TestBrowserAssist: Bob helps Alice with her screen, both in browsers.
// Bob calls her with "Help"; once she answers his page asks, and hers asks her and she allows, sharing her (synthetic)
// screen; a red bar then says what Bob can do. Bob decodes her screen,
// his drawn stroke arrives on her page, and so do his clicks once she
// allowed control. Control events Bob's page sends before she allowed,
// and after she stopped everything with the bar's one button, never
// reach her page.
func TestBrowserAssist(t *testing.T) {
	ts := startServer(t, nil)
	alice, bob := newBrowser(t, "alice"), newBrowser(t, "bob")
	alice.signIn(ts.URL()+"/", "alice", "laptop")
	bob.signIn(ts.URL()+"/", "bob", "phone")
	// Bob calls to help, from the home screen: answered, it asks.
	bob.setValue("#call-to", "alice")
	bob.click("#call-help")
	alice.state("ringing", 15*time.Second)
	alice.click("#accept")
	bob.state("in-call", 15*time.Second)
	alice.state("in-call", 15*time.Second)
	alice.waitJS("Alice asked", `!document.querySelector('#assist-consent').hidden && document.querySelector('#assist-consent-title').textContent.includes('bob')`, 15*time.Second)
	bob.waitJS("Bob's assist channel open", `window.tandem.assistSend([{type: 1, x: 100, y: 100}, {type: 2, button: 1, x: 100, y: 100}])`, 15*time.Second)
	time.Sleep(time.Second)
	if n := eval[float64](alice, `window.tandem.assist.received.control`); n != 0 {
		t.Errorf("Alice's page received %v control events before she allowed anything", n)
	}

	// She allows everything, control included.
	eval[bool](alice, `(() => { document.querySelector('#consent-control').checked = true; return true })()`)
	alice.realClick("#assist-allow")
	alice.waitJS("the red bar", `!document.querySelector('#assist-bar').hidden && document.querySelector('#assist-bar-text').textContent.includes('control')`, 15*time.Second)
	if !eval[bool](alice, `window.tandem.assist.sharing`) {
		t.Error("Alice's page is not sharing her screen after she allowed it")
	}
	bob.waitJS("Bob seeing her screen", `!document.querySelector('#assist-view').hidden && window.tandem.remoteStats().then(s => s.alice && s.alice.framesDecoded > 10)`, 30*time.Second)
	// His page tells the server the screen is shown, at its size in the
	// helping view (not as a hidden tile), and her screen keeps coming.
	bob.waitJS("Bob's view naming her screen as shown", `(() => { const v = window.tandem.lastView(); return !!v && v.tiles.some(t => t.user === 'alice' && t.track === 'screen' && t.width > 0 && t.height > 0) && !v.tiles.some(t => t.track === 'screen' && t.width === 0) })()`, 10*time.Second)
	seen := eval[float64](bob, `window.tandem.remoteStats().then(s => s.alice.framesDecoded)`)
	bob.waitJS("her screen still coming", fmt.Sprintf(`window.tandem.remoteStats().then(s => s.alice.framesDecoded > %v + 30)`, seen), 15*time.Second)

	// A drawing and a click reach her page.
	bob.click("#tool-pen")
	eval[bool](bob, drawJS)
	alice.waitJS("the stroke on Alice's page", `window.tandem.assist.received.annotate >= 3`, 10*time.Second)
	bob.screenshot("helping")
	alice.screenshot("helped")
	bob.click("#tool-control")
	eval[bool](bob, drawJS)
	alice.waitJS("the click on Alice's page", `window.tandem.assist.received.control >= 4`, 10*time.Second)

	// Copied text, only once she allows it, both ways.
	if !eval[bool](bob, `document.querySelector('#assist-clip').hidden`) {
		t.Error("Bob's page offers to send copied text before Alice allowed it")
	}
	bob.click("#assist")
	bob.click("#assist-req-clipboard")
	alice.waitJS("Alice asked for the clipboard", `!document.querySelector('#assist-consent').hidden && !document.querySelector('#consent-clipboard-row').hidden && !document.querySelector('#consent-clipboard').checked`, 15*time.Second)
	eval[bool](alice, `(() => { document.querySelector('#consent-clipboard').checked = true; return true })()`)
	alice.click("#assist-allow")
	const fromBob, fromAlice = "Settings → Wi-Fi → Tandem-5G", "Fehler 0x80070005"
	bob.waitJS("Bob's copied-text box", `!document.querySelector('#assist-clip').hidden`, 15*time.Second)
	bob.setValue("#assist-clip-out", fromBob)
	bob.click("#assist-clip-send")
	alice.waitJS("Bob's text at Alice", fmt.Sprintf(`document.querySelector('#assist-clip-in').textContent === %q`, fromBob), 10*time.Second)
	alice.setValue("#assist-clip-out", fromAlice)
	alice.click("#assist-clip-send")
	bob.waitJS("Alice's text at Bob", fmt.Sprintf(`document.querySelector('#assist-clip-in').textContent === %q && document.querySelector('#assist-clip-from').textContent.includes('alice')`, fromAlice), 10*time.Second)

	// One button stops it all.
	before := eval[float64](alice, `window.tandem.assist.received.control`)
	alice.click("#assist-stop")
	alice.waitJS("the bar gone", `document.querySelector('#assist-bar').hidden`, 10*time.Second)
	bob.waitJS("Bob told", `document.querySelector('#assist-view').hidden`, 10*time.Second)
	eval[bool](bob, `(window.tandem.assistSend([{type: 1, x: 5, y: 5}, {type: 2, button: 1, x: 5, y: 5}]), true)`)
	time.Sleep(time.Second)
	if n := eval[float64](alice, `window.tandem.assist ? window.tandem.assist.received.control : 0`); n != before {
		t.Errorf("Alice's page received %v control events after she stopped the help", n-before)
	}
	if eval[bool](alice, `!!(window.tandem.assist && window.tandem.assist.sharing)`) {
		t.Error("Alice's screen is still shared after she stopped the help")
	}
	bob.waitJS("Bob's copied-text box gone", `document.querySelector('#assist-clip').hidden && document.querySelector('#assist-clip-in').textContent === ''`, 10*time.Second)
	bob.click("#hangup")
	alice.state("idle", 15*time.Second)

	// Her log says who could do what.
	eval[bool](alice, `(() => { document.querySelector('#assist-log-box').open = true; return true })()`)
	alice.waitJS("the screen help log", `[...document.querySelectorAll('#assist-log li')].some(li => li.dataset.event === 'grant' && li.textContent.includes('bob helping you') && li.textContent.includes('control'))`, 10*time.Second)
	alice.waitJS("the copied text in the log, without the text", `(() => { const l = [...document.querySelectorAll('#assist-log li')].filter(li => li.dataset.event === 'clipboard'); return l.length === 2 && l.some(li => li.textContent.includes('bob sent you text')) && l.some(li => li.textContent.includes('you sent bob text')) && !l.some(li => li.textContent.includes('Fehler')) })()`, 10*time.Second)
}
