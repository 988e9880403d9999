package x11

import (
	"errors"
	"fmt"
	"math"

	"github.com/jezek/xgb/shape"
	"github.com/jezek/xgb/xproto"
)

// inkWidth is how thick a helper's strokes are drawn, in pixels.
const inkWidth = 4

// maxInkRects bounds what one stroke segment adds to the ink's shape; a
// longer segment is drawn with squares further apart.
const maxInkRects = 512

// DrawStroke extends the helper's stroke id to (x, y), in screen pixels:
// a red line from its last point, or a dot where it starts. Strokes are
// drawn on one override-redirect window the size of the screen whose
// shape is the ink itself, so everything else shows through and clicks
// go to the windows below. Without SHAPE it returns errors.ErrUnsupported
// (the mark still points).
func (d *Display) DrawStroke(id int, x, y int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if !d.shapeOK {
		return fmt.Errorf("x11: strokes: %w: no SHAPE extension", errors.ErrUnsupported)
	}
	x = min(max(x, 0), d.width-1)
	y = min(max(y, 0), d.height-1)
	if d.ink == nil {
		o, err := d.createOverlayLocked(0, 0, d.width, d.height, 0, xproto.EventMaskVisibilityChange)
		if err != nil {
			return err
		}
		// Nothing of it shows until a stroke is drawn.
		if err := shape.RectanglesChecked(d.conn, shape.SoSet, shape.SkBounding, xproto.ClipOrderingUnsorted, o.win, 0, 0, nil).Check(); err != nil {
			xproto.DestroyWindow(d.conn, o.win)
			return fmt.Errorf("x11: ink shape: %w", err)
		}
		d.ink = o
		d.inkLast, d.inkTail = map[int][2]int{}, map[int][2]int{}
	}
	from, ok := d.inkLast[id]
	if !ok {
		from = [2]int{x, y}
		d.inkTail[id] = from
	}
	d.inkLast[id] = [2]int{x, y}
	if t := d.inkTail[id]; hypot(x-t[0], y-t[1]) > arrowReach {
		d.inkTail[id] = from // the point a head would point away from
	}
	rects := segment(from[0], from[1], x, y)
	if err := shape.RectanglesChecked(d.conn, shape.SoUnion, shape.SkBounding, xproto.ClipOrderingUnsorted, d.ink.win, 0, 0, rects).Check(); err != nil {
		return fmt.Errorf("x11: draw stroke: %w", err)
	}
	if err := d.mapOverlayLocked(d.ink); err != nil {
		return err
	}
	return d.restackLocked()
}

// Arrow heads.
const (
	arrowHead  = 18 // length of each side of the head, in pixels
	arrowReach = 30 // how far back along the stroke the head's direction is taken
)

// EndStroke ends the helper's stroke id; with arrow, a head is drawn at
// its last point, pointing the way the stroke went there. A stroke id
// used again later starts a new stroke.
func (d *Display) EndStroke(id int, arrow bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if d.ink == nil {
		return nil
	}
	end, ok := d.inkLast[id]
	tail := d.inkTail[id]
	delete(d.inkLast, id)
	delete(d.inkTail, id)
	dx, dy := float64(end[0]-tail[0]), float64(end[1]-tail[1])
	n := math.Hypot(dx, dy)
	if !ok || !arrow || n < 1 {
		return nil
	}
	// Two sides, 30° either way off the way back along the stroke.
	var rects []xproto.Rectangle
	for _, a := range []float64{math.Pi / 6, -math.Pi / 6} {
		bx, by := -dx/n, -dy/n
		sx := bx*math.Cos(a) - by*math.Sin(a)
		sy := bx*math.Sin(a) + by*math.Cos(a)
		x1 := min(max(end[0]+int(math.Round(sx*arrowHead)), 0), d.width-1)
		y1 := min(max(end[1]+int(math.Round(sy*arrowHead)), 0), d.height-1)
		rects = append(rects, segment(end[0], end[1], x1, y1)...)
	}
	if err := shape.RectanglesChecked(d.conn, shape.SoUnion, shape.SkBounding, xproto.ClipOrderingUnsorted, d.ink.win, 0, 0, rects).Check(); err != nil {
		return fmt.Errorf("x11: draw arrow head: %w", err)
	}
	return nil
}

func hypot(dx, dy int) float64 { return math.Hypot(float64(dx), float64(dy)) }

// ClearStrokes removes every stroke. Clearing none does nothing.
func (d *Display) ClearStrokes() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if d.ink == nil {
		return nil
	}
	clear(d.inkLast)
	clear(d.inkTail)
	if err := d.unmapOverlayLocked(d.ink); err != nil {
		return err
	}
	if err := shape.RectanglesChecked(d.conn, shape.SoSet, shape.SkBounding, xproto.ClipOrderingUnsorted, d.ink.win, 0, 0, nil).Check(); err != nil {
		return fmt.Errorf("x11: clear strokes: %w", err)
	}
	return nil
}

// InkWindow is the strokes' window, 0 before the first stroke; for tests.
func (d *Display) InkWindow() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ink == nil {
		return 0
	}
	return uint32(d.ink.win)
}

// segment covers the line from (x0, y0) to (x1, y1) with inkWidth squares.
func segment(x0, y0, x1, y1 int) []xproto.Rectangle {
	dx, dy := x1-x0, y1-y0
	n := max(abs(dx), abs(dy)) / (inkWidth / 2)
	step := 1
	if n > maxInkRects {
		step = (n + maxInkRects - 1) / maxInkRects
	}
	rects := make([]xproto.Rectangle, 0, n/step+2)
	for i := 0; i <= n; i += step {
		x, y := x0, y0
		if n > 0 {
			x, y = x0+dx*i/n, y0+dy*i/n
		}
		rects = append(rects, xproto.Rectangle{X: int16(x - inkWidth/2), Y: int16(y - inkWidth/2), Width: inkWidth, Height: inkWidth})
	}
	if n > 0 && n%step != 0 {
		rects = append(rects, xproto.Rectangle{X: int16(x1 - inkWidth/2), Y: int16(y1 - inkWidth/2), Width: inkWidth, Height: inkWidth})
	}
	return rects
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
