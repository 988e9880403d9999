package agent

import (
	"image"
	"slices"
	"testing"

	"github.com/tandemcall/tandem/internal/assistwire"
)

func TestChooseDesktop(t *testing.T) {
	tests := []struct {
		name    string
		display string
		env     map[string]string
		want    string
	}{
		{"X11 session", "", map[string]string{"XDG_SESSION_TYPE": "x11", "DISPLAY": ":0"}, DesktopX11},
		{"Wayland session", "", map[string]string{"XDG_SESSION_TYPE": "wayland", "DISPLAY": ":0"}, DesktopPortal},
		{"Wayland display only", "", map[string]string{"WAYLAND_DISPLAY": "wayland-0"}, DesktopPortal},
		{"Wayland, X display asked for", ":1", map[string]string{"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, DesktopX11},
		{"nothing known", "", nil, DesktopX11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ChooseDesktop(tt.display, func(k string) string { return tt.env[k] }); got != tt.want {
				t.Errorf("ChooseDesktop = %q, want %q", got, tt.want)
			}
		})
	}
}

// screensDesk is a desktop of two monitors side by side that records
// where the pointer is moved.
type screensDesk struct {
	Desktop
	moves []image.Point
}

func (d *screensDesk) Size() (int, int) { return 1440, 600 }
func (d *screensDesk) Monitors() []image.Rectangle {
	return []image.Rectangle{image.Rect(0, 0, 640, 480), image.Rect(640, 0, 1440, 600)}
}
func (d *screensDesk) MovePointer(x, y int) error {
	d.moves = append(d.moves, image.Pt(x, y))
	return nil
}

// TestViewAndInput: the helper's coordinates are normalised over what he
// is shown: a monitor's corners are that monitor's corners on the
// desktop, and a monitor gone since he chose it shows the whole desktop.
func TestViewAndInput(t *testing.T) {
	d := &screensDesk{}
	s := &session{desk: d}
	for _, tt := range []struct {
		shown int32
		want  image.Rectangle
	}{
		{0, image.Rect(0, 0, 1440, 600)},
		{1, image.Rect(0, 0, 640, 480)},
		{2, image.Rect(640, 0, 1440, 600)},
		{3, image.Rect(0, 0, 1440, 600)},
	} {
		s.shown.Store(tt.shown)
		if got := s.view(d.Size()); got != tt.want {
			t.Errorf("screen %d: view %v, want %v", tt.shown, got, tt.want)
		}
	}
	s.shown.Store(2)
	for _, e := range []assistwire.Event{{Type: assistwire.PointerMove, X: 0, Y: 0}, {Type: assistwire.PointerMove, X: 65535, Y: 65535}} {
		if err := apply(d, e, s.view(d.Size())); err != nil {
			t.Fatal(err)
		}
	}
	if want := []image.Point{{640, 0}, {1439, 599}}; !slices.Equal(d.moves, want) {
		t.Errorf("the pointer went to %v, want %v", d.moves, want)
	}
	// An odd-sized monitor is shown one pixel short: the encoder takes
	// even sizes.
	if got := (&session{desk: &oddDesk{}}).view(1001, 601); got != image.Rect(0, 0, 1000, 600) {
		t.Errorf("odd desktop: view %v", got)
	}
}

type oddDesk struct{ Desktop }

func (oddDesk) Size() (int, int)            { return 1001, 601 }
func (oddDesk) Monitors() []image.Rectangle { return nil }
