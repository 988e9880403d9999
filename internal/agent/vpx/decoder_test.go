//go:build cgo && !novpx

package vpx

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// sampleStream returns a keyframe and the delta frame after it, from the
// rectangle scene, plus the scene to check pictures against.
func sampleStream(tb testing.TB) (key, delta []byte, s *rectScene) {
	tb.Helper()
	s = newRectScene()
	enc, err := NewEncoder(EncoderConfig{Width: 640, Height: 360})
	if err != nil {
		tb.Fatal(err)
	}
	defer enc.Close()
	key, _, err = enc.Encode(s.screen.pix, s.screen.stride, false)
	if err != nil {
		tb.Fatal(err)
	}
	delta, _, err = enc.Encode(s.screen.pix, s.screen.stride, false)
	if err != nil {
		tb.Fatal(err)
	}
	return key, delta, s
}

func TestKeyframeSize(t *testing.T) {
	key, delta, _ := sampleStream(t)
	tests := []struct {
		name  string
		frame []byte
		w, h  int
		ok    bool
	}{
		{"encoder keyframe", key, 640, 360, true},
		{"scale bits ignored", withSize(key, 640|0xc000, 360|0x4000), 640, 360, true},
		{"largest", withSize(key, 0xffff, 0xffff), 16383, 16383, true},
		{"delta frame", delta, 0, 0, false},
		{"short", key[:9], 0, 0, false},
		{"bad start code", append(append([]byte(nil), key[:3]...), 0x9d, 0x01, 0x2b, 1, 1, 1, 1), 0, 0, false},
		{"empty", nil, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, h, ok := keyframeSize(tt.frame)
			if w != tt.w || h != tt.h || ok != tt.ok {
				t.Fatalf("keyframeSize = %d, %d, %v; want %d, %d, %v", w, h, ok, tt.w, tt.h, tt.ok)
			}
		})
	}
}

// withSize returns a copy of keyframe claiming to be w×h (RFC 6386, 9.1:
// 14-bit sizes after the start code).
func withSize(keyframe []byte, w, h uint16) []byte {
	f := append([]byte(nil), keyframe...)
	binary.LittleEndian.PutUint16(f[6:], w)
	binary.LittleEndian.PutUint16(f[8:], h)
	return f
}

func TestDecodeRefusesGarbage(t *testing.T) {
	key, delta, s := sampleStream(t)
	rng := rand.New(rand.NewPCG(1, 2))
	noise := make([]byte, 4096)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"nil", nil, ErrInvalid},
		{"empty", []byte{}, ErrInvalid},
		{"one byte", []byte{0}, ErrCodec},
		{"zeros", make([]byte, 100), ErrCodec},
		{"noise", noise, ErrCodec},
		{"noise tagged as keyframe", append([]byte{noise[0] &^ 1}, noise[1:]...), ErrCodec},
		{"delta frame before any keyframe", delta, ErrCodec},
		{"truncated keyframe", key[:len(key)/3], ErrCodec},
		{"keyframe header only", key[:10], ErrCodec},
		{"keyframe claiming 16383×16383", withSize(key, 16383, 16383), ErrInvalid},
		{"keyframe claiming 7682×4320", withSize(key, 7682, 4320), ErrInvalid},
		{"keyframe claiming 0×0", withSize(key, 0, 0), ErrCodec},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := mustDecoder(t)
			img, err := dec.Decode(tt.frame)
			if !errors.Is(err, tt.want) || img != nil {
				t.Fatalf("Decode = %v, %v; want nil, %v", img, err, tt.want)
			}
			t.Logf("refused: %v", err)
			// The receiver recovers at the next keyframe.
			img, err = dec.Decode(key)
			if err != nil {
				t.Fatalf("keyframe after bad input: %v", err)
			}
			s.check(t, img)
		})
	}
}

func TestDecoderClose(t *testing.T) {
	key, _, _ := sampleStream(t)
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dec.Decode([]byte{1, 2, 3}); err == nil {
		t.Fatal("garbage decoded")
	}
	dec.Close()
	dec.Close()
	if _, err := dec.Decode(key); !errors.Is(err, ErrClosed) {
		t.Fatalf("Decode after Close: %v, want ErrClosed", err)
	}
}

// FuzzDecode feeds arbitrary bytes to a decoder in both states a
// receiver can be in: fresh, and mid-stream after a keyframe. Nothing
// may crash, a picture that comes out must be well formed, and the
// decoder must still take the next keyframe.
func FuzzDecode(f *testing.F) {
	key, delta, _ := sampleStream(f)
	f.Add(key)
	f.Add(delta)
	f.Add(key[:len(key)/2])
	f.Add(withSize(key, 16383, 16383))
	f.Add(withSize(key, 17, 9))
	f.Add([]byte{})
	f.Add([]byte{0x9d, 0x01, 0x2a})
	f.Fuzz(func(t *testing.T, data []byte) {
		fresh, err := NewDecoder()
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		checkPicture(t, fresh, data)

		primed, err := NewDecoder()
		if err != nil {
			t.Fatal(err)
		}
		defer primed.Close()
		if _, err := primed.Decode(key); err != nil {
			t.Fatalf("keyframe: %v", err)
		}
		checkPicture(t, primed, data)
		if _, err := primed.Decode(key); err != nil {
			t.Fatalf("keyframe after fuzz input: %v", err)
		}
	})
}

// checkPicture decodes data and, if a picture comes out, checks its shape.
func checkPicture(t *testing.T, d *Decoder, data []byte) {
	img, err := d.Decode(data)
	if err != nil {
		if img != nil {
			t.Fatalf("picture and error together: %v", err)
		}
		return
	}
	w, h := img.Rect.Dx(), img.Rect.Dy()
	if w <= 0 || h <= 0 || w*h > maxDecodePixels || len(img.Pix) != 4*w*h {
		t.Fatalf("malformed picture %v with %d bytes", img.Rect, len(img.Pix))
	}
}
