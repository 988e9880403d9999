package x11_test

import (
	"testing"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/tandemcall/tandem/internal/agent/x11"
	"github.com/tandemcall/tandem/internal/agent/x11/x11test"
)

// open starts an Xvfb and opens a Display on it.
func open(t *testing.T) (string, *x11.Display) {
	t.Helper()
	display := x11test.StartXvfb(t)
	return display, openOn(t, display)
}

func openOn(t *testing.T, display string) *x11.Display {
	t.Helper()
	d, err := x11.Open(display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return d
}

func newGrabber(t testing.TB, d *x11.Display) *x11.Grabber {
	t.Helper()
	g, err := d.NewGrabber()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("close grabber: %v", err)
		}
	})
	return g
}

// rgbAt is the colour of pixel (x, y) as 0xRRGGBB.
func rgbAt(f *x11.Frame, x, y int) uint32 {
	i := y*f.Stride + 4*x
	return uint32(f.Pix[i+2])<<16 | uint32(f.Pix[i+1])<<8 | uint32(f.Pix[i])
}

// xconn is a plain connection for looking at the server from outside,
// core protocol only.
func xconn(t *testing.T, display string) *xgb.Conn {
	t.Helper()
	c, err := xgb.NewConnDisplay(display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// keysDown lists the keycodes the server has down.
func keysDown(t *testing.T, c *xgb.Conn) []int {
	t.Helper()
	r, err := xproto.QueryKeymap(c).Reply()
	if err != nil {
		t.Fatal(err)
	}
	var down []int
	for i, bits := range r.Keys {
		for b := range 8 {
			if bits&(1<<b) != 0 {
				down = append(down, i*8+b)
			}
		}
	}
	return down
}
