package x11_test

import (
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/tandemcall/tandem/internal/agent/x11"
	"github.com/tandemcall/tandem/internal/agent/x11/x11test"
	"github.com/tandemcall/tandem/internal/testkit"
)

// window is what the server says of window w.
type window struct {
	viewable, overrideRedirect bool
	x, y, w, h, border         int
}

func windowInfo(t *testing.T, c *xgb.Conn, w uint32) window {
	t.Helper()
	if w == 0 {
		t.Fatal("no window")
	}
	a, err := xproto.GetWindowAttributes(c, xproto.Window(w)).Reply()
	if err != nil {
		t.Fatal(err)
	}
	g, err := xproto.GetGeometry(c, xproto.Drawable(w)).Reply()
	if err != nil {
		t.Fatal(err)
	}
	return window{
		viewable: a.MapState == xproto.MapStateViewable, overrideRedirect: a.OverrideRedirect,
		x: int(g.X), y: int(g.Y), w: int(g.Width), h: int(g.Height), border: int(g.BorderWidth),
	}
}

// topWindows are the root's children from the top down.
func topWindows(t *testing.T, c *xgb.Conn) []uint32 {
	t.Helper()
	r, err := xproto.QueryTree(c, xproto.Setup(c).DefaultScreen(c).Root).Reply()
	if err != nil {
		t.Fatal(err)
	}
	var ws []uint32
	for i := len(r.Children) - 1; i >= 0; i-- {
		ws = append(ws, uint32(r.Children[i]))
	}
	return ws
}

func grab(t *testing.T, g *x11.Grabber) *x11.Frame {
	t.Helper()
	f, _, err := g.Grab(true)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestBar(t *testing.T) {
	display, d := open(t)
	c := xconn(t, display)
	g := newGrabber(t, d)
	if err := d.ShowBar("Tandem: Ada can see and control this screen"); err != nil {
		t.Fatal(err)
	}
	bar := windowInfo(t, c, d.BarWindow())
	if !bar.viewable || !bar.overrideRedirect || bar.x != 0 || bar.y != 0 || bar.w != x11test.Width || bar.h < 12 || bar.h > 40 {
		t.Fatalf("bar %+v, want a viewable override-redirect window across the top", bar)
	}
	if top := topWindows(t, c); top[0] != d.BarWindow() {
		t.Fatalf("bar %d is not the top window of %v", d.BarWindow(), top)
	}

	f := grab(t, g)
	white := 0
	for y := range bar.h {
		for x := range bar.w {
			switch rgbAt(f, x, y) {
			case 0xffffff:
				white++
			case x11test.Red:
			default:
				t.Fatalf("bar pixel (%d, %d) = %06x, want red or white", x, y, rgbAt(f, x, y))
			}
		}
	}
	if white < 100 {
		t.Fatalf("%d white pixels of text on the bar", white)
	}
	if got := rgbAt(f, 2, bar.h); got == x11test.Red {
		t.Fatal("red below the bar")
	}

	// Clicks on the bar go to the window below.
	tw := x11test.NewTestWindow(t, display, 0, 0, 400, 300)
	testkit.Eventually(t, 5*time.Second, "the bar to be raised over the new window", func() bool {
		return topWindows(t, c)[0] == d.BarWindow()
	})
	if got := rgbAt(grab(t, g), 2, 2); got != x11test.Red {
		t.Fatalf("bar pixel (2, 2) = %06x after a window covered it, want red", got)
	}
	if err := d.MovePointer(100, 5); err != nil {
		t.Fatal(err)
	}
	if err := d.Button(1, true); err != nil {
		t.Fatal(err)
	}
	if err := d.Button(1, false); err != nil {
		t.Fatal(err)
	}
	if got := tw.WaitClicks(t, 1); got[0] != (x11test.Click{X: 100, Y: 5, Button: 1}) {
		t.Fatalf("click through the bar: %v", got)
	}

	if err := d.HideBar(); err != nil {
		t.Fatal(err)
	}
	if windowInfo(t, c, d.BarWindow()).viewable {
		t.Fatal("bar viewable after HideBar")
	}
	// The window repaints what the bar covered when its Expose arrives.
	testkit.Eventually(t, 5*time.Second, "the window's red and green where the bar was", func() bool {
		f := grab(t, g)
		return rgbAt(f, 2, 2) == x11test.Red && rgbAt(f, 300, 2) == x11test.Green
	})
	if err := d.HideBar(); err != nil {
		t.Fatalf("second HideBar: %v", err)
	}
	if err := d.ShowBar("again"); err != nil {
		t.Fatal(err)
	}
	if !windowInfo(t, c, d.BarWindow()).viewable {
		t.Fatal("bar not viewable after a second ShowBar")
	}
}

func TestMark(t *testing.T) {
	display, d := open(t)
	c := xconn(t, display)
	g := newGrabber(t, d)
	tw := x11test.NewTestWindow(t, display, 400, 200, 400, 300)
	if err := d.ShowBar("Tandem"); err != nil {
		t.Fatal(err)
	}
	if err := d.ShowMark(500, 300); err != nil {
		t.Fatal(err)
	}
	m := windowInfo(t, c, d.MarkWindow())
	if !m.viewable || !m.overrideRedirect || m.w > 20 || m.x+m.border+m.w/2 != 500 || m.y+m.border+m.h/2 != 300 {
		t.Fatalf("mark %+v, want a small viewable override-redirect window centred on (500, 300)", m)
	}
	if top := topWindows(t, c); top[0] != d.MarkWindow() || top[1] != d.BarWindow() {
		t.Fatalf("top windows %v, want the mark %d, then the bar %d", top[:2], d.MarkWindow(), d.BarWindow())
	}
	f := grab(t, g)
	if got := rgbAt(f, 500, 300); got != x11test.Red {
		t.Fatalf("mark centre = %06x, want red", got)
	}
	if got := rgbAt(f, m.x, 300); got != 0xffffff {
		t.Fatalf("mark border = %06x, want white", got)
	}
	if got := rgbAt(f, m.x-1, 300); got != x11test.Red { // the window's red quadrant
		t.Fatalf("beside the mark = %06x, want the window's red", got)
	}

	// The mark lets clicks through.
	if err := d.MovePointer(500, 300); err != nil {
		t.Fatal(err)
	}
	if err := d.Button(1, true); err != nil {
		t.Fatal(err)
	}
	if err := d.Button(1, false); err != nil {
		t.Fatal(err)
	}
	if got := tw.WaitClicks(t, 1); got[0] != (x11test.Click{X: 500, Y: 300, Button: 1}) {
		t.Fatalf("click through the mark: %v", got)
	}

	// Over the bar, the mark stays on top; both stay still once there.
	if err := d.ShowMark(40, 3); err != nil {
		t.Fatal(err)
	}
	if m := windowInfo(t, c, d.MarkWindow()); m.x+m.border+m.w/2 != 40 || m.y+m.border+m.h/2 != 3 {
		t.Fatalf("mark %+v not moved to (40, 3)", m)
	}
	if got := rgbAt(grab(t, g), 40, 3); got != x11test.Red {
		t.Fatalf("mark over the bar = %06x, want red", got)
	}
	if top := topWindows(t, c); top[0] != d.MarkWindow() || top[1] != d.BarWindow() {
		t.Fatalf("top windows %v, want the mark, then the bar", top[:2])
	}

	if err := d.HideMark(); err != nil {
		t.Fatal(err)
	}
	if windowInfo(t, c, d.MarkWindow()).viewable {
		t.Fatal("mark viewable after HideMark")
	}
	if !windowInfo(t, c, d.BarWindow()).viewable {
		t.Fatal("HideMark hid the bar")
	}
}
