package x11

import (
	"fmt"

	"github.com/jezek/xgb/xproto"
)

// LocalActivity reports whether someone at the screen used the pointer or
// keyboard since the last call: the pointer is somewhere Tandem did not
// put it, or a key or button is down that Tandem did not press. The agent
// polls it, a few times a second, so that local input wins over remote
// control.
//
// It compares the server's pointer position and pressed keys with what
// Tandem injected; it cannot see a click or a key stroke that begins and
// ends between two calls without moving the pointer.
func (d *Display) LocalActivity() (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return false, ErrClosed
	}
	pc := xproto.QueryPointer(d.conn, d.root)
	kc := xproto.QueryKeymap(d.conn)
	p, err := pc.Reply()
	if err != nil {
		return false, fmt.Errorf("x11: query pointer: %w", err)
	}
	k, err := kc.Reply()
	if err != nil {
		return false, fmt.Errorf("x11: query keymap: %w", err)
	}

	local := false
	if x, y := pointerPos(p); x != d.in.ptrX || y != d.in.ptrY {
		local = true
		d.in.ptrX, d.in.ptrY = x, y
	}
	// Buttons 1 to 5 are mask bits 8 to 12; Tandem holds only 1 to 3.
	if down := (p.Mask >> 8) & 0x1f; down&^(d.in.buttons>>1) != 0 {
		local = true
	}
	for i, bits := range k.Keys {
		for b := range 8 {
			if bits&(1<<b) == 0 {
				continue
			}
			if _, ours := d.in.held[xproto.Keycode(i*8+b)]; !ours {
				local = true
			}
		}
	}
	return local, nil
}
