package sfu

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// keyframeInterval is the minimum time between two keyframe requests sent to
// a publisher for one track.
const keyframeInterval = 500 * time.Millisecond

// forwardTrack is one track a publisher sends to the SFU, with the
// subscribers it is forwarded to.
type forwardTrack struct {
	publisher *Participant
	remote    *webrtc.TrackRemote
	receiver  *webrtc.RTPReceiver
	kind      webrtc.RTPCodecType
	codec     webrtc.RTPCodecCapability
	id        string // track id seen by subscribers
	log       *slog.Logger

	// downs is a copy-on-write snapshot read by the forwarding loop without
	// locks; mu serializes writers.
	mu    sync.Mutex
	downs atomic.Pointer[[]*downTrack]

	lastKeyframeReq atomic.Int64 // unix nanoseconds
}

func newForwardTrack(p *Participant, remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver, id string) *forwardTrack {
	ft := &forwardTrack{
		publisher: p,
		remote:    remote,
		receiver:  receiver,
		kind:      remote.Kind(),
		codec:     remote.Codec().RTPCodecCapability,
		id:        id,
		log:       p.log.With("track", id, "ssrc", uint32(remote.SSRC()), "codec", remote.Codec().MimeType),
	}
	ft.downs.Store(&[]*downTrack{})
	return ft
}

// addDown creates a forwarded copy of the track for sub and adds it to the
// snapshot.
func (ft *forwardTrack) addDown(sub *Participant) (*downTrack, error) {
	local, err := webrtc.NewTrackLocalStaticRTP(ft.codec, ft.id, ft.publisher.streamID)
	if err != nil {
		return nil, err
	}
	d := &downTrack{TrackLocalStaticRTP: local, ft: ft, sub: sub}
	d.needKeyframe.Store(ft.kind == webrtc.RTPCodecTypeVideo)
	ft.mu.Lock()
	defer ft.mu.Unlock()
	old := *ft.downs.Load()
	next := make([]*downTrack, 0, len(old)+1)
	next = append(next, old...)
	next = append(next, d)
	ft.downs.Store(&next)
	return d, nil
}

// removeDowns removes the forwarded copies for which drop returns true and
// returns them.
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

// readLoop reads RTP from the publisher and fans it out until the track or
// its PeerConnection ends.
func (ft *forwardTrack) readLoop() {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := ft.remote.Read(buf)
		if err != nil {
			ft.log.Debug("track read ended", "err", err)
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		ft.publisher.stats.kind(ft.kind).received(n)
		if ft.kind == webrtc.RTPCodecTypeAudio && !ft.publisher.room.audioAllowed(ft.publisher.id) {
			continue // push-to-talk: not the floor holder
		}
		ft.forward(&pkt, n)
	}
}

// forward writes one packet to every subscriber from the current snapshot.
// The publisher's header extensions are dropped: their ids were negotiated on
// the publisher's PeerConnection, not the subscriber's.
func (ft *forwardTrack) forward(pkt *rtp.Packet, size int) {
	pkt.Header.Extension = false
	pkt.Header.ExtensionProfile = 0
	pkt.Header.Extensions = nil
	for _, d := range *ft.downs.Load() {
		d.write(pkt, size)
	}
}

// rtcpLoop drains RTCP from the publisher (sender reports feed the receiver
// report interceptor) until the receiver stops.
func (ft *forwardTrack) rtcpLoop() {
	buf := make([]byte, 1500)
	for {
		if _, _, err := ft.receiver.Read(buf); err != nil {
			return
		}
	}
}

// requestKeyframe sends a PLI for this track to its publisher, at most once
// per keyframeInterval.
func (ft *forwardTrack) requestKeyframe() {
	if ft.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	now := time.Now().UnixNano()
	last := ft.lastKeyframeReq.Load()
	if now-last < int64(keyframeInterval) || !ft.lastKeyframeReq.CompareAndSwap(last, now) {
		return
	}
	pli := &rtcp.PictureLossIndication{MediaSSRC: uint32(ft.remote.SSRC())}
	if err := ft.publisher.pub.pc.WriteRTCP([]rtcp.Packet{pli}); err != nil {
		ft.log.Debug("keyframe request failed", "err", err)
		return
	}
	ft.publisher.stats.kind(ft.kind).keyframeRequests.Add(1)
	ft.log.Debug("keyframe requested")
}

// downTrack is the copy of a forwardTrack sent to one subscriber. It wraps a
// TrackLocalStaticRTP to know whether it is bound to a negotiated sender.
type downTrack struct {
	*webrtc.TrackLocalStaticRTP
	ft           *forwardTrack
	sub          *Participant
	bound        atomic.Int32
	needKeyframe atomic.Bool // request a keyframe once the subscriber can receive
}

var _ webrtc.TrackLocal = (*downTrack)(nil)

// Bind is called by pion when the track is negotiated on the subscriber's PC.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codec, err := d.TrackLocalStaticRTP.Bind(ctx)
	if err == nil {
		d.bound.Add(1)
	}
	return codec, err
}

// Unbind is called by pion when the track is removed or the PC closes.
func (d *downTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	err := d.TrackLocalStaticRTP.Unbind(ctx)
	if err == nil {
		d.bound.Add(-1)
	}
	return err
}

// write forwards one packet; it never blocks on the subscriber beyond a UDP
// send.
func (d *downTrack) write(pkt *rtp.Packet, size int) {
	if d.bound.Load() <= 0 {
		return
	}
	st := d.sub.stats.kind(d.ft.kind)
	if err := d.WriteRTP(pkt); err != nil {
		st.dropped.Add(1)
		return
	}
	st.forwarded(size)
}

// rtcpLoop reads RTCP from the subscriber for this track (the NACK responder
// depends on it) and turns PLI and FIR into rate-limited keyframe requests.
// It ends when the sender is removed or the PC closes.
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
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				d.ft.requestKeyframe()
			}
		}
	}
}
