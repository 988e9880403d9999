package x11

import (
	"fmt"
	"image"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/damage"
	"github.com/jezek/xgb/shm"
	"github.com/jezek/xgb/xfixes"
	"github.com/jezek/xgb/xproto"
)

// Frame is a picture of the screen: Height rows of Width pixels, 4 bytes
// each in the order blue, green, red, unused (BGRX), row y starting at
// Pix[y*Stride].
type Frame struct {
	Width, Height int
	Stride        int
	Pix           []byte
	// Dirty lists the rectangles the last Grab read again, the whole
	// frame after a full grab, none when nothing changed. They may
	// overlap and may hold unchanged pixels.
	Dirty []image.Rectangle
}

// Grabber reads the screen of a Display. It has its own connection to the
// X server: DAMAGE tells it what changed, and it reads only that, through
// shared memory (MIT-SHM), or with plain GetImage requests when shared
// memory is not available, as with a remote X server.
//
// A Grabber is not safe for concurrent use: one goroutine calls Grab, and
// Close. It may be used at the same time as its Display.
type Grabber struct {
	conn        *xgb.Conn
	root        xproto.Window
	damage      damage.Damage
	region      xfixes.Region // receives the damage at each grab
	damageEvent int           // DamageNotify's event number

	seg    shm.Seg
	shmBuf []byte // the shared segment, a frame's size; nil without MIT-SHM

	frame   Frame
	rects   []image.Rectangle // storage for frame.Dirty
	dirty   bool              // a DamageNotify came since the last grab
	full    bool              // frame holds a whole picture
	resized bool
	closed  bool
}

// NewGrabber opens a Grabber on d's screen. The first Grab reads the
// whole screen.
func (d *Display) NewGrabber() (*Grabber, error) {
	return newGrabber(d.name, true)
}

func newGrabber(display string, useSHM bool) (g *Grabber, err error) {
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		return nil, fmt.Errorf("x11: connect to %q: %w", display, err)
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	setup := xproto.Setup(c)
	screen := setup.DefaultScreen(c)
	if err := checkFormat(setup, screen); err != nil {
		return nil, err
	}
	w, h := int(screen.WidthInPixels), int(screen.HeightInPixels)
	g = &Grabber{
		conn:  c,
		root:  screen.Root,
		frame: Frame{Width: w, Height: h, Stride: 4 * w, Pix: make([]byte, 4*w*h)},
	}
	if err := g.initDamage(); err != nil {
		return nil, err
	}
	if useSHM {
		// Without it, GetImage still works, only slower.
		_ = g.attachSHM(4 * w * h)
	}
	return g, nil
}

// checkFormat accepts screens whose pixels Grab can hand out as BGRX:
// TrueColor, 8 bits per channel, 32 bits per pixel, little-endian.
func checkFormat(setup *xproto.SetupInfo, s *xproto.ScreenInfo) error {
	bpp := 0
	for _, f := range setup.PixmapFormats {
		if f.Depth == s.RootDepth {
			bpp = int(f.BitsPerPixel)
		}
	}
	var visual *xproto.VisualInfo
	for _, dep := range s.AllowedDepths {
		for i, v := range dep.Visuals {
			if dep.Depth == s.RootDepth && v.VisualId == s.RootVisual {
				visual = &dep.Visuals[i]
			}
		}
	}
	ok := bpp == 32 && setup.ImageByteOrder == xproto.ImageOrderLSBFirst && visual != nil &&
		visual.Class == xproto.VisualClassTrueColor &&
		visual.RedMask == 0xff0000 && visual.GreenMask == 0xff00 && visual.BlueMask == 0xff
	if !ok {
		return fmt.Errorf("%w: depth %d, %d bits per pixel", ErrUnsupportedFormat, s.RootDepth, bpp)
	}
	return nil
}

// initDamage tracks damage to the root window, and its size.
func (g *Grabber) initDamage() error {
	c := g.conn
	dext, err := initExtension(c, "DAMAGE")
	if err != nil {
		return err
	}
	if _, err := initExtension(c, "XFIXES"); err != nil {
		return err
	}
	// The server must hear the client's version of both extensions
	// before any other request of theirs.
	if _, err := xfixes.QueryVersion(c, 5, 0).Reply(); err != nil {
		return fmt.Errorf("x11: xfixes version: %w", err)
	}
	if _, err := damage.QueryVersion(c, 1, 1).Reply(); err != nil {
		return fmt.Errorf("x11: damage version: %w", err)
	}
	if g.damage, err = damage.NewDamageId(c); err != nil {
		return fmt.Errorf("x11: damage: %w", err)
	}
	if g.region, err = xfixes.NewRegionId(c); err != nil {
		return fmt.Errorf("x11: region: %w", err)
	}
	g.damageEvent = dext.firstEvent + damage.Notify
	// NonEmpty: one event when the damage stops being empty, none after
	// until Grab takes it (Subtract), however much is drawn.
	err = check(
		damage.CreateChecked(c, g.damage, xproto.Drawable(g.root), damage.ReportLevelNonEmpty),
		xfixes.CreateRegionChecked(c, g.region, nil),
		xproto.ChangeWindowAttributesChecked(c, g.root, xproto.CwEventMask,
			[]uint32{xproto.EventMaskStructureNotify}),
	)
	if err != nil {
		return fmt.Errorf("x11: damage on the root window: %w", err)
	}
	return nil
}

// Grab brings the frame up to date and returns it, with changed true if
// anything was read again. It reads only what changed since the last
// Grab, or the whole screen if full is true or this is the first Grab.
// The frame is the Grabber's: the next Grab updates it in place. Drawing
// that reaches the X server just before Grab may be reported by the next
// one. Grab returns ErrScreenResized once the screen changed size.
func (g *Grabber) Grab(full bool) (f *Frame, changed bool, err error) {
	if g.closed {
		return nil, false, ErrClosed
	}
	g.readEvents()
	if g.resized {
		return nil, false, ErrScreenResized
	}
	full = full || !g.full
	if !full && !g.dirty {
		g.frame.Dirty = g.rects[:0]
		return &g.frame, false, nil
	}
	g.dirty = false

	// Take the damage first: what is drawn while the pixels are read is
	// damage for the next Grab.
	sub := damage.SubtractChecked(g.conn, g.damage, 0, g.region)
	rects := g.rects[:0]
	if full {
		rects = append(rects, image.Rect(0, 0, g.frame.Width, g.frame.Height))
	} else {
		r, err := xfixes.FetchRegion(g.conn, g.region).Reply()
		if err != nil {
			g.full = false // the damage taken is lost
			return nil, false, fmt.Errorf("x11: fetch damage: %w", err)
		}
		screen := image.Rect(0, 0, g.frame.Width, g.frame.Height)
		for _, xr := range r.Rectangles {
			rr := image.Rect(int(xr.X), int(xr.Y), int(xr.X)+int(xr.Width), int(xr.Y)+int(xr.Height)).Intersect(screen)
			if !rr.Empty() {
				rects = append(rects, rr)
			}
		}
		rects = mergeRects(rects)
	}
	g.rects = rects
	g.frame.Dirty = rects
	g.full = false // until the read succeeds
	if err := g.read(rects); err != nil {
		return nil, false, err
	}
	if err := sub.Check(); err != nil {
		return nil, false, fmt.Errorf("x11: take damage: %w", err)
	}
	g.full = true
	return &g.frame, len(rects) > 0, nil
}

// readEvents takes the events that came so far, without waiting.
func (g *Grabber) readEvents() {
	for {
		ev, xerr := g.conn.PollForEvent()
		if ev == nil && xerr == nil {
			return
		}
		switch e := ev.(type) {
		case extEvent:
			if e.code() == g.damageEvent {
				g.dirty = true
			}
		case xproto.ConfigureNotifyEvent:
			if e.Window == g.root && (int(e.Width) != g.frame.Width || int(e.Height) != g.frame.Height) {
				g.resized = true
			}
		}
	}
}

// read reads rectangles of the root window into the frame, sending every
// request before waiting for the first reply.
func (g *Grabber) read(rects []image.Rectangle) error {
	if g.shmBuf == nil {
		return g.readCore(rects)
	}
	type pending struct {
		r      image.Rectangle
		off    int
		cookie shm.GetImageCookie
	}
	batch := make([]pending, 0, len(rects))
	flush := func() error {
		for _, p := range batch {
			reply, err := p.cookie.Reply()
			if err != nil {
				return fmt.Errorf("x11: shm get image: %w", err)
			}
			n := 4 * p.r.Dx() * p.r.Dy()
			if int(reply.Size) != n {
				return fmt.Errorf("%w: image of %d bytes for %v", ErrUnsupportedFormat, reply.Size, p.r)
			}
			g.put(p.r, g.shmBuf[p.off:p.off+n])
		}
		batch = batch[:0]
		return nil
	}
	off := 0
	for _, r := range rects {
		n := 4 * r.Dx() * r.Dy()
		if off+n > len(g.shmBuf) {
			if err := flush(); err != nil {
				return err
			}
			off = 0
		}
		cookie := shm.GetImage(g.conn, xproto.Drawable(g.root), int16(r.Min.X), int16(r.Min.Y),
			uint16(r.Dx()), uint16(r.Dy()), ^uint32(0), xproto.ImageFormatZPixmap, g.seg, uint32(off))
		batch = append(batch, pending{r: r, off: off, cookie: cookie})
		off += (n + 63) &^ 63
	}
	return flush()
}

// readCore reads rectangles with core GetImage requests, the pixels
// coming through the socket.
func (g *Grabber) readCore(rects []image.Rectangle) error {
	cookies := make([]xproto.GetImageCookie, len(rects))
	for i, r := range rects {
		cookies[i] = xproto.GetImage(g.conn, xproto.ImageFormatZPixmap, xproto.Drawable(g.root),
			int16(r.Min.X), int16(r.Min.Y), uint16(r.Dx()), uint16(r.Dy()), ^uint32(0))
	}
	for i, r := range rects {
		reply, err := cookies[i].Reply()
		if err != nil {
			return fmt.Errorf("x11: get image: %w", err)
		}
		if n := 4 * r.Dx() * r.Dy(); len(reply.Data) < n {
			return fmt.Errorf("%w: image of %d bytes for %v", ErrUnsupportedFormat, len(reply.Data), r)
		}
		g.put(r, reply.Data)
	}
	return nil
}

// put copies the pixels of r, packed row after row, into the frame.
func (g *Grabber) put(r image.Rectangle, src []byte) {
	f := &g.frame
	row := 4 * r.Dx()
	if r.Min.X == 0 && r.Dx() == f.Width {
		copy(f.Pix[r.Min.Y*f.Stride:], src[:row*r.Dy()])
		return
	}
	for y := range r.Dy() {
		copy(f.Pix[(r.Min.Y+y)*f.Stride+4*r.Min.X:][:row], src[y*row:][:row])
	}
}

// Close detaches the shared memory and closes the Grabber's connection.
// The last Frame stays readable.
func (g *Grabber) Close() error {
	if g.closed {
		return nil
	}
	g.closed = true
	var err error
	if g.shmBuf != nil {
		err = shm.DetachChecked(g.conn, g.seg).Check()
	}
	damage.Destroy(g.conn, g.damage)
	xfixes.DestroyRegion(g.conn, g.region)
	g.conn.Close()
	if g.shmBuf != nil {
		if derr := detachSHM(g.shmBuf); derr != nil && err == nil {
			err = derr
		}
		g.shmBuf = nil
	}
	if err != nil {
		return fmt.Errorf("x11: close grabber: %w", err)
	}
	return nil
}
