package sfu

import (
	"log/slog"
	"net"
	"slices"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// discardWriter is a TrackLocalWriter that keeps the last header and drops
// packets.
type discardWriter struct {
	n       int
	last    rtp.Header
	payload []byte // the start of the last payload
}

func (w *discardWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	w.n++
	w.last = *h
	w.payload = append(w.payload[:0], p[:min(len(p), 32)]...) // the descriptor is in front
	return 0, nil
}
func (w *discardWriter) Write(b []byte) (int, error) { w.n++; return len(b), nil }

// fakeBinding is a TrackLocalContext for binding a downTrack without a
// PeerConnection.
type fakeBinding struct {
	id string
	w  *discardWriter
}

func (f fakeBinding) CodecParameters() []webrtc.RTPCodecParameters {
	_, video := codecList()
	return video
}
func (f fakeBinding) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (f fakeBinding) SSRC() webrtc.SSRC                                      { return 1234 }
func (f fakeBinding) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (f fakeBinding) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (f fakeBinding) WriteStream() webrtc.TrackLocalWriter                   { return f.w }
func (f fakeBinding) ID() string                                             { return f.id }
func (f fakeBinding) RTCPReader() interceptor.RTCPReader                     { return nil }

// newTestTrack builds a video forwardTrack with the given simulcast layers
// ("" = one plain layer) and no PeerConnections.
func newTestTrack(tb testing.TB, rids ...string) (*forwardTrack, []*layer) {
	tb.Helper()
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	pub := &Participant{id: "pub", streamID: "user-pub", log: slog.New(slog.DiscardHandler)}
	ft := &forwardTrack{publisher: pub, kind: webrtc.RTPCodecTypeVideo, codec: codec, id: "video", log: pub.log, vp8: true}
	ft.downs.Store(&[]*downTrack{})
	ft.layers.Store(&[]*layer{})
	ft.order.Store(&[]*layer{})
	var ls []*layer
	for i, rid := range rids {
		l := &layer{ft: ft, idx: int8(i), rid: rid, ssrc: uint32(100 + i), cache: &packetCache{}, isKeyframe: keyframeReader(ft.codec.MimeType)}
		next := append(*ft.layers.Load(), l)
		ft.layers.Store(&next)
		ls = append(ls, l)
	}
	ft.reorderLocked()
	return ft, ls
}

// addBound adds n bound subscribers to ft.
func addBound(tb testing.TB, ft *forwardTrack, n int) ([]*Participant, []*downTrack, []*discardWriter) {
	tb.Helper()
	var subs []*Participant
	var downs []*downTrack
	var writers []*discardWriter
	for i := range n {
		sub := &Participant{id: "sub", bwe: newEstimator()}
		sub.subUp.Store(true)
		d, err := ft.addDown(sub)
		if err != nil {
			tb.Fatal(err)
		}
		w := &discardWriter{}
		if _, err := d.Bind(fakeBinding{id: string(rune('a' + i)), w: w}); err != nil {
			tb.Fatal(err)
		}
		subs = append(subs, sub)
		downs = append(downs, d)
		writers = append(writers, w)
	}
	return subs, downs, writers
}

// vp8 returns a VP8 payload: a keyframe start (with a 640×360 frame
// header) or an inter-frame packet.
func vp8(key bool) []byte {
	if key {
		return []byte{0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 0, 0, 0}
	}
	return []byte{0x10, 0x01, 0x00, 0x00, 0, 0, 0, 0}
}

// TestForwardFanout checks that one packet reaches every bound subscriber
// without the publisher's header extensions, is counted per subscriber,
// and that an unbound copy gets nothing.
func TestForwardFanout(t *testing.T) {
	ft, ls := newTestTrack(t, "")
	subs, _, writers := addBound(t, ft, 3)
	unbound := &Participant{id: "late"}
	if _, err := ft.addDown(unbound); err != nil {
		t.Fatal(err)
	}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 7, SSRC: 99, Extension: true,
		Extensions: []rtp.Extension{{}}}, Payload: vp8(true)}
	ft.fanout(ls[0], pkt, true, 15, &rtp.Header{})
	for i, w := range writers {
		if w.n != 1 {
			t.Errorf("subscriber %d got %d packets, want 1", i, w.n)
		}
		if w.last.Extension || len(w.last.Extensions) != 0 {
			t.Errorf("subscriber %d got the publisher's header extensions", i)
		}
		if w.last.SSRC != 1234 || w.last.PayloadType != 96 {
			t.Errorf("subscriber %d got SSRC %d PT %d, want its own 1234 and 96", i, w.last.SSRC, w.last.PayloadType)
		}
		if st := subs[i].Stats().Video; st.PacketsForwarded != 1 || st.BytesForwarded != 15 {
			t.Errorf("subscriber %d stats %+v", i, st)
		}
	}
	if st := unbound.Stats().Video; st.PacketsForwarded != 0 {
		t.Errorf("unbound subscriber stats %+v", st)
	}
	removed := ft.removeDowns(func(d *downTrack) bool { return d.sub == unbound })
	if len(removed) != 1 || len(*ft.downs.Load()) != 3 {
		t.Errorf("removeDowns removed %d, left %d", len(removed), len(*ft.downs.Load()))
	}
}

// BenchmarkForward measures the per-packet fan-out to 8 subscribers.
func BenchmarkForward(b *testing.B) {
	ft, ls := newTestTrack(b, "")
	addBound(b, ft, 8)
	benchFanout(b, ft, ls[0])
}

// benchFanout starts l's stream with a keyframe, then times b.N packets of
// 1,100 bytes through ft's fan-out.
func benchFanout(b *testing.B, ft *forwardTrack, l *layer) {
	b.Helper()
	hdr := &rtp.Header{}
	start := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 99, Timestamp: 1}, Payload: vp8(true)}
	ft.fanout(l, start, true, 20, hdr)
	payload := make([]byte, 1100)
	// A browser's descriptor: X, a 15-bit picture id, TL0PICIDX, TID.
	copy(payload, []byte{0x90, 0xe0, 0x80 | 0x12, 0x34, 0x56, 0x40, 0x01, 0x00, 0x00})
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 99, Timestamp: 1}, Payload: payload}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		pkt.SequenceNumber = uint16(i + 1)
		ft.fanout(l, pkt, false, 1112, hdr)
	}
}

// BenchmarkForwardDirectRenumbered is BenchmarkForwardDirect after a
// switch of source (another layer or another device): every copy's VP8
// picture id, TL0PICIDX and KEYIDX are rewritten on the way out.
func BenchmarkForwardDirectRenumbered(b *testing.B) {
	ft, ls := newTestTrack(b, "")
	subs, downs, _ := addBound(b, ft, 8)
	discardOutput(subs)
	for _, d := range downs {
		d.nums = vp8Offsets{pic: 1000, tl0: 7, key: 3}
	}
	benchFanout(b, ft, ls[0])
}

// discardConn is a PacketConn whose writes go nowhere.
type discardConn struct{ net.PacketConn }

func (discardConn) WriteTo(b []byte, _ net.Addr) (int, error) { return len(b), nil }

// discardOutput gives each subscriber direct SRTP output into a discardConn.
func discardOutput(subs []*Participant) {
	for _, sub := range subs {
		out := &srtpOut{conn: discardConn{}, profile: srtp.ProtectionProfileAeadAes128Gcm,
			key: make([]byte, 16), salt: make([]byte, 12)}
		out.addr.Store(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
		sub.out.Store(out)
	}
}

// BenchmarkForwardDirect is BenchmarkForward with direct SRTP output: each
// subscriber's copy is rewritten, encrypted with its own AES-GCM context and
// handed to a socket that discards it. ns per packet covers 8 subscribers.
func BenchmarkForwardDirect(b *testing.B) {
	ft, ls := newTestTrack(b, "")
	subs, _, writers := addBound(b, ft, 8)
	discardOutput(subs)
	benchFanout(b, ft, ls[0])
	b.StopTimer()
	for i, w := range writers {
		if w.n != 0 {
			b.Fatalf("subscriber %d: %d packets took pion's path", i, w.n)
		}
	}
	if got := subs[0].Stats().Video.PacketsForwarded; got < uint64(b.N) {
		b.Fatalf("forwarded %d of %d", got, b.N)
	}
}

// TestForwardLongStream sends a layer's packets through several wraps of
// the 16-bit sequence number, with some reordering: every packet reaches
// the subscriber (a call must not go silent after 32,768 packets). Midway it
// switches to another layer at a keyframe: a packet of the new layer from
// before the keyframe, arriving late, is not sent, and the new layer then
// flows through more wraps with the outgoing numbers continuing.
func TestForwardLongStream(t *testing.T) {
	ft, ls := newTestTrack(t, "q", "h")
	_, downs, writers := addBound(t, ft, 1)
	d, w := downs[0], writers[0]
	d.target.Store(ls[0])
	hdr := &rtp.Header{}
	send := func(l *layer, seq uint16, key bool) {
		ft.fanout(l, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: l.ssrc, SequenceNumber: seq,
			Timestamp: uint32(seq) * 3000}, Payload: vp8(key)}, key, 20, hdr)
	}
	const n = 3*65536 + 100
	stream := func(l *layer, first uint16) {
		t.Helper()
		for i := 1; i < n; i++ {
			s := first + uint16(i)
			if i%1000 == 1 {
				s++ // swap this packet with the next
			} else if i%1000 == 2 {
				s--
			}
			sent := w.n
			send(l, s, false)
			if w.n != sent+1 {
				t.Fatalf("layer %q packet %d (seq %d) was not forwarded", l.rid, i, s)
			}
		}
	}
	send(ls[0], 60000, true)
	first := w.last.SequenceNumber
	stream(ls[0], 60000)

	d.target.Store(ls[1])
	send(ls[1], 1000, true)
	if w.n != n+1 || d.cur.Load() != ls[1] {
		t.Fatalf("no switch at the keyframe: %d packets, current layer %v", w.n, d.cur.Load())
	}
	send(ls[1], 999, false)
	if w.n != n+1 {
		t.Fatalf("a packet from before the switch was forwarded")
	}
	stream(ls[1], 1000)
	if got, want := w.last.SequenceNumber-first, uint16((2*n-1)%65536); got != want {
		t.Errorf("outgoing sequence advanced by %d, want %d", got, want)
	}
}

// recordingWriter is a TrackLocalWriter that keeps every header.
type recordingWriter struct{ hdrs []rtp.Header }

func (w *recordingWriter) WriteRTP(h *rtp.Header, _ []byte) (int, error) {
	w.hdrs = append(w.hdrs, *h)
	return 0, nil
}
func (w *recordingWriter) Write(b []byte) (int, error) { return len(b), nil }

// receive feeds one single-packet VP8 frame of layer l through ft as the
// publisher's reader does: cached, noted, fanned out.
func receive(t *testing.T, ft *forwardTrack, l *layer, seq uint16, ts uint32, key bool) {
	t.Helper()
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: true}, Payload: vp8(key)}
	raw, err := pkt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ft.handle(l, pkt, raw, &rtp.Header{})
}

// boundWaiting adds one subscriber to ft whose transport is not up yet.
func boundWaiting(t *testing.T, ft *forwardTrack) (*Participant, *downTrack, *recordingWriter) {
	t.Helper()
	sub := &Participant{id: "sub", bwe: newEstimator()}
	d, err := ft.addDown(sub)
	if err != nil {
		t.Fatal(err)
	}
	w := &recordingWriter{}
	if _, err := d.Bind(fakeBinding{id: "a", w: (*discardWriter)(nil)}); err != nil {
		t.Fatal(err)
	}
	b := *d.b.Load()
	b.ws = w
	d.b.Store(&b)
	return sub, d, w
}

// TestStartFromCachedKeyframe: a subscriber whose transport comes up after
// the publisher's keyframe does not wait for another. Its first packet
// after the connection brings the cached keyframe and the frames since,
// numbered on from it and stamped as a burst that ends at the live frame,
// and the stream continues with the publisher's own timeline; a NACK for
// a cached packet is answered with the stamp it went out with.
func TestStartFromCachedKeyframe(t *testing.T) {
	ft, ls := newTestTrack(t, "")
	sub, d, w := boundWaiting(t, ft)
	receive(t, ft, ls[0], 1, 3000, true)
	receive(t, ft, ls[0], 2, 6000, false)
	receive(t, ft, ls[0], 3, 9000, false)
	if len(w.hdrs) != 0 || d.cur.Load() != nil {
		t.Fatalf("forwarded %d packets before the subscriber connected", len(w.hdrs))
	}
	sub.subUp.Store(true)
	receive(t, ft, ls[0], 4, 12000, false)
	receive(t, ft, ls[0], 5, 15000, false)
	var seqs []uint16
	var stamps []uint32
	for _, h := range w.hdrs {
		seqs = append(seqs, h.SequenceNumber)
		stamps = append(stamps, h.Timestamp)
	}
	if want := []uint16{1, 2, 3, 4, 5}; !slices.Equal(seqs, want) {
		t.Fatalf("sent sequence numbers %v, want %v", seqs, want)
	}
	if want := []uint32{12000 - 270, 12000 - 180, 12000 - 90, 12000, 15000}; !slices.Equal(stamps, want) {
		t.Fatalf("sent timestamps %v, want %v", stamps, want)
	}
	if n := sub.stats.video.cachedStarts.Load(); n != 1 {
		t.Fatalf("cached starts %d, want 1", n)
	}
	w.hdrs = nil
	d.retransmit([]uint16{2})
	if len(w.hdrs) != 1 || w.hdrs[0].SequenceNumber != 2 || w.hdrs[0].Timestamp != 12000-180 {
		t.Fatalf("retransmitted %+v, want sequence 2 stamped %d", w.hdrs, 12000-180)
	}
}

// TestNoStartFromAStaleKeyframe: a keyframe too many packets back is not
// sent from the cache (the burst would be large and the picture old); the
// subscriber waits for the next keyframe, as it does before any.
func TestNoStartFromAStaleKeyframe(t *testing.T) {
	ft, ls := newTestTrack(t, "")
	sub, d, w := boundWaiting(t, ft)
	seq, ts := uint16(65500), uint32(0) // wraps on the way
	receive(t, ft, ls[0], seq, ts, true)
	for range cachedStartPackets {
		seq, ts = seq+1, ts+3000
		receive(t, ft, ls[0], seq, ts, false)
	}
	sub.subUp.Store(true)
	receive(t, ft, ls[0], seq+1, ts+3000, false)
	if len(w.hdrs) != 0 || d.cur.Load() != nil {
		t.Fatalf("started %d packets after the keyframe", cachedStartPackets)
	}
	receive(t, ft, ls[0], seq+2, ts+6000, true)
	if len(w.hdrs) != 1 || w.hdrs[0].Timestamp != ts+6000 || d.cur.Load() != ls[0] {
		t.Fatalf("did not start at the next keyframe: %+v", w.hdrs)
	}
}
