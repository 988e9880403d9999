package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// browserHandoffFreeze is the longest the other party's picture or sound
// may stop while the call moves between browsers here. The target, 300 ms
// at p95, is held by TestHandoffKeepsTheRemoteTrack over 20 handoffs of
// pion clients. Here it is one sample with three browsers on two cores:
// the new device's Chromium opens its camera, starts its encoder and its
// decoder at once, and about one move in four its first frames stall for
// 400-600 ms on the CPU while the server has already switched (its log
// shows the switch at the new device's first keyframe). Past a second a
// person takes the picture for broken, and so does this test.
const browserHandoffFreeze = time.Second

// startSamplerJS samples, every 20 ms, how many frames and audio packets
// the page has received from user, with the page's clock.
const startSamplerJS = `(() => {
	window.__samples = [];
	window.__sampler = setInterval(async () => {
		const s = (await window.tandem.remoteStats())[%q];
		if (s) window.__samples.push([performance.now(), s.framesDecoded, s.audioPackets]);
	}, 20);
	return true;
})()`

// freezeJS stops the sampler and returns, for the move's window (from
// window.__t0, the click, to window.__t1, a second after the old device let
// go), the longest time between two increases of the frame count and of
// the audio packet count, counting the time from the last increase to the
// window's end too (so media that stopped is a freeze); how many frames came
// in the window and after it; and the trace of frames by ms since t0.
const freezeJS = `(() => {
	clearInterval(window.__sampler);
	const s = window.__samples, t0 = window.__t0, t1 = window.__t1;
	const longest = (col) => {
		let last = null, prev = null, gap = 0;
		for (const row of s) {
			if (row[0] > t1) break;
			if (prev !== null && row[col] > prev) {
				if (last !== null && row[0] >= t0) gap = Math.max(gap, row[0] - last);
				last = row[0];
			}
			prev = row[col];
		}
		if (last !== null) gap = Math.max(gap, t1 - Math.max(last, t0));
		return gap;
	};
	const at = (t) => { const r = s.filter(r => r[0] <= t).pop(); return r ? r[1] : 0; };
	const end = s[s.length - 1];
	return JSON.stringify({video: longest(1), audio: longest(2), frames: at(t1) - at(t0), framesAfter: end[1] - at(t1), total: end[1],
		after: end[0] - t1, samples: s.length,
		trace: s.filter(r => r[0] >= t0 - 100).map(r => [Math.round(r[0] - t0), r[1]])});
})()`

// inboundSSRCsJS lists the SSRCs of the sub PeerConnection's inbound
// streams, sorted.
const inboundSSRCsJS = `(async () => {
	const out = [];
	(await window.tandem.pcs.sub.getStats()).forEach(s => { if (s.type === 'inbound-rtp') out.push(s.ssrc); });
	return JSON.stringify(out.sort());
})()`

// TestBrowserHandoff: Alice calls Bob from her phone (a browser), then
// moves the call to her laptop (another browser signed in as her) from the
// laptop's "move here" card. Bob's browser keeps decoding: it gets no new
// track, its inbound streams keep their SSRCs, and its picture freezes no
// longer than the target. The phone shows the call moved; the laptop holds
// it and can send it back, which the phone offers to take.
func TestBrowserHandoff(t *testing.T) {
	ts := startServer(t, nil)
	url := ts.URL() + "/"
	phone, laptop, bob := newBrowser(t, "alice-phone"), newBrowser(t, "alice-laptop"), newBrowser(t, "bob")
	phone.signIn(url, "alice", "phone")
	laptop.signIn(url, "alice", "laptop")
	bob.signIn(url, "bob", "phone")

	phone.setValue("#call-to", "bob")
	phone.click("#call-video")
	bob.state("ringing", 15*time.Second)
	bob.click("#accept")
	phone.state("in-call", 15*time.Second)
	bob.state("in-call", 15*time.Second)
	bob.waitJS("Bob decoding the phone", `window.tandem.remoteStats().then(s => s.alice && s.alice.framesDecoded > 60 && s.alice.audioPackets > 100)`, 40*time.Second)

	// The laptop shows where the call is.
	laptop.waitJS("the move-here card", `!document.querySelector('#active-call').hidden && document.querySelector('#active-call-text').textContent.includes('on your phone')`, 10*time.Second)
	tracksBefore := eval[float64](bob, `window.tandem.tracksReceived`)
	ssrcsBefore := eval[string](bob, inboundSSRCsJS)
	eval[bool](bob, `(() => { window.__t0 = Infinity; return true })()`)
	eval[bool](bob, fmt.Sprintf(startSamplerJS, "alice"))
	time.Sleep(500 * time.Millisecond)

	eval[bool](bob, `(() => { window.__t0 = performance.now(); return true })()`)
	laptop.click("#move-here")
	laptop.state("in-call", 20*time.Second)
	phone.state("idle", 20*time.Second)
	if r := eval[string](phone, `window.tandem.lastEnded.reason`); r != "handed_off" {
		t.Errorf("the phone's call ended with %q, want handed_off", r)
	}
	// The move's window ends a second after the phone let go; then the
	// laptop's media for a while longer.
	time.Sleep(time.Second)
	eval[bool](bob, `(() => { window.__t1 = performance.now(); return true })()`)
	phone.waitJS("the phone offering to take the call back", `!document.querySelector('#active-call').hidden && document.querySelector('#active-call-text').textContent.includes('on your laptop')`, 10*time.Second)
	time.Sleep(2 * time.Second)

	var got struct {
		Video, Audio float64
		Frames       float64 // in the move's window
		FramesAfter  float64 // after it
		After        float64 // ms sampled after it
		Total        float64 // frames decoded from Alice so far
		Samples      int
		Trace        [][2]float64 // ms since the move, frames decoded
	}
	if err := json.Unmarshal([]byte(eval[string](bob, freezeJS)), &got); err != nil {
		t.Fatal(err)
	}
	freeze := time.Duration(got.Video * float64(time.Millisecond))
	silence := time.Duration(got.Audio * float64(time.Millisecond))
	t.Logf("at Bob: longest video freeze %v, longest audio gap %v in the move, %.0f frames decoded in it and %.0f in the %.0f ms after (%d samples)",
		freeze.Round(time.Millisecond), silence.Round(time.Millisecond), got.Frames, got.FramesAfter, got.After, got.Samples)
	if freeze > browserHandoffFreeze || silence > browserHandoffFreeze {
		t.Logf("Bob's frames decoded by ms since the move: %v", got.Trace)
		t.Errorf("Bob's picture froze for %v and sound for %v during the move, want at most %v",
			freeze.Round(time.Millisecond), silence.Round(time.Millisecond), browserHandoffFreeze)
	}
	// Past the move Bob's picture keeps coming from the laptop. Three
	// browsers share two cores here and Chromium's encoder stalls now and
	// then under load, so this asks for 30 more frames within 10 s.
	bob.waitJS("Bob decoding the laptop", fmt.Sprintf(`window.tandem.remoteStats().then(s => s.alice && s.alice.framesDecoded >= %d)`, int(got.Total)+30), 10*time.Second)
	if n := eval[float64](bob, `window.tandem.tracksReceived`); n != tracksBefore {
		t.Errorf("Bob got %v new tracks during the move", n-tracksBefore)
	}
	if after := eval[string](bob, inboundSSRCsJS); after != ssrcsBefore {
		t.Errorf("Bob's inbound SSRCs went from %s to %s", ssrcsBefore, after)
	}
	laptop.waitJS("the laptop decoding Bob", `window.tandem.remoteStats().then(s => s.bob && s.bob.framesDecoded > 30)`, 20*time.Second)

	// The laptop sends the call back to the phone, which takes it.
	laptop.waitJS("the move-to control", `!document.querySelector('#move-to').hidden`, 10*time.Second)
	laptop.click("#move-to")
	laptop.click(`#move-list button[data-device="phone"]`)
	phone.waitJS("the phone offered the call", `document.querySelector('#active-call-text').textContent.includes('is sending you the call')`, 10*time.Second)
	phone.click("#move-here")
	phone.state("in-call", 20*time.Second)
	laptop.state("idle", 20*time.Second)
	bob.waitJS("Bob still decoding", `window.tandem.remoteStats().then(s => s.alice && s.alice.framesDecoded > 0)`, 5*time.Second)
	phone.click("#hangup")
	bob.state("idle", 15*time.Second)
	if r := eval[string](bob, `window.tandem.lastEnded.reason`); r != "completed" {
		t.Errorf("Bob's call ended with %q, want completed", r)
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
