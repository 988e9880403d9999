package x11test

import (
	"image"
	"testing"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"
)

func TestStartXvfbGivesEachTestItsOwnServer(t *testing.T) {
	a, b := StartXvfb(t), StartXvfb(t)
	if a == b {
		t.Fatalf("two servers on %s", a)
	}
	for _, display := range []string{a, b} {
		c, err := xgb.NewConnDisplay(display)
		if err != nil {
			t.Fatal(err)
		}
		s := xproto.Setup(c).DefaultScreen(c)
		if s.WidthInPixels != Width || s.HeightInPixels != Height || s.RootDepth != 24 {
			t.Errorf("%s: %dx%dx%d", display, s.WidthInPixels, s.HeightInPixels, s.RootDepth)
		}
		c.Close()
	}
}

func TestTestWindowRegions(t *testing.T) {
	tw := NewTestWindow(t, StartXvfb(t), 10, 20, 101, 51)
	want := []Region{
		{image.Rect(10, 20, 60, 45), Red},
		{image.Rect(60, 20, 111, 45), Green},
		{image.Rect(10, 45, 60, 71), Blue},
		{image.Rect(60, 45, 111, 71), Yellow},
	}
	got := tw.Regions()
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("regions %v, want %v", got, want)
		}
	}
	if tw.Rect() != image.Rect(10, 20, 111, 71) {
		t.Fatalf("rect %v", tw.Rect())
	}
}

func TestKeymapDecodesShiftAndLock(t *testing.T) {
	km := keymap{min: 8, per: 2, syms: []xproto.Keysym{
		0x61, 0x41, // 8: a A
		0x31, 0x21, // 9: 1 !
		0x62, 0, // 10: b alone
		0x20, 0, // 11: space alone
	}}
	const shift, lock = xproto.ModMaskShift, xproto.ModMaskLock
	tests := []struct {
		kc    xproto.Keycode
		state uint16
		want  xproto.Keysym
	}{
		{8, 0, 'a'}, {8, shift, 'A'}, {8, lock, 'A'}, {8, shift | lock, 'a'},
		{9, 0, '1'}, {9, shift, '!'}, {9, lock, '1'},
		{10, 0, 'b'}, {10, shift, 'B'},
		{11, shift, ' '},
		{7, 0, 0}, {12, 0, 0},
	}
	for _, tt := range tests {
		if got := km.keysym(tt.kc, tt.state); got != tt.want {
			t.Errorf("keysym(%d, %#x) = %#x, want %#x", tt.kc, tt.state, got, tt.want)
		}
	}
}

func TestKeysym(t *testing.T) {
	for _, r := range "aZ 1!~\u00e9\u00ff\u0416\u20ac\n\t" {
		if got := keysymRune(xproto.Keysym(Keysym(r))); got != r {
			t.Errorf("keysymRune(Keysym(%q)) = %q", r, got)
		}
	}
	if Keysym('\n') != 0xff0d || Keysym('é') != 0xe9 || Keysym('Ж') != 0x1000416 {
		t.Error("Keysym: wrong value for Return, é or Ж")
	}
}
