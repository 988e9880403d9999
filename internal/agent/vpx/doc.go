// Package vpx encodes and decodes VP8 with libvpx, for the desktop agent's
// screen.
//
// The agent grabs X11 frames (BGRX, 32 bits per pixel), and an [Encoder]
// turns them into a realtime VP8 stream tuned for screen content: constant
// bitrate, no look-ahead, and keyframes only when a receiver asks for one.
// A [Decoder] turns such frames back into pictures, so that tests can check
// what a receiver would see.
//
// The codec is libvpx, reached through cgo. Building needs gcc, pkg-config
// and libvpx-dev; running needs the libvpx shared library (Debian: libvpx7).
// Built without cgo, or with the novpx build tag, the package keeps the
// same API and its constructors return [ErrUnavailable], so the rest of
// Tandem still builds on machines that never run the agent.
package vpx

import "errors"

// Errors returned by this package; test for them with [errors.Is].
var (
	// ErrUnavailable means the binary was built without libvpx.
	ErrUnavailable = errors.New("vpx: built without libvpx (cgo and libvpx-dev needed)")
	// ErrClosed means the Encoder or Decoder was used after Close.
	ErrClosed = errors.New("vpx: use after Close")
	// ErrInvalid means a configuration, image or frame the caller passed
	// cannot be used; the Encoder or Decoder is unaffected and can be used
	// again.
	ErrInvalid = errors.New("vpx: invalid argument")
	// ErrCodec means libvpx refused to set up, encode or decode; the
	// wrapping error carries libvpx's own description.
	ErrCodec = errors.New("vpx: libvpx failed")
	// ErrNoFrame means a frame decoded but gave no picture to show (VP8
	// allows hidden frames that only update reference buffers).
	ErrNoFrame = errors.New("vpx: frame has no picture to show")
)
