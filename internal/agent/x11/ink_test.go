package x11_test

import (
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/agent/x11/x11test"
	"github.com/tandemcall/tandem/internal/testkit"
)

// TestStrokes: the helper's strokes show in red on the screen where they
// were drawn — a line from point to point, a dot for a stroke of one
// point — and nowhere else; clicks on them reach the window below; once
// cleared, the screen is as before.
func TestStrokes(t *testing.T) {
	display, d := open(t)
	g := newGrabber(t, d)
	before := rgbAt(grab(t, g), 700, 400)
	if before == x11test.Red {
		t.Fatal("the screen is red where the test draws")
	}
	for _, p := range [][2]int{{600, 400}, {800, 400}, {800, 500}} {
		if err := d.DrawStroke(1, p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.DrawStroke(2, 1000, 600); err != nil {
		t.Fatal(err)
	}
	f := grab(t, g)
	for _, p := range [][2]int{{600, 400}, {700, 400}, {799, 400}, {800, 450}, {800, 500}, {1000, 600}} {
		if got := rgbAt(f, p[0], p[1]); got != x11test.Red {
			t.Errorf("pixel %v = %06x on the stroke, want red", p, got)
		}
	}
	for _, p := range [][2]int{{700, 410}, {700, 390}, {790, 450}, {600, 500}, {1010, 600}, {900, 300}} {
		if got := rgbAt(f, p[0], p[1]); got == x11test.Red {
			t.Errorf("pixel %v is red, off the strokes", p)
		}
	}

	// A click on a stroke goes to the window under it.
	tw := x11test.NewTestWindow(t, display, 500, 350, 400, 200)
	c := xconn(t, display)
	testkit.Eventually(t, 5*time.Second, "the strokes raised over the new window", func() bool {
		return topWindows(t, c)[0] == d.InkWindow()
	})
	if got := rgbAt(grab(t, g), 700, 400); got != x11test.Red {
		t.Errorf("the stroke at (700, 400) = %06x over the new window, want red", got)
	}
	if err := d.MovePointer(700, 400); err != nil {
		t.Fatal(err)
	}
	if err := d.Button(1, true); err != nil {
		t.Fatal(err)
	}
	if err := d.Button(1, false); err != nil {
		t.Fatal(err)
	}
	if got := tw.WaitClicks(t, 1); got[0] != (x11test.Click{X: 700, Y: 400, Button: 1}) {
		t.Errorf("click through the stroke: %v, want (700, 400) in the window", got)
	}

	if err := d.ClearStrokes(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "the window repainted where the strokes were", func() bool {
		f := grab(t, g)
		return rgbAt(f, 700, 400) != x11test.Red && rgbAt(f, 1000, 600) != x11test.Red
	})
}

// TestArrowHead: an arrow stroke ends in a head pointing the way it was
// drawn; a pen stroke ends as it is; a stroke id used again starts anew.
func TestArrowHead(t *testing.T) {
	_, d := open(t)
	g := newGrabber(t, d)
	draw := func(id int, pts ...[2]int) {
		t.Helper()
		for _, p := range pts {
			if err := d.DrawStroke(id, p[0], p[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Left to right along y 300, ending at (700, 300): the head's sides
	// go back up-left and down-left from the tip.
	draw(1, [2]int{400, 300}, [2]int{550, 300}, [2]int{700, 300})
	if err := d.EndStroke(1, true); err != nil {
		t.Fatal(err)
	}
	// The same without a head, lower down.
	draw(2, [2]int{400, 500}, [2]int{700, 500})
	if err := d.EndStroke(2, false); err != nil {
		t.Fatal(err)
	}
	// Id 1 again: a new stroke, not joined to the arrow's tip.
	draw(1, [2]int{900, 600})
	f := grab(t, g)
	for _, p := range [][2]int{{692, 295}, {692, 305}, {688, 293}, {688, 307}} {
		if got := rgbAt(f, p[0], p[1]); got != x11test.Red {
			t.Errorf("pixel %v = %06x on the arrow's head, want red", p, got)
		}
	}
	for _, p := range [][2]int{{692, 495}, {692, 505}, {688, 493}, {688, 507}, {800, 450}, {708, 295}} {
		if got := rgbAt(f, p[0], p[1]); got == x11test.Red {
			t.Errorf("pixel %v is red, off the strokes", p)
		}
	}
}
