package rtpcodec

import (
	"bytes"
	"testing"
)

// TestVP8Numbers reads and rewrites the numbering of descriptors with a
// 15-bit and a 7-bit picture id, TL0PICIDX and KEYIDX, and leaves every
// other bit alone.
func TestVP8Numbers(t *testing.T) {
	long := []byte{0x90, 0xf0, 0x80 | 0x12, 0x34, 0x56, 0x40 | 0x20 | 0x05, 0x9d}
	n, ok := ParseVP8Numbers(long)
	if !ok || !n.LongPicture || n.PictureID != 0x1234 || n.TL0PicIdx != 0x56 || n.KeyIdx != 5 {
		t.Fatalf("parsed %+v, %v", n, ok)
	}
	p := bytes.Clone(long)
	n.Rewrite(p, 0x7fff, 0xff, 0x1f)
	want := []byte{0x90, 0xf0, 0xff, 0xff, 0xff, 0x40 | 0x20 | 0x1f, 0x9d}
	if !bytes.Equal(p, want) {
		t.Errorf("rewritten % x, want % x", p, want)
	}
	if m, _ := ParseVP8Numbers(p); m.PictureID != 0x7fff || m.TL0PicIdx != 0xff || m.KeyIdx != 0x1f {
		t.Errorf("reparsed %+v", m)
	}

	short := []byte{0x90, 0x80, 0x7f, 0x00}
	n, ok = ParseVP8Numbers(short)
	if !ok || n.LongPicture || n.PictureID != 0x7f || n.TL0At != 0 || n.KeyAt != 0 {
		t.Fatalf("parsed %+v, %v", n, ok)
	}
	p = bytes.Clone(short)
	n.Rewrite(p, 0x180, 9, 9) // 7 bits: 0x180 is 0 mod 128; no TL0 or KEYIDX to write
	if !bytes.Equal(p, []byte{0x90, 0x80, 0x00, 0x00}) {
		t.Errorf("rewritten % x", p)
	}

	// T without K: the byte is there, KEYIDX is not.
	if n, ok := ParseVP8Numbers([]byte{0x90, 0x20, 0x40, 0}); !ok || n.KeyAt != 0 {
		t.Errorf("T only: %+v, %v", n, ok)
	}
	for _, bad := range [][]byte{{}, {0x80}, {0x80, 0x80}, {0x80, 0x80, 0x80}, {0x80, 0x40}, {0x80, 0x10}} {
		if _, ok := ParseVP8Numbers(bad); ok {
			t.Errorf("% x parsed", bad)
		}
	}
	if n, ok := ParseVP8Numbers([]byte{0x10, 0}); !ok || n != (VP8Numbers{}) {
		t.Errorf("no extension: %+v, %v", n, ok)
	}
}

// FuzzVP8Numbers: any payload parses without panicking, and rewriting
// with the numbers it read gives back the same bytes.
func FuzzVP8Numbers(f *testing.F) {
	f.Add([]byte{0x90, 0xf0, 0x92, 0x34, 0x56, 0x65, 0x9d})
	f.Add([]byte{0x90, 0x80, 0x7f})
	f.Add([]byte{0x80, 0x30})
	f.Fuzz(func(t *testing.T, p []byte) {
		n, ok := ParseVP8Numbers(p)
		if !ok {
			return
		}
		q := bytes.Clone(p)
		n.Rewrite(q, n.PictureID, n.TL0PicIdx, n.KeyIdx)
		if !bytes.Equal(p, q) {
			t.Fatalf("identity rewrite changed % x to % x", p, q)
		}
	})
}
