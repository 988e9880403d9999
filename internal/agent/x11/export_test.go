package x11

// Hooks for the tests of package x11_test.

// NewGrabberNoSHM opens a Grabber that reads with core GetImage, as it
// does when MIT-SHM is unavailable.
func NewGrabberNoSHM(d *Display) (*Grabber, error) { return newGrabber(d.name, false) }

// UsesSHM reports whether g reads through shared memory.
func (g *Grabber) UsesSHM() bool { return g.shmBuf != nil }

// BarWindow and MarkWindow are the overlay windows' ids, 0 before the
// first ShowBar or ShowMark.
func (d *Display) BarWindow() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bar == nil {
		return 0
	}
	return uint32(d.bar.win)
}

func (d *Display) MarkWindow() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mark == nil {
		return 0
	}
	return uint32(d.mark.win)
}
