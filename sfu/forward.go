package sfu

import (
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/rtpcodec"
)

// keyframeInterval is the minimum time between two keyframe requests sent to
// a publisher for one layer.
const keyframeInterval = 500 * time.Millisecond

// audioLevelURI is the RFC 6464 header extension browsers put on audio.
const audioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// layer is one encoding of a published track: the only one, or one
// simulcast layer (one RTP stream, named by its rid).
type layer struct {
	ft     *forwardTrack
	idx    int8 // position in ft.layers, fixed for the track's life
	rid    string
	remote *webrtc.TrackRemote
	ssrc   uint32
	cache  *packetCache // video only: answers subscribers' NACKs
	rx     rxStats      // reception, for receiver reports and NACKs

	isKeyframe func(payload []byte) (key bool, width, height int)

	width, height atomic.Int32  // from the last VP8 keyframe; 0 = unknown
	bytes         atomic.Uint64 // received; the ticker turns it into a rate
	rate          atomic.Int64  // bit/s over the last measurement, 0 while paused
	lastRate      atomic.Int64  // the last non-zero rate

	lastKeyframeReq atomic.Int64 // unix nanoseconds
	firstAt         int64        // monotime of its first packet; fixed

	// The last keyframe seen (video): its RTP timestamp, and its first
	// packet's sequence number with the millisecond it came (monotime),
	// packed as ms<<16 | seq; 0 = none yet. A subscriber starting shortly
	// after it is sent it from the cache (startFromCache) rather than
	// waiting for a new one.
	keyTs  atomic.Uint32
	keyRef atomic.Uint64
}

// noteKeyframe records a packet that starts a keyframe. A keyframe may
// mark more than one of its packets (H.264's parameter sets, then the
// picture): the first of its timestamp is its start.
func (l *layer) noteKeyframe(seq uint16, ts uint32, now int64) {
	if ref := l.keyRef.Load(); ref != 0 && l.keyTs.Load() == ts {
		return
	}
	l.keyTs.Store(ts)
	l.keyRef.Store(uint64(now/int64(time.Millisecond))<<16 | uint64(seq) | 1<<63)
}

// lastKeyframe returns the first sequence number of the last keyframe and
// how long ago it came; ok is false before any.
func (l *layer) lastKeyframe(now int64) (seq uint16, age time.Duration, ok bool) {
	ref := l.keyRef.Load()
	if ref == 0 {
		return 0, 0, false
	}
	at := int64(ref&^(1<<63)>>16) * int64(time.Millisecond)
	return uint16(ref), time.Duration(now - at), true
}

// nominalRate is what a layer is assumed to cost before it has been
// measured (it may be paused at the publisher): browsers' usual simulcast
// bitrates by rank, lowest first.
func nominalRate(rank, layers int) int64 {
	switch {
	case layers == 1:
		return 800_000
	case rank == 0:
		return 150_000
	case rank == layers-1:
		return 1_500_000
	default:
		return 500_000
	}
}

// forwardTrack is one track a publisher sends to the SFU (with one layer,
// or several when simulcast), with the subscribers it is forwarded to.
type forwardTrack struct {
	publisher *Participant
	receiver  *webrtc.RTPReceiver
	kind      webrtc.RTPCodecType
	codec     webrtc.RTPCodecCapability
	id        string // track id seen by subscribers
	log       *slog.Logger
	levelExt  uint8 // header extension id of the audio level, 0 = none
	screen    bool  // a screen share (a=content:slides), gated by assistance
	vp8       bool  // VP8: its descriptor's picture numbering is continued across switches

	// downs and layers are copy-on-write snapshots read by the forwarding
	// loops without locks; mu serializes writers.
	mu     sync.Mutex
	downs  atomic.Pointer[[]*downTrack]
	layers atomic.Pointer[[]*layer]
	// order is the layers from lowest to highest quality, recomputed by
	// the ticker as sizes and rates become known.
	order atomic.Pointer[[]*layer]

	// Audio level over the current speaker interval (see speaker.go).
	levelPackets, levelActive, levelSum atomic.Uint64

	// Publisher-side pausing, owned by the ticker.
	active      map[string]bool      // what the publisher was last told
	unwatchedAt map[string]time.Time // since when nobody receives a layer
}

func newForwardTrack(p *Participant, remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver, id string) *forwardTrack {
	ft := &forwardTrack{
		publisher: p,
		receiver:  receiver,
		kind:      remote.Kind(),
		codec:     remote.Codec().RTPCodecCapability,
		id:        id,
		log:       p.log.With("track", id, "codec", remote.Codec().MimeType),
	}
	ft.vp8 = strings.EqualFold(ft.codec.MimeType, webrtc.MimeTypeVP8)
	if ft.kind == webrtc.RTPCodecTypeAudio {
		for _, e := range receiver.GetParameters().HeaderExtensions {
			if e.URI == audioLevelURI {
				ft.levelExt = uint8(e.ID)
			}
		}
	}
	ft.downs.Store(&[]*downTrack{})
	ft.layers.Store(&[]*layer{})
	ft.order.Store(&[]*layer{})
	return ft
}

// addLayer adds one received RTP stream of the track.
func (ft *forwardTrack) addLayer(remote *webrtc.TrackRemote) *layer {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	old := *ft.layers.Load()
	l := &layer{ft: ft, idx: int8(len(old)), rid: remote.RID(), remote: remote, ssrc: uint32(remote.SSRC()),
		isKeyframe: keyframeReader(ft.codec.MimeType), firstAt: monotime()}
	l.rx.clock = remote.Codec().ClockRate
	if ft.kind == webrtc.RTPCodecTypeVideo {
		l.cache = &packetCache{}
	}
	next := append(append(make([]*layer, 0, len(old)+1), old...), l)
	ft.layers.Store(&next)
	ft.reorderLocked()
	// Subscribers waiting for a layer (the first one, or a track with one
	// layer) aim at this one until the allocator decides.
	now := monotime()
	for _, d := range *ft.downs.Load() {
		switch {
		case d.adopt.Load() != nil && d.track() == ft:
			d.setTarget(d.adoptTarget(ft, now)) // perhaps the layer it waits for
		case d.target.Load() == nil && !d.hidden.Load():
			d.setTarget(ft.lowest())
		}
	}
	return l
}

// reorderLocked sorts the layers by known frame width, then by measured
// rate, then by the usual rid names, lowest quality first.
func (ft *forwardTrack) reorderLocked() {
	ls := append([]*layer(nil), *ft.layers.Load()...)
	sort.SliceStable(ls, func(i, j int) bool {
		a, b := ls[i], ls[j]
		if wa, wb := a.width.Load(), b.width.Load(); wa != 0 && wb != 0 && wa != wb {
			return wa < wb
		}
		if ra, rb := a.lastRate.Load(), b.lastRate.Load(); ra != 0 && rb != 0 && (ra > 2*rb || rb > 2*ra) {
			return ra < rb
		}
		return ridRank(a.rid) < ridRank(b.rid)
	})
	ft.order.Store(&ls)
}

// ridRank orders the rid names browsers and WHIP clients commonly use.
func ridRank(rid string) int {
	switch rid {
	case "q", "l", "low", "0":
		return 0
	case "h", "m", "mid", "1":
		return 1
	case "f", "high", "2":
		return 2
	}
	return 1
}

// lowest returns the lowest-quality layer, or nil before any arrived.
func (ft *forwardTrack) lowest() *layer {
	if o := *ft.order.Load(); len(o) > 0 {
		return o[0]
	}
	return nil
}

// highest returns the highest-quality layer, or nil before any arrived.
func (ft *forwardTrack) highest() *layer {
	if o := *ft.order.Load(); len(o) > 0 {
		return o[len(o)-1]
	}
	return nil
}

// isScreen reports whether the track is a further video track of its
// publisher (a screen share): it is served first when bandwidth is short.
func (ft *forwardTrack) isScreen() bool {
	return ft.kind == webrtc.RTPCodecTypeVideo && ft.id != "video"
}

// addDown creates a forwarded copy of the track for sub and adds it to the
// snapshot.
func (ft *forwardTrack) addDown(sub *Participant) (*downTrack, error) {
	d := newDownTrack(ft, sub)
	ft.mu.Lock()
	defer ft.mu.Unlock()
	d.setTarget(ft.lowest())
	if v := sub.viewFor(ft); v != nil {
		d.applyView(*v)
	}
	old := *ft.downs.Load()
	next := make([]*downTrack, 0, len(old)+1)
	next = append(next, old...)
	next = append(next, d)
	ft.downs.Store(&next)
	return d, nil
}

// removeDowns removes the forwarded copies for which drop returns true and
// returns them.
// hasDown reports whether ft is forwarded to sub.
func (ft *forwardTrack) hasDown(sub *Participant) bool {
	for _, d := range *ft.downs.Load() {
		if d.sub == sub {
			return true
		}
	}
	return false
}

func (ft *forwardTrack) removeDowns(drop func(*downTrack) bool) []*downTrack {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	old := *ft.downs.Load()
	var removed []*downTrack
	next := make([]*downTrack, 0, len(old))
	for _, d := range old {
		if drop(d) {
			removed = append(removed, d)
		} else {
			next = append(next, d)
		}
	}
	ft.downs.Store(&next)
	return removed
}

// readLoop reads RTP of one layer from the publisher and fans it out until
// the stream or its PeerConnection ends. With direct input (srtpin.go) most
// packets skip it; it still gets what pion keeps: packets from before
// direct input started and retransmissions unwrapped from RTX.
func (ft *forwardTrack) readLoop(l *layer) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	out := &rtp.Header{} // reused for every subscriber's header
	for {
		n, _, err := l.remote.Read(buf)
		if err != nil {
			ft.log.Debug("layer read ended", "rid", l.rid, "err", err)
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		now := monotime()
		l.rx.note(pkt.SequenceNumber, pkt.Timestamp, now)
		if fb := ft.publisher.fb; fb != nil {
			// Direct input records transport-wide CC for what it leaves
			// to pion; before it starts, or without it, this path does.
			fb.onPacket(&pkt.Header, l, now, ft.publisher.in.Load() == nil)
		}
		ft.handle(l, &pkt, buf[:n], out)
	}
}

// handle takes one received packet of layer l (raw is its plain RTP) and
// fans it out; out is the caller's scratch header.
func (ft *forwardTrack) handle(l *layer, pkt *rtp.Packet, raw []byte, out *rtp.Header) {
	n := len(raw)
	ft.publisher.stats.kind(ft.kind).received(n)
	l.bytes.Add(uint64(n))
	video := ft.kind == webrtc.RTPCodecTypeVideo
	key := !video // any audio packet is a place to start
	if video {
		l.cache.put(pkt.SequenceNumber, raw)
		var w, h int
		if key, w, h = l.isKeyframe(pkt.Payload); key {
			l.noteKeyframe(pkt.SequenceNumber, pkt.Timestamp, monotime())
		}
		if key && w > 0 {
			if int32(w) != l.width.Swap(int32(w)) {
				l.height.Store(int32(h))
				ft.mu.Lock()
				ft.reorderLocked()
				ft.mu.Unlock()
			}
		}
	} else {
		if !ft.publisher.room.audioAllowed(ft.publisher.id) {
			ft.publisher.stats.audio.floor.Add(1)
			return // push-to-talk: not the floor holder
		}
		if ft.levelExt != 0 {
			ft.noteLevel(pkt)
		}
	}
	ft.fanout(l, pkt, key, n, out)
}

// fanout writes one packet of layer l to every subscriber in the current
// snapshot; out is the caller's scratch header.
// The writes are corked: they leave in one sendmmsg after the loop, which
// saves a system call per subscriber.
func (ft *forwardTrack) fanout(l *layer, pkt *rtp.Packet, key bool, size int, out *rtp.Header) {
	now := monotime()
	downs := *ft.downs.Load()
	var nums *rtpcodec.VP8Numbers
	var n rtpcodec.VP8Numbers
	if ft.vp8 {
		var ok bool
		if n, ok = rtpcodec.ParseVP8Numbers(pkt.Payload); ok {
			nums = &n
		}
	}
	var c corker
	if r := ft.publisher.room; r != nil && len(downs) > 1 {
		c = r.sfu.cork
	}
	if c != nil {
		c.Cork()
	}
	for _, d := range downs {
		d.write(l, pkt, nums, key, size, now, out)
	}
	if c != nil {
		c.Uncork()
	}
}

// rtcpLoop drains RTCP from the publisher for one layer (sender reports
// feed the receiver reports) until the receiver stops.
func (ft *forwardTrack) rtcpLoop(l *layer) {
	buf := make([]byte, 1500)
	for {
		var n int
		var err error
		if l.rid != "" {
			n, _, err = ft.receiver.ReadSimulcast(buf, l.rid)
		} else {
			n, _, err = ft.receiver.Read(buf)
		}
		if err != nil {
			return
		}
		// Sender reports give direct input's receiver reports their LSR.
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == l.ssrc {
				l.rx.senderReport(sr.NTPTime, monotime())
			}
		}
	}
}

// requestKeyframe sends a PLI for one layer to its publisher, at most once
// per keyframeInterval per layer.
func (ft *forwardTrack) requestKeyframe(l *layer) { ft.requestKeyframeWithin(l, keyframeInterval) }

// startKeyframeInterval is the least time between a keyframe request and
// one for a subscriber whose connection just came up: it has nothing to
// show until the keyframe, so it need not wait out keyframeInterval behind
// a request made for somebody else.
const startKeyframeInterval = 100 * time.Millisecond

// requestKeyframeWithin is requestKeyframe with its own least interval.
func (ft *forwardTrack) requestKeyframeWithin(l *layer, interval time.Duration) {
	if ft.kind != webrtc.RTPCodecTypeVideo || l == nil || ft.publisher.pub == nil {
		return // audio, nothing to ask for, or no PeerConnection (unit tests)
	}
	now := time.Now().UnixNano()
	last := l.lastKeyframeReq.Load()
	if now-last < int64(interval) || !l.lastKeyframeReq.CompareAndSwap(last, now) {
		return
	}
	pli := &rtcp.PictureLossIndication{MediaSSRC: l.ssrc}
	if err := ft.publisher.pub.pc.WriteRTCP([]rtcp.Packet{pli}); err != nil {
		ft.log.Debug("keyframe request failed", "err", err)
		return
	}
	ft.publisher.stats.kind(ft.kind).keyframeRequests.Add(1)
	ft.log.Debug("keyframe requested", "rid", l.rid)
}

// monoBase anchors monotime.
var monoBase = time.Now()

// monotime returns monotonic nanoseconds, cheap enough for every packet.
func monotime() int64 { return int64(time.Since(monoBase)) }
