package x11_test

import (
	"errors"
	"image"
	"slices"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/agent/x11"
	"github.com/tandemcall/tandem/internal/agent/x11/x11test"
)

// TestScreenResized: when the person changes the screen's resolution,
// the Display follows (its size, the bar across the new width) and the
// Grabber says so once; a new Grabber reads the screen at its new size.
func TestScreenResized(t *testing.T) {
	display := x11test.StartXephyr(t)
	d := openOn(t, display)
	if w, h := d.Size(); w != x11test.Width || h != x11test.Height {
		t.Fatalf("size %dx%d", w, h)
	}
	if err := d.ShowBar("Tandem: bob can see this screen"); err != nil {
		t.Fatal(err)
	}
	g := newGrabber(t, d)
	if _, _, err := g.Grab(true); err != nil {
		t.Fatal(err)
	}
	x11test.Resize(t, display, 1600, 1200)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if w, h := d.Size(); w == 1600 && h == 1200 {
			break
		}
		if time.Now().After(deadline) {
			w, h := d.Size()
			t.Fatalf("the Display still says %dx%d", w, h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var err error
	for range 100 {
		if _, _, err = g.Grab(false); err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !errors.Is(err, x11.ErrScreenResized) {
		t.Fatalf("grab after the resize: %v, want ErrScreenResized", err)
	}
	g2 := newGrabber(t, d)
	f, _, err := g2.Grab(true)
	if err != nil {
		t.Fatal(err)
	}
	if f.Width != 1600 || f.Height != 1200 {
		t.Errorf("the new grabber reads %dx%d", f.Width, f.Height)
	}
	// The bar was made again across the new width: its red reaches the
	// new right edge, past the old one.
	if got := rgbAt(f, 1596, 2); got != x11test.Red {
		t.Errorf("the bar's right end at the new width is %06x, not red", got)
	}
}

// TestMonitors: a screen across two monitors lists both, left to right;
// one that is not divided is one monitor, the whole screen.
func TestMonitors(t *testing.T) {
	display := x11test.StartXephyr(t, image.Pt(640, 480), image.Pt(800, 600))
	d := openOn(t, display)
	if w, h := d.Size(); w != 1440 || h != 600 {
		t.Fatalf("size %dx%d, want 1440x600", w, h)
	}
	want := []image.Rectangle{image.Rect(0, 0, 640, 480), image.Rect(640, 0, 1440, 600)}
	if got := d.Monitors(); !slices.Equal(got, want) {
		t.Errorf("monitors %v, want %v", got, want)
	}
	_, one := open(t)
	if got := one.Monitors(); !slices.Equal(got, []image.Rectangle{image.Rect(0, 0, x11test.Width, x11test.Height)}) {
		t.Errorf("monitors of an undivided screen: %v", got)
	}
}
