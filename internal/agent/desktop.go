package agent

import (
	"context"
	"errors"
	"image"
	"os"
)

// Desktop is the screen and input devices a session shares: an X11
// display, or a Wayland desktop through its portal. The session's capture
// goroutine calls Grab while its input goroutine calls the rest; Close
// comes after both have ended.
type Desktop interface {
	// Size is the size of the pictures Grab returns: it changes when the
	// person changes the screen's resolution.
	Size() (w, h int)
	// Grab returns the screen as BGRx pixels and whether it changed since
	// the last Grab; full asks for the whole screen to be read again.
	// The frame is valid until the next Grab. After the screen changed
	// size, Grab returns pictures of the new size.
	Grab(full bool) (f Frame, changed bool, err error)
	// Monitors lists the monitors the screen spans, in the pixels of
	// Grab's pictures; nil where the desktop gives one picture of what
	// the person chose to share (the portal's dialog).
	Monitors() []image.Rectangle

	// MovePointer, Button, Wheel and Key apply remote input: positions
	// in pixels of Grab's pictures, buttons 1 (left), 2 (middle), 3
	// (right), the wheel in 1/120 of a notch, keys as X11 keysyms.
	MovePointer(x, y int) error
	Button(button uint8, down bool) error
	Wheel(dx, dy int) error
	Key(keysym uint32, down bool) error
	// ReleaseAll lets go of every key and button Tandem holds.
	ReleaseAll() error

	// LocalActivity reports whether the person at the machine used the
	// pointer or keyboard since the last call, or errors.ErrUnsupported
	// where the desktop cannot tell.
	LocalActivity() (bool, error)
	// ShowBar, HideBar, ShowMark and HideMark draw Tandem's red bar and
	// the helper's pointer mark, or return errors.ErrUnsupported where
	// the desktop shows its own sharing indicator instead.
	ShowBar(text string) error
	HideBar() error
	ShowMark(x, y int) error
	HideMark() error
	// DrawStroke extends the helper's stroke id to (x, y); ClearStrokes
	// removes every stroke. errors.ErrUnsupported where the desktop has
	// no way to draw over other windows.
	DrawStroke(id, x, y int) error
	// EndStroke ends stroke id, with an arrow head at its end if arrow.
	EndStroke(id int, arrow bool) error
	ClearStrokes() error

	// SetClipboard puts text on the desktop's clipboard for the person at
	// the machine to paste; Copies reports the text they copy, and the
	// size of copies too large to pass on. Where the desktop's clipboard
	// is out of Tandem's reach, SetClipboard returns
	// errors.ErrUnsupported and Copies nil channels.
	SetClipboard(text string) error
	Copies() (texts <-chan string, tooLarge <-chan int)

	// Ended is closed when the desktop ends the sharing by itself; nil
	// if it never does.
	Ended() <-chan struct{}
	Close() error
}

// Frame is a picture of the screen: Height rows of Width pixels, 4 bytes
// each in the order blue, green, red, unused, row y starting at
// Pix[y*Stride].
type Frame struct {
	Width, Height, Stride int
	Pix                   []byte
}

// Desktop kinds, for Config.Desktop.
const (
	DesktopX11    = "x11"
	DesktopPortal = "portal"
)

// ChooseDesktop picks the desktop kind for this session: the portal on a
// Wayland session unless an X display was asked for, X11 otherwise.
// getenv is os.Getenv or a test's.
func ChooseDesktop(display string, getenv func(string) string) string {
	if display == "" && (getenv("XDG_SESSION_TYPE") == "wayland" || getenv("WAYLAND_DISPLAY") != "") {
		return DesktopPortal
	}
	return DesktopX11
}

// openDesktop opens the desktop the configuration names.
func (a *Agent) openDesktop(ctx context.Context) (Desktop, error) {
	if a.cfg.Desktop == DesktopPortal {
		return openPortal(ctx, a.cfg, a.log)
	}
	return openX11(a.cfg.Display)
}

// unsupported reports whether err says the desktop cannot do something.
func unsupported(err error) bool { return errors.Is(err, errors.ErrUnsupported) }

// stateFile is a file in the agent's state directory: StateDir, or
// $XDG_STATE_HOME/tandem, or ~/.local/state/tandem.
func stateFile(cfg Config, name string) string {
	dir := cfg.StateDir
	if dir == "" {
		if d := os.Getenv("XDG_STATE_HOME"); d != "" {
			dir = d + "/tandem"
		} else if h, err := os.UserHomeDir(); err == nil {
			dir = h + "/.local/state/tandem"
		} else {
			return ""
		}
	}
	return dir + "/" + name
}
