package agent

import (
	"context"
	"errors"
	"image"
	"log/slog"

	"github.com/tandemcall/tandem/internal/agent/portal"
)

// portalDesktop is a Wayland desktop through its XDG desktop portal. The
// compositor asked the person at the machine before it started and shows
// its own sharing indicator; it has no place for Tandem's bar or mark,
// and it does not tell the portal's own input from the person's, so
// local input cannot be detected here (the compositor arbitrates).
type portalDesktop struct {
	*portal.Session
}

var _ Desktop = (*portalDesktop)(nil)

// restoreTokenFile is where the portal's restore token is kept.
const restoreTokenFile = "portal-restore-token"

func openPortal(ctx context.Context, cfg Config, log *slog.Logger) (*portalDesktop, error) {
	s, err := portal.Open(ctx, portal.Options{
		Persist:   cfg.Unattended.Enabled,
		TokenFile: stateFile(cfg, restoreTokenFile),
		Logger:    log,
	})
	if err != nil {
		return nil, err
	}
	return &portalDesktop{Session: s}, nil
}

func (d *portalDesktop) Grab(bool) (Frame, bool, error) {
	pix, w, h, changed, err := d.Session.Grab()
	if err != nil {
		return Frame{}, false, err
	}
	return Frame{Width: w, Height: h, Stride: w * 4, Pix: pix}, changed, nil
}

// Monitors is nil: the person chose what to share in the portal's dialog.
func (d *portalDesktop) Monitors() []image.Rectangle { return nil }

func (d *portalDesktop) LocalActivity() (bool, error)   { return false, errors.ErrUnsupported }
func (d *portalDesktop) ShowBar(string) error           { return errors.ErrUnsupported }
func (d *portalDesktop) HideBar() error                 { return errors.ErrUnsupported }
func (d *portalDesktop) ShowMark(int, int) error        { return errors.ErrUnsupported }
func (d *portalDesktop) HideMark() error                { return errors.ErrUnsupported }
func (d *portalDesktop) DrawStroke(int, int, int) error { return errors.ErrUnsupported }
func (d *portalDesktop) ClearStrokes() error            { return errors.ErrUnsupported }
func (d *portalDesktop) EndStroke(int, bool) error      { return errors.ErrUnsupported }

// SetClipboard and Copies: the portal's Clipboard interface, which shares
// a RemoteDesktop session's clipboard, came after xdg-desktop-portal 1.16
// (Debian 12's); Tandem does not speak it yet.
func (d *portalDesktop) SetClipboard(string) error           { return errors.ErrUnsupported }
func (d *portalDesktop) Copies() (<-chan string, <-chan int) { return nil, nil }
