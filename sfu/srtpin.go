package sfu

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// Direct input.
//
// pion hands each received packet through four goroutines (UDP mux
// reader, DTLS/SRTP demux, SRTP session, track reader), and a forwarding
// node spends more on waking them than on the packets. Direct input takes
// a publisher's media at the shared socket instead: the socket's reader
// (pion's UDP mux goroutine, through a udpx filter) decrypts the packet with
// the pub PC's SRTP keys (learned as for direct output, srtpout.go) and
// forwards it on the spot; the fan-out of one received batch leaves in one
// sendmmsg. What direct input does not know (STUN, DTLS, RTCP, and RTP
// streams before pion has announced them as tracks, RTX among them) goes on
// to pion as before.
//
// With direct input pion's receive interceptors see nothing, so direct
// input does their work itself, driven by the packets rather than timers:
// transport-wide CC feedback every 100 ms, receiver reports every second,
// NACKs for gaps (rx.go). A pub PC uses one or the other for its whole
// life: pubMode decides once.

const (
	twccInterval   = 100 * time.Millisecond
	reportInterval = time.Second
)

// Modes of a pub PC's receive path.
const (
	modeUndecided int32 = iota
	modePion            // pion's interceptors (lazyInterceptor started them)
	modeDirect          // direct input
)

// srtpIn is one pub PC's direct input. Everything but layers is used only
// by the socket's reader goroutine.
type srtpIn struct {
	p      *Participant
	ctx    *srtp.Context
	layers atomic.Pointer[map[uint32]*layer] // by SSRC, copy-on-write
	mu     sync.Mutex                        // serializes writers of layers
	addr   netip.AddrPort

	buf []byte
	hdr rtp.Header
	pkt rtp.Packet
	out rtp.Header
}

// pubFeedback is what a pub PC without pion's receive interceptors tells
// its publisher. Direct input feeds it every packet; pion's path feeds it
// what direct input leaves to pion, and everything when the PC has no
// direct input (its DTLS keys could not be learned).
type pubFeedback struct {
	p *Participant

	mu           sync.Mutex
	ssrc         uint32 // sender SSRC of the feedback
	extKnown     bool
	twccExt      uint8
	twcc         *twcc.Recorder
	lastFeedback int64
	lastReport   int64
	seqs         []uint16
}

// onPacket takes one RTP packet from the publisher at now: hdr is its
// header, l its layer if known. twcc says whether to record it for
// transport-wide CC.
func (fb *pubFeedback) onPacket(hdr *rtp.Header, l *layer, now int64, twcc bool) {
	pub := fb.p.pub
	if pub == nil {
		return
	}
	fb.mu.Lock()
	if !fb.extKnown {
		fb.extKnown = true
		// Parsed from a copy: SessionDescription.Unmarshal caches its
		// result in the description, which pion shares with other callers.
		if rd := pub.pc.RemoteDescription(); rd != nil {
			var d sdp.SessionDescription
			if err := d.UnmarshalString(rd.SDP); err == nil {
				fb.twccExt = twccExtID(&d)
			}
		}
	}
	if twcc && fb.twccExt != 0 && fb.twcc != nil {
		if e := hdr.GetExtension(fb.twccExt); len(e) >= 2 {
			fb.twcc.Record(hdr.SSRC, binary.BigEndian.Uint16(e), now/1000)
		}
	}
	var out []rtcp.Packet
	if fb.twcc != nil && now-fb.lastFeedback >= int64(twccInterval) {
		fb.lastFeedback = now
		if fb.twcc.PacketsHeld() > 0 {
			out = append(out, fb.twcc.BuildFeedbackPacket()...)
		}
	}
	if now-fb.lastReport >= int64(reportInterval) {
		fb.lastReport = now
		rr := &rtcp.ReceiverReport{SSRC: fb.ssrc}
		fb.p.mu.Lock()
		for _, ft := range fb.p.published {
			for _, pl := range *ft.layers.Load() {
				if r, ok := pl.rx.report(pl.ssrc, now); ok {
					rr.Reports = append(rr.Reports, r)
				}
			}
		}
		fb.p.mu.Unlock()
		if len(rr.Reports) > 0 {
			out = append(out, rr)
		}
	}
	if l != nil && l.ft.kind == webrtc.RTPCodecTypeVideo {
		if fb.seqs = l.rx.nacks(now, fb.seqs[:0]); len(fb.seqs) > 0 {
			out = append(out, &rtcp.TransportLayerNack{SenderSSRC: fb.ssrc, MediaSSRC: l.ssrc,
				Nacks: rtcp.NackPairsFromSequenceNumbers(fb.seqs)})
		}
	}
	fb.mu.Unlock()
	if len(out) > 0 {
		_ = pub.pc.WriteRTCP(out)
	}
}

// addLayer routes l's SSRC to direct input.
func (in *srtpIn) addLayer(l *layer) {
	in.mu.Lock()
	defer in.mu.Unlock()
	old := *in.layers.Load()
	next := make(map[uint32]*layer, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[l.ssrc] = l
	in.layers.Store(&next)
}

// inputs maps publishers' addresses to their direct input; the socket
// filter reads it without locks.
type inputs struct {
	mu sync.Mutex
	m  atomic.Pointer[map[netip.AddrPort]*srtpIn]
}

func (s *inputs) set(in *srtpIn, from, to netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var old map[netip.AddrPort]*srtpIn
	if p := s.m.Load(); p != nil {
		old = *p
	}
	next := make(map[netip.AddrPort]*srtpIn, len(old)+1)
	for k, v := range old {
		if k != from || v != in {
			next[k] = v
		}
	}
	if to.IsValid() {
		next[to] = in
	}
	s.m.Store(&next)
}

// filter is the shared socket's read filter (udpx.Filter): it takes the
// SRTP of publishers with direct input. It runs on the socket's single
// reader goroutine.
type filter struct {
	s      *SFU
	corked bool
}

func (f *filter) Consume(b []byte, from *net.UDPAddr) bool {
	// RTP only: version 2, and not an RTCP packet type (RFC 5761).
	if len(b) < 12 || b[0]&0xc0 != 0x80 || (b[1] >= 192 && b[1] <= 223) {
		return false
	}
	m := f.s.inputs.m.Load()
	if m == nil || len(*m) == 0 {
		return false
	}
	ap := from.AddrPort()
	in := (*m)[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())]
	if in == nil {
		return false
	}
	return in.consume(b, f)
}

func (f *filter) Flush() {
	if f.corked {
		f.corked = false
		if f.s.cork != nil {
			f.s.cork.Uncork()
		}
	}
}

// consume handles one SRTP packet from the publisher. It returns false for
// what pion should have.
func (in *srtpIn) consume(b []byte, f *filter) bool {
	now := monotime()
	if _, err := in.hdr.Unmarshal(b); err != nil {
		return false
	}
	l := (*in.layers.Load())[in.hdr.SSRC]
	fb := in.p.fb
	if l == nil {
		// Transport-wide CC covers every packet the publisher sends, RTX
		// and probes included: recorded here, as pion's path will not.
		if fb != nil {
			fb.onPacket(&in.hdr, nil, now, true)
		}
		return false
	}
	plain, err := in.ctx.DecryptRTP(in.buf[:0], b, &in.pkt.Header)
	if err != nil {
		return false // not ours to judge: pion drops what fails
	}
	in.buf = plain[:0]
	if err := in.pkt.Unmarshal(plain); err != nil {
		return true
	}
	if !f.corked && f.s.cork != nil {
		f.s.cork.Cork()
		f.corked = true
	}
	l.rx.note(in.pkt.SequenceNumber, in.pkt.Timestamp, now)
	if fb != nil {
		fb.onPacket(&in.pkt.Header, l, now, true)
	}
	l.ft.handle(l, &in.pkt, plain, &in.out)
	return true
}

// twccExtID returns the id the remote description gives the transport-wide
// CC header extension, or 0.
func twccExtID(d *sdp.SessionDescription) uint8 {
	if d == nil {
		return 0
	}
	for _, m := range d.MediaDescriptions {
		for _, a := range m.Attributes {
			if a.Key != "extmap" || !strings.Contains(a.Value, sdp.TransportCCURI) {
				continue
			}
			id, _, _ := strings.Cut(a.Value, " ")
			id, _, _ = strings.Cut(id, "/")
			if n, err := strconv.Atoi(id); err == nil && n > 0 && n < 256 {
				return uint8(n)
			}
		}
	}
	return 0
}

// startDirectInput takes the pub PC's media at the socket once DTLS is up,
// if its keys could be learned.
func (p *Participant) startDirectInput() {
	if p.pub == nil || p.pubTap == nil || p.fb == nil || p.in.Load() != nil {
		return
	}
	k, err := p.pubTap.keys()
	if err != nil {
		p.log.Debug("pub media stays on pion's receive path", "err", err)
		return
	}
	ctx, err := srtp.CreateContext(k.clientKey, k.clientSalt, k.profile, srtp.SRTPReplayProtection(srtpReplayWindow))
	if err != nil {
		return
	}
	in := &srtpIn{p: p, ctx: ctx, buf: make([]byte, 0, 2048)}
	in.layers.Store(&map[uint32]*layer{})
	p.mu.Lock()
	for _, ft := range p.published {
		for _, l := range *ft.layers.Load() {
			in.addLayer(l)
		}
	}
	p.in.Store(in)
	p.mu.Unlock()
	p.setInputAddr(p.pubAddr.Load())
}

// srtpReplayWindow is how far back direct input accepts a packet it has
// not seen (as pion's default).
const srtpReplayWindow = 64

// newPubFeedback returns the feedback state of a pub PC whose receive
// interceptors are off.
func newPubFeedback(p *Participant) *pubFeedback {
	fb := &pubFeedback{p: p, ssrc: rand.Uint32()}
	fb.twcc = twcc.NewRecorder(fb.ssrc)
	return fb
}

// setInputAddr points direct input at the pub PC's selected pair.
func (p *Participant) setInputAddr(addr *net.UDPAddr) {
	in := p.in.Load()
	if in == nil {
		return
	}
	var to netip.AddrPort
	if addr != nil {
		ap := addr.AddrPort()
		to = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	in.mu.Lock()
	from := in.addr
	in.addr = to
	in.mu.Unlock()
	p.room.sfu.inputs.set(in, from, to)
}

// stopDirectInput forgets the pub PC's address.
func (p *Participant) stopDirectInput() {
	if in := p.in.Load(); in != nil {
		in.mu.Lock()
		from := in.addr
		in.addr = netip.AddrPort{}
		in.mu.Unlock()
		p.room.sfu.inputs.set(in, from, netip.AddrPort{})
	}
}
