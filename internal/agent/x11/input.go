package x11

import (
	"fmt"

	"github.com/jezek/xgb/xproto"
	"github.com/jezek/xgb/xtest"
)

// Wheel units: a notch of the wheel is 120, Windows' WHEEL_DELTA, as in
// the assistance events helpers send.
const (
	wheelNotch = 120
	// maxWheel bounds |dx| and |dy| of one Wheel call: 100 notches.
	maxWheel = 100 * wheelNotch
)

// Core pointer buttons for the wheel.
const (
	buttonWheelUp    = 4
	buttonWheelDown  = 5
	buttonWheelLeft  = 6
	buttonWheelRight = 7
)

// inputState is what Tandem has done to the pointer and keyboard, guarded
// by Display.mu.
type inputState struct {
	km      *keymap
	shiftKC xproto.Keycode // Shift_L's keycode (or Shift_R's), 0 if neither

	// held: keys Tandem holds down, by keycode, with the keysym pressed.
	held map[xproto.Keycode]xproto.Keysym
	// buttons Tandem holds down, bit b for button b.
	buttons uint16
	// borrowed: keycodes without keysyms that Tandem bound to keysyms the
	// layout lacks, given back by ReleaseAll.
	borrowed map[xproto.Keycode]*borrowedKey
	clock    uint64 // orders borrowedKey.used

	// Wheel movement not yet sent, less than a notch each.
	wheelX, wheelY int

	// Where the pointer is unless someone else moved it.
	ptrX, ptrY int
}

type borrowedKey struct {
	sym  xproto.Keysym
	used uint64 // clock at the last use
}

func (s *inputState) init(d *Display) error {
	s.held = make(map[xproto.Keycode]xproto.Keysym)
	s.borrowed = make(map[xproto.Keycode]*borrowedKey)
	p, err := xproto.QueryPointer(d.conn, d.root).Reply()
	if err != nil {
		return fmt.Errorf("x11: query pointer: %w", err)
	}
	s.ptrX, s.ptrY = pointerPos(p)
	return nil
}

// pointerPos is the pointer's root position, or (-1, -1) when it is on
// another screen.
func pointerPos(p *xproto.QueryPointerReply) (x, y int) {
	if !p.SameScreen {
		return -1, -1
	}
	return int(p.RootX), int(p.RootY)
}

// fakeEvent is one XTEST event.
type fakeEvent struct {
	typ    byte // xproto.KeyPress ... xproto.MotionNotify
	detail byte // keycode or button; 0 for an absolute motion
	x, y   int16
}

func keyEvent(kc xproto.Keycode, down bool) fakeEvent {
	if down {
		return fakeEvent{typ: xproto.KeyPress, detail: byte(kc)}
	}
	return fakeEvent{typ: xproto.KeyRelease, detail: byte(kc)}
}

func buttonEvent(b uint8, down bool) fakeEvent {
	if down {
		return fakeEvent{typ: xproto.ButtonPress, detail: b}
	}
	return fakeEvent{typ: xproto.ButtonRelease, detail: b}
}

// usableLocked is the error input calls return before doing anything.
func (d *Display) usableLocked() error {
	if d.closed {
		return ErrClosed
	}
	return d.xtestErr
}

// fakeLocked sends events through XTEST and waits, one round trip, until
// the server has processed them.
func (d *Display) fakeLocked(evs ...fakeEvent) error {
	cookies := make([]checker, len(evs))
	for i, e := range evs {
		root := xproto.Window(0) // None: only motion has a position
		if e.typ == xproto.MotionNotify {
			root = d.root
		}
		cookies[i] = xtest.FakeInputChecked(d.conn, e.typ, e.detail, 0, root, e.x, e.y, 0)
	}
	if err := check(cookies...); err != nil {
		return fmt.Errorf("x11: xtest: %w", err)
	}
	return nil
}

// MovePointer moves the pointer to (x, y) in screen pixels, clamped to
// the screen.
func (d *Display) MovePointer(x, y int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	x = min(max(x, 0), d.width-1)
	y = min(max(y, 0), d.height-1)
	if err := d.usableLocked(); err != nil {
		return err
	}
	if err := d.fakeLocked(fakeEvent{typ: xproto.MotionNotify, x: int16(x), y: int16(y)}); err != nil {
		return err
	}
	d.in.ptrX, d.in.ptrY = x, y
	return nil
}

// Button presses (down) or releases pointer button 1 (left), 2 (middle)
// or 3 (right) where the pointer is. Other buttons are refused with
// ErrInvalidButton; the wheel is Wheel's.
func (d *Display) Button(button uint8, down bool) error {
	if button < 1 || button > 3 {
		return fmt.Errorf("%w: %d", ErrInvalidButton, button)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usableLocked(); err != nil {
		return err
	}
	if err := d.fakeLocked(buttonEvent(button, down)); err != nil {
		return err
	}
	if down {
		d.in.buttons |= 1 << button
	} else {
		d.in.buttons &^= 1 << button
	}
	return nil
}

// Wheel scrolls by dx, dy in 1/120 of a notch; positive dy scrolls down,
// positive dx right. Each full notch is one click of button 5 (down), 4
// (up), 7 (right) or 6 (left); what is left over carries to the next
// call. |dx| and |dy| above 100 notches are clamped.
func (d *Display) Wheel(dx, dy int) error {
	dx = min(max(dx, -maxWheel), maxWheel)
	dy = min(max(dy, -maxWheel), maxWheel)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usableLocked(); err != nil {
		return err
	}
	var evs []fakeEvent
	clicks := func(acc *int, neg, pos uint8) {
		n := *acc / wheelNotch // toward zero: the remainder keeps its sign
		*acc -= n * wheelNotch
		b := pos
		if n < 0 {
			b, n = neg, -n
		}
		for range n {
			evs = append(evs, buttonEvent(b, true), buttonEvent(b, false))
		}
	}
	d.in.wheelY += dy
	clicks(&d.in.wheelY, buttonWheelUp, buttonWheelDown)
	d.in.wheelX += dx
	clicks(&d.in.wheelX, buttonWheelLeft, buttonWheelRight)
	if len(evs) == 0 {
		return nil
	}
	return d.fakeLocked(evs...)
}

// Key presses (down) or releases the key that types keysym, an X11 keysym
// such as 0x61 (a), 0xff0d (Return) or 0x1000416 (Ж).
//
// A keysym typed with Shift is pressed with Shift_L held around it, unless
// Tandem already holds a Shift key; a keysym typed without Shift while
// Tandem holds Shift is pressed with Shift let go around it. A keysym the
// keyboard layout lacks is bound to a spare keycode (one without keysyms)
// for the time control lasts: ReleaseAll gives it back. Giving it back
// right after the key would race with the many clients that read the
// changed mapping only when the key event reaches them. Releasing a key
// Tandem did not press does nothing. Keysym 0 is refused with
// ErrInvalidKeysym.
func (d *Display) Key(keysym uint32, down bool) error {
	if keysym == 0 || keysym > maxKeysym {
		return fmt.Errorf("%w: %#x", ErrInvalidKeysym, keysym)
	}
	ks := xproto.Keysym(keysym)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usableLocked(); err != nil {
		return err
	}
	if err := d.refreshKeymapLocked(); err != nil {
		return err
	}
	if down {
		return d.keyDownLocked(ks)
	}
	return d.keyUpLocked(ks)
}

func (d *Display) keyDownLocked(ks xproto.Keysym) error {
	pos, ok := d.findKeyLocked(ks)
	if !ok {
		kc, err := d.borrowLocked(ks)
		if err != nil {
			return err
		}
		pos = keyPos{code: kc}
	}
	var shifts []xproto.Keycode // Shift keys Tandem holds
	for kc, s := range d.in.held {
		if s == keysymShiftL || s == keysymShiftR {
			shifts = append(shifts, kc)
		}
	}
	var evs []fakeEvent
	switch {
	case pos.shift && len(shifts) == 0:
		evs = []fakeEvent{keyEvent(d.in.shiftKC, true), keyEvent(pos.code, true), keyEvent(d.in.shiftKC, false)}
	case !pos.shift && len(shifts) > 0 && d.shiftMattersLocked(pos.code):
		for _, kc := range shifts {
			evs = append(evs, keyEvent(kc, false))
		}
		evs = append(evs, keyEvent(pos.code, true))
		for _, kc := range shifts {
			evs = append(evs, keyEvent(kc, true))
		}
	default:
		evs = []fakeEvent{keyEvent(pos.code, true)}
	}
	if err := d.fakeLocked(evs...); err != nil {
		return err
	}
	d.in.held[pos.code] = ks
	return nil
}

// shiftMattersLocked reports whether Shift changes what keycode kc types.
func (d *Display) shiftMattersLocked(kc xproto.Keycode) bool {
	if _, ok := d.in.borrowed[kc]; ok {
		return false // bound to the same keysym in every column
	}
	plain, shifted := d.in.km.levels(kc)
	return plain != shifted
}

func (d *Display) keyUpLocked(ks xproto.Keysym) error {
	// The keysym pressed, or another on the same key: a browser reports
	// Shift+a as "A" going down and, when Shift is let go first, "a"
	// going up.
	kc, ok := xproto.Keycode(0), false
	for c, s := range d.in.held {
		if s == ks {
			kc, ok = c, true
			break
		}
	}
	if !ok {
		if pos, found := d.findKeyLocked(ks); found {
			_, ok = d.in.held[pos.code]
			kc = pos.code
		}
	}
	if !ok {
		return nil
	}
	if err := d.fakeLocked(keyEvent(kc, false)); err != nil {
		return err
	}
	delete(d.in.held, kc)
	return nil
}

// findKeyLocked is where ks can be typed: on a keycode Tandem borrowed for
// it, or in column 0 or 1 of the layout (column 1 only if there is a
// Shift key to press).
func (d *Display) findKeyLocked(ks xproto.Keysym) (keyPos, bool) {
	for kc, b := range d.in.borrowed {
		if b.sym == ks {
			d.in.clock++
			b.used = d.in.clock
			return keyPos{code: kc}, true
		}
	}
	pos, ok := d.in.km.find(ks)
	if !ok || pos.shift && d.in.shiftKC == 0 {
		return keyPos{}, false
	}
	return pos, true
}

// borrowLocked binds ks to a keycode that has no keysym, or, when none is
// left, to the borrowed keycode used least recently and not held down.
func (d *Display) borrowLocked(ks xproto.Keysym) (xproto.Keycode, error) {
	var kc xproto.Keycode
	for c := int(d.maxKC); c >= int(d.minKC); c-- {
		_, taken := d.in.borrowed[xproto.Keycode(c)]
		if !taken && d.in.km.empty(xproto.Keycode(c)) {
			kc = xproto.Keycode(c)
			break
		}
	}
	if kc == 0 {
		var oldest uint64
		for c, b := range d.in.borrowed {
			if _, down := d.in.held[c]; !down && (kc == 0 || b.used < oldest) {
				kc, oldest = c, b.used
			}
		}
	}
	if kc == 0 {
		return 0, fmt.Errorf("%w for keysym %#x", ErrNoSpareKeycode, uint32(ks))
	}
	syms := make([]xproto.Keysym, d.in.km.per)
	for i := range syms {
		syms[i] = ks
	}
	err := xproto.ChangeKeyboardMappingChecked(d.conn, 1, kc, byte(len(syms)), syms).Check()
	if err != nil {
		return 0, fmt.Errorf("x11: bind keysym %#x to keycode %d: %w", uint32(ks), kc, err)
	}
	d.in.clock++
	d.in.borrowed[kc] = &borrowedKey{sym: ks, used: d.in.clock}
	return kc, nil
}

// refreshKeymapLocked reloads the keyboard mapping if it changed.
func (d *Display) refreshKeymapLocked() error {
	if d.in.km != nil && !d.keymapStale.Swap(false) {
		return nil
	}
	d.keymapStale.Store(false)
	km, err := loadKeymap(d.conn, d.minKC, d.maxKC)
	if err != nil {
		d.keymapStale.Store(true)
		return err
	}
	d.in.km = km
	d.in.shiftKC = 0
	for _, s := range []xproto.Keysym{keysymShiftL, keysymShiftR} {
		if pos, ok := km.find(s); ok && !pos.shift {
			d.in.shiftKC = pos.code
			break
		}
	}
	// A keycode someone else rebound is no longer Tandem's to give back.
	for kc, b := range d.in.borrowed {
		if km.sym(kc, 0) != b.sym {
			delete(d.in.borrowed, kc)
		}
	}
	return nil
}

// ReleaseAll releases every key and button Tandem holds down, forgets
// partial wheel notches and gives back the keycodes Key borrowed. Call it
// when control of the screen ends; Close calls it.
func (d *Display) ReleaseAll() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.usableLocked(); err != nil {
		return err
	}
	return d.releaseAllLocked()
}

func (d *Display) releaseAllLocked() error {
	var evs []fakeEvent
	for kc := range d.in.held {
		evs = append(evs, keyEvent(kc, false))
	}
	for b := uint8(1); b <= 3; b++ {
		if d.in.buttons&(1<<b) != 0 {
			evs = append(evs, buttonEvent(b, false))
		}
	}
	clear(d.in.held)
	d.in.buttons = 0
	d.in.wheelX, d.in.wheelY = 0, 0
	var err error
	if len(evs) > 0 {
		err = d.fakeLocked(evs...)
	}
	if len(d.in.borrowed) == 0 {
		return err
	}
	// Give back only what still carries Tandem's keysym.
	d.keymapStale.Store(true)
	if rerr := d.refreshKeymapLocked(); rerr != nil {
		return rerr
	}
	var cookies []checker
	none := make([]xproto.Keysym, d.in.km.per)
	for kc := range d.in.borrowed {
		cookies = append(cookies, xproto.ChangeKeyboardMappingChecked(d.conn, 1, kc, byte(len(none)), none))
	}
	clear(d.in.borrowed)
	d.keymapStale.Store(true)
	if cerr := check(cookies...); cerr != nil && err == nil {
		err = fmt.Errorf("x11: restore keyboard mapping: %w", cerr)
	}
	return err
}
