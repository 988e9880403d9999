package sfu

import (
	"bytes"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/transport/v4"
	"github.com/pion/transport/v4/stdnet"
	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/testkit"
)

// rtpPublisher sends raw VP8 RTP from a client's pub PC, so the test chooses
// every sequence number, and records the NACKs the SFU sends back for it.
type rtpPublisher struct {
	c      *client
	track  *webrtc.TrackLocalStaticRTP
	sender *webrtc.RTPSender
	ssrc   uint32

	mu       sync.Mutex
	next     uint16 // sequence number of the next packet
	skip     uint16 // sequence number never sent; valid if skipping
	skipping bool
	nacked   map[uint16]int // sequence number -> NACKs for ssrc covering it
}

// publishRTP adds one VP8 track to c's pub PC, negotiates it and starts
// sending one packet every 10 ms from sequence number first on.
func publishRTP(t *testing.T, c *client, first uint16) *rtpPublisher {
	t.Helper()
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "v", "client-stream")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := c.pub.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	p := &rtpPublisher{c: c, track: track, sender: tr.Sender(), next: first, nacked: make(map[uint16]int)}
	p.ssrc = uint32(p.sender.GetParameters().Encodings[0].SSRC)
	c.wg.Go(p.readRTCP)
	c.negotiatePub()
	c.wg.Go(p.send)
	return p
}

// readRTCP records the sequence numbers covered by NACKs for the track.
func (p *rtpPublisher) readRTCP() {
	for {
		pkts, _, err := p.sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			nack, ok := pkt.(*rtcp.TransportLayerNack)
			if !ok || nack.MediaSSRC != p.ssrc {
				continue
			}
			p.mu.Lock()
			for _, pair := range nack.Nacks {
				for _, seq := range pair.PacketList() {
					p.nacked[seq]++
				}
			}
			p.mu.Unlock()
		}
	}
}

// send writes one VP8 packet (a whole frame) every 10 ms until the client
// stops its media. The payload carries the sequence number so a
// retransmission can be compared with the original.
func (p *rtpPublisher) send() {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var ts uint32
	for {
		select {
		case <-p.c.stopMedia:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		seq := p.next
		p.next++
		skip := p.skipping && seq == p.skip
		p.mu.Unlock()
		ts += 900
		if skip {
			continue
		}
		payload := make([]byte, 120)
		payload[0] = 0x10 // VP8 descriptor: start of partition 0
		binary.BigEndian.PutUint16(payload[4:], seq)
		pkt := &rtp.Packet{
			Header:  rtp.Header{Version: 2, Marker: true, SequenceNumber: seq, Timestamp: ts},
			Payload: payload,
		}
		_ = p.track.WriteRTP(pkt)
	}
}

// skipSoon makes the sender leave out a sequence number it has not reached
// yet, and returns it.
func (p *rtpPublisher) skipSoon() uint16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.skip, p.skipping = p.next+3, true
	return p.skip
}

func (p *rtpPublisher) nacksFor(seq uint16) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.nacked[seq]
}

// seqRecorder counts, on a subscriber, the arrivals of every sequence number
// of the first video track it receives.
type seqRecorder struct {
	mu       sync.Mutex
	track    *webrtc.TrackRemote
	counts   map[uint16]int
	payloads map[uint16][]byte // payload of the first arrival
	last     uint16
	mismatch []uint16 // repeated arrivals whose payload differs
}

// recordSeqs replaces c's sub OnTrack handler with one that feeds a
// seqRecorder. It must be called before any track reaches c.
func recordSeqs(c *client) *seqRecorder {
	r := &seqRecorder{counts: make(map[uint16]int), payloads: make(map[uint16][]byte)}
	c.sub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if tr.Kind() != webrtc.RTPCodecTypeVideo {
			return
		}
		r.mu.Lock()
		if r.track != nil {
			r.mu.Unlock()
			return
		}
		r.track = tr
		r.mu.Unlock()
		c.wg.Go(func() {
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				r.add(pkt)
			}
		})
	})
	return r
}

func (r *seqRecorder) add(pkt *rtp.Packet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := pkt.SequenceNumber
	r.counts[seq]++
	r.last = seq
	if first, ok := r.payloads[seq]; !ok {
		r.payloads[seq] = append([]byte(nil), pkt.Payload...)
	} else if !bytes.Equal(first, pkt.Payload) {
		r.mismatch = append(r.mismatch, seq)
	}
}

// received returns the video track and the number of distinct sequence
// numbers received so far, and the last one.
func (r *seqRecorder) received() (*webrtc.TrackRemote, int, uint16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.track, len(r.counts), r.last
}

func (r *seqRecorder) count(seq uint16) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[seq]
}

// repeated returns the sequence numbers received more than once.
func (r *seqRecorder) repeated() map[uint16]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[uint16]int)
	for seq, n := range r.counts {
		if n > 1 {
			out[seq] = n
		}
	}
	return out
}

// TestNack checks NACK handling on both sides of the SFU with pion clients
// over loopback. Publisher A sends raw VP8 RTP; subscriber B receives it.
//
//   - A NACK from B for a packet B already has makes the SFU resend that
//     packet, unchanged, from the sub PC's packet cache; no other packet is
//     repeated.
//   - B's NACK is answered by the SFU, not forwarded to A.
//   - A gap in A's sequence numbers makes the SFU's pub PC send A a NACK
//     covering the missing packet, which B never receives.
func TestNack(t *testing.T) {
	s := newTestSFU(t)
	room := s.Room("nack")
	a := joinClient(t, room, "A")
	// B's SRTP replay protection would drop a second copy of a packet it
	// already has; a real receiver only NACKs packets it has not received,
	// which replay protection lets through.
	b := joinClient(t, room, "B", func(c *client) {
		c.subSettings = func(se *webrtc.SettingEngine) { se.DisableSRTPReplayProtection(true) }
	})
	rec := recordSeqs(b)
	pub := publishRTP(t, a, 100)

	// B receives A's packets with A's sequence numbers.
	var track *webrtc.TrackRemote
	var last uint16
	testkit.Eventually(t, 8*time.Second, "B to receive A's video", func() bool {
		var n int
		track, n, last = rec.received()
		return track != nil && n >= 20
	})
	if n := rec.count(last); n != 1 {
		t.Fatalf("B received sequence number %d %d times before any NACK", last, n)
	}

	// B NACKs a packet it already has; the SFU sends it again. The NACK
	// is repeated until then in case one RTCP packet is lost.
	target := last - 5
	if rec.count(target) != 1 {
		t.Fatalf("B has sequence number %d %d times, want 1", target, rec.count(target))
	}
	nack := &rtcp.TransportLayerNack{
		SenderSSRC: 4242,
		MediaSSRC:  uint32(track.SSRC()),
		Nacks:      rtcp.NackPairsFromSequenceNumbers([]uint16{target}),
	}
	deadline := time.Now().Add(3 * time.Second)
	for rec.count(target) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("sequence number %d was not retransmitted to B (received %d times)", target, rec.count(target))
		}
		if err := b.sub.WriteRTCP([]rtcp.Packet{nack}); err != nil {
			t.Fatalf("B WriteRTCP: %v", err)
		}
		poll := time.Now().Add(300 * time.Millisecond)
		for rec.count(target) < 2 && time.Now().Before(poll) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	for seq, n := range rec.repeated() {
		if seq != target {
			t.Errorf("B received sequence number %d %d times; only %d was NACKed", seq, n, target)
		}
	}

	// A leaves out one sequence number: the SFU NACKs it to A.
	missing := pub.skipSoon()
	testkit.Eventually(t, 3*time.Second, "the SFU to NACK the missing packet to A", func() bool {
		return pub.nacksFor(missing) > 0
	})
	testkit.Eventually(t, 3*time.Second, "B to receive the packet after the gap", func() bool {
		return rec.count(missing+1) > 0
	})
	if n := rec.count(missing); n != 0 {
		t.Errorf("B received sequence number %d, which A never sent, %d times", missing, n)
	}

	// The SFU answered B's NACK itself: by the time its own NACK for the
	// gap reached A, nothing asked A for B's packet.
	if n := pub.nacksFor(target); n != 0 {
		t.Errorf("A received %d NACKs for sequence number %d, which the SFU had cached", n, target)
	}

	rec.mu.Lock()
	mismatch := rec.mismatch
	rec.mu.Unlock()
	if len(mismatch) > 0 {
		t.Errorf("retransmitted packets differ from the originals: %v", mismatch)
	}
	for _, cl := range []*client{a, b} {
		if errs := cl.errors(); len(errs) > 0 {
			t.Errorf("client %s signaling errors: %v", cl.name, errs)
		}
	}
}

// lossyNet is the network of a client PC that drops the first video RTP
// packet it receives once armed. RTP headers are not encrypted by SRTP, so
// the packet is recognised on the wire.
type lossyNet struct {
	transport.Net
	pt uint8 // payload type of the video packets

	armed   atomic.Bool
	mu      sync.Mutex
	dropped int // sequence number of the dropped packet; -1 before
	onWire  int // arrivals of that sequence number, the dropped one included
}

func newLossyNet(t *testing.T, pt uint8) *lossyNet {
	t.Helper()
	n, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	return &lossyNet{Net: n, pt: pt, dropped: -1}
}

func (n *lossyNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &lossyConn{UDPConn: c, n: n}, nil
}

// drop inspects one received datagram and reports whether to discard it.
func (n *lossyNet) drop(b []byte) bool {
	if len(b) < 12 || b[0]>>6 != 2 || b[1]&0x7f != n.pt {
		return false // not video RTP: STUN, DTLS, RTCP or other media
	}
	seq := int(binary.BigEndian.Uint16(b[2:4]))
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.armed.CompareAndSwap(true, false) {
		n.dropped = seq
	}
	if seq != n.dropped {
		return false
	}
	n.onWire++
	return n.onWire == 1
}

func (n *lossyNet) state() (dropped, onWire int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dropped, n.onWire
}

type lossyConn struct {
	transport.UDPConn
	n *lossyNet
}

func (c *lossyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFrom(b)
		if err != nil || !c.n.drop(b[:n]) {
			return n, addr, err
		}
	}
}

// TestNackLostPacket drops one of A's packets on its way from the SFU to B,
// whose PC keeps pion's default SRTP replay protection and NACK generator: B
// NACKs the packet by itself, the SFU resends it from its cache on the RTX
// stream and B's track delivers it exactly once, while the SFU never asks A
// for it.
func TestNackLostPacket(t *testing.T) {
	s := newTestSFU(t)
	room := s.Room("nack-loss")
	a := joinClient(t, room, "A")
	loss := newLossyNet(t, 96) // the SFU offers VP8 as payload type 96
	b := joinClient(t, room, "B", func(c *client) {
		c.subSettings = func(se *webrtc.SettingEngine) { se.SetNet(loss) }
	})
	rec := recordSeqs(b)
	pub := publishRTP(t, a, 100)

	var track *webrtc.TrackRemote
	testkit.Eventually(t, 8*time.Second, "B to receive A's video", func() bool {
		var n int
		track, n, _ = rec.received()
		return track != nil && n >= 20
	})
	if got := track.Codec().PayloadType; got != 96 {
		t.Fatalf("B's video payload type = %d, want 96", got)
	}

	loss.armed.Store(true)
	var lost uint16
	testkit.Eventually(t, 3*time.Second, "a packet to be dropped", func() bool {
		dropped, _ := loss.state()
		lost = uint16(dropped)
		return dropped >= 0
	})
	testkit.Eventually(t, 3*time.Second, "the dropped packet to be resent to B", func() bool {
		return rec.count(lost) > 0
	})
	// The copy came on B's RTX stream (RFC 4588), which pion unwraps into
	// the track: the original stream carried the number once.
	if _, onWire := loss.state(); onWire != 1 {
		t.Errorf("sequence number %d reached B's socket %d times on the original stream, want 1", lost, onWire)
	}
	if st := b.p.Stats().Video; st.Retransmitted == 0 || st.NACKsReceived == 0 {
		t.Errorf("B's video stats show no NACK answered: %+v", st)
	}
	if n := rec.count(lost); n != 1 {
		t.Errorf("B's track delivered sequence number %d %d times, want 1", lost, n)
	}
	if rep := rec.repeated(); len(rep) > 0 {
		t.Errorf("B's track delivered duplicates: %v", rep)
	}
	if n := pub.nacksFor(lost); n != 0 {
		t.Errorf("A received %d NACKs for sequence number %d, which the SFU had cached", n, lost)
	}
	for _, cl := range []*client{a, b} {
		if errs := cl.errors(); len(errs) > 0 {
			t.Errorf("client %s signaling errors: %v", cl.name, errs)
		}
	}
}
