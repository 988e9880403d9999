// Package x11 captures an X11 screen and injects input into it, for the
// desktop agent.
//
// A Display is one connection to the X server. It injects pointer and
// keyboard input with XTEST, tells local input apart from injected input
// (LocalActivity), and shows the red bar and the pointing mark that say
// the screen is being shared. A Grabber, made by Display.NewGrabber, has a
// connection of its own and reads the screen through MIT-SHM, re-reading
// only what DAMAGE reports as changed.
//
// The package speaks the X protocol in pure Go (github.com/jezek/xgb); it
// needs no C library. It calls none of xgb's extension Init functions (see
// ext.go), and neither should anything else in a process that uses it.
package x11

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xinerama"
	"github.com/jezek/xgb/xproto"
)

// Errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrClosed: the Display or Grabber was closed.
	ErrClosed = errors.New("x11: closed")
	// ErrNoExtension: the X server lacks an extension the call needs
	// (XTEST for input, DAMAGE and XFIXES for grabs).
	ErrNoExtension = errors.New("x11: X extension missing")
	// ErrUnsupportedFormat: the screen is not 24- or 32-bit TrueColor
	// stored as 32-bit little-endian pixels, the only format Grab reads.
	ErrUnsupportedFormat = errors.New("x11: unsupported screen format")
	// ErrScreenResized: the screen changed size; open a new Display and
	// Grabber.
	ErrScreenResized = errors.New("x11: screen resized")
	// ErrInvalidButton: a button other than 1, 2 or 3.
	ErrInvalidButton = errors.New("x11: invalid button")
	// ErrInvalidKeysym: keysym 0 (NoSymbol) or above 0x1fffffff.
	ErrInvalidKeysym = errors.New("x11: invalid keysym")
	// ErrNoSpareKeycode: a keysym is not on the keyboard and every
	// keycode that could carry it is in use.
	ErrNoSpareKeycode = errors.New("x11: no spare keycode")
)

// Display is a connection to an X server's default screen. Its methods
// are safe for concurrent use; they are carried out one at a time.
type Display struct {
	name   string // as given to Open, $DISPLAY resolved
	conn   *xgb.Conn
	screen *xproto.ScreenInfo
	root   xproto.Window
	minKC  xproto.Keycode
	maxKC  xproto.Keycode

	xtestErr error // nil when XTEST is usable
	shapeOK  bool  // SHAPE 1.1: overlays can let input through
	// xineramaOK: the server says which monitors the screen spans.
	xineramaOK bool
	barFonts   []barFont // fonts to try for the bar, best first

	keymapStale atomic.Bool // set by the event loop on MappingNotify
	loopDone    chan struct{}

	mu      sync.Mutex // guards the fields below and orders requests
	closed  bool
	width   int // the screen's size now: it follows RandR resizes
	height  int
	in      inputState
	bar     *overlay
	mark    *overlay
	barText string         // what the bar says, or said when last shown
	ink     *overlay       // the helper's strokes (ink.go)
	inkLast map[int][2]int // each stroke's last point
	inkTail map[int][2]int // each stroke's point an arrow head points away from
	font    overlayFont
	red     *uint32 // red's pixel value, once allocated
}

// Open connects to the X server at display, "" meaning $DISPLAY, for
// example ":0".
func Open(display string) (*Display, error) {
	if display == "" {
		display = os.Getenv("DISPLAY")
	}
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		return nil, fmt.Errorf("x11: connect to %q: %w", display, err)
	}
	setup := xproto.Setup(c)
	screen := setup.DefaultScreen(c)
	d := &Display{
		name:     display,
		conn:     c,
		screen:   screen,
		root:     screen.Root,
		width:    int(screen.WidthInPixels),
		height:   int(screen.HeightInPixels),
		minKC:    setup.MinKeycode,
		maxKC:    setup.MaxKeycode,
		barFonts: defaultBarFonts(),
		loopDone: make(chan struct{}),
	}
	d.keymapStale.Store(true)
	if _, err := initExtension(c, "XTEST"); err != nil {
		d.xtestErr = err
	}
	if _, err := initExtension(c, "SHAPE"); err == nil {
		d.shapeOK = shapeInputSupported(c)
	}
	if _, err := initExtension(c, "XINERAMA"); err == nil {
		r, err := xinerama.IsActive(c).Reply()
		d.xineramaOK = err == nil && r.State != 0
	}
	if err := d.in.init(d); err != nil {
		c.Close()
		return nil, err
	}
	// Hear of the screen changing size (ConfigureNotify on the root).
	err = xproto.ChangeWindowAttributesChecked(c, d.root, xproto.CwEventMask, []uint32{xproto.EventMaskStructureNotify}).Check()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("x11: watch the screen's size: %w", err)
	}
	go d.eventLoop()
	return d, nil
}

// Size is the size of the screen in pixels now; it changes when the
// screen is resized (a Grabber then returns ErrScreenResized).
func (d *Display) Size() (w, h int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.width, d.height
}

// Close releases every key and button Tandem holds down (see ReleaseAll),
// removes the overlays and closes the connection. Grabbers made by d have
// their own connections and are closed separately.
func (d *Display) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	var err error
	if d.xtestErr == nil {
		err = d.releaseAllLocked()
	}
	d.destroyOverlaysLocked()
	d.closed = true
	d.mu.Unlock()

	d.conn.Close()
	<-d.loopDone
	return err
}

// eventLoop reads the events of d.conn until it closes: the X server sends
// MappingNotify to every client, and the overlays ask for Expose and
// VisibilityNotify. xgb stops reading replies when more than a few
// thousand events wait unread, so this loop must keep up.
func (d *Display) eventLoop() {
	defer close(d.loopDone)
	for {
		ev, xerr := d.conn.WaitForEvent()
		if ev == nil && xerr == nil {
			return // connection closed
		}
		switch e := ev.(type) {
		case xproto.MappingNotifyEvent:
			if e.Request == xproto.MappingKeyboard || e.Request == xproto.MappingModifier {
				d.keymapStale.Store(true)
			}
		case xproto.ExposeEvent:
			if e.Count == 0 {
				d.overlayExposed(e.Window)
			}
		case xproto.VisibilityNotifyEvent:
			if e.State != xproto.VisibilityUnobscured {
				d.overlayCovered()
			}
		case xproto.ConfigureNotifyEvent:
			if e.Window == d.root {
				d.resized(int(e.Width), int(e.Height))
			}
		}
		// X errors of unchecked requests land here too; the requests that
		// matter are checked, so they are dropped.
	}
}

// checker is the cookie of a checked request without a reply.
type checker interface{ Check() error }

// check waits for the outcome of checked requests sent in order, with one
// round trip, and returns the first error.
func check(cookies ...checker) error {
	var first error
	// The last cookie's Check makes the round trip; by then the server
	// has answered for the earlier ones, whose Checks return at once.
	for i := len(cookies) - 1; i >= 0; i-- {
		if err := cookies[i].Check(); err != nil {
			first = err
		}
	}
	return first
}
