//go:build !cgo || novpx

package vpx

import "image"

// Encoder is a placeholder in builds without libvpx; see ErrUnavailable.
type Encoder struct{}

// NewEncoder returns ErrUnavailable: this build has no libvpx.
func NewEncoder(EncoderConfig) (*Encoder, error) { return nil, ErrUnavailable }

// Encode returns ErrUnavailable.
func (*Encoder) Encode([]byte, int, bool) (frame []byte, key bool, err error) {
	return nil, false, ErrUnavailable
}

// SetBitrate returns ErrUnavailable.
func (*Encoder) SetBitrate(int) error { return ErrUnavailable }

// Bitrate is 0.
func (*Encoder) Bitrate() int { return 0 }

// Width and Height are 0.
func (*Encoder) Width() int  { return 0 }
func (*Encoder) Height() int { return 0 }

// Close does nothing.
func (*Encoder) Close() {}

// Decoder is a placeholder in builds without libvpx; see ErrUnavailable.
type Decoder struct{}

// NewDecoder returns ErrUnavailable: this build has no libvpx.
func NewDecoder() (*Decoder, error) { return nil, ErrUnavailable }

// Decode returns ErrUnavailable.
func (*Decoder) Decode([]byte) (*image.RGBA, error) { return nil, ErrUnavailable }

// Close does nothing.
func (*Decoder) Close() {}
