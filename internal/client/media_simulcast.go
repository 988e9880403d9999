package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// simLayer is one simulcast layer of the load video source.
type simLayer struct {
	rid           string
	width, height int
	bitrate       int
	track         *webrtc.TrackLocalStaticRTP
	active        atomic.Bool // false while the server says nobody watches
	forceKey      atomic.Bool
	sent          atomic.Uint64
}

// simulcast is the state of a simulcast publisher.
type simulcast struct {
	layers []*simLayer
	sender *webrtc.RTPSender
	mid    string
}

// publishSimulcast adds one video transceiver with three encodings and
// starts pacing them.
func (m *Media) publishSimulcast(stream string, top int) error {
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	sim := &simulcast{}
	for _, l := range []struct {
		rid    string
		w, h   int
		divide int
	}{{"q", 320, 180, 10}, {"h", 640, 360, 3}, {"f", 1280, 720, 1}} {
		t, err := webrtc.NewTrackLocalStaticRTP(codec, "video", stream, webrtc.WithRTPStreamID(l.rid))
		if err != nil {
			return fmt.Errorf("simulcast track %s: %w", l.rid, err)
		}
		sl := &simLayer{rid: l.rid, width: l.w, height: l.h, bitrate: top / l.divide, track: t}
		sl.active.Store(true)
		sim.layers = append(sim.layers, sl)
	}
	tr, err := m.pub.AddTransceiverFromTrack(sim.layers[0].track,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return fmt.Errorf("add simulcast video: %w", err)
	}
	sim.sender = tr.Sender()
	for _, l := range sim.layers[1:] {
		if err := sim.sender.AddEncoding(l.track); err != nil {
			return fmt.Errorf("simulcast encoding %s: %w", l.rid, err)
		}
	}
	m.sim = sim
	m.goTracked(func() { m.readSimulcastRTCP(sim) })
	for _, l := range sim.layers {
		m.goTracked(func() { m.paceSimulcastLayer(tr, l) })
	}
	return nil
}

// readSimulcastRTCP turns PLI and FIR for a layer's SSRC into a keyframe
// on that layer.
func (m *Media) readSimulcastRTCP(sim *simulcast) {
	for {
		pkts, _, err := sim.sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			var ssrc uint32
			switch p := p.(type) {
			case *rtcp.PictureLossIndication:
				ssrc = p.MediaSSRC
			case *rtcp.FullIntraRequest:
				ssrc = p.MediaSSRC
			default:
				continue
			}
			m.count.plis.Add(1)
			for i, enc := range sim.sender.GetParameters().Encodings {
				if uint32(enc.SSRC) == ssrc && i < len(sim.layers) {
					sim.layers[i].forceKey.Store(true)
				}
			}
		}
	}
}

// setLayers applies the server's layers message: a layer it says nobody
// receives stops; one it wants again starts with a keyframe.
func (m *Media) setLayers(msg *protocol.Layers) {
	if m.sim == nil {
		return
	}
	for _, l := range m.sim.layers {
		on, ok := msg.Active[l.rid]
		if !ok {
			continue
		}
		if on && !l.active.Swap(true) {
			l.forceKey.Store(true)
		} else if !on {
			l.active.Store(false)
		}
	}
}

// LayerActive reports whether a simulcast layer is being sent (false while
// the server has paused it); false without simulcast.
func (m *Media) LayerActive(rid string) bool {
	if m.sim == nil {
		return false
	}
	for _, l := range m.sim.layers {
		if l.rid == rid {
			return l.active.Load()
		}
	}
	return false
}

// LayerPacketsSent returns the packets sent on one simulcast layer.
func (m *Media) LayerPacketsSent(rid string) uint64 {
	if m.sim == nil {
		return 0
	}
	for _, l := range m.sim.layers {
		if l.rid == rid {
			return l.sent.Load()
		}
	}
	return 0
}

// paceSimulcastLayer sends one layer like paceVideoLoad, with the mid and
// rid header extensions the SFU needs to tell the layers apart, a keyframe
// header carrying the layer's size, and nothing while the layer is paused.
func (m *Media) paceSimulcastLayer(tr *webrtc.RTPTransceiver, l *simLayer) {
	if !m.waitConnected() {
		return
	}
	var midID, ridID uint8
	for _, e := range tr.Sender().GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			ridID = uint8(e.ID)
		}
	}
	mid := tr.Mid()
	bufs := newLoadBuffers(loadFrameSizes(max(l.bitrate, MinLoadVideoBitrate) / 8 / 30))
	key := vp8Keyframe()[:vp8LoadHeader-1]
	key[6], key[7] = byte(l.width), byte(l.width>>8)
	key[8], key[9] = byte(l.height), byte(l.height>>8)
	delta := vp8Delta()[:3]
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(rand.Uint32()), Timestamp: rand.Uint32()}}
	if midID != 0 && ridID != 0 {
		_ = pkt.Header.SetExtension(midID, []byte(mid))
		_ = pkt.Header.SetExtension(ridID, []byte(l.rid))
	}
	t := time.NewTicker(videoFrameInterval)
	defer t.Stop()
	sinceKey := keyframeEvery
	wasActive := true
	for {
		active := l.active.Load()
		if active {
			isKey := l.forceKey.Swap(false) || m.forceKey.Swap(false) || sinceKey >= keyframeEvery || !wasActive
			if isKey {
				sinceKey = 0
			}
			sinceKey++
			first := bufs[0]
			first[0] = 0x10
			if isKey {
				copy(first[1:], key)
			} else {
				copy(first[1:], delta)
			}
			for i, b := range bufs {
				if i > 0 {
					b[0] = 0x00
				}
				putStamp(b, time.Now())
				pkt.Marker = i == len(bufs)-1
				pkt.Payload = b
				if err := l.track.WriteRTP(&pkt); err == nil {
					l.sent.Add(1)
					m.count.videoSent.Add(1)
				}
				pkt.SequenceNumber++
			}
			if isKey {
				m.count.keyframesSent.Add(1)
			}
		}
		wasActive = active
		pkt.Timestamp += 90000 / 30
		select {
		case <-m.done:
			return
		case <-t.C:
		}
	}
}

// SetView tells the server how large this client shows each remote video
// (0×0 = hidden), so that it sends the simulcast layer that fits.
func (m *Media) SetView(ctx context.Context, tiles []protocol.Tile) error {
	return m.c.Send(ctx, protocol.TypeView, &protocol.View{CallID: m.callID, Tiles: tiles})
}
