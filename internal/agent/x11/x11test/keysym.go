package x11test

import "github.com/jezek/xgb/xproto"

// Keysym is the X11 keysym that types r: Return for '\n', Tab for '\t',
// BackSpace for '\b', the code point for Latin-1, and 0x01000000 plus the
// code point for the rest of Unicode.
func Keysym(r rune) uint32 {
	switch r {
	case '\n', '\r':
		return 0xff0d
	case '\t':
		return 0xff09
	case '\b':
		return 0xff08
	}
	if r >= 0x20 && r <= 0x7e || r >= 0xa0 && r <= 0xff {
		return uint32(r)
	}
	return 0x01000000 | uint32(r)
}

// keysymRune is the character a keysym types, 0 if none.
func keysymRune(ks xproto.Keysym) rune {
	switch {
	case ks >= 0x20 && ks <= 0x7e, ks >= 0xa0 && ks <= 0xff:
		return rune(ks)
	case ks >= 0x01000100 && ks <= 0x0110ffff:
		return rune(ks - 0x01000000)
	case ks == 0xff0d:
		return '\n'
	case ks == 0xff09:
		return '\t'
	}
	return 0
}
