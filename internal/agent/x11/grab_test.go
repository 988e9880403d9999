package x11_test

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/agent/x11"
	"github.com/tandemcall/tandem/internal/agent/x11/x11test"
	"github.com/tandemcall/tandem/internal/testkit"
)

// grabbers are the two ways of reading the screen.
var grabbers = []struct {
	name string
	new  func(*x11.Display) (*x11.Grabber, error)
	shm  bool
}{
	{"shm", (*x11.Display).NewGrabber, true},
	{"core", x11.NewGrabberNoSHM, false},
}

func TestGrabSeesWindow(t *testing.T) {
	for _, gb := range grabbers {
		t.Run(gb.name, func(t *testing.T) {
			display, d := open(t)
			tw := x11test.NewTestWindow(t, display, 200, 100, 400, 300)
			g, err := gb.new(d)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if g.UsesSHM() != gb.shm {
				t.Fatalf("UsesSHM = %v, want %v", g.UsesSHM(), gb.shm)
			}
			f, changed, err := g.Grab(false) // the first grab reads everything
			if err != nil {
				t.Fatal(err)
			}
			if !changed || f.Width != x11test.Width || f.Height != x11test.Height || f.Stride != 4*f.Width ||
				len(f.Pix) != f.Stride*f.Height {
				t.Fatalf("first grab: changed %v, %dx%d stride %d, %d bytes", changed, f.Width, f.Height, f.Stride, len(f.Pix))
			}
			if len(f.Dirty) != 1 || f.Dirty[0] != image.Rect(0, 0, f.Width, f.Height) {
				t.Fatalf("first grab dirty %v, want the whole screen", f.Dirty)
			}
			for _, reg := range tw.Regions() {
				r := reg.Rect
				for _, p := range []image.Point{r.Min, r.Max.Sub(image.Pt(1, 1)), {(r.Min.X + r.Max.X) / 2, (r.Min.Y + r.Max.Y) / 2}} {
					if got := rgbAt(f, p.X, p.Y); got != reg.RGB {
						t.Errorf("pixel %v = %06x, want %06x", p, got, reg.RGB)
					}
				}
			}
			if got := rgbAt(f, 199, 99); got == x11test.Red {
				t.Errorf("pixel outside the window is red")
			}
		})
	}
}

func TestGrabReadsChanges(t *testing.T) {
	for _, gb := range grabbers {
		t.Run(gb.name, func(t *testing.T) {
			display, d := open(t)
			tw := x11test.NewTestWindow(t, display, 200, 100, 400, 300)
			g, err := gb.new(d)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			if _, _, err := g.Grab(true); err != nil {
				t.Fatal(err)
			}
			quiet(t, g)

			paint := image.Rect(250, 150, 300, 190)
			tw.Paint(t, paint, 0xffffff)
			var f *x11.Frame
			testkit.Eventually(t, 5*time.Second, "the change to be grabbed", func() bool {
				var changed bool
				f, changed, err = g.Grab(false)
				if err != nil {
					t.Fatal(err)
				}
				return changed
			})
			if got := rgbAt(f, 260, 160); got != 0xffffff {
				t.Fatalf("painted pixel = %06x, want ffffff", got)
			}
			covered, area := image.Rectangle{}, 0
			for _, r := range f.Dirty {
				covered = covered.Union(r)
				area += r.Dx() * r.Dy()
			}
			if !paint.In(covered) || area > 4*paint.Dx()*paint.Dy() {
				t.Fatalf("dirty %v (%d pixels) for a change at %v", f.Dirty, area, paint)
			}
			if got := rgbAt(f, 210, 110); got != x11test.Red {
				t.Fatalf("unchanged pixel = %06x, want red", got)
			}
			quiet(t, g)
			if f, changed, err := g.Grab(true); err != nil || !changed || len(f.Dirty) != 1 {
				t.Fatalf("full grab: changed %v, dirty %v, %v", changed, f.Dirty, err)
			}
		})
	}
}

// quiet grabs until nothing changes (the window's first paint may still
// be reported), and fails if that does not happen.
func quiet(t *testing.T, g *x11.Grabber) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, "a grab without change", func() bool {
		f, changed, err := g.Grab(false)
		if err != nil {
			t.Fatal(err)
		}
		if !changed && len(f.Dirty) != 0 {
			t.Fatalf("unchanged grab with dirty %v", f.Dirty)
		}
		return !changed
	})
}

func TestGrabberSHMSegmentMarkedRemoved(t *testing.T) {
	_, d := open(t)
	g := newGrabber(t, d)
	if !g.UsesSHM() {
		t.Fatal("the Grabber reads without MIT-SHM")
	}
	size := 4 * x11test.Width * x11test.Height
	seg := findSegment(t, size)
	if seg == nil {
		t.Fatalf("no shared memory segment of %d bytes created by pid %d", size, os.Getpid())
	}
	const shmDest = 0o1000 // marked for removal when the last user detaches
	if seg.mode&shmDest == 0 || seg.attached != 2 {
		t.Fatalf("segment mode %o attached %d, want removal mark and 2 attached", seg.mode, seg.attached)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "the segment to go", func() bool { return findSegment(t, size) == nil })
}

type segment struct {
	mode     int
	attached int
}

// findSegment looks in /proc/sysvipc/shm for a segment of size bytes this
// process created.
func findSegment(t *testing.T, size int) *segment {
	t.Helper()
	f, err := os.Open("/proc/sysvipc/shm")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Scan() // header: key shmid perms size cpid lpid nattch ...
	for s.Scan() {
		var key, id, mode, sz, cpid, lpid, nattch int
		if _, err := fmt.Sscanf(strings.TrimSpace(s.Text()), "%d %d %o %d %d %d %d", &key, &id, &mode, &sz, &cpid, &lpid, &nattch); err != nil {
			continue
		}
		if sz == size && cpid == os.Getpid() {
			return &segment{mode: mode, attached: nattch}
		}
	}
	return nil
}

func BenchmarkGrab(b *testing.B) {
	display := x11test.StartXvfb(b)
	d, err := x11.Open(display)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	tw := x11test.NewTestWindow(b, display, 200, 100, 400, 300)

	for _, gb := range grabbers {
		b.Run("full-"+gb.name, func(b *testing.B) {
			g, err := gb.new(d)
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			b.ReportAllocs()
			b.SetBytes(4 * x11test.Width * x11test.Height)
			for b.Loop() {
				if _, _, err := g.Grab(true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	// A 64×64 change per frame: the painting is outside the timing, the
	// grab that finds and reads it inside.
	b.Run("changed-64x64-shm", func(b *testing.B) {
		g := newGrabber(b, d)
		if _, _, err := g.Grab(true); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		colours := []uint32{0xffffff, 0x000000}
		i := 0
		for b.Loop() {
			b.StopTimer()
			tw.Paint(b, image.Rect(300, 200, 364, 264), colours[i%2])
			i++
			b.StartTimer()
			for {
				_, changed, err := g.Grab(false)
				if err != nil {
					b.Fatal(err)
				}
				if changed {
					break
				}
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		g := newGrabber(b, d)
		if _, _, err := g.Grab(true); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := g.Grab(false); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestCloseEndsGoroutines(t *testing.T) {
	display := x11test.StartXvfb(t)
	leaks := testkit.LeakCheck(t, 0)
	d, err := x11.Open(display)
	if err != nil {
		t.Fatal(err)
	}
	g, err := d.NewGrabber()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := g.Grab(false); err != nil {
		t.Fatal(err)
	}
	if err := d.ShowBar("Tandem"); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := g.Grab(false); !errors.Is(err, x11.ErrClosed) {
		t.Fatalf("Grab after Close = %v, want ErrClosed", err)
	}
	leaks()
}
