package portaltest

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/tandemcall/tandem/internal/agent/portal"
)

// Hand is the person at the machine: it sees the screen and uses the
// pointer through mutter's own remote desktop API
// (org.gnome.Mutter.RemoteDesktop and .ScreenCast, which the portal's
// GNOME backend uses too, without a dialog). It answers the portal's
// dialog as a person would.
type Hand struct {
	conn   *dbus.Conn
	rd     dbus.BusObject
	stream dbus.ObjectPath
	screen *portal.Stream
	dir    string
}

// NewHand opens a mutter remote desktop session on the monitor; it ends
// with the test.
func (d *Desktop) NewHand() *Hand {
	t := d.t
	h, err := newHand()
	if err != nil {
		t.Fatalf("portaltest: %v", err)
	}
	h.dir = t.TempDir()
	t.Cleanup(h.close)
	return h
}

func newHand() (h *Hand, err error) {
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		return nil, err
	}
	h = &Hand{conn: conn}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	var rdPath dbus.ObjectPath
	if err := conn.Object("org.gnome.Mutter.RemoteDesktop", "/org/gnome/Mutter/RemoteDesktop").
		Call("org.gnome.Mutter.RemoteDesktop.CreateSession", 0).Store(&rdPath); err != nil {
		return nil, fmt.Errorf("mutter RemoteDesktop.CreateSession: %w", err)
	}
	h.rd = conn.Object("org.gnome.Mutter.RemoteDesktop", rdPath)
	id, err := h.rd.GetProperty("org.gnome.Mutter.RemoteDesktop.Session.SessionId")
	if err != nil {
		return nil, err
	}
	var scPath dbus.ObjectPath
	if err := conn.Object("org.gnome.Mutter.ScreenCast", "/org/gnome/Mutter/ScreenCast").
		Call("org.gnome.Mutter.ScreenCast.CreateSession", 0, map[string]dbus.Variant{"remote-desktop-session-id": id}).Store(&scPath); err != nil {
		return nil, fmt.Errorf("mutter ScreenCast.CreateSession: %w", err)
	}
	// cursor-mode 0: the pointer is not drawn into the pictures.
	if err := conn.Object("org.gnome.Mutter.ScreenCast", scPath).Call("org.gnome.Mutter.ScreenCast.Session.RecordMonitor", 0,
		"Meta-0", map[string]dbus.Variant{"cursor-mode": dbus.MakeVariant(uint32(0))}).Store(&h.stream); err != nil {
		return nil, fmt.Errorf("mutter RecordMonitor: %w", err)
	}
	match := []dbus.MatchOption{dbus.WithMatchObjectPath(h.stream), dbus.WithMatchMember("PipeWireStreamAdded")}
	if err := conn.AddMatchSignal(match...); err != nil {
		return nil, err
	}
	sigs := make(chan *dbus.Signal, 4)
	conn.Signal(sigs)
	defer conn.RemoveSignal(sigs)
	if err := h.rd.Call("org.gnome.Mutter.RemoteDesktop.Session.Start", 0).Err; err != nil {
		return nil, fmt.Errorf("mutter remote desktop Start: %w", err)
	}
	var node uint32
	timeout := time.After(10 * time.Second)
	for node == 0 {
		select {
		case s := <-sigs:
			if s.Path == h.stream && len(s.Body) == 1 {
				node, _ = s.Body[0].(uint32)
			}
		case <-timeout:
			return nil, errors.New("mutter sent no PipeWireStreamAdded")
		}
	}
	if h.screen, err = portal.OpenStream(-1, node); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := h.screen.WaitFirst(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *Hand) close() {
	if h.screen != nil {
		_ = h.screen.Close()
	}
	if h.rd != nil {
		_ = h.rd.Call("org.gnome.Mutter.RemoteDesktop.Session.Stop", 0).Err
	}
	_ = h.conn.Close()
}

// Screen returns the monitor's latest picture.
func (h *Hand) Screen() (*image.RGBA, error) {
	pix, w, hh, _, err := h.screen.Latest()
	if err != nil {
		return nil, err
	}
	return ToRGBA(pix, w, hh, w*4), nil
}

// ToRGBA converts BGRx pixels to an image.
func ToRGBA(pix []byte, w, h, stride int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			o := y*stride + x*4
			img.SetRGBA(x, y, color.RGBA{R: pix[o+2], G: pix[o+1], B: pix[o], A: 255})
		}
	}
	return img
}

// Click clicks the left button at x, y.
func (h *Hand) Click(x, y int) error {
	call := func(m string, args ...any) error {
		return h.rd.Call("org.gnome.Mutter.RemoteDesktop.Session."+m, 0, args...).Err
	}
	if err := call("NotifyPointerMotionAbsolute", string(h.stream), float64(x), float64(y)); err != nil {
		return err
	}
	time.Sleep(50 * time.Millisecond)
	if err := call("NotifyPointerButton", int32(0x110), true); err != nil {
		return err
	}
	return call("NotifyPointerButton", int32(0x110), false)
}

// save keeps a picture for whoever reads a failure: in
// $TANDEM_PORTALTEST_SHOTS if set (the test's own directory goes at its
// end), else in the test's directory.
func (h *Hand) save(img image.Image, name string) string {
	dir := h.dir
	if d := os.Getenv("TANDEM_PORTALTEST_SHOTS"); d != "" {
		dir = d
		name = time.Now().Format("150405.000-") + name
	}
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	_ = png.Encode(f, img)
	return p
}

// isAccent: the blue of GNOME's suggested-action button and of a switch
// that is on (#3584e4 and lighter shades of it).
func isAccent(c color.RGBA) bool {
	return c.B > 200 && c.R < 140 && c.G > 100 && c.G < 190
}

// accentBox returns the bounding box of the accent-coloured pixels in r.
func accentBox(img *image.RGBA, r image.Rectangle) (image.Rectangle, int) {
	box, n := image.Rectangle{}, 0
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if isAccent(img.RGBAAt(x, y)) {
				n++
				box = box.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return box, n
}

// Where the portal's dialog has what, relative to its Share button
// (xdg-desktop-portal-gnome 43, 1280×720, scale 1): Cancel mirrors Share
// across the dialog's centre, and the "Allow remote interaction" switch
// is this far below and left of Share's centre.
var switchFromShare = image.Pt(-23, 199)

// AnswerDialog answers the portal's "Remote desktop" dialog: allow ticks
// "Allow remote interaction" and presses Share; otherwise it presses
// Cancel. It finds the dialog by its Share button, the one blue button
// in the dialog's title bar, checks that the switch turned blue, and
// waits for the dialog to go.
func (h *Hand) AnswerDialog(ctx context.Context, allow bool) error {
	share, err := h.waitShare(ctx)
	if err != nil {
		return err
	}
	c := share.Min.Add(share.Max).Div(2)
	if allow {
		if err := h.switchOn(ctx, c.Add(switchFromShare)); err != nil {
			return err
		}
	} else {
		c.X = Width - c.X // Cancel
	}
	// Press the button until the dialog goes: a click can come while the
	// dialog is still busy.
	for {
		if err := h.Click(c.X, c.Y); err != nil {
			return err
		}
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			img, err := h.Screen()
			if err != nil {
				return err
			}
			if _, n := accentBox(img, share); n < 100 {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("the dialog stayed after it was answered (screen: %s)", h.save(img, "dialog.png"))
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// switchOn turns the "Allow remote interaction" switch at sw on: it
// clicks it and waits for it to turn blue and stay so, and clicks again
// only if it never did.
func (h *Hand) switchOn(ctx context.Context, sw image.Point) error {
	isOn := func() (bool, error) {
		img, err := h.Screen()
		if err != nil {
			return false, err
		}
		_, n := accentBox(img, image.Rect(sw.X-30, sw.Y-15, sw.X+30, sw.Y+15))
		return n > 100, nil
	}
	for try := 0; try < 2; try++ {
		if err := h.Click(sw.X, sw.Y); err != nil {
			return err
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			on, err := isOn()
			if err != nil {
				return err
			}
			if on {
				// Still on a moment later: not a frame of an animation.
				time.Sleep(300 * time.Millisecond)
				if on, err = isOn(); on || err != nil {
					return err
				}
			}
			select {
			case <-ctx.Done():
				deadline = time.Now()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	img, _ := h.Screen()
	return fmt.Errorf("the dialog's remote interaction switch at %v did not turn on (screen: %s)", sw, h.save(img, "dialog.png"))
}

// waitShare waits for the dialog and returns its Share button, once it
// stays in one place: mutter animates a window that appears.
func (h *Hand) waitShare(ctx context.Context) (image.Rectangle, error) {
	var last image.Rectangle
	for {
		img, err := h.Screen()
		if err != nil {
			return image.Rectangle{}, err
		}
		box, found := shareButton(img)
		if found && box == last {
			return box, nil
		}
		last = box
		select {
		case <-ctx.Done():
			return image.Rectangle{}, fmt.Errorf("no portal dialog on the screen (screen: %s)", h.save(img, "nodialog.png"))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// shareButton finds the dialog's Share button: the topmost blue in the
// upper right quarter of the screen (the switch, once on, is blue too).
func shareButton(img *image.RGBA) (image.Rectangle, bool) {
	top, n := accentBox(img, image.Rect(Width/2, 0, Width, Height/2))
	if n == 0 {
		return image.Rectangle{}, false
	}
	box, n := accentBox(img, image.Rect(Width/2, top.Min.Y, Width, top.Min.Y+45))
	return box, n > 500 && box.Dx() > 40 && box.Dy() > 20
}
