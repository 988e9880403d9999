package portaltest

import (
	"bufio"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Colours of the test window's quadrants, 0xRRGGBB.
const (
	Red    = 0xff0000 // top left
	Green  = 0x00ff00 // top right
	Blue   = 0x0000ff // bottom left
	Yellow = 0xffff00 // bottom right
)

// windowScript is a GTK 3 Wayland client: a window whose drawing area
// shows the four colours in quadrants and reports, one line each on
// stdout, its size and the input it receives, in the drawing area's
// coordinates.
const windowScript = `
import sys, gi
gi.require_version('Gtk', '3.0'); gi.require_version('Gdk', '3.0')
from gi.repository import Gtk, Gdk
def out(*a): print(*a, flush=True)
w = Gtk.Window(title='tandem-test')
w.set_default_size(600, 400)
da = Gtk.DrawingArea()
da.set_can_focus(True)
def draw(widget, cr):
    a = widget.get_allocation(); hw, hh = a.width // 2, a.height // 2
    for x, y, ww, hh2, c in ((0, 0, hw, hh, (1, 0, 0)), (hw, 0, a.width - hw, hh, (0, 1, 0)),
                             (0, hh, hw, a.height - hh, (0, 0, 1)), (hw, hh, a.width - hw, a.height - hh, (1, 1, 0))):
        cr.set_source_rgb(*c); cr.rectangle(x, y, ww, hh2); cr.fill()
    out('SIZE', a.width, a.height)
da.connect('draw', draw)
da.add_events(Gdk.EventMask.BUTTON_PRESS_MASK | Gdk.EventMask.KEY_PRESS_MASK | Gdk.EventMask.SCROLL_MASK)
da.connect('button-press-event', lambda _w, e: out('BUTTON', e.button, round(e.x), round(e.y)) if e.type == Gdk.EventType.BUTTON_PRESS else None)
def key(_w, e):
    u = Gdk.keyval_to_unicode(e.keyval)
    out('KEY', Gdk.keyval_name(e.keyval), '%x' % u)
w.connect('key-press-event', key)
def scroll(_w, e):
    if e.direction == Gdk.ScrollDirection.SMOOTH:
        ok, dx, dy = e.get_scroll_deltas(); out('SCROLL', 'down' if dy > 0 else 'up' if dy < 0 else 'right' if dx > 0 else 'left')
    else:
        out('SCROLL', e.direction.value_nick)
da.connect('scroll-event', scroll)
w.add(da)
w.connect('destroy', Gtk.main_quit)
w.show_all()
da.grab_focus()
Gtk.main()
`

// Window is the test window.
type Window struct {
	t *testing.T

	mu    sync.Mutex
	lines []string
	size  image.Point
}

// StartWindow opens the test window on the desktop; it closes at the end
// of the test.
func (d *Desktop) StartWindow() *Window {
	t := d.t
	script := filepath.Join(t.TempDir(), "window.py")
	if err := os.WriteFile(script, []byte(windowScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-u", script)
	cmd.Env = append(os.Environ(), "GDK_BACKEND=wayland")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("portaltest: test window: %v", err)
	}
	w := &Window{t: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			w.mu.Lock()
			w.lines = append(w.lines, line)
			if f := strings.Fields(line); len(f) == 3 && f[0] == "SIZE" {
				x, _ := strconv.Atoi(f[1])
				y, _ := strconv.Atoi(f[2])
				w.size = image.Pt(x, y)
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(15 * time.Second)
	for w.Size() == (image.Point{}) {
		if time.Now().After(deadline) {
			t.Fatal("portaltest: the test window did not draw")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return w
}

// Size is the drawing area's size.
func (w *Window) Size() image.Point {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// Mark returns the number of lines so far, for Since.
func (w *Window) Mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.lines)
}

// Since returns the input lines (BUTTON, KEY, SCROLL) after mark.
func (w *Window) Since(mark int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var in []string
	for _, l := range w.lines[mark:] {
		if !strings.HasPrefix(l, "SIZE") {
			in = append(in, l)
		}
	}
	return in
}

// WaitFor waits until a line after mark satisfies ok and returns it, or
// fails the test.
func (w *Window) WaitFor(mark int, what string, ok func(string) bool) string {
	w.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, l := range w.Since(mark) {
			if ok(l) {
				return l
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("portaltest: the test window received no %s; it received %q", what, w.Since(mark))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Typed returns the text of the key presses after mark.
func (w *Window) Typed(mark int) string {
	var b strings.Builder
	for _, l := range w.Since(mark) {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == "KEY" {
			if u, err := strconv.ParseUint(f[2], 16, 32); err == nil && u != 0 {
				b.WriteRune(rune(u))
			}
		}
	}
	return b.String()
}
