package x11

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unicode/utf8"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xfixes"
	"github.com/jezek/xgb/xproto"
)

// ErrClipboardTooLarge: clipboard text over the Clipboard's limit, which
// is neither taken nor offered.
var ErrClipboardTooLarge = errors.New("x11: clipboard text too large")

// Clipboard is the X11 CLIPBOARD selection (what Ctrl+C and Ctrl+V use)
// as UTF-8 text, on a connection of its own. Set makes Tandem the
// selection's owner, holding a text that programs on the desktop then
// paste; Changes reports the text another program copies. Only text is
// handled: a copied image or file list is not reported.
//
// X11 has no clipboard store: a text set here can be pasted for as long
// as the Clipboard is open and nothing else has been copied since.
type Clipboard struct {
	conn       *xgb.Conn
	win        xproto.Window // an unmapped window: the owner, and where copies are read into
	atoms      clipAtoms
	fixesEvent int // XFixesSelectionNotify's event number
	max        int

	changes  chan string
	tooLarge chan int // sizes (at least) of copies over max, not read
	loopDone chan struct{}

	mu     sync.Mutex
	owned  []byte // the text Tandem owns the selection with; nil: not the owner
	closed bool
}

type clipAtoms struct {
	clipboard, targets, utf8, text, incr, timestamp, prop xproto.Atom
}

// OpenClipboard connects to the X server at display ("" = $DISPLAY) for
// its clipboard; texts over max bytes are neither read nor set. It needs
// the XFIXES extension, to hear of copies.
func OpenClipboard(display string, max int) (*Clipboard, error) {
	if display == "" {
		display = os.Getenv("DISPLAY")
	}
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		return nil, fmt.Errorf("x11: clipboard: connect to %q: %w", display, err)
	}
	cb := &Clipboard{conn: c, max: max, changes: make(chan string, 1), tooLarge: make(chan int, 8), loopDone: make(chan struct{})}
	if err := cb.init(); err != nil {
		c.Close()
		return nil, err
	}
	go cb.eventLoop()
	return cb, nil
}

func (cb *Clipboard) init() error {
	c := cb.conn
	for _, a := range []struct {
		name string
		to   *xproto.Atom
	}{
		{"CLIPBOARD", &cb.atoms.clipboard}, {"TARGETS", &cb.atoms.targets}, {"UTF8_STRING", &cb.atoms.utf8},
		{"TEXT", &cb.atoms.text}, {"INCR", &cb.atoms.incr}, {"TIMESTAMP", &cb.atoms.timestamp},
		{"TANDEM_CLIPBOARD", &cb.atoms.prop},
	} {
		r, err := xproto.InternAtom(c, false, uint16(len(a.name)), a.name).Reply()
		if err != nil {
			return fmt.Errorf("x11: clipboard: atom %s: %w", a.name, err)
		}
		*a.to = r.Atom
	}
	ext, err := initExtension(c, "XFIXES")
	if err != nil {
		return fmt.Errorf("x11: clipboard: %w", err)
	}
	if _, err := xfixes.QueryVersion(c, 5, 0).Reply(); err != nil {
		return fmt.Errorf("x11: clipboard: xfixes version: %w", err)
	}
	cb.fixesEvent = ext.firstEvent + xfixes.SelectionNotify
	if cb.win, err = xproto.NewWindowId(c); err != nil {
		return fmt.Errorf("x11: clipboard: window id: %w", err)
	}
	root := xproto.Setup(c).DefaultScreen(c).Root
	err = check(
		xproto.CreateWindowChecked(c, 0, cb.win, root, -1, -1, 1, 1, 0, xproto.WindowClassInputOnly, 0,
			xproto.CwEventMask, []uint32{xproto.EventMaskPropertyChange}),
		xfixes.SelectSelectionInputChecked(c, cb.win, cb.atoms.clipboard, xfixes.SelectionEventMaskSetSelectionOwner),
	)
	if err != nil {
		return fmt.Errorf("x11: clipboard: %w", err)
	}
	return nil
}

// Set makes text the clipboard's content, for programs on the desktop to
// paste.
func (cb *Clipboard) Set(text string) error {
	if len(text) > cb.max {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrClipboardTooLarge, len(text), cb.max)
	}
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if cb.closed {
		return ErrClosed
	}
	cb.owned = []byte(text)
	if err := xproto.SetSelectionOwnerChecked(cb.conn, cb.win, cb.atoms.clipboard, xproto.TimeCurrentTime).Check(); err != nil {
		cb.owned = nil
		return fmt.Errorf("x11: clipboard: take the selection: %w", err)
	}
	r, err := xproto.GetSelectionOwner(cb.conn, cb.atoms.clipboard).Reply()
	if err != nil || r.Owner != cb.win {
		cb.owned = nil
		return fmt.Errorf("x11: clipboard: the selection was not given to Tandem (%v)", err)
	}
	return nil
}

// Changes reports the text other programs copy, newest only: a copy not
// yet taken is replaced by the next.
func (cb *Clipboard) Changes() <-chan string { return cb.changes }

// TooLarge reports copies over the limit, which Changes leaves out: their
// size in bytes, or at least that much where the copying program sends
// it in parts (ICCCM's INCR). Reports not taken in time are dropped.
func (cb *Clipboard) TooLarge() <-chan int { return cb.tooLarge }

// Close gives up the selection (its text can no longer be pasted) and
// closes the connection.
func (cb *Clipboard) Close() error {
	cb.mu.Lock()
	if cb.closed {
		cb.mu.Unlock()
		return nil
	}
	cb.closed = true
	cb.owned = nil
	cb.mu.Unlock()
	cb.conn.Close()
	<-cb.loopDone
	return nil
}

// eventLoop answers paste requests for the text Tandem owns and reads the
// text others copy, until the connection closes.
func (cb *Clipboard) eventLoop() {
	defer close(cb.loopDone)
	for {
		ev, xerr := cb.conn.WaitForEvent()
		if ev == nil && xerr == nil {
			return
		}
		switch e := ev.(type) {
		case xproto.SelectionRequestEvent:
			cb.answer(e)
		case xproto.SelectionClearEvent:
			cb.mu.Lock()
			cb.owned = nil // something else was copied
			cb.mu.Unlock()
		case extEvent:
			if e.code() != cb.fixesEvent || len(e) < 24 {
				break
			}
			owner := xproto.Window(xgb.Get32(e[8:]))
			selection := xproto.Atom(xgb.Get32(e[12:]))
			at := xproto.Timestamp(xgb.Get32(e[16:]))
			if selection == cb.atoms.clipboard && owner != 0 && owner != cb.win {
				// Another program copied: ask it for the text as UTF-8.
				xproto.ConvertSelection(cb.conn, cb.win, cb.atoms.clipboard, cb.atoms.utf8, cb.atoms.prop, at)
			}
		case xproto.SelectionNotifyEvent:
			if e.Requestor == cb.win && e.Selection == cb.atoms.clipboard {
				cb.read(e)
			}
		}
	}
}

// read takes the text a copying program put on cb's window.
func (cb *Clipboard) read(e xproto.SelectionNotifyEvent) {
	if e.Property == 0 {
		return // the copy is no text (an image, say)
	}
	r, err := xproto.GetProperty(cb.conn, true, cb.win, e.Property, xproto.GetPropertyTypeAny, 0, uint32(cb.max+3)/4).Reply()
	if err != nil {
		return
	}
	size := 0
	switch {
	case r.Type == cb.atoms.incr:
		// Sent in parts, which only large copies are: its first value is
		// a lower bound on the size.
		size = cb.max + 1
		if len(r.Value) >= 4 {
			size = max(size, int(xgb.Get32(r.Value)))
		}
		xproto.DeleteProperty(cb.conn, cb.win, e.Property) // and the transfer ends
	case r.BytesAfter > 0 || len(r.Value) > cb.max:
		size = len(r.Value) + int(r.BytesAfter)
		xproto.DeleteProperty(cb.conn, cb.win, e.Property)
	}
	if size > 0 {
		select {
		case cb.tooLarge <- size:
		default:
		}
		return
	}
	if r.Format != 8 {
		return // no text
	}
	text := string(r.Value)
	if text == "" || !utf8.ValidString(text) {
		return
	}
	select {
	case <-cb.changes: // replaced by the newer copy
	default:
	}
	cb.changes <- text
}

// answer gives a program that pastes the text Tandem owns, as UTF-8 or as
// the list of targets it offers; anything else (Latin-1 STRING among them:
// programs of this century ask for UTF8_STRING) is refused.
func (cb *Clipboard) answer(e xproto.SelectionRequestEvent) {
	prop := e.Property
	if prop == 0 {
		prop = e.Target // an obsolete requestor (ICCCM 2.2)
	}
	cb.mu.Lock()
	text := cb.owned
	cb.mu.Unlock()
	a := cb.atoms
	switch {
	case text == nil || e.Selection != a.clipboard:
		prop = 0
	case e.Target == a.targets:
		targets := []xproto.Atom{a.targets, a.utf8, a.text}
		buf := make([]byte, 4*len(targets))
		for i, t := range targets {
			xgb.Put32(buf[4*i:], uint32(t))
		}
		xproto.ChangeProperty(cb.conn, xproto.PropModeReplace, e.Requestor, prop, xproto.AtomAtom, 32, uint32(len(targets)), buf)
	case e.Target == a.utf8 || e.Target == a.text:
		xproto.ChangeProperty(cb.conn, xproto.PropModeReplace, e.Requestor, prop, a.utf8, 8, uint32(len(text)), text)
	default:
		prop = 0
	}
	ev := xproto.SelectionNotifyEvent{Time: e.Time, Requestor: e.Requestor, Selection: e.Selection, Target: e.Target, Property: prop}
	xproto.SendEvent(cb.conn, false, e.Requestor, 0, string(ev.Bytes()))
}
