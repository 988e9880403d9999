package test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/agent/portal"
	"github.com/tandemcall/tandem/internal/agent/portal/portaltest"
)

// openPortal opens a portal session while hand answers the desktop's
// dialog as allow says.
func openPortal(t *testing.T, hand *portaltest.Hand, allow bool) (*portal.Session, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type opened struct {
		s   *portal.Session
		err error
	}
	res := make(chan opened, 1)
	go func() {
		s, err := portal.Open(ctx, portal.Options{Logger: clientLogger(t)})
		res <- opened{s, err}
	}()
	if err := hand.AnswerDialog(ctx, allow); err != nil {
		cancel()
		if o := <-res; o.s != nil {
			o.s.Close()
		}
		t.Fatalf("answering the desktop's dialog: %v", err)
	}
	o := <-res
	return o.s, o.err
}

// findWindow finds the test window's drawing area in a picture of the
// screen by its red quadrant, and checks the other three are where they
// belong: size is the drawing area's size as the window reports it.
func findWindow(img *image.RGBA, size image.Point) (image.Point, error) {
	var red image.Rectangle
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if near(img, image.Pt(x, y), portaltest.Red, 8) {
				red = red.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	hw, hh := size.X/2, size.Y/2
	if abs(red.Dx()-hw) > 1 || abs(red.Dy()-hh) > 1 {
		return image.Point{}, fmt.Errorf("red quadrant %v, want %d×%d", red, hw, hh)
	}
	o := red.Min
	for _, q := range []struct {
		at  image.Point
		rgb uint32
	}{
		{image.Pt(hw/2, hh/2), portaltest.Red},
		{image.Pt(hw+hw/2, hh/2), portaltest.Green},
		{image.Pt(hw/2, hh+hh/2), portaltest.Blue},
		{image.Pt(hw+hw/2, hh+hh/2), portaltest.Yellow},
	} {
		if p := o.Add(q.at); !near(img, p, q.rgb, 8) {
			return o, fmt.Errorf("at %v %v, want #%06x", p, img.RGBAAt(p.X, p.Y), q.rgb)
		}
	}
	return o, nil
}

// TestWaylandPortal: a headless GNOME desktop on Wayland (mutter) shows a
// window of four known colours. The agent's portal backend asks to share
// it: the person at the machine first says no in the desktop's own
// dialog, and the backend says so; then yes, with remote interaction.
// The backend's pictures show the colours where the window is; its click
// lands on the window where it aimed, its right click and wheel arrive,
// and its text is typed into the window. Once the session is closed,
// nothing more arrives.
func TestWaylandPortal(t *testing.T) {
	d := portaltest.Run(t)
	if d == nil {
		return // it ran inside the desktop
	}
	win := d.StartWindow()
	hand := d.NewHand()

	s, err := openPortal(t, hand, false)
	if !errors.Is(err, portal.ErrRefused) {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open after the person said no: %v, want ErrRefused", err)
	}

	s, err = openPortal(t, hand, true)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if w, h := s.Size(); w != portaltest.Width || h != portaltest.Height {
		t.Fatalf("Size = %d×%d, want the monitor's %d×%d", w, h, portaltest.Width, portaltest.Height)
	}

	// The colours where the window is; the dialog may take a frame or two
	// to go.
	var origin image.Point
	deadline := time.Now().Add(10 * time.Second)
	for {
		pix, w, h, _, err := s.Grab()
		if err == nil {
			if origin, err = findWindow(portaltest.ToRGBA(pix, w, h, w*4), win.Size()); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the window's colours are not in the shared screen: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("window's drawing area at %v, %v", origin, win.Size())

	// A click where the yellow quadrant is.
	size := win.Size()
	aim := image.Pt(size.X*3/4, size.Y*3/4)
	mark := win.Mark()
	at := origin.Add(aim)
	if err := s.MovePointer(at.X, at.Y); err != nil {
		t.Fatal(err)
	}
	if err := s.Button(1, true); err != nil {
		t.Fatal(err)
	}
	if err := s.Button(1, false); err != nil {
		t.Fatal(err)
	}
	line := win.WaitFor(mark, "left click", func(l string) bool { return strings.HasPrefix(l, "BUTTON 1 ") })
	var bx, by int
	if _, err := fmt.Sscanf(line, "BUTTON 1 %d %d", &bx, &by); err != nil || abs(bx-aim.X) > 2 || abs(by-aim.Y) > 2 {
		t.Fatalf("click landed at %q, aimed at %v", line, aim)
	}

	// A right click, a notch of the wheel down.
	mark = win.Mark()
	at = origin.Add(image.Pt(size.X/4, size.Y/4))
	for _, err := range []error{s.MovePointer(at.X, at.Y), s.Button(3, true), s.Button(3, false), s.Wheel(0, 60), s.Wheel(0, 60)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	win.WaitFor(mark, "right click", func(l string) bool { return strings.HasPrefix(l, "BUTTON 3 ") })
	win.WaitFor(mark, "scroll down", func(l string) bool { return l == "SCROLL down" })

	// Text, with capitals and punctuation the compositor finds the
	// modifiers for.
	const text = "Tandem 42!"
	mark = win.Mark()
	for _, r := range text {
		if err := s.Key(uint32(r), true); err != nil {
			t.Fatal(err)
		}
		if err := s.Key(uint32(r), false); err != nil {
			t.Fatal(err)
		}
	}
	deadline = time.Now().Add(5 * time.Second)
	for win.Typed(mark) != text && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := win.Typed(mark); got != text {
		t.Fatalf("typed %q, the window received %q (%q)", text, got, win.Since(mark))
	}

	// Closed: nothing more.
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	mark = win.Mark()
	if err := s.Button(1, true); !errors.Is(err, portal.ErrClosed) {
		t.Fatalf("Button after Close: %v, want ErrClosed", err)
	}
	_ = s.Key('x', true)
	_ = s.Key('x', false)
	time.Sleep(500 * time.Millisecond)
	if got := win.Since(mark); len(got) > 0 {
		t.Fatalf("the window received input after the session closed: %q", got)
	}
}
