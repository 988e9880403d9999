package test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/agent"
	"github.com/tandemcall/tandem/internal/agent/portal"
	"github.com/tandemcall/tandem/internal/agent/portal/portaltest"
	"github.com/tandemcall/tandem/internal/agent/vpx"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
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

// windowOrigin finds the test window on the screen as the person at the
// machine sees it.
func windowOrigin(t *testing.T, hand *portaltest.Hand, win *portaltest.Window) image.Point {
	t.Helper()
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var img *image.RGBA
		if img, err = hand.Screen(); err == nil {
			var o image.Point
			if o, err = findWindow(img, win.Size()); err == nil {
				return o
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the test window is not on the screen: %v", err)
	return image.Point{}
}

// TestAgentWayland: Mom's computer runs the agent on a GNOME desktop on
// Wayland, through the desktop's portal. Bob calls; the agent answers,
// and the desktop asks Mom in its own dialog: she says no, and the call
// is declined. Bob calls again and she says yes, with remote
// interaction; she allows Bob to see and control. He decodes the window's
// colours where they are, his click lands where he aimed and his text is
// typed. When she stops the help, nothing more arrives.
func TestAgentWayland(t *testing.T) {
	d := portaltest.Run(t)
	if d == nil {
		return // it ran inside the desktop
	}
	win := d.StartWindow()
	hand := d.NewHand()
	origin := windowOrigin(t, hand, win)
	ts := startServer(t, nil)

	consent := &scriptedConsent{asked: make(chan []string, 4)}
	consent.set(protocol.AssistView, protocol.AssistControl)
	a := agent.New(agent.Config{
		URL: ts.wsURL(), Token: ts.token(t, "mom", "desktop"), Desktop: agent.DesktopPortal, StateDir: t.TempDir(),
		FPS: 15, Logger: clientLogger(t),
	}, consent)
	runAgent(t, a)
	ctx := testCtx(t, 50*time.Second)
	answer := func(allow bool) chan error {
		done := make(chan error, 1)
		go func() { done <- hand.AnswerDialog(ctx, allow) }()
		return done
	}

	// No in the desktop's dialog: the call is declined.
	bob := ts.dial(t, "bob", "phone")
	answered := answer(false)
	var id string
	testkit.Eventually(t, 10*time.Second, "the agent signed in, ringing", func() bool {
		var err error
		id, err = bob.Invite(ctx, "mom", false)
		return err == nil
	})
	if err := <-answered; err != nil {
		t.Fatalf("answering the desktop's dialog: %v", err)
	}
	if e := ended(t, bob, id); e.Reason != protocol.ReasonDeclined {
		t.Errorf("after Mom said no in the desktop's dialog the call ended with %q, want declined", e.Reason)
	}

	// Yes: the call is answered.
	answered = answer(true)
	id, err := bob.Invite(ctx, "mom", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-answered; err != nil {
		t.Fatalf("answering the desktop's dialog: %v", err)
	}
	waitType(t, bob, func(m *protocol.Accepted) bool { return m.CallID == id })
	var screen vp8Frames
	bobMedia, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, Assist: true, OnRTP: screen.onRTP})
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.Assist(ctx, id, "mom", protocol.AssistControl); err != nil {
		t.Fatal(err)
	}
	<-consent.asked
	waitType(t, bob, func(m *protocol.AssistState) bool { return slices.Contains(m.Granted, protocol.AssistControl) })

	// Bob sees her screen: each of the window's colours where it is.
	testkit.Eventually(t, 20*time.Second, "Bob receiving screen frames", func() bool { return screen.count() > 3 })
	dec, err := vpx.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	size := win.Size()
	quadrants := []struct {
		at  image.Point
		rgb uint32
	}{
		{image.Pt(size.X/4, size.Y/4), portaltest.Red},
		{image.Pt(size.X*3/4, size.Y/4), portaltest.Green},
		{image.Pt(size.X/4, size.Y*3/4), portaltest.Blue},
		{image.Pt(size.X*3/4, size.Y*3/4), portaltest.Yellow},
	}
	testkit.Eventually(t, 10*time.Second, "Bob seeing the window's colours where they are", func() bool {
		img := screen.latest(t, dec)
		if b := img.Bounds(); b.Dx() != portaltest.Width || b.Dy() != portaltest.Height {
			t.Fatalf("Bob's picture is %v, want the whole %dx%d screen", b, portaltest.Width, portaltest.Height)
		}
		for _, q := range quadrants {
			if !near(img, origin.Add(q.at), q.rgb, 40) {
				return false
			}
		}
		return true
	})

	// His click lands where he aimed, his text is typed.
	norm := func(p image.Point) (uint16, uint16) {
		return uint16(p.X * 65535 / (portaltest.Width - 1)), uint16(p.Y * 65535 / (portaltest.Height - 1))
	}
	aim := image.Pt(size.X*3/4, size.Y*3/4)
	x, y := norm(origin.Add(aim))
	click := clickEvents(x, y)
	mark := win.Mark()
	if err := bobMedia.SendAssist(ctx, append(slices.Clone(click), typeEvents("Hello 1!")...)...); err != nil {
		t.Fatal(err)
	}
	line := win.WaitFor(mark, "Bob's click", func(l string) bool { return strings.HasPrefix(l, "BUTTON 1 ") })
	var bx, by int
	if _, err := fmt.Sscanf(line, "BUTTON 1 %d %d", &bx, &by); err != nil || abs(bx-aim.X) > 2 || abs(by-aim.Y) > 2 {
		t.Errorf("Bob's click landed at %q, he aimed at %v", line, aim)
	}
	testkit.Eventually(t, 5*time.Second, "Bob's text typed", func() bool { return win.Typed(mark) == "Hello 1!" })

	// She stops the help: nothing more arrives.
	a.StopHelp()
	waitType(t, bob, func(m *protocol.AssistState) bool { return !m.Active })
	mark = win.Mark()
	_ = bobMedia.SendAssist(ctx, append(slices.Clone(click), typeEvents("late")...)...)
	time.Sleep(time.Second)
	if got := win.Since(mark); len(got) > 0 {
		t.Errorf("after she stopped the help the window received %q", got)
	}
	if err := bob.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
}
