package agent

import (
	"github.com/tandemcall/tandem/internal/agent/x11"
)

// x11Desktop is an X11 display: XTEST input, the bar and the mark as
// override-redirect windows, and a Grabber with its own connection.
type x11Desktop struct {
	*x11.Display
	grab *x11.Grabber
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
	return &x11Desktop{Display: d, grab: g}, nil
}

func (d *x11Desktop) Grab(full bool) (Frame, bool, error) {
	f, changed, err := d.grab.Grab(full)
	if err != nil {
		return Frame{}, false, err
	}
	return Frame{Width: f.Width, Height: f.Height, Stride: f.Stride, Pix: f.Pix}, changed, nil
}

// Ended is nil: an X display does not end a session by itself.
func (d *x11Desktop) Ended() <-chan struct{} { return nil }

func (d *x11Desktop) Close() error {
	err := d.grab.Close()
	if e := d.Display.Close(); err == nil {
		err = e
	}
	return err
}
