package x11

import (
	"fmt"
	"unicode/utf8"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/shape"
	"github.com/jezek/xgb/xproto"
)

// The overlays are override-redirect windows: no window manager moves,
// decorates or hides them. They let pointer input through to the windows
// below (SHAPE 1.1 input shapes) and are raised again whenever another
// window covers them. Without a compositor nothing finer than windows
// can be drawn over other clients, so the mark is a small square window.
const (
	barPad     = 4  // pixels above and below the bar's text
	markSize   = 10 // side of the mark's red square, in pixels
	markBorder = 1  // white border around it
	maxBarText = 255
)

// barFont is a font the bar may use.
type barFont struct {
	name string
	wide bool // iso10646-1: drawn with 16-bit characters
}

// defaultBarFonts are the bar's fonts, best first: the Unicode "fixed"
// of the xfonts-base package, then the Latin-1 "fixed" every X server has
// built in.
func defaultBarFonts() []barFont {
	return []barFont{
		{"-misc-fixed-medium-r-semicondensed--13-120-75-75-c-60-iso10646-1", true},
		{"fixed", false},
	}
}

// overlay is one of the Display's overlay windows.
type overlay struct {
	win    xproto.Window
	gc     xproto.Gcontext // bar only
	mapped bool
	text   []byte // bar only: encoded for the font
	textX  int16  // bar only: where the text starts
}

// overlayFont is the bar's font.
type overlayFont struct {
	id      xproto.Font
	wide    bool // iso10646-1, drawn with 16-bit characters
	ascent  int
	descent int
}

// ShowBar shows text in white on a red bar across the top of the screen,
// above every other window, or changes the text of the bar shown. Text
// longer than 255 characters is cut; characters the font lacks show as
// '?'.
func (d *Display) ShowBar(text string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	return d.showBarLocked(text)
}

func (d *Display) showBarLocked(text string) error {
	d.barText = text
	if d.bar == nil {
		if err := d.createBarLocked(); err != nil {
			return err
		}
	}
	b := d.bar
	b.text = d.font.encode(text)
	b.textX = barPad
	if cs := d.font.chars(b.text); len(cs) > 0 {
		r, err := xproto.QueryTextExtents(d.conn, xproto.Fontable(d.font.id), cs, uint16(len(cs))).Reply()
		if err != nil {
			return fmt.Errorf("x11: bar text extents: %w", err)
		}
		if w := int(r.OverallWidth); w < d.width-2*barPad {
			b.textX = int16((d.width - w) / 2)
		}
	}
	if err := d.mapOverlayLocked(b); err != nil {
		return err
	}
	d.drawBarLocked()
	return d.restackLocked()
}

// HideBar removes the bar. Hiding a bar not shown does nothing.
func (d *Display) HideBar() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	return d.unmapOverlayLocked(d.bar)
}

// ShowMark shows a small red square centred on (x, y), in screen pixels,
// above every other window, or moves the one shown there. The helper
// points at things with it.
func (d *Display) ShowMark(x, y int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	x = min(max(x, 0), d.width-1) - markSize/2 - markBorder
	y = min(max(y, 0), d.height-1) - markSize/2 - markBorder
	if d.mark == nil {
		m, err := d.createOverlayLocked(x, y, markSize, markSize, markBorder, xproto.EventMaskVisibilityChange)
		if err != nil {
			return err
		}
		d.mark = m
	} else {
		err := xproto.ConfigureWindowChecked(d.conn, d.mark.win,
			xproto.ConfigWindowX|xproto.ConfigWindowY, []uint32{uint32(int32(x)), uint32(int32(y))}).Check()
		if err != nil {
			return fmt.Errorf("x11: move mark: %w", err)
		}
	}
	if err := d.mapOverlayLocked(d.mark); err != nil {
		return err
	}
	return d.restackLocked()
}

// HideMark removes the mark. Hiding a mark not shown does nothing.
func (d *Display) HideMark() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	return d.unmapOverlayLocked(d.mark)
}

func (d *Display) createBarLocked() error {
	if err := d.loadFontLocked(); err != nil {
		return err
	}
	h := d.font.ascent + d.font.descent + 2*barPad
	b, err := d.createOverlayLocked(0, 0, d.width, h, 0, xproto.EventMaskExposure|xproto.EventMaskVisibilityChange)
	if err != nil {
		return err
	}
	gc, err := xproto.NewGcontextId(d.conn)
	if err != nil {
		return fmt.Errorf("x11: bar gc: %w", err)
	}
	red, err := d.redLocked()
	if err != nil {
		return err
	}
	err = xproto.CreateGCChecked(d.conn, gc, xproto.Drawable(b.win),
		xproto.GcForeground|xproto.GcBackground|xproto.GcFont,
		[]uint32{d.screen.WhitePixel, red, uint32(d.font.id)}).Check()
	if err != nil {
		return fmt.Errorf("x11: bar gc: %w", err)
	}
	b.gc = gc
	d.bar = b
	return nil
}

// createOverlayLocked creates an unmapped red overlay window with a white
// border of bw pixels.
func (d *Display) createOverlayLocked(x, y, w, h, bw int, events uint32) (*overlay, error) {
	red, err := d.redLocked()
	if err != nil {
		return nil, err
	}
	win, err := xproto.NewWindowId(d.conn)
	if err != nil {
		return nil, fmt.Errorf("x11: overlay window: %w", err)
	}
	cookies := []checker{
		xproto.CreateWindowChecked(d.conn, d.screen.RootDepth, win, d.root,
			int16(x), int16(y), uint16(w), uint16(h), uint16(bw),
			xproto.WindowClassInputOutput, d.screen.RootVisual,
			xproto.CwBackPixel|xproto.CwBorderPixel|xproto.CwOverrideRedirect|xproto.CwEventMask,
			[]uint32{red, d.screen.WhitePixel, 1, events}),
		xproto.ChangePropertyChecked(d.conn, xproto.PropModeReplace, win, xproto.AtomWmName,
			xproto.AtomString, 8, uint32(len("Tandem")), []byte("Tandem")),
		xproto.ChangePropertyChecked(d.conn, xproto.PropModeReplace, win, xproto.AtomWmClass,
			xproto.AtomString, 8, uint32(len("tandem\x00Tandem\x00")), []byte("tandem\x00Tandem\x00")),
	}
	if d.shapeOK {
		// An empty input shape: clicks go to the window below.
		cookies = append(cookies, shape.RectanglesChecked(d.conn, shape.SoSet, shape.SkInput,
			xproto.ClipOrderingUnsorted, win, 0, 0, nil))
	}
	if err := check(cookies...); err != nil {
		xproto.DestroyWindow(d.conn, win)
		return nil, fmt.Errorf("x11: overlay window: %w", err)
	}
	return &overlay{win: win}, nil
}

// redLocked is the pixel value of red on the default colormap.
func (d *Display) redLocked() (uint32, error) {
	if d.red == nil {
		r, err := xproto.AllocColor(d.conn, d.screen.DefaultColormap, 0xffff, 0, 0).Reply()
		if err != nil {
			return 0, fmt.Errorf("x11: allocate red: %w", err)
		}
		d.red = &r.Pixel
	}
	return *d.red, nil
}

func (d *Display) loadFontLocked() error {
	for _, f := range d.barFonts {
		id, err := xproto.NewFontId(d.conn)
		if err != nil {
			return fmt.Errorf("x11: font: %w", err)
		}
		if xproto.OpenFontChecked(d.conn, id, uint16(len(f.name)), f.name).Check() != nil {
			continue
		}
		r, err := xproto.QueryTextExtents(d.conn, xproto.Fontable(id), []xproto.Char2b{{Byte2: 'X'}}, 1).Reply()
		if err != nil {
			return fmt.Errorf("x11: font %s: %w", f.name, err)
		}
		d.font = overlayFont{id: id, wide: f.wide, ascent: int(r.FontAscent), descent: int(r.FontDescent)}
		return nil
	}
	return fmt.Errorf("x11: no font for the bar (tried %v)", d.barFonts)
}

// encode converts text to the font's encoding: UCS-2 big-endian for a
// wide font, Latin-1 otherwise. Control characters become spaces.
func (f *overlayFont) encode(text string) []byte {
	var out []byte
	n := 0
	for _, r := range text {
		if n == maxBarText {
			break
		}
		n++
		switch {
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			r = ' '
		case r > 0xffff, !f.wide && r > 0xff:
			r = '?'
		}
		if f.wide {
			out = append(out, byte(r>>8), byte(r))
		} else {
			out = append(out, byte(r))
		}
	}
	return out
}

// chars is encoded text as the 16-bit characters QueryTextExtents takes.
func (f *overlayFont) chars(text []byte) []xproto.Char2b {
	if !f.wide {
		cs := make([]xproto.Char2b, len(text))
		for i, c := range text {
			cs[i] = xproto.Char2b{Byte2: c}
		}
		return cs
	}
	cs := make([]xproto.Char2b, len(text)/2)
	for i := range cs {
		cs[i] = xproto.Char2b{Byte1: text[2*i], Byte2: text[2*i+1]}
	}
	return cs
}

// drawBarLocked paints the bar's text; the red is the window background.
func (d *Display) drawBarLocked() {
	b := d.bar
	xproto.ClearArea(d.conn, false, b.win, 0, 0, 0, 0)
	if len(b.text) == 0 {
		return
	}
	y := int16(barPad + d.font.ascent)
	if d.font.wide {
		cs := d.font.chars(b.text)
		xproto.ImageText16(d.conn, byte(len(cs)), xproto.Drawable(b.win), b.gc, b.textX, y, cs)
	} else {
		xproto.ImageText8(d.conn, byte(len(b.text)), xproto.Drawable(b.win), b.gc, b.textX, y, string(b.text))
	}
}

func (d *Display) mapOverlayLocked(o *overlay) error {
	if o.mapped {
		return nil
	}
	if err := xproto.MapWindowChecked(d.conn, o.win).Check(); err != nil {
		return fmt.Errorf("x11: map overlay: %w", err)
	}
	o.mapped = true
	return nil
}

func (d *Display) unmapOverlayLocked(o *overlay) error {
	if o == nil || !o.mapped {
		return nil
	}
	if err := xproto.UnmapWindowChecked(d.conn, o.win).Check(); err != nil {
		return fmt.Errorf("x11: unmap overlay: %w", err)
	}
	o.mapped = false
	return nil
}

// restackLocked puts the shown overlays on top of every other window, the
// mark above the strokes above the bar, unless they are there already: raising them when
// they are in place would only make them cover each other in turn and
// report it, again and again.
func (d *Display) restackLocked() error {
	var want []xproto.Window
	for _, o := range []*overlay{d.bar, d.ink, d.mark} {
		if o != nil && o.mapped {
			want = append(want, o.win)
		}
	}
	if len(want) == 0 {
		return nil
	}
	tree, err := xproto.QueryTree(d.conn, d.root).Reply()
	if err != nil {
		return fmt.Errorf("x11: query tree: %w", err)
	}
	top := tree.Children
	if len(top) >= len(want) {
		top = top[len(top)-len(want):]
		same := true
		for i := range want {
			same = same && top[i] == want[i]
		}
		if same {
			return nil
		}
	}
	cookies := make([]checker, len(want))
	for i, w := range want {
		cookies[i] = xproto.ConfigureWindowChecked(d.conn, w, xproto.ConfigWindowStackMode,
			[]uint32{xproto.StackModeAbove})
	}
	if err := check(cookies...); err != nil {
		return fmt.Errorf("x11: raise overlay: %w", err)
	}
	return nil
}

// overlayExposed redraws the bar when the server lost its pixels.
func (d *Display) overlayExposed(w xproto.Window) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed && d.bar != nil && d.bar.win == w {
		d.drawBarLocked()
	}
}

// overlayCovered raises the overlays after another window covered one.
func (d *Display) overlayCovered() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.closed {
		_ = d.restackLocked() // an error here is the connection closing
	}
}

func (d *Display) destroyOverlaysLocked() {
	for _, o := range []*overlay{d.bar, d.ink, d.mark} {
		if o != nil {
			xproto.DestroyWindow(d.conn, o.win)
			if o.gc != 0 {
				xproto.FreeGC(d.conn, o.gc)
			}
		}
	}
	d.bar, d.mark, d.ink, d.inkLast, d.inkTail = nil, nil, nil, nil, nil
}

// resized follows the screen to its new size: the bar is made again
// across the new width, showing what it showed, and the mark and the
// strokes, placed on the old screen, go.
func (d *Display) resized(w, h int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || w == d.width && h == d.height {
		return
	}
	d.width, d.height = w, h
	barShown := d.bar != nil && d.bar.mapped
	d.destroyOverlaysLocked()
	if barShown {
		_ = d.showBarLocked(d.barText)
	}
}

// shapeInputSupported reports whether the SHAPE extension on c can set
// input shapes (version 1.1).
func shapeInputSupported(c *xgb.Conn) bool {
	v, err := shape.QueryVersion(c).Reply()
	return err == nil && (v.MajorVersion > 1 || v.MajorVersion == 1 && v.MinorVersion >= 1)
}
