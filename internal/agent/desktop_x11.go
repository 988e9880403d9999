package agent

import (
	"errors"

	"github.com/tandemcall/tandem/internal/agent/x11"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// x11Desktop is an X11 display: XTEST input, the bar and the mark as
// override-redirect windows, and a Grabber and the clipboard each with a
// connection of their own.
type x11Desktop struct {
	*x11.Display
	grab *x11.Grabber
	clip *x11.Clipboard // nil if the server's clipboard cannot be reached
}

var _ Desktop = (*x11Desktop)(nil)

func openX11(display string) (*x11Desktop, error) {
	d, err := x11.Open(display)
	if err != nil {
		return nil, err
	}
	g, err := d.NewGrabber()
	if err != nil {
		d.Close()
		return nil, err
	}
	clip, err := x11.OpenClipboard(display, protocol.MaxClipboardBytes)
	if err != nil {
		clip = nil // shared without the clipboard
	}
	return &x11Desktop{Display: d, grab: g, clip: clip}, nil
}

func (d *x11Desktop) SetClipboard(text string) error {
	if d.clip == nil {
		return errors.ErrUnsupported
	}
	return d.clip.Set(text)
}

func (d *x11Desktop) Copies() (<-chan string, <-chan int) {
	if d.clip == nil {
		return nil, nil
	}
	return d.clip.Changes(), d.clip.TooLarge()
}

func (d *x11Desktop) Grab(full bool) (Frame, bool, error) {
	f, changed, err := d.grab.Grab(full)
	if errors.Is(err, x11.ErrScreenResized) {
		// The person changed the resolution: read the screen anew, at
		// its new size.
		g, gerr := d.Display.NewGrabber()
		if gerr != nil {
			return Frame{}, false, gerr
		}
		_ = d.grab.Close()
		d.grab = g
		f, changed, err = d.grab.Grab(true)
	}
	if err != nil {
		return Frame{}, false, err
	}
	return Frame{Width: f.Width, Height: f.Height, Stride: f.Stride, Pix: f.Pix}, changed, nil
}

// Ended is nil: an X display does not end a session by itself.
func (d *x11Desktop) Ended() <-chan struct{} { return nil }

func (d *x11Desktop) Close() error {
	err := d.grab.Close()
	if d.clip != nil {
		_ = d.clip.Close()
	}
	if e := d.Display.Close(); err == nil {
		err = e
	}
	return err
}
