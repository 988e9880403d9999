//go:build cgo && !novpx

package vpx

import (
	"image"
	"image/color"
	"testing"
)

// bgrx is a test screen in the layout X11 hands the agent: 4 bytes per
// pixel (B, G, R, unused) and rows stride bytes apart.
type bgrx struct {
	pix    []byte
	stride int
	w, h   int
}

// newBGRX returns a black w×h screen whose rows carry pad extra bytes,
// filled with a pattern that must never show up in the output.
func newBGRX(w, h, pad int) *bgrx {
	b := &bgrx{pix: make([]byte, (4*w+pad)*h), stride: 4*w + pad, w: w, h: h}
	for i := range b.pix {
		b.pix[i] = 0xA5
	}
	b.fill(image.Rect(0, 0, w, h), color.RGBA{A: 255})
	return b
}

// fill paints r (clipped to the screen) with c; the unused byte gets a
// value a converter reading it by mistake would turn into colour.
func (b *bgrx) fill(r image.Rectangle, c color.RGBA) {
	r = r.Intersect(image.Rect(0, 0, b.w, b.h))
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := b.pix[y*b.stride:]
		for x := r.Min.X; x < r.Max.X; x++ {
			p := row[4*x : 4*x+4]
			p[0], p[1], p[2], p[3] = c.B, c.G, c.R, 0x5A
		}
	}
}

// near reports whether every channel of got is within tol of want.
func near(got, want color.RGBA, tol int) bool {
	d := func(a, b uint8) bool { x := int(a) - int(b); return x <= tol && x >= -tol }
	return d(got.R, want.R) && d(got.G, want.G) && d(got.B, want.B)
}

// mustEncoder returns an encoder closed when the test ends.
func mustEncoder(tb testing.TB, c EncoderConfig) *Encoder {
	tb.Helper()
	e, err := NewEncoder(c)
	if err != nil {
		tb.Fatalf("NewEncoder(%+v): %v", c, err)
	}
	tb.Cleanup(e.Close)
	return e
}

// mustDecoder returns a decoder closed when the test ends.
func mustDecoder(tb testing.TB) *Decoder {
	tb.Helper()
	d, err := NewDecoder()
	if err != nil {
		tb.Fatalf("NewDecoder: %v", err)
	}
	tb.Cleanup(d.Close)
	return d
}
