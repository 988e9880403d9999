//go:build !cgo || novpx

package vpx

import (
	"errors"
	"testing"
)

// Builds without libvpx must fail loudly at construction, never encode
// nothing silently.
func TestStubUnavailable(t *testing.T) {
	if _, err := NewEncoder(EncoderConfig{Width: 640, Height: 360}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("NewEncoder: %v, want ErrUnavailable", err)
	}
	if _, err := NewDecoder(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("NewDecoder: %v, want ErrUnavailable", err)
	}
	var e *Encoder
	if _, _, err := e.Encode(make([]byte, 16), 8, true); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Encode: %v, want ErrUnavailable", err)
	}
	e.Close()
	var d *Decoder
	if _, err := d.Decode([]byte{0}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Decode: %v, want ErrUnavailable", err)
	}
	d.Close()
}
