package x11

import (
	"testing"

	"github.com/jezek/xgb/xproto"
)

func TestKeymapFind(t *testing.T) {
	// Four columns per keycode, from keycode 8, as a server might send.
	syms := []xproto.Keysym{
		0x61, 0x41, 0, 0, // 8: a A
		0x31, 0x21, 0, 0, // 9: 1 !
		0x62, 0, 0, 0, // 10: b alone: B with Shift
		0x20, 0, 0, 0, // 11: space alone: space both ways
		0, 0, 0, 0, // 12: empty
		0xffe1, 0, 0, 0, // 13: Shift_L
		0x21, 0, 0, 0, // 14: ! plain, on a second key
		0x65, 0x45, 0xe9, 0xc9, // 15: e E, é É only in other columns
	}
	km := newKeymap(8, 15, 4, syms)
	tests := []struct {
		ks    xproto.Keysym
		code  xproto.Keycode
		shift bool
		ok    bool
	}{
		{0x61, 8, false, true},
		{0x41, 8, true, true},
		{0x31, 9, false, true},
		{0x21, 14, false, true}, // plain beats Shift
		{0x62, 10, false, true},
		{0x42, 10, true, true},
		{0x20, 11, false, true},
		{0xffe1, 13, false, true},
		{0xe9, 0, false, false}, // AltGr level: not typed
		{0x1000416, 0, false, false},
	}
	for _, tt := range tests {
		pos, ok := km.find(tt.ks)
		if ok != tt.ok || ok && (pos.code != tt.code || pos.shift != tt.shift) {
			t.Errorf("find(%#x) = %+v, %v; want code %d shift %v, %v", tt.ks, pos, ok, tt.code, tt.shift, tt.ok)
		}
	}
	for kc, want := range map[xproto.Keycode]bool{8: false, 12: true, 13: false, 16: false} {
		if got := km.empty(kc); got != want {
			t.Errorf("empty(%d) = %v, want %v", kc, got, want)
		}
	}
}

func TestConvertCase(t *testing.T) {
	tests := []struct{ ks, lower, upper xproto.Keysym }{
		{0x61, 0x61, 0x41},
		{0x41, 0x61, 0x41},
		{0x31, 0x31, 0x31},
		{0xe9, 0xe9, 0xc9},
		{0x1000436, 0x1000436, 0x1000416}, // ж Ж
		{0xff0d, 0xff0d, 0xff0d},
	}
	for _, tt := range tests {
		if l, u := convertCase(tt.ks); l != tt.lower || u != tt.upper {
			t.Errorf("convertCase(%#x) = %#x, %#x; want %#x, %#x", tt.ks, l, u, tt.lower, tt.upper)
		}
	}
}
