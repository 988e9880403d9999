package x11_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jezek/xgb"
	"github.com/jezek/xgb/xproto"

	"github.com/tandemcall/tandem/internal/agent/x11"
	"github.com/tandemcall/tandem/internal/agent/x11/x11test"
	"github.com/tandemcall/tandem/internal/testkit"
)

const (
	keysymShiftL = 0xffe1
	keysymEAcute = 0x00e9 // é: not on the US layout Xvfb starts with
)

func TestClickLandsWhereThePointerWent(t *testing.T) {
	display, d := open(t)
	tw := x11test.NewTestWindow(t, display, 100, 100, 600, 400)
	clicks := []x11test.Click{{X: 400, Y: 300, Button: 1}, {X: 101, Y: 499, Button: 3}, {X: 650, Y: 120, Button: 2}}
	for _, c := range clicks {
		if err := d.MovePointer(c.X, c.Y); err != nil {
			t.Fatal(err)
		}
		if err := d.Button(c.Button, true); err != nil {
			t.Fatal(err)
		}
		if err := d.Button(c.Button, false); err != nil {
			t.Fatal(err)
		}
	}
	if got := tw.WaitClicks(t, len(clicks)); !slices.Equal(got, clicks) {
		t.Fatalf("clicks %v, want %v", got, clicks)
	}

	// Off-screen positions are clamped to the edge.
	c := xconn(t, display)
	for _, tt := range []struct{ x, y, wantX, wantY int }{
		{5000, -10, x11test.Width - 1, 0},
		{-3, 9000, 0, x11test.Height - 1},
	} {
		if err := d.MovePointer(tt.x, tt.y); err != nil {
			t.Fatal(err)
		}
		p, err := xproto.QueryPointer(c, xproto.Setup(c).DefaultScreen(c).Root).Reply()
		if err != nil {
			t.Fatal(err)
		}
		if int(p.RootX) != tt.wantX || int(p.RootY) != tt.wantY {
			t.Errorf("MovePointer(%d, %d): pointer at (%d, %d), want (%d, %d)", tt.x, tt.y, p.RootX, p.RootY, tt.wantX, tt.wantY)
		}
	}
}

// typeText presses and releases the key of each character.
func typeText(t *testing.T, d *x11.Display, s string) {
	t.Helper()
	for _, r := range s {
		press(t, d, x11test.Keysym(r))
	}
}

func press(t *testing.T, d *x11.Display, keysym uint32) {
	t.Helper()
	key(t, d, keysym, true)
	key(t, d, keysym, false)
}

func key(t *testing.T, d *x11.Display, keysym uint32, down bool) {
	t.Helper()
	if err := d.Key(keysym, down); err != nil {
		t.Fatalf("Key(%#x, %v): %v", keysym, down, err)
	}
}

func TestKeyTypesText(t *testing.T) {
	display, d := open(t)
	tw := x11test.NewTestWindow(t, display, 100, 100, 400, 300)
	typeText(t, d, "Hello 1!")
	tw.WaitText(t, "Hello 1!")

	// Not on the layout: bound to a spare keycode, with and without the
	// Shift that an upper-case letter would take.
	typeText(t, d, "éÉЖ")
	tw.WaitText(t, "Hello 1!éÉЖ")
	typeText(t, d, "é,") // the borrowed keycode is used again
	tw.WaitText(t, "Hello 1!éÉЖé,")

	c := xconn(t, display)
	if !onKeyboard(t, c, keysymEAcute) {
		t.Fatal("é is on no keycode while borrowed")
	}
	if err := d.ReleaseAll(); err != nil {
		t.Fatal(err)
	}
	if onKeyboard(t, c, keysymEAcute) {
		t.Fatal("é is still on a keycode after ReleaseAll")
	}
	if down := keysDown(t, c); len(down) != 0 {
		t.Fatalf("keys %v down after typing", down)
	}
}

// onKeyboard reports whether the keyboard mapping has keysym on some key.
func onKeyboard(t *testing.T, c *xgb.Conn, keysym uint32) bool {
	t.Helper()
	s := xproto.Setup(c)
	r, err := xproto.GetKeyboardMapping(c, s.MinKeycode, byte(s.MaxKeycode-s.MinKeycode+1)).Reply()
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(r.Keysyms, xproto.Keysym(keysym))
}

func TestKeyWithShiftHeld(t *testing.T) {
	display, d := open(t)
	tw := x11test.NewTestWindow(t, display, 100, 100, 400, 300)

	key(t, d, keysymShiftL, true)
	press(t, d, 'A') // Shift held already: not pressed again
	press(t, d, '!')
	press(t, d, 'a') // Shift let go around it
	press(t, d, '1')
	key(t, d, keysymShiftL, false)
	press(t, d, 'b')
	tw.WaitText(t, "A!a1b")

	// A browser reports Shift+a as "A" down and, with Shift let go first,
	// "a" up: the key must not stay down.
	tw.Reset()
	key(t, d, keysymShiftL, true)
	key(t, d, 'A', true)
	key(t, d, keysymShiftL, false)
	key(t, d, 'a', false)
	tw.WaitText(t, "A")
	if down := keysDown(t, xconn(t, display)); len(down) != 0 {
		t.Fatalf("keys %v still down", down)
	}
}

func TestKeyReleaseOfKeyNotPressedIsIgnored(t *testing.T) {
	display, d := open(t)
	local := openOn(t, display)
	c := xconn(t, display)
	key(t, local, 'q', true) // the local user holds q
	key(t, d, 'q', false)    // Tandem never pressed it
	if down := keysDown(t, c); len(down) != 1 {
		t.Fatalf("keys down %v, want q's still down", down)
	}
	key(t, local, 'q', false)
}

func TestWheelClicks(t *testing.T) {
	display, d := open(t)
	tw := x11test.NewTestWindow(t, display, 100, 100, 400, 300)
	if err := d.MovePointer(300, 250); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		dx, dy int
		want   []uint8
	}{
		{0, 120, []uint8{5}},
		{0, -240, []uint8{4, 4}},
		{60, 0, nil},
		{60, 0, []uint8{7}},
		{-120, 0, []uint8{6}},
		{0, 100, nil},
		{0, 19, nil},
		{0, 1, []uint8{5}},
		{-30, 0, nil},
		{30, 0, nil}, // back to no remainder
		{120, 360, []uint8{5, 5, 5, 7}},
	}
	var want []x11test.Click
	for _, s := range steps {
		if err := d.Wheel(s.dx, s.dy); err != nil {
			t.Fatal(err)
		}
		for _, b := range s.want {
			want = append(want, x11test.Click{X: 300, Y: 250, Button: b})
		}
	}
	// A last left click marks the end: nothing else may come before it.
	if err := d.Button(1, true); err != nil {
		t.Fatal(err)
	}
	if err := d.Button(1, false); err != nil {
		t.Fatal(err)
	}
	want = append(want, x11test.Click{X: 300, Y: 250, Button: 1})
	if got := tw.WaitClicks(t, len(want)); !slices.Equal(got, want) {
		t.Fatalf("clicks %v, want %v", got, want)
	}
}

func TestInputRefused(t *testing.T) {
	display := x11test.StartXvfb(t)
	d, err := x11.Open(display)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []uint8{0, 4, 5, 8, 255} {
		if err := d.Button(b, true); !errors.Is(err, x11.ErrInvalidButton) {
			t.Errorf("Button(%d) = %v, want ErrInvalidButton", b, err)
		}
	}
	for _, ks := range []uint32{0, 0x20000000} {
		if err := d.Key(ks, true); !errors.Is(err, x11.ErrInvalidKeysym) {
			t.Errorf("Key(%#x) = %v, want ErrInvalidKeysym", ks, err)
		}
	}
	// Close lets go of what Tandem holds.
	key(t, d, 'z', true)
	if err := d.Button(1, true); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	c := xconn(t, display)
	if down := keysDown(t, c); len(down) != 0 {
		t.Fatalf("keys %v down after Close", down)
	}
	p, err := xproto.QueryPointer(c, xproto.Setup(c).DefaultScreen(c).Root).Reply()
	if err != nil {
		t.Fatal(err)
	}
	if p.Mask&xproto.ButtonMask1 != 0 {
		t.Fatal("button 1 down after Close")
	}
	for name, err := range map[string]error{
		"MovePointer": d.MovePointer(1, 1),
		"Key":         d.Key('a', true),
		"ShowBar":     d.ShowBar("x"),
	} {
		if !errors.Is(err, x11.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if _, err := d.LocalActivity(); !errors.Is(err, x11.ErrClosed) {
		t.Errorf("LocalActivity after Close = %v, want ErrClosed", err)
	}
}

func TestLocalActivity(t *testing.T) {
	display, d := open(t)
	// A second client injecting input plays the user at the screen.
	local := openOn(t, display)

	activity := func(want bool, after string) {
		t.Helper()
		got, err := d.LocalActivity()
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("LocalActivity after %s = %v, want %v", after, got, want)
		}
	}
	activity(false, "nothing")
	if err := d.MovePointer(300, 300); err != nil {
		t.Fatal(err)
	}
	activity(false, "Tandem moved the pointer")
	key(t, d, 'a', true)
	if err := d.Button(1, true); err != nil {
		t.Fatal(err)
	}
	activity(false, "Tandem pressed a key and a button")
	key(t, d, 'a', false)
	if err := d.Button(1, false); err != nil {
		t.Fatal(err)
	}
	press(t, d, 'A') // with Shift around it
	activity(false, "Tandem typed")

	if err := local.MovePointer(600, 400); err != nil {
		t.Fatal(err)
	}
	activity(true, "the local user moved the pointer")
	activity(false, "no input since")
	key(t, local, 'b', true)
	activity(true, "the local user pressed a key")
	activity(true, "the local user holds the key")
	key(t, local, 'b', false)
	activity(false, "the local user let go")
	if err := local.Button(3, true); err != nil {
		t.Fatal(err)
	}
	activity(true, "the local user pressed a button")
	if err := local.Button(3, false); err != nil {
		t.Fatal(err)
	}
	if err := d.MovePointer(10, 10); err != nil {
		t.Fatal(err)
	}
	activity(false, "Tandem moved the pointer again")
}

// The Display is used from several goroutines at once: the agent's
// control, its activity poll and its annotations, with a Grabber beside.
func TestConcurrentUse(t *testing.T) {
	display, d := open(t)
	tw := x11test.NewTestWindow(t, display, 0, 0, x11test.Width, x11test.Height)
	g := newGrabber(t, d)
	done := make(chan error, 4)
	run := func(f func(i int) error) {
		go func() {
			for i := range 100 {
				if err := f(i); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	run(func(i int) error { return d.MovePointer(100+i, 100+i) })
	run(func(i int) error { _, err := d.LocalActivity(); return err })
	run(func(i int) error {
		if i%10 == 0 {
			return d.ShowBar("Tandem")
		}
		return d.ShowMark(i*7, i*5)
	})
	run(func(i int) error {
		ks := uint32('a' + i%26)
		if i%3 == 0 {
			ks = x11test.Keysym('é')
		}
		if err := d.Key(ks, true); err != nil {
			return err
		}
		return d.Key(ks, false)
	})
	for range 100 {
		if _, _, err := g.Grab(false); err != nil {
			t.Fatal(err)
		}
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 5*time.Second, "100 characters typed", func() bool { return len([]rune(tw.Text())) == 100 })
}
