package test

import (
	"encoding/json"
	"fmt"
	"image"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandemcall/tandem/internal/agent/x11/x11test"
	"github.com/tandemcall/tandem/internal/assistwire"
)

// TestLabAgentHelp is remote help as it happens in the field: Bob helps
// from Chromium at home, behind a NAT, 40 ms round trip from the server.
// The desktop agent runs on his mother's computer behind a symmetric NAT,
// and then on his father's at an office whose firewall lets out only TCP
// 443 (its media through TURN over TLS). Each time Bob sees the desktop —
// the test window's colours where they are — and his click and typing
// reach the window only once control is granted, and never after the
// person at the computer stops the help. The time from Bob's page sending
// a click to the window receiving it is measured over the 40 ms link.
func TestLabAgentHelp(t *testing.T) {
	if !inPrivateNetns(t, "nft", "nsenter", "unshare", "sysctl") {
		return
	}
	l := newLab(t)
	ts := l.startServer(nil)
	display := x11test.StartXvfb(t)
	win := x11test.NewTestWindow(t, display, 200, 150, 640, 360)

	// 20 ms each way between Bob's home and the server.
	bobHome := l.home("bob", natPortPreserving, linkShape{Delay: 20 * time.Millisecond})
	bob := l.browserIn(bobHome, "bob")
	bob.do(20*time.Second, chromedp.Navigate("https://"+labServerIP+"/#token="+ts.token(t, "bob", "laptop")))
	bob.state("idle", 20*time.Second)

	for _, c := range []struct {
		user string
		nat  labNAT
	}{{"mom", natSymmetric}, {"dad", natTCP443}} {
		t.Run(c.nat.String(), func(t *testing.T) {
			h := l.home(c.user, c.nat)
			ag := l.deviceIn(t, h, c.user+"'s agent", labDeviceSpec{
				URL: l.wsURL(), Token: ts.token(t, c.user, "desktop"), Role: "agent",
				Agent: labAgentSpec{Display: display, FPS: 15},
			})
			ag.send("allow view")
			ag.wait("the agent running", 20*time.Second, func(r labReport) bool { return r.Event == "stats" })
			win.Reset()

			// Bob calls to help; the agent answers and allows seeing only.
			bob.setValue("#call-to", c.user)
			bob.click("#call-help")
			bob.state("in-call", 30*time.Second)
			bob.waitJS("her screen decoded", fmt.Sprintf(`!document.querySelector('#assist-view').hidden && window.tandem.remoteStats().then(s => s[%q] && s[%q].framesDecoded > 10)`, c.user, c.user), 30*time.Second)
			checkLabScreen(t, bob, win)

			// Without control nothing reaches the window.
			target := image.Pt(win.Rect().Min.X+100, win.Rect().Min.Y+80)
			x, y := at(target.X, target.Y)
			click := clickEvents(x, y)
			typing := typeEvents("Hi " + c.user)
			send := func(events []assistwire.Event) {
				t.Helper()
				if !eval[bool](bob, "window.tandem.assistSend("+assistJS(events)+")") {
					t.Fatal("Bob's assist channel is not open")
				}
			}
			send(append(slices.Clone(click), typing...))
			time.Sleep(time.Second)
			if cl, txt := win.Clicks(), win.Text(); len(cl) != 0 || txt != "" {
				t.Errorf("without control the window got clicks %v and text %q", cl, txt)
			}

			// Control granted: the click lands where aimed, the text is typed.
			ag.send("allow view,control")
			bob.click("#assist")
			bob.click("#assist-req-control")
			bob.waitJS("control granted", `window.tandem.assist && window.tandem.assist.state && (window.tandem.assist.state.granted || []).includes('control')`, 20*time.Second)
			send(append(slices.Clone(click), typing...))
			got := win.WaitClicks(t, 1)
			if d := image.Pt(got[0].X, got[0].Y).Sub(target); abs(d.X) > 1 || abs(d.Y) > 1 || got[0].Button != 1 {
				t.Errorf("the click landed at %+v, want button 1 at %v", got[0], target)
			}
			win.WaitText(t, "Hi "+c.user)

			// Click to input, over the 40 ms round trip at Bob's end.
			const clicks = 20
			lat := make([]time.Duration, 0, clicks)
			for i := range clicks {
				win.Reset()
				px, py := at(target.X+i, target.Y)
				start := time.Now()
				send([]assistwire.Event{{Type: assistwire.ButtonDown, Button: 1, X: px, Y: py}, {Type: assistwire.ButtonUp, Button: 1, X: px, Y: py}})
				for len(win.Clicks()) == 0 {
					if time.Since(start) > 5*time.Second {
						t.Fatalf("click %d never arrived", i)
					}
					time.Sleep(200 * time.Microsecond)
				}
				lat = append(lat, time.Since(start))
			}
			t.Logf("Bob's click to the window, %s, 40 ms RTT at Bob's end, %d clicks: p50 %v, p95 %v", c.nat, clicks,
				percentile(lat, 0.5).Round(100*time.Microsecond), percentile(lat, 0.95).Round(100*time.Microsecond))

			// The person at the computer stops the help: nothing more arrives.
			ag.send("stop")
			bob.waitJS("Bob told the help ended", `document.querySelector('#assist-view').hidden`, 20*time.Second)
			win.Reset()
			_ = eval[bool](bob, "window.tandem.assistSend("+assistJS(append(slices.Clone(click), typing...))+")")
			time.Sleep(time.Second)
			if cl, txt := win.Clicks(), win.Text(); len(cl) != 0 || txt != "" {
				t.Errorf("after the help stopped the window got clicks %v and text %q", cl, txt)
			}
			bob.click("#hangup")
			bob.state("idle", 20*time.Second)
		})
	}
}

// checkLabScreen checks that Bob's page shows each of the test window's
// colours where the window has it.
func checkLabScreen(t *testing.T, b *browser, win *x11test.TestWindow) {
	t.Helper()
	type point struct{ X, Y float64 }
	var pts []point
	for _, r := range win.Regions() {
		c := image.Pt((r.Rect.Min.X+r.Rect.Max.X)/2, (r.Rect.Min.Y+r.Rect.Max.Y)/2)
		pts = append(pts, point{float64(c.X) / x11test.Width, float64(c.Y) / x11test.Height})
	}
	pj, _ := json.Marshal(pts)
	js := `(() => { const v = document.querySelector('#assist-screen'); if (!v || !v.videoWidth) return '';
		const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
		const g = c.getContext('2d'); g.drawImage(v, 0, 0);
		return JSON.stringify({w: c.width, h: c.height, px: ` + string(pj) + `.map(p => Array.from(g.getImageData(Math.floor(p.X * c.width), Math.floor(p.Y * c.height), 1, 1).data))}); })()`
	var got struct {
		W, H int
		Px   [][4]int
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		raw := eval[string](b, js)
		bad := ""
		if raw != "" {
			if err := json.Unmarshal([]byte(raw), &got); err != nil {
				t.Fatal(err)
			}
			for i, r := range win.Regions() {
				want := [3]int{int(r.RGB >> 16 & 0xff), int(r.RGB >> 8 & 0xff), int(r.RGB & 0xff)}
				for k := range 3 {
					if abs(got.Px[i][k]-want[k]) > 40 {
						bad += fmt.Sprintf(" at %v #%02x%02x%02x, want #%06x;", r.Rect, got.Px[i][0], got.Px[i][1], got.Px[i][2], r.RGB)
						break
					}
				}
			}
		} else {
			bad = " no picture yet"
		}
		if bad == "" {
			if got.W != x11test.Width || got.H != x11test.Height {
				t.Errorf("Bob's picture is %dx%d, want the whole %dx%d screen", got.W, got.H, x11test.Width, x11test.Height)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Bob does not see the window's colours:%s", strings.TrimSuffix(bad, ";"))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// assistJS writes events as the page's assistSend takes them.
func assistJS(events []assistwire.Event) string {
	type jsEvent struct {
		Type   int    `json:"type"`
		X      uint16 `json:"x"`
		Y      uint16 `json:"y"`
		Button uint8  `json:"button"`
		Keysym uint32 `json:"keysym"`
	}
	out := make([]jsEvent, 0, len(events))
	for _, e := range events {
		out = append(out, jsEvent{Type: int(e.Type), X: e.X, Y: e.Y, Button: e.Button, Keysym: e.Keysym})
	}
	b, _ := json.Marshal(out)
	return string(b)
}
