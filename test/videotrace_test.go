package test

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/tandemcall/tandem/internal/client"
)

// videoTrace records, second by second, what a subscriber receives of one
// publisher's video: the payload bit rate and the widths of the keyframes
// (which tell the simulcast layer). It goes in the log, so that a failure
// shows how the layer choice moved.
type videoTrace struct {
	from  string
	start time.Time

	mu        sync.Mutex
	secs      []traceSecond
	keys      []traceKey
	width     int       // of the last keyframe
	changedAt time.Time // when width last changed
}

type traceKey struct {
	at    time.Time
	width int
}

type traceSecond struct {
	bytes  int
	widths []int
}

func newVideoTrace(from string) *videoTrace {
	return &videoTrace{from: from, start: time.Now()}
}

// onRTP is a client.MediaOptions.OnRTP.
func (v *videoTrace) onRTP(tr client.RemoteTrack, p *rtp.Packet, at time.Time) {
	if tr.Kind != "video" || tr.StreamID != v.from {
		return
	}
	i := int(at.Sub(v.start) / time.Second)
	if i < 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for len(v.secs) <= i {
		v.secs = append(v.secs, traceSecond{})
	}
	v.secs[i].bytes += len(p.Payload)
	if w, _, ok := client.VP8KeyframeSize(p.Payload); ok {
		v.secs[i].widths = append(v.secs[i].widths, w)
		v.keys = append(v.keys, traceKey{at, w})
		if w != v.width {
			v.width, v.changedAt = w, at
		}
	}
}

// layer returns the width of the last keyframe and how long ago the width
// last changed (0 before any keyframe).
func (v *videoTrace) layer() (width int, since time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.width == 0 {
		return 0, 0
	}
	return v.width, time.Since(v.changedAt)
}

// widest returns the largest keyframe width received since t.
func (v *videoTrace) widest(t time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	w := 0
	for _, k := range v.keys {
		if !k.at.Before(t) {
			w = max(w, k.width)
		}
	}
	return w
}

// String lists each second: kbit/s and, after @, the keyframe widths.
func (v *videoTrace) String() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var b strings.Builder
	for i, s := range v.secs {
		fmt.Fprintf(&b, " %ds:%dk", i, s.bytes*8/1000)
		for _, w := range s.widths {
			fmt.Fprintf(&b, "@%d", w)
		}
	}
	return strings.TrimSpace(b.String())
}
