//go:build cgo && !novpx

package vpx

import (
	"errors"
	"image"
	"image/color"
	"math"
	"testing"
)

// isKeyframe reads the VP8 frame tag (RFC 6386, 9.1): bit 0 clear means a
// keyframe. It checks the bitstream, not just what Encode reports.
func isKeyframe(frame []byte) bool { return len(frame) > 0 && frame[0]&1 == 0 }

// rectScene is a 640×360 screen with four coloured rectangles on black.
type rectScene struct {
	screen *bgrx
	probes []struct {
		at image.Point
		c  color.RGBA
	}
}

func newRectScene() *rectScene {
	s := &rectScene{screen: newBGRX(640, 360, 0)}
	for _, r := range []struct {
		rect image.Rectangle
		c    color.RGBA
	}{
		{image.Rect(40, 30, 280, 160), color.RGBA{255, 0, 0, 255}},
		{image.Rect(360, 30, 600, 160), color.RGBA{0, 255, 0, 255}},
		{image.Rect(40, 200, 280, 330), color.RGBA{0, 0, 255, 255}},
		{image.Rect(360, 200, 600, 330), color.RGBA{255, 255, 255, 255}},
	} {
		s.screen.fill(r.rect, r.c)
		s.probe(r.rect.Min.Add(r.rect.Max).Div(2), r.c)
	}
	s.probe(image.Pt(320, 180), color.RGBA{0, 0, 0, 255}) // the black between them
	return s
}

func (s *rectScene) probe(at image.Point, c color.RGBA) {
	s.probes = append(s.probes, struct {
		at image.Point
		c  color.RGBA
	}{at, c})
}

// check fails the test unless img shows the scene's colours. The
// tolerance absorbs coding loss but not a swapped channel or full-range
// confusion (white would come out near 235, black near 16).
func (s *rectScene) check(t *testing.T, img *image.RGBA) {
	t.Helper()
	if img.Rect != image.Rect(0, 0, s.screen.w, s.screen.h) {
		t.Fatalf("decoded size %v, want %d×%d", img.Rect, s.screen.w, s.screen.h)
	}
	const tol = 10
	for _, p := range s.probes {
		if got := img.RGBAAt(p.at.X, p.at.Y); !near(got, p.c, tol) {
			t.Errorf("colour at %v = %v, want %v ±%d", p.at, got, p.c, tol)
		}
	}
}

func TestEncodeDecodeColours(t *testing.T) {
	s := newRectScene()
	enc := mustEncoder(t, EncoderConfig{Width: 640, Height: 360})
	dec := mustDecoder(t)
	// Several frames: the first is a keyframe, the rest are predicted
	// from it, and a receiver must see the same picture throughout.
	for i := range 5 {
		frame, key, err := enc.Encode(s.screen.pix, s.screen.stride, false)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if len(frame) == 0 {
			t.Fatalf("frame %d is empty", i)
		}
		if key != (i == 0) || isKeyframe(frame) != key {
			t.Fatalf("frame %d: key=%v, bitstream keyframe=%v", i, key, isKeyframe(frame))
		}
		img, err := dec.Decode(frame)
		if err != nil {
			t.Fatalf("decode frame %d: %v", i, err)
		}
		s.check(t, img)
	}
}

// A larger capture than the encoder's size (the agent rounds an odd
// screen down to even) is cropped to the top-left corner.
func TestEncodeCropsLargerImage(t *testing.T) {
	s := newRectScene()
	big := newBGRX(643, 365, 20)
	for y := range s.screen.h {
		copy(big.pix[y*big.stride:], s.screen.pix[y*s.screen.stride:(y+1)*s.screen.stride])
	}
	big.fill(image.Rect(640, 0, 643, 365), color.RGBA{255, 255, 0, 255})
	big.fill(image.Rect(0, 360, 643, 365), color.RGBA{255, 255, 0, 255})
	enc := mustEncoder(t, EncoderConfig{Width: 640, Height: 360})
	frame, _, err := enc.Encode(big.pix, big.stride, false)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mustDecoder(t).Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	s.check(t, img)
}

func TestKeyframeOnDemand(t *testing.T) {
	s := newRectScene()
	enc := mustEncoder(t, EncoderConfig{Width: 640, Height: 360})
	dec := mustDecoder(t)
	forced := map[int]bool{7: true, 8: true, 15: true}
	var frames [][]byte
	for i := range 20 {
		// Move a small square so that every frame carries a change.
		s.screen.fill(image.Rect(0, 0, 640, 20), color.RGBA{A: 255})
		s.screen.fill(image.Rect(i*16, 0, i*16+16, 16), color.RGBA{255, 255, 0, 255})
		frame, key, err := enc.Encode(s.screen.pix, s.screen.stride, forced[i])
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		want := i == 0 || forced[i]
		if key != want || isKeyframe(frame) != want {
			t.Fatalf("frame %d: key=%v, bitstream keyframe=%v, want %v", i, key, isKeyframe(frame), want)
		}
		img, err := dec.Decode(frame)
		if err != nil {
			t.Fatalf("decode frame %d: %v", i, err)
		}
		s.check(t, img)
		frames = append(frames, frame)
	}

	// What keyframes are for: a receiver that joins late starts from one.
	late := mustDecoder(t)
	if _, err := late.Decode(frames[3]); err == nil {
		t.Fatal("a fresh decoder decoded a delta frame")
	}
	for i := 15; i < len(frames); i++ {
		img, err := late.Decode(frames[i])
		if err != nil {
			t.Fatalf("late receiver, frame %d: %v", i, err)
		}
		s.check(t, img)
	}
}

func TestNewEncoderRefuses(t *testing.T) {
	tests := []struct {
		name string
		cfg  EncoderConfig
	}{
		{"odd width", EncoderConfig{Width: 641, Height: 360}},
		{"odd height", EncoderConfig{Width: 640, Height: 361}},
		{"zero size", EncoderConfig{}},
		{"negative width", EncoderConfig{Width: -640, Height: 360}},
		{"too many threads", EncoderConfig{Width: 640, Height: 360, Threads: MaxThreads + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := NewEncoder(tt.cfg)
			if !errors.Is(err, ErrInvalid) || enc != nil {
				t.Fatalf("NewEncoder(%+v) = %v, %v; want nil, ErrInvalid", tt.cfg, enc, err)
			}
		})
	}
}

// Bad images are refused without disturbing the encoder.
func TestEncodeRefusesBadImages(t *testing.T) {
	const w, h = 64, 32
	good := newBGRX(w, h, 0)
	tests := []struct {
		name   string
		pix    []byte
		stride int
	}{
		{"nil", nil, 4 * w},
		{"one byte short", good.pix[:len(good.pix)-1], 4 * w},
		{"smaller picture", newBGRX(w/2, h/2, 0).pix, 4 * w},
		{"stride below a row", good.pix, 4*w - 4},
		{"zero stride", good.pix, 0},
		{"negative stride", good.pix, -4 * w},
		{"stride overflows", good.pix, math.MaxInt / 4},
	}
	enc := mustEncoder(t, EncoderConfig{Width: w, Height: h})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frame, key, err := enc.Encode(tt.pix, tt.stride, true)
			if !errors.Is(err, ErrInvalid) || frame != nil || key {
				t.Fatalf("Encode = %d bytes, key=%v, %v; want ErrInvalid", len(frame), key, err)
			}
			if frame, _, err := enc.Encode(good.pix, good.stride, false); err != nil || len(frame) == 0 {
				t.Fatalf("encoder unusable after a refused image: %d bytes, %v", len(frame), err)
			}
		})
	}
}

func TestEncoderClose(t *testing.T) {
	s := newRectScene()
	enc, err := NewEncoder(EncoderConfig{Width: 640, Height: 360})
	if err != nil {
		t.Fatal(err)
	}
	frame, _, err := enc.Encode(s.screen.pix, s.screen.stride, false)
	if err != nil {
		t.Fatal(err)
	}
	// A failed call first: Close must still clean up after it.
	if _, _, err := enc.Encode(nil, 0, false); err == nil {
		t.Fatal("Encode(nil) succeeded")
	}
	enc.Close()
	enc.Close()
	if _, _, err := enc.Encode(s.screen.pix, s.screen.stride, false); !errors.Is(err, ErrClosed) {
		t.Fatalf("Encode after Close: %v, want ErrClosed", err)
	}
	// The frame is the caller's copy and outlives the encoder.
	img, err := mustDecoder(t).Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	s.check(t, img)
}

// BenchmarkEncode encodes a 1280×720 desktop with a window full of
// text-like detail and a rectangle moving across it, the agent's typical
// load: most of the screen static, one region changing every frame.
func BenchmarkEncode(b *testing.B) {
	const w, h = 1280, 720
	screen := newBGRX(w, h, 0)
	screen.fill(image.Rect(0, 0, w, h), color.RGBA{40, 44, 52, 255})
	screen.fill(image.Rect(100, 80, 1180, 640), color.RGBA{250, 250, 250, 255})
	for y := 100; y < 620; y += 18 {
		for x := 120; x < 1160; x += 9 {
			if (x*7+y*13)%5 != 0 { // glyph-sized dark marks, some gaps
				screen.fill(image.Rect(x, y, x+6, y+11), color.RGBA{30, 30, 30, 255})
			}
		}
	}
	background := append([]byte(nil), screen.pix...)
	enc := mustEncoder(b, EncoderConfig{Width: w, Height: h})
	box := image.Rect(0, 0, 160, 120)
	var bytes, frames int
	b.ReportAllocs()
	for b.Loop() {
		// Redrawing the box costs microseconds against milliseconds of
		// encoding, so it stays inside the timed loop.
		old := box.Add(image.Pt((frames*12)%(w-160), 300))
		for y := old.Min.Y; y < old.Max.Y; y++ {
			o := y*screen.stride + 4*old.Min.X
			copy(screen.pix[o:o+4*old.Dx()], background[o:])
		}
		frames++
		screen.fill(box.Add(image.Pt((frames*12)%(w-160), 300)), color.RGBA{230, 120, 30, 255})
		frame, _, err := enc.Encode(screen.pix, screen.stride, false)
		if err != nil {
			b.Fatal(err)
		}
		bytes += len(frame)
	}
	b.ReportMetric(float64(bytes)/float64(frames), "bytes/frame")
}

// TestSetBitrateFollows: after SetBitrate the encoder spends about what it
// is told. A picture with detail that changes everywhere in every frame
// takes all it is given; at a fifth of the bitrate its frames are far
// smaller, and they still decode.
func TestSetBitrateFollows(t *testing.T) {
	const fps = 15
	e := mustEncoder(t, EncoderConfig{Width: 320, Height: 240, FPS: fps, BitrateKbps: 1500})
	d := mustDecoder(t)
	b := newBGRX(320, 240, 0)
	seed := uint32(1)
	bytesOver := func(frames int) int {
		total := 0
		for i := range frames {
			// Detail everywhere, different each frame: a moving pattern
			// with a little noise, like a scrolled photo.
			for y := range b.h {
				for x := range 4 * b.w {
					seed = seed*1664525 + 1013904223
					b.pix[y*b.stride+x] = byte(x*3+y*5+i*11) ^ byte(seed>>29)
				}
			}
			f, _, err := e.Encode(b.pix, b.stride, i == 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.Decode(f); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if i >= frames/2 { // after rate control settled
				total += len(f)
			}
		}
		return total
	}
	high := bytesOver(40)
	if err := e.SetBitrate(300); err != nil {
		t.Fatal(err)
	}
	if e.Bitrate() != 300 {
		t.Errorf("Bitrate() = %d, want 300", e.Bitrate())
	}
	low := bytesOver(40)
	t.Logf("20 frames at 1500 kbit/s: %d bytes; at 300 kbit/s: %d bytes", high, low)
	if low*3 > high {
		t.Errorf("at 300 kbit/s the encoder spent %d bytes, at 1500 kbit/s %d: want under a third", low, high)
	}
}
