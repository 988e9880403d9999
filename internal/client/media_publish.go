package client

import (
	"fmt"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// Pacing of the synthetic tracks.
const (
	audioFrameInterval = 20 * time.Millisecond
	videoFrameInterval = time.Second / 30
	keyframeEvery      = 30 // frames
)

// publish adds the synthetic tracks to "pub" and starts their pacers and
// RTCP readers.
func (m *Media) publish(o MediaOptions) error {
	stream := "tandem"
	if w := m.c.welcome; w != nil {
		stream = w.User
	}
	if o.Audio {
		codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
		var track webrtc.TrackLocal
		var pace func()
		if o.AudioFrameBytes > 0 {
			t, err := webrtc.NewTrackLocalStaticRTP(codec, "audio", stream)
			if err != nil {
				return fmt.Errorf("audio track: %w", err)
			}
			track, pace = t, func() { m.paceAudioLoad(t, o.AudioFrameBytes) }
		} else {
			t, err := webrtc.NewTrackLocalStaticSample(codec, "audio", stream)
			if err != nil {
				return fmt.Errorf("audio track: %w", err)
			}
			track, pace = t, func() { m.paceAudio(t, o.Tag) }
		}
		sender, err := m.addSendTrack(track)
		if err != nil {
			return err
		}
		m.goTracked(func() { m.readRTCP(sender, false) })
		m.goTracked(pace)
	}
	if o.Screen || o.ScreenTrack != nil {
		t := o.ScreenTrack
		if t == nil {
			var err error
			t, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "screen", stream)
			if err != nil {
				return fmt.Errorf("screen track: %w", err)
			}
			m.goTracked(func() { m.paceVideo(t, o.ScreenTag) })
		}
		var err error
		if m.screen, err = m.addSendTrack(t); err != nil {
			return err
		}
		sender := m.screen
		m.goTracked(func() { m.readRTCP(sender, true) })
	}
	if o.Video && o.Simulcast {
		return m.publishSimulcast(stream, o.VideoBitrate)
	}
	if o.Video {
		codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
		var track webrtc.TrackLocal
		var pace func()
		if o.VideoBitrate > 0 {
			t, err := webrtc.NewTrackLocalStaticRTP(codec, "video", stream)
			if err != nil {
				return fmt.Errorf("video track: %w", err)
			}
			track, pace = t, func() { m.paceVideoLoad(t, o.VideoBitrate) }
		} else {
			t, err := webrtc.NewTrackLocalStaticSample(codec, "video", stream)
			if err != nil {
				return fmt.Errorf("video track: %w", err)
			}
			track, pace = t, func() { m.paceVideo(t, o.Tag) }
		}
		sender, err := m.addSendTrack(track)
		if err != nil {
			return err
		}
		m.goTracked(func() { m.readRTCP(sender, true) })
		m.goTracked(pace)
	}
	return nil
}

// addSendTrack adds a send-only transceiver for track.
func (m *Media) addSendTrack(track webrtc.TrackLocal) (*webrtc.RTPSender, error) {
	tr, err := m.pub.AddTransceiverFromTrack(track,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, fmt.Errorf("add %s track: %w", track.Kind(), err)
	}
	return tr.Sender(), nil
}

// readRTCP reads RTCP for one sender until "pub" closes; NACK handling
// depends on it. On video, PLI and FIR make the next frame a keyframe.
func (m *Media) readRTCP(sender *webrtc.RTPSender, video bool) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		if !video {
			continue
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				m.count.plis.Add(1)
				m.forceKey.Store(true)
			}
		}
	}
}

// waitConnected waits until "pub" connects and reports false if the Media
// closed first. Samples written before then would go nowhere.
func (m *Media) waitConnected() bool {
	select {
	case <-m.pubConnected:
		return true
	case <-m.done:
		return false
	}
}

// paceAudio writes one Opus frame every 20 ms.
func (m *Media) paceAudio(track *webrtc.TrackLocalStaticSample, tag byte) {
	if !m.waitConnected() {
		return
	}
	frame := tagged(opusFrame, tag)
	t := time.NewTicker(audioFrameInterval)
	defer t.Stop()
	for {
		err := track.WriteSample(media.Sample{Data: frame, Duration: audioFrameInterval})
		if err == nil {
			m.count.audioSent.Add(1)
		}
		select {
		case <-m.done:
			return
		case <-t.C:
		}
	}
}

// paceVideo writes 30 VP8 frames a second: a keyframe first, then every
// 30th frame and after each keyframe request.
func (m *Media) paceVideo(track *webrtc.TrackLocalStaticSample, tag byte) {
	if !m.waitConnected() {
		return
	}
	key, delta := tagged(vp8Keyframe(), tag), tagged(vp8Delta(), tag)
	t := time.NewTicker(videoFrameInterval)
	defer t.Stop()
	sinceKey := keyframeEvery
	for {
		frame := delta
		isKey := m.forceKey.Swap(false) || sinceKey >= keyframeEvery
		if isKey {
			frame, sinceKey = key, 0
		}
		sinceKey++
		err := track.WriteSample(media.Sample{Data: frame, Duration: videoFrameInterval})
		if err == nil {
			m.count.videoSent.Add(1)
			if isKey {
				m.count.keyframesSent.Add(1)
			}
		}
		select {
		case <-m.done:
			return
		case <-t.C:
		}
	}
}

// tagged returns frame with its last byte set to tag (a copy), or frame
// itself for tag 0.
func tagged(frame []byte, tag byte) []byte {
	if tag == 0 {
		return frame
	}
	out := append([]byte(nil), frame...)
	out[len(out)-1] = tag
	return out
}
