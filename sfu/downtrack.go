package sfu

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/rtpcodec"
)

// historySize is how many sent packets a video downTrack remembers, to map
// a subscriber's NACK back to a cached packet of the right layer.
const historySize = 512

// sent is one packet a downTrack sent: its sequence number there, and the
// layer packet it came from.
type sent struct {
	layer    *layer // nil: nothing sent under this number yet
	out, src uint16
	tsOff    uint32
	nums     vp8Offsets
}

// vp8Offsets continue a VP8 stream's picture numbering (picture id,
// TL0PICIDX, KEYIDX) across a switch, as seqOff and tsOff continue its
// sequence numbers and timestamps: a receiver's reference finder sees one
// stream, not a jump it must recover from.
type vp8Offsets struct {
	pic      uint16
	tl0, key uint8
}

func (o vp8Offsets) zero() bool { return o == vp8Offsets{} }

// renumber is what send writes into a VP8 payload's descriptor.
type renumber struct {
	at          rtpcodec.VP8Numbers
	pic         uint16
	tl0, keyIdx uint8
}

func (r *renumber) apply(p []byte) { r.at.Rewrite(p, r.pic, r.tl0, r.keyIdx) }

// renumbered returns the numbers to write into a packet that carries n,
// forwarded with offsets o.
func renumbered(n *rtpcodec.VP8Numbers, o vp8Offsets) renumber {
	return renumber{at: *n, pic: (n.PictureID + o.pic) & 0x7fff, tl0: n.TL0PicIdx + o.tl0, keyIdx: (n.KeyIdx + o.key) & 0x1f}
}

// binding is what pion negotiated for a downTrack on the subscriber's PC.
type binding struct {
	ssrc, rtxSSRC uint32
	pt, rtxPT     uint8
	clock         uint32
	ws            webrtc.TrackLocalWriter
}

// downTrack is the copy of a forwardTrack sent to one subscriber. It is its
// own TrackLocal: it writes straight to the negotiated stream with its own
// SSRC, and rewrites sequence numbers and timestamps so that switching
// between simulcast layers (always at a keyframe) looks to the subscriber's
// decoder like one continuous stream.
type downTrack struct {
	// ft is the track forwarded, which a handoff changes to the same
	// track published by the user's new device (handoff.go); id, streamID
	// and kind are what the subscriber was told and never change.
	ft       atomic.Pointer[forwardTrack]
	id       string
	streamID string
	kind     webrtc.RTPCodecType
	sub      *Participant

	b      atomic.Pointer[binding]
	target atomic.Pointer[layer] // what the allocator wants; nil = nothing
	cur    atomic.Pointer[layer] // what is being forwarded now
	hidden atomic.Bool           // the subscriber shows no tile for it
	// adopt, while a handoff moves d to a new leg's track, is the quality
	// it waits for there (handoff.go); the allocator leaves d alone.
	adopt atomic.Pointer[adoptWant]

	needKeyframe atomic.Bool // request a keyframe once the subscriber can receive
	cacheTried   atomic.Bool // startFromCache had its one try

	// Tile size the subscriber shows this track at (0 = not told).
	viewW, viewH atomic.Int32

	// mu guards the rewriting state. It is held for a few assignments per
	// packet, never while writing to the network.
	mu       sync.Mutex
	started  bool
	seqOff   uint16
	tsOff    uint32
	lastSeq  uint16
	lastTs   uint32
	lastWall int64  // monotime of the packet that set lastTs
	firstSrc uint16 // source sequence number of the current layer's first packet
	// switchSeq is the outgoing sequence number of the keyframe the last
	// switch of layers started at (switched: there was one). Packets
	// before it belong to a layer the subscriber has left.
	switchSeq uint16
	switched  bool
	rtxSeq    uint16
	history   []sent // video only
	// VP8 numbering: the offsets in use and the last numbers sent.
	nums     vp8Offsets
	lastNums vp8Offsets // picture id, TL0PICIDX and KEYIDX as sent
	numbered bool       // lastNums holds a packet's numbers

	packets, octets atomic.Uint64 // sent, for sender reports and rates

	// Direct SRTP output (srtpout.go); wmu serializes the forwarding loop
	// and NACK answers on the context and the scratch buffers.
	wmu     sync.Mutex
	enc     *srtp.Context
	encOut  *srtpOut
	plain   []byte
	cipher  []byte
	pkt     rtp.Packet // scratch, so that encrypting a packet allocates nothing
	copyBuf []byte     // scratch for a renumbered payload on pion's path

	// From the subscriber's receiver reports and REMB.
	fractionLost atomic.Uint32 // /256
	jitter       atomic.Uint32 // in clock units
	rttMicros    atomic.Int64
	srSent       srLog
}

var _ webrtc.TrackLocal = (*downTrack)(nil)

func newDownTrack(ft *forwardTrack, sub *Participant) *downTrack {
	d := &downTrack{id: ft.id, streamID: ft.publisher.streamID, kind: ft.kind, sub: sub}
	d.ft.Store(ft)
	if ft.kind == webrtc.RTPCodecTypeVideo {
		d.history = make([]sent, historySize)
		d.needKeyframe.Store(true)
	}
	return d
}

// ID implements webrtc.TrackLocal.
func (d *downTrack) ID() string { return d.id }

// track returns the forwardTrack d copies now.
func (d *downTrack) track() *forwardTrack { return d.ft.Load() }

// RID implements webrtc.TrackLocal: subscribers get one stream per track.
func (d *downTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal.
func (d *downTrack) StreamID() string { return d.streamID }

// Kind implements webrtc.TrackLocal.
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.kind }

var errNoCodec = errors.New("sfu: subscriber accepts none of the publisher's codec")

// Bind is called by pion when the track is negotiated on the subscriber's
// PC: it picks the payload types of the publisher's codec and its RTX.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codecs := ctx.CodecParameters()
	ft := d.track()
	var codec *webrtc.RTPCodecParameters
	for i := range codecs {
		c := &codecs[i]
		if !strings.EqualFold(c.MimeType, ft.codec.MimeType) {
			continue
		}
		if codec == nil || c.SDPFmtpLine == ft.codec.SDPFmtpLine {
			codec = c
		}
	}
	if codec == nil {
		return webrtc.RTPCodecParameters{}, errNoCodec
	}
	b := &binding{ssrc: uint32(ctx.SSRC()), pt: uint8(codec.PayloadType), clock: codec.ClockRate, ws: ctx.WriteStream()}
	if rtx := uint32(ctx.SSRCRetransmission()); rtx != 0 {
		apt := "apt=" + itoa(int(codec.PayloadType))
		for _, c := range codecs {
			if strings.EqualFold(c.MimeType, webrtc.MimeTypeRTX) && c.SDPFmtpLine == apt {
				b.rtxSSRC, b.rtxPT = rtx, uint8(c.PayloadType)
			}
		}
	}
	if b.clock == 0 {
		b.clock = 90000
	}
	d.b.Store(b)
	if t := d.target.Load(); t != nil && d.kind == webrtc.RTPCodecTypeVideo {
		// The subscriber's connection comes up shortly: a keyframe asked
		// for now is in the cache by then (startFromCache), where one
		// asked for then would still be on its way.
		t.ft.requestKeyframeWithin(t, startKeyframeInterval)
	}
	return *codec, nil
}

// Unbind is called by pion when the track is removed or the PC closes.
func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.b.Store(nil)
	return nil
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// setTarget sets the layer the allocator wants forwarded (nil = none). The
// switch itself happens at the new layer's next keyframe, which is asked for
// here.
func (d *downTrack) setTarget(l *layer) {
	// Not before the subscriber can receive: Bind asked for the keyframe
	// it starts from, and its first packets ask again if that is gone.
	if old := d.target.Swap(l); old != l && l != nil && d.cur.Load() != l && d.b.Load() != nil && d.sub.subUp.Load() {
		l.ft.requestKeyframe(l)
	}
}

// write forwards one packet of layer l, if l is the layer being forwarded
// or the target layer starting at a keyframe. nums is the packet's VP8
// numbering (nil: none, or not VP8). hdr is scratch space owned by the
// calling read loop. It never blocks beyond a UDP send.
func (d *downTrack) write(l *layer, pkt *rtp.Packet, nums *rtpcodec.VP8Numbers, key bool, size int, now int64, hdr *rtp.Header) {
	b := d.b.Load()
	if b == nil {
		return
	}
	target := d.target.Load()
	if target == nil {
		d.cur.Store(nil) // paused: the next start waits for a keyframe
		if l.idx == 0 {
			d.sub.stats.kind(d.kind).paused.Add(1) // the lowest layer's: one per frame's packet, not per layer
		}
		return
	}
	if d.cur.Load() == nil && !d.sub.subUp.Load() {
		// The subscriber cannot receive yet. Starting now would spend the
		// keyframe on a transport that drops it, and leave the picture
		// waiting for the next one: the start waits for the connection,
		// which asks for a keyframe (subscribe.go).
		return
	}
	if w := d.adopt.Load(); w != nil && target == w.from && l.ft == d.track() {
		// Moving to a user's new device and still on the old one: a
		// packet of the new one may make one of its layers good enough.
		if t := d.adoptTarget(l.ft, now); t != target && t != nil {
			d.setTarget(t)
			target = t
		}
	}
	if target == l && !key && d.cur.Load() == nil && d.kind == webrtc.RTPCodecTypeVideo {
		// Starting: the layer's last keyframe, if recent and still
		// cached, goes out now with what followed it, and this packet
		// continues them.
		d.startFromCache(l, pkt, now, b)
	}
	if d.cur.Load() != l && (target != l || !key) {
		if target == l && d.kind == webrtc.RTPCodecTypeVideo {
			// Waiting to start or switch: make sure a keyframe is
			// coming (rate-limited per layer), whatever became of the
			// request made when the layer was chosen.
			if d.cur.Load() == nil {
				d.sub.stats.video.keyframeWait.Add(1) // nothing shown meanwhile
			}
			l.ft.requestKeyframe(l)
		}
		return
	}

	d.mu.Lock()
	if d.cur.Load() != l {
		// Start or switch at this keyframe: continue the sequence and the
		// timeline where the previous layer left them.
		if d.started {
			d.seqOff = d.lastSeq + 1 - pkt.SequenceNumber
			d.switchSeq, d.switched = d.lastSeq+1, true
			step := uint32(max(1, (now-d.lastWall)*int64(b.clock)/int64(time.Second)))
			if d.kind == webrtc.RTPCodecTypeAudio {
				// The last packet still plays for a packet time: a new
				// source (another device) starts after it, not inside it,
				// or the receiver drops or overlaps what the two say.
				step = max(step, b.clock/audioPacketsPerSecond)
			} else {
				// A keyframe takes a while to arrive. Stamped a moment
				// after the last packet, it looks to the receiver's
				// bandwidth estimator like a frame that queued for all
				// that while (a delay it reads as congestion, and lowers
				// its estimate for); stamped a frame later, it looks like
				// the keyframe it is.
				step = max(step, b.clock/videoFramesPerSecond)
			}
			d.tsOff = d.lastTs + step - pkt.Timestamp
			if nums != nil && d.numbered {
				d.nums = vp8Offsets{
					pic: d.lastNums.pic + 1 - nums.PictureID,
					tl0: d.lastNums.tl0 + 1 - nums.TL0PicIdx,
					key: d.lastNums.key + 1 - nums.KeyIdx,
				}
			}
		}
		d.firstSrc = pkt.SequenceNumber
		d.cur.Store(l)
		d.sub.stats.video.layerSwitches.Add(1)
	} else if since := int16(pkt.SequenceNumber - d.firstSrc); since < 0 {
		d.mu.Unlock()
		d.sub.stats.kind(d.kind).late.Add(1)
		return // from before the switch: its number belongs to the old layer
	} else if since > switchWindow {
		// Well past the switch: keep the mark a window behind, so that it
		// still tells late packets of the old layer apart once sequence
		// numbers have gone half way round.
		d.firstSrc = pkt.SequenceNumber - switchWindow
	}
	seq := pkt.SequenceNumber + d.seqOff
	ts := pkt.Timestamp + d.tsOff
	var rn *renumber
	var r renumber
	if nums != nil {
		r = renumbered(nums, d.nums)
		if !d.nums.zero() {
			rn = &r
		}
	}
	if !d.started || int16(seq-d.lastSeq) > 0 {
		d.started = true
		d.lastSeq, d.lastTs, d.lastWall = seq, ts, now
		if nums != nil {
			d.lastNums, d.numbered = vp8Offsets{pic: r.pic, tl0: r.tl0, key: r.keyIdx}, true
		}
	}
	if d.history != nil {
		d.history[seq%historySize] = sent{layer: l, out: seq, src: pkt.SequenceNumber, tsOff: d.tsOff, nums: d.nums}
	}
	d.mu.Unlock()

	*hdr = rtp.Header{
		Version: 2, Padding: pkt.Padding, PaddingSize: pkt.PaddingSize, Marker: pkt.Marker,
		PayloadType: b.pt, SequenceNumber: seq, Timestamp: ts, SSRC: b.ssrc, CSRC: pkt.CSRC,
	}
	d.forward(b, hdr, pkt.Payload, rn, size)
}

// forward sends one packet (size bytes as received) and counts it as
// forwarded, or as dropped if the send failed.
func (d *downTrack) forward(b *binding, hdr *rtp.Header, payload []byte, rn *renumber, size int) {
	st := d.sub.stats.kind(d.kind)
	if err := d.send(b, hdr, payload, rn); err != nil {
		st.dropped.Add(1)
		return
	}
	d.packets.Add(1)
	d.octets.Add(uint64(len(payload)))
	st.forwarded(size)
}

// A subscriber's video starts from the cached last keyframe of its layer
// if that came at most cachedStartAge ago and at most cachedStartPackets
// packets stand between it and now; otherwise it waits for a new one.
// The bounds keep the burst small (about the ~100 KB a fresh keyframe and
// a few frames cost anyway) and the picture current.
const (
	cachedStartAge     = time.Second
	cachedStartPackets = 100
)

// startFromCache starts d, which has sent nothing yet, on layer l from
// l's last keyframe: it sends that keyframe and every packet after it up
// to pkt (not included) from the cache, and leaves d on l, so that pkt
// and those after it follow as usual. It does nothing (and d waits for a
// new keyframe) if the keyframe is too old or a packet of it is gone.
//
// The cached frames were captured up to cachedStartAge ago but leave now:
// with their own timestamps the receiver would take the first for on
// time and every later frame for early, and hold the picture back by the
// keyframe's age. They are stamped instead a millisecond apart, ending
// just before pkt's frame: a burst that was late, which the receiver
// decodes and shows at once.
func (d *downTrack) startFromCache(l *layer, pkt *rtp.Packet, now int64, b *binding) {
	if !d.cacheTried.CompareAndSwap(false, true) {
		return // once: the packets after a failed try ask for a keyframe
	}
	first, age, ok := l.lastKeyframe(now)
	n := int(pkt.SequenceNumber - first) // packets before pkt
	if !ok || l.cache == nil || age > cachedStartAge || n <= 0 || n > cachedStartPackets {
		l.ft.log.Debug("no cached start", "sub", d.sub.id, "rid", l.rid, "keyframe", ok, "age", age, "packets", n)
		return
	}
	buf := make([]byte, n*cacheSlotSize)
	pkts := make([]rtp.Packet, n)
	for i := range pkts {
		raw := l.cache.get(first+uint16(i), buf[i*cacheSlotSize:(i+1)*cacheSlotSize])
		if raw == nil || pkts[i].Unmarshal(raw) != nil {
			return // lost, or overwritten since
		}
	}
	if key, _, _ := l.isKeyframe(pkts[0].Payload); !key {
		return
	}
	// New timestamps, frame by frame from the last: a frame that pkt
	// belongs to keeps its own; each earlier one a millisecond before the
	// next.
	stamps := make([]uint32, n)
	step := max(1, b.clock/1000)
	ts, src := pkt.Timestamp, pkt.Timestamp
	for i := n - 1; i >= 0; i-- {
		if t := pkts[i].Timestamp; t != src {
			src, ts = t, ts-step
		}
		stamps[i] = ts
	}

	d.mu.Lock()
	if d.started || d.cur.Load() != nil {
		d.mu.Unlock()
		return // started meanwhile (another reader of the layer)
	}
	d.started = true
	d.firstSrc = first
	d.cur.Store(l)
	for i := range pkts {
		p := &pkts[i]
		d.lastSeq, d.lastTs, d.lastWall = p.SequenceNumber, stamps[i], now
		d.history[p.SequenceNumber%historySize] = sent{layer: l, out: p.SequenceNumber, src: p.SequenceNumber, tsOff: stamps[i] - p.Timestamp}
	}
	d.mu.Unlock()
	l.ft.log.Debug("started from the cached keyframe", "sub", d.sub.id, "rid", l.rid, "age", age, "packets", n)
	st := &d.sub.stats.video
	st.layerSwitches.Add(1)
	st.cachedStarts.Add(1)

	for i := range pkts {
		p := &pkts[i]
		hdr := rtp.Header{
			Version: 2, Padding: p.Padding, PaddingSize: p.PaddingSize, Marker: p.Marker,
			PayloadType: b.pt, SequenceNumber: p.SequenceNumber, Timestamp: stamps[i], SSRC: b.ssrc, CSRC: p.CSRC,
		}
		d.forward(b, &hdr, p.Payload, nil, p.MarshalSize())
	}
}

// audioPacketsPerSecond is the usual audio packet rate (20 ms packets),
// the least a switch between audio sources moves the timeline; a video
// switch moves it at least one frame of videoFramesPerSecond.
const (
	audioPacketsPerSecond = 50
	videoFramesPerSecond  = 30
)

// switchWindow is how far behind the newest packet a packet of the current
// layer may arrive and still be sent; anything older is taken for one of
// the layer before the switch. Far beyond any reordering a network does.
const switchWindow = 4096

// maxDirect is the longest packet direct output encrypts; anything longer
// (which no publisher with a sane MTU sends) takes pion's path.
const maxDirect = 1600

// send writes one RTP packet to the subscriber: encrypted here and written
// to the shared socket when the sub PC has direct output, through pion
// otherwise. rn, if not nil, renumbers the VP8 descriptor of the copy sent;
// payload itself is shared with the other subscribers and left alone.
func (d *downTrack) send(b *binding, hdr *rtp.Header, payload []byte, rn *renumber) error {
	out := d.sub.out.Load()
	var addr *net.UDPAddr
	hsize := hdr.MarshalSize()
	if out != nil {
		addr = out.addr.Load()
	}
	if addr == nil || hsize+len(payload)+int(hdr.PaddingSize) > maxDirect {
		if rn != nil {
			d.wmu.Lock()
			defer d.wmu.Unlock()
			d.copyBuf = append(d.copyBuf[:0], payload...)
			rn.apply(d.copyBuf)
			payload = d.copyBuf
		}
		_, err := b.ws.WriteRTP(hdr, payload)
		return err
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.encOut != out {
		ctx, err := out.newContext()
		if err != nil {
			return err
		}
		d.enc, d.encOut = ctx, out
		if d.plain == nil {
			d.plain = make([]byte, maxDirect)
			d.cipher = make([]byte, maxDirect+srtpOverhead)
		}
	}
	pkt := &d.pkt
	pkt.Header, pkt.Payload = *hdr, payload
	n, err := pkt.MarshalTo(d.plain)
	pkt.Payload = nil // not kept past this packet
	if err != nil {
		return err
	}
	if rn != nil {
		rn.apply(d.plain[hsize : hsize+len(payload)])
	}
	ct, err := d.enc.EncryptRTP(d.cipher[:0], d.plain[:n], &pkt.Header)
	if err != nil {
		return err
	}
	_, err = out.conn.WriteTo(ct, addr)
	d.sub.stats.direct.Add(1)
	return err
}

// srtpOverhead is the most SRTP adds to a packet (an 80-bit HMAC tag or a
// 128-bit AEAD tag), with room to spare.
const srtpOverhead = 32

// retransmit answers a NACK for the given sequence numbers (as the
// subscriber knows them) from the layers' packet caches, on the RTX stream
// when one was negotiated.
func (d *downTrack) retransmit(seqs []uint16) {
	b := d.b.Load()
	if b == nil || d.history == nil {
		return
	}
	buf := make([]byte, cacheSlotSize)
	var pkt rtp.Packet
	st := d.sub.stats.kind(d.kind)
	for _, seq := range seqs {
		d.mu.Lock()
		h := d.history[seq%historySize]
		if d.switched && int16(seq-d.switchSeq) < 0 && h.out == seq {
			// From the layer before the last switch: the subscriber's
			// decoder goes on from the new layer's keyframe and has no
			// use for it, and resending it would load a link the switch
			// was made to relieve (most switches are down, for loss).
			d.mu.Unlock()
			st.nackStale.Add(1)
			continue
		}
		d.mu.Unlock()
		if h.layer == nil || h.out != seq || h.layer.cache == nil {
			st.nackMisses.Add(1)
			continue
		}
		raw := h.layer.cache.get(h.src, buf)
		if raw == nil || pkt.Unmarshal(raw) != nil {
			st.nackMisses.Add(1)
			continue
		}
		hdr := rtp.Header{
			Version: 2, Marker: pkt.Marker, PayloadType: b.pt, SequenceNumber: seq,
			Timestamp: pkt.Timestamp + h.tsOff, SSRC: b.ssrc, CSRC: pkt.CSRC,
		}
		payload := pkt.Payload // in buf: ours to renumber
		if !h.nums.zero() && h.layer.ft.vp8 {
			if n, ok := rtpcodec.ParseVP8Numbers(payload); ok {
				r := renumbered(&n, h.nums)
				r.apply(payload)
			}
		}
		if !d.sub.takeRTX(len(payload)) {
			st.nackOverBudget.Add(1)
			continue
		}
		if b.rtxSSRC != 0 {
			// RFC 4588: the original sequence number, then the payload,
			// numbered in the RTX stream only when sent, so that the
			// packets not resent leave no gap the receiver counts lost.
			d.mu.Lock()
			rtxSeq := d.rtxSeq
			d.rtxSeq++
			d.mu.Unlock()
			rtx := make([]byte, 2+len(payload))
			binary.BigEndian.PutUint16(rtx, seq)
			copy(rtx[2:], payload)
			payload = rtx
			hdr.SSRC, hdr.PayloadType, hdr.SequenceNumber = b.rtxSSRC, b.rtxPT, rtxSeq
		}
		if err := d.send(b, &hdr, payload, nil); err != nil {
			st.dropped.Add(1)
			continue
		}
		st.retransmitted.Add(1)
	}
}

// rtcpLoop reads RTCP from the subscriber for this track: NACKs are
// answered from the cache, PLI and FIR become rate-limited keyframe
// requests, receiver reports and REMB feed the subscriber's bandwidth
// estimate. It ends when the sender is removed or the PC closes.
func (d *downTrack) rtcpLoop(sender *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				if c := d.cur.Load(); c != nil {
					c.ft.requestKeyframe(c)
				}
			case *rtcp.TransportLayerNack:
				d.sub.stats.kind(d.kind).nacks.Add(1)
				var seqs []uint16
				for _, pair := range p.Nacks {
					seqs = append(seqs, pair.PacketList()...)
				}
				d.retransmit(seqs)
			case *rtcp.ReceiverReport:
				d.onReports(p.Reports)
			case *rtcp.SenderReport:
				d.onReports(p.Reports)
			case *rtcp.ReceiverEstimatedMaximumBitrate:
				d.sub.bwe.remb(int64(p.Bitrate))
			}
		}
	}
}

// onReports takes the subscriber's reception reports about this track.
func (d *downTrack) onReports(rs []rtcp.ReceptionReport) {
	b := d.b.Load()
	if b == nil {
		return
	}
	for _, r := range rs {
		if r.SSRC != b.ssrc {
			continue
		}
		d.fractionLost.Store(uint32(r.FractionLost))
		d.jitter.Store(r.Jitter)
		if rtt, ok := d.srSent.rtt(r.LastSenderReport, r.Delay, time.Now()); ok {
			d.rttMicros.Store(rtt.Microseconds())
		}
		if d.kind == webrtc.RTPCodecTypeVideo {
			d.sub.bwe.loss(float64(r.FractionLost) / 256)
		}
	}
}

// senderReport builds an RTCP sender report for this track, mapping now to
// the RTP timeline of the last packet sent; nil before anything was sent.
func (d *downTrack) senderReport(now time.Time, mono int64) *rtcp.SenderReport {
	b := d.b.Load()
	if b == nil {
		return nil
	}
	d.mu.Lock()
	started, lastTs, lastWall := d.started, d.lastTs, d.lastWall
	d.mu.Unlock()
	if !started {
		return nil
	}
	ntp := toNTP(now)
	d.srSent.add(ntp, now)
	return &rtcp.SenderReport{
		SSRC:        b.ssrc,
		NTPTime:     ntp,
		RTPTime:     lastTs + uint32((mono-lastWall)*int64(b.clock)/int64(time.Second)),
		PacketCount: uint32(d.packets.Load()),
		OctetCount:  uint32(d.octets.Load()),
	}
}

// applyView sets the size the subscriber shows this track at.
func (d *downTrack) applyView(t Tile) {
	d.viewW.Store(int32(t.Width))
	d.viewH.Store(int32(t.Height))
	d.hidden.Store(t.Width == 0 || t.Height == 0)
}

// ntpEpochOffset is the seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

func toNTP(t time.Time) uint64 {
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// srLog remembers when the last few sender reports were sent, to turn the
// LSR and DLSR of a reception report into a round-trip time.
type srLog struct {
	mu    sync.Mutex
	mid   [4]uint32
	at    [4]time.Time
	count int
}

func (l *srLog) add(ntp uint64, at time.Time) {
	l.mu.Lock()
	i := l.count % len(l.mid)
	l.mid[i], l.at[i] = uint32(ntp>>16), at
	l.count++
	l.mu.Unlock()
}

// rtt returns now − (time the report lsr names was sent) − dlsr.
func (l *srLog) rtt(lsr, dlsr uint32, now time.Time) (time.Duration, bool) {
	if lsr == 0 {
		return 0, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.mid {
		if l.mid[i] == lsr && !l.at[i].IsZero() {
			delay := time.Duration(uint64(dlsr) * uint64(time.Second) >> 16)
			if rtt := now.Sub(l.at[i]) - delay; rtt >= 0 {
				return rtt, true
			}
			return 0, false
		}
	}
	return 0, false
}
