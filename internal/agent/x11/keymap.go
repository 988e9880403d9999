package x11

import (
	"fmt"
	"unicode"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

// Keysyms Tandem needs by name.
const (
	keysymShiftL = 0xffe1
	keysymShiftR = 0xffe2
	// maxKeysym is the largest keysym; the top three bits are always 0.
	maxKeysym = 0x1fffffff
)

// keymap is the core keyboard mapping: for each keycode, keysyms by
// column. Column 0 is typed plainly, column 1 with Shift; Tandem types no
// other column (AltGr levels, other groups) and treats keysyms found only
// there as absent from the layout.
type keymap struct {
	min  xproto.Keycode
	max  xproto.Keycode
	per  int // keysyms per keycode
	syms []xproto.Keysym
	pos  map[xproto.Keysym]keyPos
}

// keyPos is where a keysym sits on the keyboard.
type keyPos struct {
	code  xproto.Keycode
	shift bool // column 1: typed with Shift
}

func loadKeymap(c *xgb.Conn, min, max xproto.Keycode) (*keymap, error) {
	r, err := xproto.GetKeyboardMapping(c, min, byte(max-min+1)).Reply()
	if err != nil {
		return nil, fmt.Errorf("x11: get keyboard mapping: %w", err)
	}
	return newKeymap(min, max, int(r.KeysymsPerKeycode), r.Keysyms), nil
}

func newKeymap(min, max xproto.Keycode, per int, syms []xproto.Keysym) *keymap {
	k := &keymap{min: min, max: max, per: per, syms: syms, pos: make(map[xproto.Keysym]keyPos)}
	// Every plain position first, so that a keysym found in both columns
	// (on different keys) is typed without Shift.
	for _, shift := range []bool{false, true} {
		for kc := int(min); kc <= int(max); kc++ {
			plain, shifted := k.levels(xproto.Keycode(kc))
			s := plain
			if shift {
				s = shifted
			}
			if _, dup := k.pos[s]; s != 0 && !dup {
				k.pos[s] = keyPos{code: xproto.Keycode(kc), shift: shift}
			}
		}
	}
	return k
}

// sym is the keysym in column col of keycode kc, 0 (NoSymbol) if none.
func (k *keymap) sym(kc xproto.Keycode, col int) xproto.Keysym {
	i := (int(kc)-int(k.min))*k.per + col
	if kc < k.min || col >= k.per || i >= len(k.syms) {
		return 0
	}
	return k.syms[i]
}

// levels is what keycode kc types plainly and with Shift, by the rules of
// the core protocol: with column 1 empty, a letter types its lower case
// plainly and its upper case with Shift, anything else the same keysym
// both ways.
func (k *keymap) levels(kc xproto.Keycode) (plain, shifted xproto.Keysym) {
	plain, shifted = k.sym(kc, 0), k.sym(kc, 1)
	if shifted == 0 {
		lower, upper := convertCase(plain)
		if lower != upper {
			return lower, upper
		}
		return plain, plain
	}
	return plain, shifted
}

// find is where keysym ks can be typed, if it can.
func (k *keymap) find(ks xproto.Keysym) (keyPos, bool) {
	p, ok := k.pos[ks]
	return p, ok
}

// empty reports whether keycode kc has no keysym at all: a keycode Tandem
// may bind to a keysym the layout lacks.
func (k *keymap) empty(kc xproto.Keycode) bool {
	if kc < k.min || kc > k.max {
		return false
	}
	for col := 0; col < k.per; col++ {
		if k.sym(kc, col) != 0 {
			return false
		}
	}
	return true
}

// convertCase returns the lower- and upper-case forms of a Latin-1 or
// Unicode keysym; other keysyms are returned unchanged as both.
func convertCase(ks xproto.Keysym) (lower, upper xproto.Keysym) {
	var r rune
	switch {
	case ks < 0x100:
		r = rune(ks)
	case ks >= 0x01000100 && ks <= 0x0110ffff:
		r = rune(ks - 0x01000000)
	default:
		return ks, ks
	}
	return runeKeysym(unicode.ToLower(r)), runeKeysym(unicode.ToUpper(r))
}

// runeKeysym is the keysym of a printable character: Latin-1 keysyms are
// the code points themselves, the rest of Unicode is 0x01000000 + code
// point.
func runeKeysym(r rune) xproto.Keysym {
	if r < 0x100 {
		return xproto.Keysym(r)
	}
	return xproto.Keysym(0x01000000 + r)
}
