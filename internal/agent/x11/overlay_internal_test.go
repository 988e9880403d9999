package x11

import (
	"bytes"
	"testing"

	"github.com/tandemcall/tandem/internal/agent/x11/x11test"
)

func TestBarFontEncode(t *testing.T) {
	wide, latin := overlayFont{wide: true}, overlayFont{}
	tests := []struct {
		f    overlayFont
		text string
		want []byte
	}{
		{latin, "Zoë", []byte{'Z', 'o', 0xeb}},
		{latin, "Łu\tЖ", []byte{'?', 'u', ' ', '?'}},
		{wide, "Zoë", []byte{0, 'Z', 0, 'o', 0, 0xeb}},
		{wide, "ŁЖ\n😀", []byte{0x01, 0x41, 0x04, 0x16, 0, ' ', 0, '?'}},
		{latin, string(bytes.Repeat([]byte{'a'}, 300)), bytes.Repeat([]byte{'a'}, maxBarText)},
	}
	for _, tt := range tests {
		if got := tt.f.encode(tt.text); !bytes.Equal(got, tt.want) {
			t.Errorf("encode(%q, wide %v) = %x, want %x", tt.text, tt.f.wide, got, tt.want)
		}
		if n := len(tt.f.chars(tt.f.encode(tt.text))); n > maxBarText {
			t.Errorf("%d characters for %q", n, tt.text)
		}
	}
}

// Both fonts draw the bar's text: the Unicode one (Debian package
// xfonts-base) when the server has it, the built-in Latin-1 one always.
func TestBarFonts(t *testing.T) {
	display := x11test.StartXvfb(t)
	for _, f := range defaultBarFonts() {
		t.Run(f.name, func(t *testing.T) {
			d, err := Open(display)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			d.barFonts = []barFont{f}
			err = d.ShowBar("Tandem: Zoë Łukasz Жанна")
			if f.wide && err != nil {
				t.Skipf("no Unicode fixed font (Debian package xfonts-base): %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.font.wide != f.wide || d.font.ascent < 8 {
				t.Fatalf("font %+v", d.font)
			}
			g, err := d.NewGrabber()
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			fr, _, err := g.Grab(true)
			if err != nil {
				t.Fatal(err)
			}
			white := 0
			h := d.font.ascent + d.font.descent + 2*barPad
			for y := range h {
				for x := range fr.Width {
					if i := y*fr.Stride + 4*x; fr.Pix[i] == 0xff && fr.Pix[i+1] == 0xff && fr.Pix[i+2] == 0xff {
						white++
					}
				}
			}
			if white < 100 {
				t.Fatalf("%d white pixels of text", white)
			}
		})
	}
}
