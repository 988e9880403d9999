package x11

import (
	"image"
	"testing"
)

func TestMergeRects(t *testing.T) {
	r := image.Rect
	many := make([]image.Rectangle, 0, 40)
	for i := range 40 {
		many = append(many, r(i*30, 0, i*30+1, 1))
	}
	tests := []struct {
		name string
		in   []image.Rectangle
		want []image.Rectangle
	}{
		{"none", nil, nil},
		{"one", []image.Rectangle{r(1, 2, 3, 4)}, []image.Rectangle{r(1, 2, 3, 4)}},
		{"far apart stay apart",
			[]image.Rectangle{r(0, 0, 10, 10), r(1000, 500, 1010, 510)},
			[]image.Rectangle{r(0, 0, 10, 10), r(1000, 500, 1010, 510)}},
		{"bands of one text line merge",
			[]image.Rectangle{r(100, 100, 108, 101), r(100, 101, 140, 112), r(130, 112, 140, 113)},
			[]image.Rectangle{r(100, 100, 140, 113)}},
		{"overlapping merge",
			[]image.Rectangle{r(0, 0, 100, 100), r(50, 50, 120, 120)},
			[]image.Rectangle{r(0, 0, 120, 120)}},
		{"too many: bounding box", many, []image.Rectangle{r(0, 0, 39*30+1, 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mergeRects(append([]image.Rectangle(nil), tt.in...))
			if len(got) != len(tt.want) {
				t.Fatalf("mergeRects(%v) = %v, want %v", tt.in, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("mergeRects(%v) = %v, want %v", tt.in, got, tt.want)
				}
			}
		})
	}
}

func TestMergeRectsBoundsCount(t *testing.T) {
	// maxRegionRects rectangles far apart: merged down to maxDirtyRects,
	// still covering every one.
	var in []image.Rectangle
	for i := range maxRegionRects {
		x, y := i%8*160, i/8*180
		in = append(in, image.Rect(x, y, x+4, y+4))
	}
	got := mergeRects(append([]image.Rectangle(nil), in...))
	if len(got) > maxDirtyRects {
		t.Fatalf("%d rectangles, want at most %d", len(got), maxDirtyRects)
	}
	for _, r := range in {
		covered := false
		for _, g := range got {
			covered = covered || r.In(g)
		}
		if !covered {
			t.Fatalf("%v not covered by %v", r, got)
		}
	}
}
