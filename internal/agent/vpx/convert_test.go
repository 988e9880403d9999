//go:build cgo && !novpx

package vpx

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"math"
	"testing"
)

// bt601 is the floating-point definition the C converters approximate:
// limited-range Y'CbCr from 8-bit R'G'B'.
func bt601(c color.RGBA) (y, cb, cr float64) {
	r, g, b := float64(c.R)/255, float64(c.G)/255, float64(c.B)/255
	y = 16 + 219*(0.299*r+0.587*g+0.114*b)
	cb = 128 + 224*(-0.168736*r-0.331264*g+0.5*b)
	cr = 128 + 224*(0.5*r-0.418688*g-0.081312*b)
	return y, cb, cr
}

func TestBGRXToI420(t *testing.T) {
	tests := []struct {
		name string
		c    color.RGBA
		pad  int
	}{
		{"black", color.RGBA{0, 0, 0, 255}, 0},
		{"white", color.RGBA{255, 255, 255, 255}, 0},
		{"red", color.RGBA{255, 0, 0, 255}, 0},
		{"green", color.RGBA{0, 255, 0, 255}, 0},
		{"blue", color.RGBA{0, 0, 255, 255}, 0},
		{"grey, padded rows", color.RGBA{128, 128, 128, 255}, 12},
		{"teal, padded rows", color.RGBA{0, 128, 128, 255}, 64},
	}
	const w, h = 6, 4
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newBGRX(w, h, tt.pad)
			src.fill(image.Rect(0, 0, w, h), tt.c)
			dst := make([]byte, i420Size(w, h))
			if err := bgrxToI420(dst, src.pix, src.stride, w, h); err != nil {
				t.Fatal(err)
			}
			wy, wcb, wcr := bt601(tt.c)
			for i, got := range dst {
				want, plane := wy, "Y"
				switch {
				case i >= w*h+w*h/4:
					want, plane = wcr, "V"
				case i >= w*h:
					want, plane = wcb, "U"
				}
				if math.Abs(float64(got)-want) > 1 {
					t.Fatalf("%s sample %d = %d, want %.1f±1", plane, i, got, want)
				}
			}
		})
	}
}

// Chroma is shared by a 2×2 block, so it must be the block's average;
// luma stays per pixel.
func TestBGRXToI420Subsampling(t *testing.T) {
	src := newBGRX(2, 2, 0)
	src.fill(image.Rect(0, 0, 1, 2), color.RGBA{255, 0, 0, 255}) // left column red
	src.fill(image.Rect(1, 0, 2, 2), color.RGBA{0, 0, 255, 255}) // right column blue
	dst := make([]byte, i420Size(2, 2))
	if err := bgrxToI420(dst, src.pix, src.stride, 2, 2); err != nil {
		t.Fatal(err)
	}
	ry, _, _ := bt601(color.RGBA{255, 0, 0, 255})
	by, _, _ := bt601(color.RGBA{0, 0, 255, 255})
	_, cb, cr := bt601(color.RGBA{128, 0, 128, 255})
	want := []float64{ry, by, ry, by, cb, cr}
	for i := range want {
		if math.Abs(float64(dst[i])-want[i]) > 1 {
			t.Fatalf("sample %d = %d, want %.1f±1 (all: %v)", i, dst[i], want[i], dst)
		}
	}
}

func TestBGRXToI420Refuses(t *testing.T) {
	tests := []struct {
		name         string
		dst, src     int
		stride, w, h int
	}{
		{"odd width", i420Size(4, 4), 4 * 4 * 4, 12, 3, 4},
		{"short source", i420Size(4, 4), 4*4*4 - 1, 16, 4, 4},
		{"stride below a row", i420Size(4, 4), 4 * 4 * 4, 15, 4, 4},
		{"negative stride", i420Size(4, 4), 4 * 4 * 4, -16, 4, 4},
		{"stride overflows", i420Size(4, 4), 4 * 4 * 4, math.MaxInt / 2, 4, 4},
		{"short destination", i420Size(4, 4) - 1, 4 * 4 * 4, 16, 4, 4},
		// The left 4×4 of an 8-wide picture, cut one byte short of its
		// last row's fourth pixel.
		{"short last row of a cut", i420Size(4, 4), 3*32 + 4*4 - 1, 32, 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := bgrxToI420(make([]byte, tt.dst), make([]byte, tt.src), tt.stride, tt.w, tt.h)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

// TestBGRXToI420Cut: a picture cut from a larger one (a monitor of a
// desktop: rows of the desktop's stride, the last ending at its own last
// pixel) converts as the same picture on its own does.
func TestBGRXToI420Cut(t *testing.T) {
	const W, H, x0, y0, w, h = 8, 6, 2, 2, 4, 4
	big := make([]byte, 4*W*H)
	own := make([]byte, 4*w*h)
	for y := range H {
		for x := range W {
			px := []byte{byte(17 * x), byte(29 * y), byte(x*y + 40), 0}
			copy(big[4*(y*W+x):], px)
			if x >= x0 && x < x0+w && y >= y0 && y < y0+h {
				copy(own[4*((y-y0)*w+x-x0):], px)
			}
		}
	}
	cut := big[4*(y0*W+x0) : 4*((y0+h-1)*W+x0+w)] // ends at the cut's last pixel
	a, b := make([]byte, i420Size(w, h)), make([]byte, i420Size(w, h))
	if err := bgrxToI420(a, cut, 4*W, w, h); err != nil {
		t.Fatal(err)
	}
	if err := bgrxToI420(b, own, 4*w, w, h); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("the cut converts to %v, the picture on its own to %v", a, b)
	}
}

func TestI420ToRGBA(t *testing.T) {
	colours := []color.RGBA{
		{0, 0, 0, 255}, {255, 255, 255, 255}, {255, 0, 0, 255}, {0, 255, 0, 255},
		{0, 0, 255, 255}, {200, 120, 40, 255},
	}
	// 3×3: odd sizes round chroma up, as VP8 pictures of odd size do.
	const w, h = 3, 3
	for _, c := range colours {
		y, cb, cr := bt601(c)
		ys, cs := 5, 3 // strides wider than the rows, as libvpx's are
		yp := plane{make([]byte, ys*h), ys}
		up := plane{make([]byte, cs*2), cs}
		vp := plane{make([]byte, cs*2), cs}
		for i := range yp.pix {
			yp.pix[i] = uint8(math.Round(y))
		}
		for i := range up.pix {
			up.pix[i], vp.pix[i] = uint8(math.Round(cb)), uint8(math.Round(cr))
		}
		dst := image.NewRGBA(image.Rect(0, 0, w, h))
		if err := i420ToRGBA(dst, yp, up, vp); err != nil {
			t.Fatal(err)
		}
		for py := 0; py < h; py++ {
			for px := 0; px < w; px++ {
				// Rounding to 8-bit YUV loses up to half a step, which
				// the inverse amplifies about 2.5 times on blue.
				if got := dst.RGBAAt(px, py); !near(got, c, 3) || got.A != 255 {
					t.Fatalf("%v round trip at (%d,%d): got %v", c, px, py, got)
				}
			}
		}
	}
}

func TestI420ToRGBARefusesShortPlanes(t *testing.T) {
	dst := image.NewRGBA(image.Rect(0, 0, 4, 4))
	full := func(n, s int) plane { return plane{make([]byte, n), s} }
	tests := []struct {
		name    string
		y, u, v plane
	}{
		{"short luma", full(15, 4), full(4, 2), full(4, 2)},
		{"narrow chroma stride", full(16, 4), full(4, 1), full(4, 2)},
		{"missing chroma", full(16, 4), plane{}, full(4, 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := i420ToRGBA(dst, tt.y, tt.u, tt.v); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func BenchmarkBGRXToI420(b *testing.B) {
	const w, h = 1280, 720
	src := newBGRX(w, h, 0)
	for i := range src.pix {
		src.pix[i] = byte(i * 7)
	}
	dst := make([]byte, i420Size(w, h))
	b.SetBytes(int64(len(src.pix)))
	b.ReportAllocs()
	for b.Loop() {
		if err := bgrxToI420(dst, src.pix, src.stride, w, h); err != nil {
			b.Fatal(err)
		}
	}
}
