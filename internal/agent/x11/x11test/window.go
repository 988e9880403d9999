package x11test

import (
	"image"
	"slices"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// waitTimeout bounds the Wait methods.
const waitTimeout = 5 * time.Second

// TestWindow is an X11 window for tests: it shows four rectangles of
// known colours and records the clicks and keys it receives. All its
// coordinates are root (screen) coordinates. Its methods are safe for
// concurrent use; the ones taking a testing.TB must be called from the
// test's goroutine.
type TestWindow struct {
	conn    *xgb.Conn
	win     xproto.Window
	gc      xproto.Gcontext
	rect    image.Rectangle
	ready   chan struct{}
	looping bool          // the event loop was started
	closed  chan struct{} // event loop done

	mu     sync.Mutex
	pixels map[uint32]uint32 // RGB → pixel value
	paints []Region          // what the window shows, drawn in order
	clicks []Click
	text   []rune
	km     keymap
}

// Region is a rectangle of one colour, RGB as 0xRRGGBB.
type Region struct {
	Rect image.Rectangle
	RGB  uint32
}

// Click is a ButtonPress the window received: where, in root coordinates,
// and which button (4 to 7 for the wheel).
type Click struct {
	X, Y   int
	Button uint8
}

// Quadrant colours, top-left, top-right, bottom-left, bottom-right.
const (
	Red    = 0xff0000
	Green  = 0x00ff00
	Blue   = 0x0000ff
	Yellow = 0xffff00
)

// NewTestWindow opens a window at (x, y), w×h, on display: an
// override-redirect window, so that no window manager moves it, with the
// keyboard focus. It returns once the window is shown and painted, and
// destroys it at the end of the test.
func NewTestWindow(t testing.TB, display string, x, y, w, h int) *TestWindow {
	t.Helper()
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatalf("x11test: connect to %s: %v", display, err)
	}
	screen := xproto.Setup(c).DefaultScreen(c)
	tw := &TestWindow{
		conn:   c,
		rect:   image.Rect(x, y, x+w, y+h),
		ready:  make(chan struct{}),
		closed: make(chan struct{}),
		pixels: make(map[uint32]uint32),
	}
	t.Cleanup(tw.close)
	if tw.km, err = loadKeymap(c); err != nil {
		t.Fatalf("x11test: %v", err)
	}
	for i, rgb := range []uint32{Red, Green, Blue, Yellow} {
		qw, qh := w/2, h/2
		r := image.Rect(x+i%2*qw, y+i/2*qh, x+i%2*qw+qw, y+i/2*qh+qh)
		if i%2 == 1 {
			r.Max.X = x + w
		}
		if i/2 == 1 {
			r.Max.Y = y + h
		}
		tw.paints = append(tw.paints, Region{Rect: r, RGB: rgb})
		if _, err := tw.pixel(rgb); err != nil {
			t.Fatalf("x11test: allocate colour %06x: %v", rgb, err)
		}
	}
	if tw.win, err = xproto.NewWindowId(c); err != nil {
		t.Fatalf("x11test: %v", err)
	}
	if tw.gc, err = xproto.NewGcontextId(c); err != nil {
		t.Fatalf("x11test: %v", err)
	}
	events := uint32(xproto.EventMaskExposure | xproto.EventMaskButtonPress | xproto.EventMaskKeyPress |
		xproto.EventMaskStructureNotify)
	err = xproto.CreateWindowChecked(c, screen.RootDepth, tw.win, screen.Root,
		int16(x), int16(y), uint16(w), uint16(h), 0, xproto.WindowClassInputOutput, screen.RootVisual,
		xproto.CwBackPixel|xproto.CwOverrideRedirect|xproto.CwEventMask,
		[]uint32{screen.BlackPixel, 1, events}).Check()
	if err != nil {
		t.Fatalf("x11test: create window: %v", err)
	}
	if err := xproto.CreateGCChecked(c, tw.gc, xproto.Drawable(tw.win), 0, nil).Check(); err != nil {
		t.Fatalf("x11test: create gc: %v", err)
	}
	tw.looping = true
	go tw.eventLoop()
	if err := xproto.MapWindowChecked(c, tw.win).Check(); err != nil {
		t.Fatalf("x11test: map window: %v", err)
	}
	select {
	case <-tw.ready:
	case <-time.After(waitTimeout):
		t.Fatalf("x11test: window not mapped after %v", waitTimeout)
	}
	return tw
}

// Window is the window's X id.
func (tw *TestWindow) Window() uint32 { return uint32(tw.win) }

// Rect is where the window is on the screen.
func (tw *TestWindow) Rect() image.Rectangle { return tw.rect }

// Regions are the window's four quadrants: Red, Green, Blue and Yellow,
// in reading order.
func (tw *TestWindow) Regions() []Region {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	return slices.Clone(tw.paints[:4])
}

// Paint fills r (clipped to the window) with the colour rgb, 0xRRGGBB,
// and returns once the X server has drawn it.
func (tw *TestWindow) Paint(t testing.TB, r image.Rectangle, rgb uint32) {
	t.Helper()
	if _, err := tw.pixel(rgb); err != nil {
		t.Fatalf("x11test: allocate colour %06x: %v", rgb, err)
	}
	tw.mu.Lock()
	tw.paints = append(tw.paints, Region{Rect: r.Intersect(tw.rect), RGB: rgb})
	tw.drawLocked(tw.paints[len(tw.paints)-1:])
	tw.mu.Unlock()
	if _, err := xproto.GetInputFocus(tw.conn).Reply(); err != nil {
		t.Fatalf("x11test: paint: %v", err)
	}
}

// Focus gives the window the keyboard focus again.
func (tw *TestWindow) Focus(t testing.TB) {
	t.Helper()
	err := xproto.SetInputFocusChecked(tw.conn, xproto.InputFocusParent, tw.win, xproto.TimeCurrentTime).Check()
	if err != nil {
		t.Fatalf("x11test: focus: %v", err)
	}
}

// Clicks are the ButtonPress events received so far.
func (tw *TestWindow) Clicks() []Click {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	return slices.Clone(tw.clicks)
}

// Text is what was typed into the window so far: the characters of the
// KeyPress events, decoded with the keyboard mapping and Shift.
func (tw *TestWindow) Text() string {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	return string(tw.text)
}

// Reset forgets the clicks and text received so far.
func (tw *TestWindow) Reset() {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	tw.clicks, tw.text = nil, nil
}

// WaitText waits until Text is want, and fails the test if it does not
// become want within 5 seconds.
func (tw *TestWindow) WaitText(t testing.TB, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for tw.Text() != want {
		if time.Now().After(deadline) {
			t.Fatalf("x11test: window text %q, want %q", tw.Text(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WaitClicks waits until the window received n clicks and returns them,
// and fails the test if it did not within 5 seconds.
func (tw *TestWindow) WaitClicks(t testing.TB, n int) []Click {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		if cs := tw.Clicks(); len(cs) >= n {
			return cs
		} else if time.Now().After(deadline) {
			t.Fatalf("x11test: %d clicks %v, want %d", len(cs), cs, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (tw *TestWindow) eventLoop() {
	defer close(tw.closed)
	mapped := false
	for {
		ev, xerr := tw.conn.WaitForEvent()
		if ev == nil && xerr == nil {
			return // connection closed
		}
		switch e := ev.(type) {
		case xproto.MapNotifyEvent:
			if e.Window != tw.win || mapped {
				continue
			}
			mapped = true
			tw.mu.Lock()
			tw.drawLocked(tw.paints)
			tw.mu.Unlock()
			xproto.SetInputFocus(tw.conn, xproto.InputFocusParent, tw.win, xproto.TimeCurrentTime)
			if _, err := xproto.GetInputFocus(tw.conn).Reply(); err == nil {
				close(tw.ready)
			}
		case xproto.ExposeEvent:
			if e.Count == 0 {
				tw.mu.Lock()
				tw.drawLocked(tw.paints)
				tw.mu.Unlock()
			}
		case xproto.ButtonPressEvent:
			tw.mu.Lock()
			tw.clicks = append(tw.clicks, Click{X: int(e.RootX), Y: int(e.RootY), Button: uint8(e.Detail)})
			tw.mu.Unlock()
		case xproto.KeyPressEvent:
			tw.mu.Lock()
			if r := keysymRune(tw.km.keysym(e.Detail, e.State)); r != 0 {
				tw.text = append(tw.text, r)
			}
			tw.mu.Unlock()
		case xproto.MappingNotifyEvent:
			// Events are handled in order: the new mapping is in place
			// before the key events that follow the change.
			if km, err := loadKeymap(tw.conn); err == nil {
				tw.mu.Lock()
				tw.km = km
				tw.mu.Unlock()
			}
		}
	}
}

// pixel is the pixel value of rgb, allocated on the default colormap.
func (tw *TestWindow) pixel(rgb uint32) (uint32, error) {
	tw.mu.Lock()
	p, ok := tw.pixels[rgb]
	tw.mu.Unlock()
	if ok {
		return p, nil
	}
	screen := xproto.Setup(tw.conn).DefaultScreen(tw.conn)
	r, err := xproto.AllocColor(tw.conn, screen.DefaultColormap,
		uint16(rgb>>16&0xff)*0x101, uint16(rgb>>8&0xff)*0x101, uint16(rgb&0xff)*0x101).Reply()
	if err != nil {
		return 0, err
	}
	tw.mu.Lock()
	tw.pixels[rgb] = r.Pixel
	tw.mu.Unlock()
	return r.Pixel, nil
}

// drawLocked fills regions, whose colours are allocated already.
func (tw *TestWindow) drawLocked(regions []Region) {
	for _, p := range regions {
		r := p.Rect.Sub(tw.rect.Min)
		xproto.ChangeGC(tw.conn, tw.gc, xproto.GcForeground, []uint32{tw.pixels[p.RGB]})
		xproto.PolyFillRectangle(tw.conn, xproto.Drawable(tw.win), tw.gc, []xproto.Rectangle{{
			X: int16(r.Min.X), Y: int16(r.Min.Y), Width: uint16(r.Dx()), Height: uint16(r.Dy()),
		}})
	}
}

func (tw *TestWindow) close() {
	if tw.win != 0 {
		xproto.DestroyWindow(tw.conn, tw.win)
	}
	tw.conn.Close()
	if tw.looping {
		<-tw.closed
	}
}

// keymap is the core keyboard mapping, enough to decode key presses.
type keymap struct {
	min  xproto.Keycode
	per  int
	syms []xproto.Keysym
}

func loadKeymap(c *xgb.Conn) (keymap, error) {
	s := xproto.Setup(c)
	r, err := xproto.GetKeyboardMapping(c, s.MinKeycode, byte(s.MaxKeycode-s.MinKeycode+1)).Reply()
	if err != nil {
		return keymap{}, err
	}
	return keymap{min: s.MinKeycode, per: int(r.KeysymsPerKeycode), syms: r.Keysyms}, nil
}

// keysym is what keycode kc types with modifiers state, in group 1, the
// way Xlib's XLookupKeysym rules have it for Shift and Lock.
func (k keymap) keysym(kc xproto.Keycode, state uint16) xproto.Keysym {
	i := int(kc-k.min) * k.per
	if kc < k.min || i+1 >= len(k.syms) || k.per < 2 {
		return 0
	}
	plain, shifted := k.syms[i], k.syms[i+1]
	letter := plain < 0x100 && unicode.IsLetter(rune(plain))
	if shifted == 0 {
		shifted = plain
		if letter {
			plain = xproto.Keysym(unicode.ToLower(rune(plain)))
			shifted = xproto.Keysym(unicode.ToUpper(rune(plain)))
		}
	}
	shift := state&xproto.ModMaskShift != 0
	if state&xproto.ModMaskLock != 0 && letter {
		shift = !shift
	}
	if shift {
		return shifted
	}
	return plain
}
