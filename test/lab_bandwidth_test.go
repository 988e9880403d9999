package test

import (
	"fmt"
	"image"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/tandemcall/tandem/internal/agent/x11/x11test"
)

// TestLabAgentFollowsBandwidth: the computer being helped is on an uplink
// that carries 700 kbit/s, and half its screen changes all the time (a
// video playing). The agent would send 1.5 Mbit/s; congestion control
// brings its encoder under what the link carries, so the picture at the
// helper's end stays fresh: a change on the screen reaches Bob's page
// within a second, not after a queue of seconds.
func TestLabAgentFollowsBandwidth(t *testing.T) {
	if !inPrivateNetns(t, "nft", "nsenter", "unshare", "sysctl") {
		return
	}
	l := newLab(t)
	ts := l.startServer(nil)
	display := x11test.StartXvfb(t)
	win := x11test.NewTestWindow(t, display, 700, 380, 400, 300)
	stopNoise := noiseWindow(t, display, image.Rect(0, 0, 640, 360))
	defer stopNoise()

	const capKbps = 700
	bobHome := l.home("bob", natPortPreserving, linkShape{Delay: 10 * time.Millisecond})
	momHome := l.home("mom", natSymmetric, linkShape{Delay: 10 * time.Millisecond, RateKbps: capKbps})
	bob := l.browserIn(bobHome, "bob")
	bob.do(20*time.Second, chromedp.Navigate("https://"+labServerIP+"/#token="+ts.token(t, "bob", "laptop")))
	bob.state("idle", 20*time.Second)
	ag := l.deviceIn(t, momHome, "mom's agent", labDeviceSpec{
		URL: l.wsURL(), Token: ts.token(t, "mom", "desktop"), Role: "agent",
		Agent: labAgentSpec{Display: display, FPS: 15, BitrateKbps: 1500},
	})
	ag.send("allow view")
	ag.wait("the agent running", 20*time.Second, func(r labReport) bool { return r.Event == "stats" })
	bob.setValue("#call-to", "mom")
	bob.click("#call-help")
	bob.waitJS("her screen decoded", `!document.querySelector('#assist-view').hidden && window.tandem.remoteStats().then(s => s.mom && s.mom.framesDecoded > 10)`, 30*time.Second)

	start := time.Now()
	r := ag.wait("the agent encoding under the link's rate", 15*time.Second, func(r labReport) bool {
		return r.Event == "stats" && r.TargetKbps > 0 && r.TargetKbps <= capKbps
	})
	t.Logf("the agent encodes at %d kbit/s (configured 1500) %v after Bob's first pictures (%s)", r.TargetKbps, time.Since(start).Round(100*time.Millisecond), r.Text)
	time.Sleep(3 * time.Second) // what was queued before drains

	// A change on her screen, then the time until Bob sees it.
	c := win.Regions()[0]
	at := image.Pt((c.Rect.Min.X+c.Rect.Max.X)/2, (c.Rect.Min.Y+c.Rect.Max.Y)/2)
	js := fmt.Sprintf(`(() => { const v = document.querySelector('#assist-screen'); if (!v || !v.videoWidth) return '';
		const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
		const g = c.getContext('2d', {willReadFrequently: true}); g.drawImage(v, 0, 0);
		return Array.from(g.getImageData(Math.floor(%f * c.width), Math.floor(%f * c.height), 1, 1).data).slice(0, 3).join(','); })()`,
		float64(at.X)/x11test.Width, float64(at.Y)/x11test.Height)
	var lat []time.Duration
	for i, rgb := range []uint32{0xff0000, 0x00ff00, 0x0000ff, 0xffff00, 0x00ffff} {
		win.Paint(t, c.Rect, rgb)
		painted := time.Now()
		want := [3]int{int(rgb >> 16), int(rgb >> 8 & 0xff), int(rgb & 0xff)}
		for {
			if seen(eval[string](bob, js), want) {
				lat = append(lat, time.Since(painted))
				break
			}
			if time.Since(painted) > 10*time.Second {
				t.Fatalf("change %d: Bob's page never showed #%06x", i, rgb)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("a change on her screen to Bob's page over the %d kbit/s uplink: p50 %v, worst %v", capKbps,
		percentile(lat, 0.5).Round(10*time.Millisecond), percentile(lat, 1).Round(10*time.Millisecond))
	if p := percentile(lat, 0.5); p > time.Second {
		t.Errorf("a change took %v (median) to reach Bob: the picture queues in front of the link", p)
	}
}

// seen reports whether "r,g,b" is near want.
func seen(s string, want [3]int) bool {
	parts := strings.Split(s, ",")
	if len(parts) != 3 {
		return false
	}
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || abs(v-want[i]) > 60 {
			return false
		}
	}
	return true
}

// noiseWindow shows a window whose every pixel changes 15 times a
// second, as a playing video does (a moving pattern with a little noise,
// which an encoder can still fit into what it is given); stop ends it.
func noiseWindow(t *testing.T, display string, r image.Rectangle) (stop func()) {
	t.Helper()
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatal(err)
	}
	screen := xproto.Setup(c).DefaultScreen(c)
	win, err := xproto.NewWindowId(c)
	if err != nil {
		t.Fatal(err)
	}
	gc, err := xproto.NewGcontextId(c)
	if err != nil {
		t.Fatal(err)
	}
	w, h := r.Dx(), r.Dy()
	xproto.CreateWindow(c, screen.RootDepth, win, screen.Root, int16(r.Min.X), int16(r.Min.Y), uint16(w), uint16(h), 0,
		xproto.WindowClassInputOutput, screen.RootVisual, xproto.CwOverrideRedirect, []uint32{1})
	xproto.CreateGC(c, gc, xproto.Drawable(win), 0, nil)
	xproto.MapWindow(c, win)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		rnd := rand.New(rand.NewPCG(1, 2))
		// Rows of 8 pixels at a time: PutImage requests stay under the
		// X server's request size.
		const rows = 8
		buf := make([]byte, w*rows*4)
		frame := 0
		tick := time.NewTicker(time.Second / 15)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			frame++
			for y := 0; y < h; y += rows {
				for i := range buf {
					x, yy := i%(w*4), y+i/(w*4)
					buf[i] = byte(x*3+yy*5+frame*11) ^ byte(rnd.Uint32()>>29)
				}
				xproto.PutImage(c, xproto.ImageFormatZPixmap, xproto.Drawable(win), gc, uint16(w), rows, 0, int16(y), 0, screen.RootDepth, buf)
			}
			_, _ = xproto.GetInputFocus(c).Reply()
		}
	})
	return func() {
		close(done)
		wg.Wait()
		c.Close()
	}
}
