package x11

import "image"

// How changed rectangles are merged before they are read: each one read
// costs a request and a copy, each pixel read needlessly a little memory
// bandwidth.
const (
	maxDirtyRects  = 8       // at most this many reads per grab
	mergeSlack     = 64 * 64 // merge two rectangles if it adds at most this many unchanged pixels
	maxRegionRects = 32      // above this many, read the bounding box
)

// mergeRects merges rectangles (which may overlap) into at most
// maxDirtyRects that cover them all, merging the pair that adds the fewest
// unchanged pixels first. It reuses rs's storage.
func mergeRects(rs []image.Rectangle) []image.Rectangle {
	if len(rs) > maxRegionRects {
		u := rs[0]
		for _, r := range rs[1:] {
			u = u.Union(r)
		}
		return append(rs[:0], u)
	}
	for len(rs) > 1 {
		bi, bj, best := 0, 0, -1
		for i := range rs {
			for j := i + 1; j < len(rs); j++ {
				if w := mergeWaste(rs[i], rs[j]); best < 0 || w < best {
					bi, bj, best = i, j, w
				}
			}
		}
		if best > mergeSlack && len(rs) <= maxDirtyRects {
			break
		}
		rs[bi] = rs[bi].Union(rs[bj])
		rs = append(rs[:bj], rs[bj+1:]...)
	}
	return rs
}

// mergeWaste is how many pixels the union of a and b covers that neither
// does.
func mergeWaste(a, b image.Rectangle) int {
	return area(a.Union(b)) - area(a) - area(b) + area(a.Intersect(b))
}

func area(r image.Rectangle) int { return r.Dx() * r.Dy() }
