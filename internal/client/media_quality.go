package client

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/pion/rtp"
)

// What a person watching a remote track would notice, measured on the
// receiving side: packets lost, gaps between packets (audio), and for VP8
// video which frames a decoder could show. The synthetic payloads cannot
// be decoded, so a small playout model stands in for the decoder: a frame
// is shown when all its packets arrived within playoutDelay and every
// frame since the last keyframe was shown; otherwise a real decoder would
// conceal (freeze) until the next keyframe. The model sends no PLI of its
// own, so what it shows is what retransmissions (NACK) recover.

// playoutDelay is how long the model waits for a frame's missing packets
// before giving up on it: long enough for pion's NACK generator (a NACK
// every 100 ms until the packet arrives) to try about three times, about
// what a browser's jitter buffer waits on a short-RTT link before it
// freezes.
const playoutDelay = 300 * time.Millisecond

// TrackQuality is what arrived on one remote track since the Media started
// or since ResetQuality.
type TrackQuality struct {
	Track RemoteTrack

	// PacketsReceived counts distinct packets (padding included); for
	// video, only those that arrived before their frame was given up. PacketsExpected is
	// the count the sequence numbers imply. Audio is never retransmitted,
	// so its loss is the link's; video loss is what NACK did not repair
	// in time.
	PacketsReceived uint64
	PacketsExpected uint64
	// PacketsLate counts video packets that arrived after their frame
	// was given up, or twice.
	PacketsLate uint64
	// LongestGap is the longest time between two packets arriving in a
	// row: for audio, the longest stretch that packet loss concealment
	// (Opus PLC, FEC) had to fill.
	LongestGap time.Duration

	// Video only, counted by the playout model.
	// FramesDecoded counts frames a decoder would show: complete in time,
	// with every frame they depend on shown.
	FramesDecoded uint64
	// FramesDropped counts frames given up because packets were missing
	// after playoutDelay (at least one per gap, more when packets of
	// several frames were missing).
	FramesDropped uint64
	// FramesUndecodable counts complete frames that depend on a dropped
	// one: a decoder conceals them until the next keyframe.
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
	q           TrackQuality
	seq         seqUnwrapper
	highest     uint64 // highest extended sequence number seen
	lastArrival time.Time
	lastDecoded time.Time // video: when the last frame was shown
	playout     videoPlayout
}

func newTrackQuality(rt RemoteTrack) *trackQuality {
	return &trackQuality{
		video:   rt.Kind == "video",
		q:       TrackQuality{Track: rt},
		playout: videoPlayout{pending: make(map[uint64]videoPacket)},
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
		tq.highest = ext
	case ext > tq.highest:
		tq.q.PacketsExpected += ext - tq.highest
		tq.highest = ext
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
// the frame at next is complete, or until playoutDelay passes and the
// model gives the frame up.
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
		if at.Sub(v.oldest()) < playoutDelay || !v.dropHead(tq) {
			return
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
	if !ok || !head.start {
		return false
	}
	end := v.next
	for {
		p, ok := v.pending[end]
		if !ok || p.ts != head.ts {
			return false
		}
		if p.marker {
			break
		}
		end++
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

// dropHead gives up the incomplete frame at next (and any other incomplete
// frames before the next frame start) and breaks the reference chain. It
// returns false while no later frame has begun to arrive.
func (v *videoPlayout) dropHead(tq *trackQuality) bool {
	head, headKnown := v.pending[v.next]
	var resume uint64
	found := false
	for s, p := range v.pending {
		if s > v.next && p.start && (!headKnown || p.ts != head.ts) && (!found || s < resume) {
			resume, found = s, true
		}
	}
	if !found {
		return false
	}
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
	return true
}

// parseVP8 reads a VP8 RTP payload: whether it starts a frame (S bit,
// partition 0), whether that frame is a keyframe, and a keyframe's size
// (RFC 6386 §9.1: 3-byte frame tag, start code 9d 01 2a, 14-bit width and
// height).
func parseVP8(payload []byte) (start, key bool, width, height int) {
	if len(payload) < 1 {
		return false, false, 0, 0
	}
	desc := payload[0]
	start = desc&0x10 != 0 && desc&0x07 == 0
	i := 1
	if desc&0x80 != 0 { // X: extension byte follows
		if len(payload) < 2 {
			return false, false, 0, 0
		}
		ext := payload[1]
		i = 2
		if ext&0x80 != 0 { // I: picture id, 7 or 15 bits
			if len(payload) <= i {
				return false, false, 0, 0
			}
			if payload[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // T or K: TID/KEYIDX byte
			i++
		}
	}
	if !start || len(payload) <= i {
		return start, false, 0, 0
	}
	hdr := payload[i:]
	key = hdr[0]&0x01 == 0
	if key && len(hdr) >= 10 && hdr[3] == 0x9d && hdr[4] == 0x01 && hdr[5] == 0x2a {
		width = int(binary.LittleEndian.Uint16(hdr[6:]) & 0x3fff)
		height = int(binary.LittleEndian.Uint16(hdr[8:]) & 0x3fff)
	}
	return start, key, width, height
}
