package x11test

import (
	"context"
	"fmt"
	"image"
	"os/exec"
	"testing"
	"time"
)

// StartXephyr starts an X server whose screen can change size, or that
// spans several monitors, as a person's desktop does; Xvfb can do
// neither. It is Xephyr (Debian package xserver-xephyr) in a window of an
// Xvfb of its own, both stopped at the end of the test. With one monitor
// (the default: Width×Height) the screen can be resized (Resize); with
// several, they sit side by side, left to right and top-aligned, on one
// screen (Xinerama), as the monitors of a desktop do. It returns Xephyr's
// display name.
func StartXephyr(t testing.TB, monitors ...image.Point) string {
	t.Helper()
	if len(monitors) == 0 {
		monitors = []image.Point{{Width, Height}}
	}
	host := startServer(t, "Xvfb", "xvfb", nil, "-screen", "0", "3840x2160x24")
	args := []string{"-no-host-grab"}
	if len(monitors) == 1 {
		args = append(args, "-resizeable")
	} else {
		args = append(args, "+xinerama")
	}
	for _, m := range monitors {
		args = append(args, "-screen", fmt.Sprintf("%dx%dx24", m.X, m.Y))
	}
	return startServer(t, "Xephyr", "xserver-xephyr", []string{"DISPLAY=" + host}, args...)
}

// Resize changes the size of the screen of display, one StartXephyr
// started with one monitor, to a size of its list (xrandr shows it:
// 1024×768, 800×600, 1280×1024 and more), as a person changing the
// resolution does.
func Resize(t testing.TB, display string, w, h int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "xrandr", "-display", display, "-s", fmt.Sprintf("%dx%d", w, h)).CombinedOutput()
	if err != nil {
		t.Fatalf("x11test: xrandr -s %dx%d (Debian package x11-xserver-utils): %v: %s", w, h, err, out)
	}
}
