package client

import (
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/tandemcall/tandem/internal/rtpcodec"
)

// What a person watching a remote track would notice, measured on the
// receiving side: packets lost, gaps between packets (audio), and for VP8
// video which frames a decoder could show. The synthetic payloads cannot
// be decoded, so a small playout model stands in for the decoder: frames
// play in order; a frame is shown once all its packets are there, if every
// frame since the last keyframe was shown; while packets are missing the
// picture freezes. The model gives a frame up when a complete keyframe
// after it has arrived, or after frameWait, and then conceals (freezes)
// until the next keyframe. It sends no PLI of its own, so what it shows
// is what retransmissions (NACK) recover.

// frameWait is how long the model waits for a frame's missing packets
// before giving it up: as long as "sub" keeps asking for a lost packet (a
// NACK every 100 ms, maxNACKsPerPacket times). Browsers wait longer still
// (libwebrtc up to 3 s) before asking for a keyframe; the wait shows as a
// freeze either way.
const frameWait = time.Second

// TrackQuality is what arrived on one remote track since the Media started
// or since ResetQuality.
type TrackQuality struct {
	Track RemoteTrack

	// PacketsReceived counts distinct packets (padding included); for
	// video, only those that arrived before their frame was given up.
	// PacketsExpected is the count the sequence numbers imply. Audio is
	// never retransmitted, so its loss is the link's; video loss is what
	// NACK did not repair in time.
	PacketsReceived uint64
	PacketsExpected uint64
	// PacketsLate counts video packets that arrived after their frame
	// was given up, or twice.
	PacketsLate uint64
	// LongestGap is the longest time between two packets arriving in a
	// row. It includes stalls anywhere on the way (publisher, SFU, this
	// machine's scheduler), not only the link's losses.
	LongestGap time.Duration
	// LongestMediaGap is the longest stretch of media time (by RTP
	// timestamps) between two packets received in sequence: 20 ms for
	// unbroken 20 ms audio, 20 ms more per packet lost in a row. For
	// audio, less one packet, it is the longest stretch the decoder's
	// loss concealment (Opus PLC, or FEC where the sender adds it) fills.
	LongestMediaGap time.Duration

	// Video only, counted by the playout model.
	// FramesDecoded counts frames a decoder would show: complete in time,
	// with every frame they depend on shown.
	FramesDecoded uint64
	// FramesDropped counts frames never shown for missing packets: given
	// up after frameWait, or skipped for a later keyframe that arrived
	// complete. Frames of which nothing arrived count as one per gap.
	FramesDropped uint64
	// FramesUndecodable counts complete frames that depend on a dropped
	// one and came before the next keyframe: a decoder conceals them.
	FramesUndecodable uint64
	// KeyframesDecoded counts the keyframes among FramesDecoded.
	KeyframesDecoded uint64
	// LongestFreeze is the longest time between two decoded frames,
	// including the time since the last one.
	LongestFreeze time.Duration
	// Width and Height are the picture size in the last decoded keyframe.
	Width, Height int
}

// PacketsLost is PacketsExpected − PacketsReceived.
func (q TrackQuality) PacketsLost() uint64 {
	if q.PacketsReceived >= q.PacketsExpected {
		return 0
	}
	return q.PacketsExpected - q.PacketsReceived
}

// LossFraction is PacketsLost / PacketsExpected, 0 when nothing was expected.
func (q TrackQuality) LossFraction() float64 {
	if q.PacketsExpected == 0 {
		return 0
	}
	return float64(q.PacketsLost()) / float64(q.PacketsExpected)
}

// Quality returns the quality of every remote track, in order of arrival.
func (m *Media) Quality() []TrackQuality {
	m.mu.Lock()
	trackers := append([]*trackQuality(nil), m.quality...)
	m.mu.Unlock()
	now := time.Now()
	out := make([]TrackQuality, len(trackers))
	for i, tq := range trackers {
		out[i] = tq.snapshot(now)
	}
	return out
}

// ResetQuality zeroes every track's quality counters and peaks, so that
// Quality covers what arrives from now on; the playout model keeps its
// state (a frame in progress, a broken reference chain).
func (m *Media) ResetQuality() {
	m.mu.Lock()
	trackers := append([]*trackQuality(nil), m.quality...)
	m.mu.Unlock()
	now := time.Now()
	for _, tq := range trackers {
		tq.reset(now)
	}
}

// trackQuality measures one remote track; observe runs on the track's
// reader, snapshot and reset on the caller's goroutine.
type trackQuality struct {
	mu          sync.Mutex
	video       bool
	clockRate   uint32 // RTP timestamp units per second; 0 if unknown
	q           TrackQuality
	seq         seqUnwrapper
	highest     uint64 // highest extended sequence number seen
	highestTS   uint32 // RTP timestamp of that packet
	lastArrival time.Time
	lastDecoded time.Time // video: when the last frame was shown
	playout     videoPlayout
}

func newTrackQuality(rt RemoteTrack, clockRate uint32) *trackQuality {
	return &trackQuality{
		video:     rt.Kind == "video",
		clockRate: clockRate,
		q:         TrackQuality{Track: rt},
		playout:   videoPlayout{pending: make(map[uint64]videoPacket)},
	}
}

// observe takes one media packet and the time it was read.
func (tq *trackQuality) observe(p *rtp.Packet, at time.Time) {
	tq.mu.Lock()
	defer tq.mu.Unlock()
	first := !tq.seq.started
	ext := tq.seq.unwrap(p.SequenceNumber)
	switch {
	case first:
		tq.q.PacketsExpected++
		tq.highest, tq.highestTS = ext, p.Timestamp
	case ext > tq.highest:
		tq.q.PacketsExpected += ext - tq.highest
		if d := int32(p.Timestamp - tq.highestTS); d > 0 && tq.clockRate > 0 {
			gap := time.Duration(int64(d) * int64(time.Second) / int64(tq.clockRate))
			tq.q.LongestMediaGap = max(tq.q.LongestMediaGap, gap)
		}
		tq.highest, tq.highestTS = ext, p.Timestamp
	}
	if !tq.lastArrival.IsZero() {
		tq.q.LongestGap = max(tq.q.LongestGap, at.Sub(tq.lastArrival))
	}
	tq.lastArrival = at
	if !tq.video {
		tq.q.PacketsReceived++
		return
	}
	tq.playout.add(tq, ext, p, at)
}

// decoded records a frame shown at time at.
func (tq *trackQuality) decoded(f videoPacket, at time.Time) {
	tq.q.FramesDecoded++
	if f.key {
		tq.q.KeyframesDecoded++
		tq.q.Width, tq.q.Height = f.width, f.height
	}
	if !tq.lastDecoded.IsZero() {
		tq.q.LongestFreeze = max(tq.q.LongestFreeze, at.Sub(tq.lastDecoded))
	}
	tq.lastDecoded = at
}

func (tq *trackQuality) snapshot(now time.Time) TrackQuality {
	tq.mu.Lock()
	defer tq.mu.Unlock()
	q := tq.q
	if tq.video && !tq.lastDecoded.IsZero() {
		q.LongestFreeze = max(q.LongestFreeze, now.Sub(tq.lastDecoded))
	}
	return q
}

// reset starts a new measurement at now; a freeze or gap in progress
// counts from now on.
func (tq *trackQuality) reset(now time.Time) {
	tq.mu.Lock()
	defer tq.mu.Unlock()
	tq.q = TrackQuality{Track: tq.q.Track, Width: tq.q.Width, Height: tq.q.Height}
	if !tq.lastArrival.IsZero() {
		tq.lastArrival = now
	}
	if !tq.lastDecoded.IsZero() {
		tq.lastDecoded = now
	}
}

// seqUnwrapper extends 16-bit RTP sequence numbers to 64 bits. It starts
// far from zero so that packets a little older than the first one still
// get a smaller number.
type seqUnwrapper struct {
	started bool
	last    uint64
}

func (u *seqUnwrapper) unwrap(seq uint16) uint64 {
	if !u.started {
		u.started = true
		u.last = 1<<32 + uint64(seq)
		return u.last
	}
	ext := uint64(int64(u.last) + int64(int16(seq-uint16(u.last))))
	u.last = max(u.last, ext)
	return ext
}

// videoPacket is what the playout model keeps of a video packet.
type videoPacket struct {
	ts            uint32
	filler        bool // padding only: holds a sequence number, no frame
	start         bool // first packet of a frame
	marker        bool // last packet of a frame
	key           bool // starts a keyframe
	width, height int  // keyframes only
	at            time.Time
}

// videoPlayout is a minimal jitter buffer: packets wait in pending until
// the frame at next is complete, or until frameWait passes and the model
// gives the frame up.
type videoPlayout struct {
	started bool
	next    uint64                 // extended sequence number played out next
	pending map[uint64]videoPacket // arrived, not yet played out
	broken  bool                   // no keyframe yet, or a frame dropped since the last one
}

func (v *videoPlayout) add(tq *trackQuality, ext uint64, p *rtp.Packet, at time.Time) {
	vp := videoPacket{ts: p.Timestamp, marker: p.Marker, filler: len(p.Payload) == 0, at: at}
	vp.start, vp.key, vp.width, vp.height = parseVP8(p.Payload)
	if !v.started {
		tq.q.PacketsReceived++
		if !vp.start {
			return // the middle of a frame: wait for the next one to begin
		}
		v.started, v.next, v.broken = true, ext, true
	} else {
		if _, dup := v.pending[ext]; dup || ext < v.next {
			tq.q.PacketsLate++
			return
		}
		tq.q.PacketsReceived++
	}
	v.pending[ext] = vp
	for len(v.pending) > 0 {
		if v.playFrame(tq, at) {
			continue
		}
		// A decoder skips to a complete keyframe at once: it needs
		// nothing before it.
		if key, ok := v.completeKeyframe(); ok {
			v.dropUntil(tq, key)
			continue
		}
		if at.Sub(v.oldest()) < frameWait {
			return
		}
		resume, ok := v.nextFrameStart()
		if !ok {
			return
		}
		v.dropUntil(tq, resume)
	}
}

// frameEnd returns the last sequence number of the frame starting at s if
// all its packets are there.
func (v *videoPlayout) frameEnd(s uint64) (uint64, bool) {
	head, ok := v.pending[s]
	if !ok || !head.start {
		return 0, false
	}
	for end := s; ; end++ {
		p, ok := v.pending[end]
		if !ok || p.ts != head.ts {
			return 0, false
		}
		if p.marker {
			return end, true
		}
	}
}

// playFrame plays out the frame starting at next if all of it is there.
func (v *videoPlayout) playFrame(tq *trackQuality, at time.Time) bool {
	head, ok := v.pending[v.next]
	if ok && head.filler {
		delete(v.pending, v.next)
		v.next++
		return true
	}
	end, ok := v.frameEnd(v.next)
	if !ok {
		return false
	}
	for s := v.next; s <= end; s++ {
		delete(v.pending, s)
	}
	v.next = end + 1
	if head.key {
		v.broken = false
	}
	if v.broken {
		tq.q.FramesUndecodable++
	} else {
		tq.decoded(head, at)
	}
	return true
}

// completeKeyframe returns the start of the first complete keyframe
// waiting behind the head.
func (v *videoPlayout) completeKeyframe() (uint64, bool) {
	var first uint64
	found := false
	for s, p := range v.pending {
		if s > v.next && p.key && (!found || s < first) {
			if _, ok := v.frameEnd(s); ok {
				first, found = s, true
			}
		}
	}
	return first, found
}

// oldest returns the earliest arrival among the waiting packets: how long
// the head frame has held playout up.
func (v *videoPlayout) oldest() time.Time {
	var t time.Time
	for _, p := range v.pending {
		if t.IsZero() || p.at.Before(t) {
			t = p.at
		}
	}
	return t
}

// nextFrameStart returns the start of the first frame after the head
// frame that has begun to arrive.
func (v *videoPlayout) nextFrameStart() (uint64, bool) {
	head, headKnown := v.pending[v.next]
	var resume uint64
	found := false
	for s, p := range v.pending {
		if s > v.next && p.start && (!headKnown || p.ts != head.ts) && (!found || s < resume) {
			resume, found = s, true
		}
	}
	return resume, found
}

// dropUntil gives up the incomplete frames before sequence number resume
// and breaks the reference chain: a decoder conceals until a keyframe.
func (v *videoPlayout) dropUntil(tq *trackQuality, resume uint64) {
	frames := map[uint32]bool{}
	for s, p := range v.pending {
		if s < resume {
			if !p.filler {
				frames[p.ts] = true
			}
			delete(v.pending, s)
		}
	}
	tq.q.FramesDropped += uint64(max(1, len(frames)))
	v.next, v.broken = resume, true
}

// VP8KeyframeSize returns the picture size in a VP8 RTP payload that
// starts a keyframe; ok is false for any other payload.
func VP8KeyframeSize(payload []byte) (width, height int, ok bool) {
	start, key, w, h := parseVP8(payload)
	return w, h, start && key && w > 0
}

// parseVP8 reads a VP8 RTP payload: whether it starts a frame (S bit,
// partition 0), whether that frame is a keyframe, and a keyframe's size
// (RFC 6386 §9.1: 3-byte frame tag, start code 9d 01 2a, 14-bit width and
// height).
func parseVP8(payload []byte) (start, key bool, width, height int) {
	v := rtpcodec.ParseVP8(payload)
	return v.Start, v.Key, v.Width, v.Height
}
