package client

import (
	"fmt"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// RemoteTrack is a track received on "sub".
type RemoteTrack struct {
	StreamID string // the publishing member's user id (msid)
	TrackID  string
	Kind     string // "audio" or "video"
	SSRC     uint32
}

// onTrack is the pion OnTrack callback for "sub": it records the track and
// starts reading it.
func (m *Media) onTrack(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	rt := RemoteTrack{StreamID: t.StreamID(), TrackID: t.ID(), Kind: t.Kind().String(), SSRC: uint32(t.SSRC())}
	m.log.Debug("remote track", "stream", rt.StreamID, "kind", rt.Kind, "ssrc", rt.SSRC)
	q := newTrackQuality(rt, t.Codec().ClockRate)
	m.mu.Lock()
	m.tracks = append(m.tracks, rt)
	m.quality = append(m.quality, q)
	m.mu.Unlock()
	m.goTracked(func() { m.readTrack(t, rt, q) })
	m.goTracked(func() { readReceiverRTCP(r) })
}

// readReceiverRTCP reads what the sender reports about a received track
// until "sub" closes. pion's interceptors see RTCP only as it is read, and
// its receiver reports quote the sender reports they saw: without this,
// they carry no round trip for the server to measure, as a browser's do.
func readReceiverRTCP(r *webrtc.RTPReceiver) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// readTrack counts a remote track's packets until "sub" closes, measures
// its quality and hands the packets to MediaOptions.OnRTP. Padding-only
// packets are not media: only the quality measure, which needs their
// sequence numbers, sees them.
func (m *Media) readTrack(t *webrtc.TrackRemote, rt RemoteTrack, q *trackQuality) {
	video := t.Kind() == webrtc.RTPCodecTypeVideo
	for {
		p, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		q.observe(p, now)
		if len(p.Payload) == 0 {
			continue
		}
		if m.onRTP != nil {
			m.onRTP(rt, p, now)
		}
		if video {
			m.count.videoRecv.Add(1)
			m.count.videoBytes.Add(uint64(len(p.Payload)))
			if isVP8Keyframe(p.Payload) {
				m.count.keyframesRecv.Add(1)
			}
		} else {
			m.count.audioRecv.Add(1)
			m.count.audioBytes.Add(uint64(len(p.Payload)))
		}
	}
}

// RequestKeyframe sends a PLI on "sub" for every remote video track; the
// SFU forwards it to the publisher.
func (m *Media) RequestKeyframe() error {
	var pkts []rtcp.Packet
	m.mu.Lock()
	for _, t := range m.tracks {
		if t.Kind == webrtc.RTPCodecTypeVideo.String() {
			pkts = append(pkts, &rtcp.PictureLossIndication{MediaSSRC: t.SSRC})
		}
	}
	m.mu.Unlock()
	if len(pkts) == 0 {
		return ErrNoVideo
	}
	if err := m.sub.WriteRTCP(pkts); err != nil {
		return fmt.Errorf("client: send pli: %w", err)
	}
	return nil
}
