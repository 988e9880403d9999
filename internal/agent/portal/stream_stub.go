//go:build !cgo || !linux || nopipewire

package portal

import (
	"context"
	"os"
)

// Stream is a placeholder in builds without PipeWire (no cgo, or the
// nopipewire tag); see ErrNoPipeWire.
type Stream struct{}

// OpenStream returns ErrNoPipeWire; it closes fd.
func OpenStream(fd int, _ uint32) (*Stream, error) {
	if fd >= 0 {
		_ = os.NewFile(uintptr(fd), "pipewire").Close()
	}
	return nil, ErrNoPipeWire
}

// Latest returns ErrNoPipeWire.
func (*Stream) Latest() (pix []byte, w, h int, changed bool, err error) {
	return nil, 0, 0, false, ErrNoPipeWire
}

// WaitFirst returns ErrNoPipeWire.
func (*Stream) WaitFirst(context.Context) (w, h int, err error) { return 0, 0, ErrNoPipeWire }

// Close does nothing.
func (*Stream) Close() error { return nil }

// HasPipeWire reports whether this build can read the screen (libpipewire
// through cgo).
const HasPipeWire = false
