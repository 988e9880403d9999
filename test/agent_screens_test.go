package test

import (
	"context"
	"fmt"
	"image"
	"slices"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/agent"
	"github.com/tandemcall/tandem/internal/agent/vpx"
	"github.com/tandemcall/tandem/internal/agent/x11/x11test"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// helpedDesktop is a helper (Bob, a Go client) seeing and controlling
// Mom's desktop, shared by her agent, with both granted.
type helpedDesktop struct {
	t      *testing.T
	ctx    context.Context
	bob    *client.Client
	media  *client.Media
	id     string
	screen *vp8Frames
}

func helpDesktop(t *testing.T, display string) *helpedDesktop {
	t.Helper()
	ts := startServer(t, nil)
	consent := &scriptedConsent{asked: make(chan []string, 4)}
	consent.set(protocol.AssistView, protocol.AssistControl)
	a := agent.New(agent.Config{URL: ts.wsURL(), Token: ts.token(t, "mom", "desktop"), Display: display, Logger: clientLogger(t)}, consent)
	runAgent(t, a)
	h := &helpedDesktop{t: t, ctx: testCtx(t, 90*time.Second), bob: ts.dial(t, "bob", "phone"), screen: &vp8Frames{}}
	h.id = ringAgent(t, h.ctx, h.bob, "mom")
	waitType(t, h.bob, func(m *protocol.Accepted) bool { return m.CallID == h.id })
	var err error
	if h.media, err = h.bob.StartMedia(h.ctx, h.id, client.MediaOptions{Audio: true, Assist: true, OnRTP: h.screen.onRTP}); err != nil {
		t.Fatal(err)
	}
	if err := h.bob.Assist(h.ctx, h.id, "mom", protocol.AssistControl); err != nil {
		t.Fatal(err)
	}
	<-consent.asked
	waitType(t, h.bob, func(m *protocol.AssistState) bool { return slices.Contains(m.Granted, protocol.AssistControl) })
	return h
}

// sees waits until Bob's latest picture is w×h and shows win's colours
// where they are on the desktop, offset by what he is shown (at).
func (h *helpedDesktop) sees(what string, w, h2 int, win *x11test.TestWindow, at image.Point) {
	h.t.Helper()
	last := "no picture"
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if h.screen.count() == 0 {
			continue
		}
		dec, err := vpx.NewDecoder()
		if err != nil {
			h.t.Fatal(err)
		}
		img := h.screen.latest(h.t, dec)
		dec.Close()
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h2 {
			last = "a picture of " + b.String()
			continue
		}
		ok := true
		for _, r := range win.Regions() {
			c := image.Pt((r.Rect.Min.X+r.Rect.Max.X)/2, (r.Rect.Min.Y+r.Rect.Max.Y)/2).Sub(at)
			if !near(img, c, r.RGB, 40) {
				last, ok = fmt.Sprintf("%v at %v, not #%06x", img.RGBAAt(c.X, c.Y), c, r.RGB), false
				break
			}
		}
		if ok {
			return
		}
	}
	h.t.Fatalf("timed out waiting for %s: the latest is %s", what, last)
}

// clicks clicks win's centre as Bob aims at it in a picture of the view
// r (desktop pixels), and checks where it landed.
func (h *helpedDesktop) clicks(win *x11test.TestWindow, r image.Rectangle) {
	h.t.Helper()
	target := image.Pt(win.Rect().Min.X+100, win.Rect().Min.Y+80)
	x := uint16((target.X - r.Min.X) * 65535 / (r.Dx() - 1))
	y := uint16((target.Y - r.Min.Y) * 65535 / (r.Dy() - 1))
	win.Reset()
	if err := h.media.SendAssist(h.ctx, clickEvents(x, y)...); err != nil {
		h.t.Fatal(err)
	}
	got := win.WaitClicks(h.t, 1)
	if d := image.Pt(got[0].X, got[0].Y).Sub(target); abs(d.X) > 1 || abs(d.Y) > 1 {
		h.t.Errorf("the click landed at %+v, want %v", got[0], target)
	}
}

// TestAgentScreens: Mom's desktop spans two monitors. Bob is told both,
// and all of them together, which he sees first; he chooses the second
// monitor and then sees only it, at its size, her window there where it
// is on that monitor. He chooses the first, and his click, aimed in his
// picture of it, lands where he aimed. (Xephyr keeps its pointer on its
// first monitor, so clicks are tried there; TestViewAndInput maps input
// onto a monitor off the origin.)
func TestAgentScreens(t *testing.T) {
	display := x11test.StartXephyr(t, image.Pt(640, 480), image.Pt(800, 600))
	win := x11test.NewTestWindow(t, display, 740, 100, 400, 300) // on the second monitor
	first := x11test.NewTestWindow(t, display, 300, 200, 320, 240)
	h := helpDesktop(t, display)
	list := waitType(t, h.bob, func(m *protocol.AssistScreens) bool { return m.CallID == h.id })
	want := []protocol.AssistScreen{
		{Name: "All screens", Width: 1440, Height: 600},
		{Name: "Screen 1", Width: 640, Height: 480},
		{Name: "Screen 2", X: 640, Width: 800, Height: 600},
	}
	if !slices.Equal(list.Screens, want) || list.Shown != 0 {
		t.Fatalf("Bob was told %+v, want %+v, shown 0", list, want)
	}
	h.sees("Bob seeing both monitors", 1440, 600, win, image.Point{})

	if err := h.bob.PickScreen(h.ctx, h.id, 2); err != nil {
		t.Fatal(err)
	}
	if m := waitType(t, h.bob, func(m *protocol.AssistScreens) bool { return m.CallID == h.id }); m.Shown != 2 {
		t.Errorf("after his choice Bob was told %+v, want screen 2 shown", m)
	}
	h.sees("Bob seeing the second monitor", 800, 600, win, image.Pt(640, 0))

	if err := h.bob.PickScreen(h.ctx, h.id, 7); err != nil {
		t.Fatal(err) // passed on: the agent ignores a screen it does not have
	}
	if err := h.bob.PickScreen(h.ctx, h.id, 1); err != nil {
		t.Fatal(err)
	}
	h.sees("Bob seeing the first monitor", 640, 480, first, image.Point{})
	h.clicks(first, image.Rect(0, 0, 640, 480))
}

// TestAgentFollowsResize: Mom changes her screen's resolution while Bob
// helps. His picture follows at the new size, her window's colours where
// they are, and his click still lands where he aims.
func TestAgentFollowsResize(t *testing.T) {
	display := x11test.StartXephyr(t)
	win := x11test.NewTestWindow(t, display, 200, 150, 640, 360)
	h := helpDesktop(t, display)
	h.sees("Bob seeing her screen", x11test.Width, x11test.Height, win, image.Point{})
	x11test.Resize(t, display, 1024, 768)
	h.sees("Bob seeing her screen at its new size", 1024, 768, win, image.Point{})
	h.clicks(win, image.Rect(0, 0, 1024, 768))
}

// TestBrowserPicksScreen: Bob helps from his browser. His page offers Mom's
// two monitors and both together; he picks the second, and the picture
// his page shows becomes that monitor's size.
func TestBrowserPicksScreen(t *testing.T) {
	display := x11test.StartXephyr(t, image.Pt(640, 480), image.Pt(800, 600))
	ts := startServer(t, nil)
	consent := &scriptedConsent{asked: make(chan []string, 4)}
	consent.set(protocol.AssistView)
	a := agent.New(agent.Config{URL: ts.wsURL(), Token: ts.token(t, "mom", "desktop"), Display: display, Logger: clientLogger(t)}, consent)
	runAgent(t, a)

	bob := newBrowser(t, "bob")
	bob.signIn(ts.URL()+"/", "bob", "laptop")
	bob.setValue("#call-to", "mom")
	bob.click("#call-help")
	bob.state("in-call", 30*time.Second)
	<-consent.asked
	picture := func(w, h int) string {
		return fmt.Sprintf(`(() => { const v = document.querySelector('#assist-screen'); return !document.querySelector('#assist-view').hidden && v.videoWidth === %d && v.videoHeight === %d })()`, w, h)
	}
	bob.waitJS("both monitors on Bob's page", picture(1440, 600), 30*time.Second)
	bob.waitJS("the screens offered", `(() => { const p = document.querySelector('#assist-screen-pick'); return !p.hidden && p.options.length === 3 && p.value === '0' && p.options[2].textContent.includes('800×600') })()`, 15*time.Second)
	eval[bool](bob, `(() => { const p = document.querySelector('#assist-screen-pick'); p.value = '2'; p.dispatchEvent(new Event('change')); return true })()`)
	bob.waitJS("the second monitor on Bob's page", picture(800, 600), 20*time.Second)
	bob.click("#hangup")
	bob.state("idle", 20*time.Second)
}
