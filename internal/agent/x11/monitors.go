package x11

import (
	"image"

	"github.com/jezek/xgb/xinerama"
)

// Monitors lists the monitors the screen spans, in screen pixels, in the
// X server's order (Xinerama's, which a RandR server fills from its
// CRTCs). A screen the server does not divide (no Xinerama, or one
// monitor) is one monitor, the whole screen.
func (d *Display) Monitors() []image.Rectangle {
	d.mu.Lock()
	defer d.mu.Unlock()
	whole := []image.Rectangle{image.Rect(0, 0, d.width, d.height)}
	if d.closed || !d.xineramaOK {
		return whole
	}
	r, err := xinerama.QueryScreens(d.conn).Reply()
	if err != nil || len(r.ScreenInfo) < 2 {
		return whole
	}
	ms := make([]image.Rectangle, 0, len(r.ScreenInfo))
	for _, s := range r.ScreenInfo {
		m := image.Rect(int(s.XOrg), int(s.YOrg), int(s.XOrg)+int(s.Width), int(s.YOrg)+int(s.Height)).Intersect(whole[0])
		if !m.Empty() {
			ms = append(ms, m)
		}
	}
	if len(ms) < 2 {
		return whole
	}
	return ms
}
