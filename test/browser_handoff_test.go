package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pion/rtp"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// The targets a person watching a moved call holds us to: the other
// side's picture freezes at most handoffFreezeP95 at p95 and never over
// handoffFreezeMax; its sound is concealed at most handoffConcealP95 at
// p95; the device taking the call shows the others' video within
// handoffSeeP95 of the click at p95. TestBrowserHandoff asserts them when
// it is run as the measurement (TANDEM_HANDOFF_MOVES set, see
// docs/benchmarks.md). Inside make test, where every other package's tests
// and the race detector share the two cores with three browsers, it moves
// the call handoffSuiteMoves times and fails what a person would call
// broken: a picture stopped for over handoffSuiteFreeze, or a device that
// shows nothing after handoffSuiteSee.
const (
	handoffSuiteMoves  = 8
	handoffSuiteFreeze = 1500 * time.Millisecond
	handoffSuiteSee    = 4 * time.Second
)

const (
	handoffFreezeP95  = 300 * time.Millisecond
	handoffFreezeMax  = 600 * time.Millisecond
	handoffConcealP95 = 60 * time.Millisecond
	handoffSeeP95     = time.Second
)

// handoffPage is the page the handoff tests open: three devices' browsers
// share this machine's two cores, where three 720p cameras, each encoded
// three times over, leave too little CPU for any of them to keep time (a
// real family's devices each have their own). 640×360 keeps three layers
// (640, 320 and 160 wide) to move between.
const handoffPage = "/?camera=640x360"

// Page sizes, in CSS pixels, of the devices in the handoff test.
var (
	phoneSize  = chromedp.WindowSize(390, 844)
	laptopSize = chromedp.WindowSize(1280, 800)
	tabletSize = chromedp.WindowSize(820, 1180)
)

// startSamplerJS watches user's tile: every picture presented (with
// requestVideoFrameCallback, by the page's clock) and, every 50 ms,
// Chrome's counters: [ms, frames decoded, audio samples concealed, freeze
// count, freeze seconds, decoded width].
const startSamplerJS = `(() => {
	window.__samples = [];
	window.__frames = [];
	clearInterval(window.__sampler);
	window.__sampler = setInterval(async () => {
		const s = (await window.tandem.remoteStats())[%[1]q];
		if (s) window.__samples.push([performance.now(), s.framesDecoded, s.concealedSamples, s.freezeCount, s.freezeSeconds, s.frameWidth]);
	}, 50);
	const v = document.querySelector('.tile[data-user="' + %[1]q + '"] video');
	if (!v || !v.requestVideoFrameCallback) return false;
	const onFrame = (now) => { window.__frames.push(now); v.requestVideoFrameCallback(onFrame); };
	v.requestVideoFrameCallback(onFrame);
	return true;
})()`

// moveWindowJS returns, for the window from window.__t0 (just before the
// click) to window.__t1 (a second after the old device let go): the
// longest time between two pictures presented, counting from the window's
// start and to its end (so a picture that stopped is a freeze); the audio
// concealed, in ms; Chrome's own freezes; the decoded width before and at
// the end; and the presentation times, in ms since t0. Older samples are
// dropped.
const moveWindowJS = `(() => {
	const t0 = window.__t0, t1 = window.__t1;
	const fr = window.__frames.filter(t => t <= t1);
	let gap = 0, last = t0;
	for (const t of fr) {
		if (t < t0) continue;
		gap = Math.max(gap, t - last);
		last = t;
	}
	gap = Math.max(gap, t1 - last);
	const all = window.__samples;
	const at = (t) => all.filter(r => r[0] <= t).pop() || all[0];
	const a = at(t0), b = at(t1);
	window.__samples = all.filter(r => r[0] >= t1 - 500);
	window.__frames = window.__frames.filter(t => t >= t1 - 500);
	return JSON.stringify({video: gap, concealedMs: (b[2] - a[2]) / 48, freezes: b[3] - a[3], freezeMs: (b[4] - a[4]) * 1000,
		widthBefore: a[5], widthAfter: b[5], frames: fr.filter(t => t >= t0).length,
		trace: fr.filter(t => t >= t0).map(t => Math.round(t - t0))});
})()`

// clickAndWatchJS clicks sel and measures, by the page's clock, the time
// from the click until the page presents the first picture of user's
// video in their tile (requestVideoFrameCallback): window.__seen, in ms
// (null until then). window.__marks says when the call screen, the tile
// and its first picture came.
const clickAndWatchJS = `(() => {
	const t = performance.now();
	window.__clickAt = t;
	window.__seen = null;
	window.__marks = {};
	const mark = (k) => { if (!(k in window.__marks)) window.__marks[k] = Math.round(performance.now() - t); };
	let watched = null;
	clearInterval(window.__seenPoll);
	window.__seenPoll = setInterval(() => {
		if (window.tandem.state === 'in-call') mark('incall');
		const tile = document.querySelector('.tile[data-user="' + %[2]q + '"]');
		const v = tile && tile.querySelector('video');
		if (!v || !v.srcObject || v === watched) return;
		mark('tile');
		watched = v;
		v.requestVideoFrameCallback(() => {
			if (window.__seen !== null) return;
			window.__seen = performance.now() - t;
			mark('picture');
			clearInterval(window.__seenPoll);
		});
	}, 10);
	document.querySelector(%[1]q).click();
	return true;
})()`

// sentVideo is the largest picture a page sends on its camera's layers
// now, and why the browser holds it back if it does.
type sentVideo struct {
	Width float64
	Limit string
}

// sentVideoJS reads sentVideo from the page's pub PeerConnection.
const sentVideoJS = `(async () => {
	const out = {Width: 0, Limit: ''};
	const pc = window.tandem.pcs && window.tandem.pcs.pub;
	if (!pc) return JSON.stringify(out);
	(await pc.getStats()).forEach(s => {
		if (s.type !== 'outbound-rtp' || s.kind !== 'video' || s.active === false || !(s.framesPerSecond > 0)) return;
		if ((s.frameWidth || 0) > out.Width) out.Width = s.frameWidth;
		if (s.qualityLimitationReason && s.qualityLimitationReason !== 'none') out.Limit = s.qualityLimitationReason;
	});
	return JSON.stringify(out);
})()`

// traceSinceClickJS is the page's trace (window.tandem.trace) since the
// click of clickAndWatchJS, stamped in ms since the click.
const traceSinceClickJS = `window.tandem.trace.map(l => { const i = l.indexOf(' '); return [Math.round(parseFloat(l.slice(0, i)) * 1000 - window.__clickAt), l.slice(i + 1)] }).filter(e => e[0] >= 0).map(e => e[0] + ' ' + e[1]).join('; ')`

// inboundSSRCsJS lists the SSRCs of the sub PeerConnection's inbound
// streams, sorted.
const inboundSSRCsJS = `(async () => {
	const out = [];
	(await window.tandem.pcs.sub.getStats()).forEach(s => { if (s.type === 'inbound-rtp') out.push(s.ssrc); });
	return JSON.stringify(out.sort());
})()`

// handoffBrowsers starts Alice's laptop and Bob's phone and tablet, each
// signed in at handoffPage on a page of its size.
func handoffBrowsers(t *testing.T, ts *testServer) (alice, phone, tablet *browser) {
	t.Helper()
	url := ts.URL() + handoffPage
	alice = newBrowser(t, "alice-laptop", laptopSize)
	phone = newBrowser(t, "bob-phone", phoneSize)
	tablet = newBrowser(t, "bob-tablet", tabletSize)
	alice.signIn(url, "alice", "laptop")
	phone.signIn(url, "bob", "phone")
	tablet.signIn(url, "bob", "tablet")
	return alice, phone, tablet
}

// moveFigures is what one move looked like at the other end and on the
// device that took the call.
type moveFigures struct {
	Video, ConcealedMs      float64 // at Alice, ms
	Freezes                 float64 // Chrome's freezeCount in the window
	FreezeMs                float64 // Chrome's totalFreezesDuration in it
	WidthBefore, WidthAfter float64 // Bob's picture at Alice
	Frames                  int     // pictures presented in the window
	Trace                   []float64
	Seen                    float64 // click → the new device shows Alice, ms
	How                     string
}

// TestBrowserHandoff: three browsers on pages of a laptop, a phone and a
// tablet. Alice (laptop) calls Bob, who answers on his phone; then Bob
// moves the call between his phone and his tablet 20 times: mostly with
// "Move here" on the device taking it, every fourth time with "Send to…"
// on the device holding it and "Take the call" on the other; then his
// idle device listens along and takes the call from there. At Alice, for
// each move, from the click to a second after the old device let go: the
// longest gap between decoded frames, Chrome's own freezes and the audio
// concealed; on the device taking the call, the time from the click until
// Alice's tile shows her video. Alice's page never gets a new track or
// SSRC, her picture of Bob is as large after each move as before, and the
// old device says where the call went and lets go of its camera.
func TestBrowserHandoff(t *testing.T) {
	moves, measure := handoffSuiteMoves, false
	if n, err := strconv.Atoi(os.Getenv("TANDEM_HANDOFF_MOVES")); err == nil && n > 0 {
		moves, measure = n, true
	}
	freezeMax := handoffSuiteFreeze
	if measure {
		freezeMax = handoffFreezeMax
	}
	ts := startServer(t, nil)
	alice, phone, tablet := handoffBrowsers(t, ts)

	alice.setValue("#call-to", "bob")
	alice.click("#call-video")
	phone.state("ringing", 15*time.Second)
	phone.click("#accept")
	alice.state("in-call", 15*time.Second)
	phone.state("in-call", 15*time.Second)
	alice.waitJS("Alice decoding Bob's phone", `window.tandem.remoteStats().then(s => s.bob && s.bob.framesDecoded > 60 && s.bob.audioPackets > 100)`, 40*time.Second)
	phone.waitJS("the phone decoding Alice", `window.tandem.remoteStats().then(s => s.alice && s.alice.framesDecoded > 30)`, 20*time.Second)
	// Alice's large tile of Bob gets his full picture before anything moves.
	alice.waitJS("Bob's full picture at Alice", `window.tandem.remoteStats().then(s => s.bob && s.bob.frameWidth >= 640)`, 20*time.Second)
	tracksBefore := eval[float64](alice, `window.tandem.tracksReceived`)
	widthBefore := eval[float64](alice, `window.tandem.remoteStats().then(s => s.bob.frameWidth)`)
	ssrcsBefore := eval[string](alice, inboundSSRCsJS)
	if !eval[bool](alice, fmt.Sprintf(startSamplerJS, "bob")) {
		t.Fatal("Alice's page has no tile video of Bob to watch")
	}
	time.Sleep(500 * time.Millisecond)

	devices := map[*browser]string{phone: "phone", tablet: "tablet"}
	move := func(from, to *browser, how string) moveFigures {
		t.Helper()
		to.waitJS("the card of the call on the "+devices[from], fmt.Sprintf(`!document.querySelector('#active-call').hidden && document.querySelector('#active-call-text').textContent.includes('on your %s')`, devices[from]), 15*time.Second)
		button := "#move-here"
		switch how {
		case "send to":
			from.click("#move-to")
			from.click(fmt.Sprintf(`#move-list button[data-device=%q]`, devices[to]))
			to.waitJS("the call offered", `document.querySelector('#active-call-text').textContent.includes('is sending you the call')`, 10*time.Second)
		case "listen, then take":
			to.click("#listen-here")
			to.waitJS("listening along", `window.tandem.state === 'in-call' && document.querySelector('#screen-call').dataset.listening === 'true'`, 15*time.Second)
			to.waitJS("hearing Alice", `window.tandem.remoteStats().then(s => s.alice && s.alice.framesDecoded > 10)`, 15*time.Second)
			button = "#take-call"
		}
		to.waitJS("the button "+button, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && !e.disabled && e.offsetParent !== null })()`, button), 10*time.Second)
		eval[bool](alice, `(() => { window.__t0 = performance.now(); window.__t1 = Infinity; return true })()`)
		eval[bool](to, fmt.Sprintf(clickAndWatchJS, button, "alice"))
		to.waitJS("the call here", `window.tandem.state === 'in-call' && document.querySelector('#screen-call').dataset.listening !== 'true'`, 20*time.Second)
		from.state("idle", 20*time.Second)
		if e := eval[string](from, `JSON.stringify(window.tandem.lastEnded)`); !strings.Contains(e, `"reason":"handed_off"`) || !strings.Contains(e, fmt.Sprintf(`"device":%q`, devices[to])) {
			t.Errorf("the %s's call ended with %s, want handed_off to the %s", devices[from], e, devices[to])
		}
		time.Sleep(time.Second)
		eval[bool](alice, `(() => { window.__t1 = performance.now(); return true })()`)
		var f moveFigures
		if err := json.Unmarshal([]byte(eval[string](alice, moveWindowJS)), &f); err != nil {
			t.Fatal(err)
		}
		to.waitJS("the "+devices[to]+" showing Alice", `window.__seen !== null`, 15*time.Second)
		f.Seen = eval[float64](to, `window.__seen`)
		t.Logf("marks at the %s: %s", devices[to], eval[string](to, `JSON.stringify(window.__marks)`))
		if f.Seen > float64(handoffSeeP95/time.Millisecond)*0.7 {
			t.Logf("the %s's signaling since the click: %s", devices[to], eval[string](to, traceSinceClickJS))
		}
		f.How = how

		// The old device let go of its camera and microphone.
		if live := eval[float64](from, `window.tandem.localTracksLive()`); live != 0 {
			t.Errorf("the %s still has %v live camera or microphone tracks after the move", devices[from], live)
		}
		return f
	}

	var figs []moveFigures
	holder, other := phone, tablet
	for i := range moves {
		how := "move here"
		if i%4 == 3 {
			how = "send to"
		}
		f := move(holder, other, how)
		t.Logf("move %d (%s, %s → %s): at Alice longest freeze %.0f ms (%d pictures), concealed %.0f ms, Chrome freezes %v (%.0f ms), Bob's width %v → %v; the %s showed Alice after %.0f ms",
			i+1, how, devices[holder], devices[other], f.Video, f.Frames, f.ConcealedMs, f.Freezes, f.FreezeMs, f.WidthBefore, f.WidthAfter, devices[other], f.Seen)
		if f.Video > float64(handoffFreezeP95/time.Millisecond) {
			t.Logf("Alice's pictures of Bob by ms since the click: %v", f.Trace)
		}
		figs = append(figs, f)
		holder, other = other, holder
	}
	// Listening along, then taking the call: one more move, the same targets.
	f := move(holder, other, "listen, then take")
	t.Logf("listen, then take (%s → %s): at Alice longest freeze %.0f ms, concealed %.0f ms, Chrome freezes %v; the %s showed Alice after %.0f ms",
		devices[holder], devices[other], f.Video, f.ConcealedMs, f.Freezes, devices[other], f.Seen)
	figs = append(figs, f)
	holder = other

	var freeze, chromeFreeze, conceal, seen []time.Duration
	ms := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	for i, f := range figs {
		freeze = append(freeze, ms(f.Video))
		chromeFreeze = append(chromeFreeze, ms(f.FreezeMs))
		conceal = append(conceal, ms(f.ConcealedMs))
		seen = append(seen, ms(f.Seen))
		if f.Video > float64(freezeMax/time.Millisecond) || f.FreezeMs > float64(freezeMax/time.Millisecond) {
			t.Errorf("move %d (%s): Bob's picture froze for %.0f ms at Alice (Chrome: %v freezes, %.0f ms), want none over %v",
				i+1, f.How, f.Video, f.Freezes, f.FreezeMs, freezeMax)
		}
		if !measure && f.Seen > float64(handoffSuiteSee/time.Millisecond) {
			t.Errorf("move %d (%s): the device taking the call showed Alice after %.0f ms, want at most %v", i+1, f.How, f.Seen, handoffSuiteSee)
		}
	}
	p := func(d []time.Duration, q float64) time.Duration { return percentile(d, q/100).Round(time.Millisecond) }
	t.Logf("over %d moves: freeze at Alice p50 %v p95 %v max %v; Chrome's freeze time p95 %v max %v; audio concealed p50 %v p95 %v; the new device shows Alice p50 %v p95 %v",
		len(figs), p(freeze, 50), p(freeze, 95), p(freeze, 100), p(chromeFreeze, 95), p(chromeFreeze, 100), p(conceal, 50), p(conceal, 95), p(seen, 50), p(seen, 95))
	if !measure {
		t.Logf("the p95 targets (freeze %v, concealment %v, first picture %v) are asserted with TANDEM_HANDOFF_MOVES=20", handoffFreezeP95, handoffConcealP95, handoffSeeP95)
	} else if v := p(freeze, 95); v > handoffFreezeP95 {
		t.Errorf("Bob's picture at Alice froze %v at p95, want at most %v", v, handoffFreezeP95)
	}
	if v := p(conceal, 95); measure && v > handoffConcealP95 {
		t.Errorf("Bob's sound at Alice was concealed %v at p95, want at most %v", v, handoffConcealP95)
	}
	if v := p(seen, 95); measure && v > handoffSeeP95 {
		t.Errorf("the device taking the call showed Alice after %v at p95, want at most %v", v, handoffSeeP95)
	}
	// The new devices were switched to at a layer as good as the old ones'
	// (sfu's TestHandoffKeepsTheQuality holds the rule). Here Alice's link
	// estimate may dip after a switch, three browsers sharing two cores,
	// and lower Bob's picture for a while: count how often it was smaller a
	// second after a move, and ask that it is back to full size at the end.
	smaller := 0
	for _, f := range figs {
		if f.WidthAfter < f.WidthBefore {
			smaller++
		}
	}
	t.Logf("Bob's picture at Alice was smaller a second after %d of %d moves", smaller, len(figs))
	// As large as before, or as large as Bob's device sends it now: a
	// browser short of CPU sends its top layer smaller (its own
	// qualityLimitationReason "cpu"), which no server can undo.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var sent sentVideo
		if err := json.Unmarshal([]byte(eval[string](holder, sentVideoJS)), &sent); err != nil {
			t.Fatal(err)
		}
		want := min(widthBefore, sent.Width)
		got := eval[float64](alice, `window.tandem.remoteStats().then(s => (s.bob && s.bob.frameWidth) || 0)`)
		if got >= want && want > 0 {
			t.Logf("Bob's picture at Alice is %v wide at the end (%v before the moves; his %s sends up to %v, limited by %q)",
				got, widthBefore, devices[holder], sent.Width, sent.Limit)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Bob's picture at Alice is %v wide at the end, want %v: as before the moves (%v), or as his %s sends it (%v, limited by %q)",
				got, want, widthBefore, devices[holder], sent.Width, sent.Limit)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if n := eval[float64](alice, `window.tandem.tracksReceived`); n != tracksBefore {
		t.Errorf("Alice got %v new tracks during the moves", n-tracksBefore)
	}
	if after := eval[string](alice, inboundSSRCsJS); after != ssrcsBefore {
		t.Errorf("Alice's inbound SSRCs went from %s to %s", ssrcsBefore, after)
	}

	holder.click("#hangup")
	alice.state("idle", 15*time.Second)
	if r := eval[string](alice, `window.tandem.lastEnded.reason`); r != "completed" {
		t.Errorf("Alice's call ended with %q, want completed", r)
	}
}

// cuttingProxy forwards TCP connections to a server and can cut them all
// at once, as a network that goes away does: no close frame, no FIN from
// the far end before the socket dies.
type cuttingProxy struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	conns []net.Conn
}

func newCuttingProxy(t *testing.T, to string) *cuttingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttingProxy{ln: ln, to: to}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		p.cut()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", to)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(up, c); _ = up.Close() })
			wg.Go(func() { _, _ = io.Copy(c, up); _ = c.Close() })
		}
	})
	return p
}

func (p *cuttingProxy) url() string { return "http://" + p.ln.Addr().String() + "/" }

// cut drops every connection open now; new ones go through.
func (p *cuttingProxy) cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, not an orderly close
		}
		_ = c.Close()
	}
}

// TestBrowserSignalingDrop: the connection between Alice's browser and the
// server dies mid-call. Her page says it is reconnecting and keeps the
// call; Bob keeps receiving her; the page reconnects by itself within the
// grace window and the call carries on to a normal end.
func TestBrowserSignalingDrop(t *testing.T) {
	ts := startServer(t, nil)
	proxy := newCuttingProxy(t, strings.TrimPrefix(ts.URL(), "http://"))
	alice, bob := newBrowser(t, "alice"), newBrowser(t, "bob")
	alice.signIn(proxy.url(), "alice", "laptop")
	bob.signIn(ts.URL()+"/", "bob", "phone")
	alice.setValue("#call-to", "bob")
	alice.click("#call-video")
	bob.state("ringing", 15*time.Second)
	bob.click("#accept")
	alice.state("in-call", 15*time.Second)
	bob.waitJS("Bob decoding Alice", `window.tandem.remoteStats().then(s => s.alice && s.alice.framesDecoded > 30)`, 40*time.Second)

	proxy.cut()
	alice.waitJS("the page saying it reconnects", `!document.querySelector('#call-quality').hidden && document.querySelector('#call-quality').textContent.includes('Reconnecting')`, 10*time.Second)
	if s := eval[string](alice, `window.tandem.state`); s != "in-call" {
		t.Errorf("Alice's page left the call when its connection dropped: state %q", s)
	}
	frames := eval[float64](bob, `window.tandem.remoteStats().then(s => s.alice.framesDecoded)`)
	bob.waitJS("Bob still decoding Alice", fmt.Sprintf(`window.tandem.remoteStats().then(s => s.alice.framesDecoded > %v + 15)`, frames), 10*time.Second)
	alice.waitJS("the page back online", `window.tandem.connected && document.querySelector('#call-quality').hidden`, 15*time.Second)
	if s := eval[string](alice, `window.tandem.state`); s != "in-call" {
		t.Fatalf("Alice's page is in state %q after reconnecting, want in-call", s)
	}
	alice.waitJS("Alice still decoding Bob", `window.tandem.remoteStats().then(s => s.bob && s.bob.framesDecoded > 30)`, 10*time.Second)

	alice.click("#hangup")
	bob.state("idle", 15*time.Second)
	if r := eval[string](bob, `window.tandem.lastEnded.reason`); r != "completed" {
		t.Errorf("Bob's call ended with %q, want completed", r)
	}
}

// TestBrowserHandoffInGroup: a move inside a group call. Alice (a
// browser) calls Bob, who answers on his phone, and adds Carol (a Go
// client). Bob moves the call to his tablet and back three times; each
// time neither Alice nor Carol sees his picture freeze past the limit or
// gets a new track, and Carol never sees him leave or join.
func TestBrowserHandoffInGroup(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t, 3*time.Minute)
	alice, phone, tablet := handoffBrowsers(t, ts)
	carol := ts.dial(t, "carol", "phone")

	alice.setValue("#call-to", "bob")
	alice.click("#call-video")
	phone.state("ringing", 15*time.Second)
	phone.click("#accept")
	alice.state("in-call", 15*time.Second)
	alice.click("#add")
	alice.setValue("#add-to", "carol")
	eval[bool](alice, `(() => { document.querySelector('#add-to').form.requestSubmit(); return true })()`)
	inc := waitType(t, carol, func(m *protocol.Incoming) bool { return true })
	if err := carol.Accept(ctx, inc.CallID, false); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var bobAtCarol arrivals
	m, err := carol.StartMedia(ctx, inc.CallID, client.MediaOptions{Audio: true, Video: true, Tag: 0xc1,
		OnRTP: func(tr client.RemoteTrack, p *rtp.Packet, at time.Time) {
			if tr.StreamID == "bob" {
				mu.Lock()
				defer mu.Unlock()
				bobAtCarol.onRTP(tr, p, at)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	// Carol's client sends marked test frames, not pictures a browser
	// decodes: Alice receives them.
	alice.waitJS("Alice decoding Bob and receiving Carol", `window.tandem.remoteStats().then(s => s.bob && s.bob.framesDecoded > 30 && s.carol && s.carol.videoBytes > 10000)`, 40*time.Second)
	testkit.Eventually(t, 20*time.Second, "Carol receiving Bob", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(bobAtCarol.video) > 30 && len(bobAtCarol.audio) > 50
	})
	carolBefore := m.Stats()
	ssrcsBefore := eval[string](alice, inboundSSRCsJS)
	eval[bool](alice, fmt.Sprintf(startSamplerJS, "bob"))

	devices := map[*browser]string{phone: "phone", tablet: "tablet"}
	holder, other := phone, tablet
	for i := range 3 {
		other.waitJS("the card of the group call", fmt.Sprintf(`!document.querySelector('#active-call').hidden && document.querySelector('#active-call-text').textContent.includes('on your %s')`, devices[holder]), 15*time.Second)
		eval[bool](alice, `(() => { window.__t0 = performance.now(); window.__t1 = Infinity; return true })()`)
		start := time.Now()
		eval[bool](other, fmt.Sprintf(clickAndWatchJS, "#move-here", "alice"))
		other.state("in-call", 20*time.Second)
		holder.state("idle", 20*time.Second)
		time.Sleep(time.Second)
		end := time.Now()
		eval[bool](alice, `(() => { window.__t1 = performance.now(); return true })()`)
		var f moveFigures
		if err := json.Unmarshal([]byte(eval[string](alice, moveWindowJS)), &f); err != nil {
			t.Fatal(err)
		}
		other.waitJS("the new device showing Alice", `window.__seen !== null`, 15*time.Second)
		other.waitJS("the new device showing Carol", `(() => { const t = document.querySelector('.tile[data-user="carol"]'); return !!t && !t.classList.contains('no-video') })()`, 15*time.Second)
		mu.Lock()
		video, audio := maxGap(bobAtCarol.video, start, end), maxGap(bobAtCarol.audio, start, end)
		mu.Unlock()
		t.Logf("move %d (%s → %s): at Alice Bob froze %.0f ms (Chrome: %v, %.0f ms), concealed %.0f ms; at Carol video gap %v, audio gap %v; the %s showed Alice after %.0f ms",
			i+1, devices[holder], devices[other], f.Video, f.Freezes, f.FreezeMs, f.ConcealedMs, video.Round(time.Millisecond), audio.Round(time.Millisecond), devices[other], eval[float64](other, `window.__seen`))
		if f.Video > float64(handoffSuiteFreeze/time.Millisecond) || video > handoffSuiteFreeze {
			t.Errorf("move %d: Bob's picture froze for %.0f ms at Alice and %v at Carol, want at most %v", i+1, f.Video, video, handoffSuiteFreeze)
		}
		holder, other = other, holder
	}
	if after := m.Stats(); after.SubOffers != carolBefore.SubOffers || !slices.Equal(after.RemoteTracks, carolBefore.RemoteTracks) {
		t.Errorf("Carol renegotiated: sub offers %d → %d, tracks %+v → %+v", carolBefore.SubOffers, after.SubOffers, carolBefore.RemoteTracks, after.RemoteTracks)
	}
	if after := eval[string](alice, inboundSSRCsJS); after != ssrcsBefore {
		t.Errorf("Alice's inbound SSRCs went from %s to %s", ssrcsBefore, after)
	}
	if err := carol.Hangup(ctx, inc.CallID); err != nil {
		t.Fatal(err)
	}
	// The first member_left Alice's page could have seen is Carol's: Bob
	// never left. The page lists who is in the call.
	alice.waitJS("Carol gone, Bob still there", `(() => { const m = window.tandem.members; return !m.includes('carol') && m.includes('bob') })()`, 10*time.Second)
	holder.click("#hangup")
	alice.state("idle", 15*time.Second)
}
