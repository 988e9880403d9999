// Package whiptest is a pion WHIP publisher for tests: what OBS or
// GStreamer would send, Opus and VP8 without trickle.
package whiptest

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// Offer creates an offer on pc and returns it once every candidate is in
// it (a WHIP client without trickle).
func Offer(t testing.TB, pc *webrtc.PeerConnection, opts *webrtc.OfferOptions) string {
	t.Helper()
	offer, err := pc.CreateOffer(opts)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("client gathering did not complete")
	}
	return pc.LocalDescription().SDP
}

// Publisher sends fake Opus and VP8 on a pion PeerConnection.
type Publisher struct {
	PC           *webrtc.PeerConnection
	audio, video *webrtc.TrackLocalStaticSample
	stop         chan struct{}
	wg           sync.WaitGroup
}

// NewPublisher adds send-only Opus and VP8 tracks (stream "obs") to pc and
// drains their RTCP; it is closed at the test's cleanup.
func NewPublisher(t testing.TB, pc *webrtc.PeerConnection) *Publisher {
	t.Helper()
	p := &Publisher{PC: pc, stop: make(chan struct{})}
	var err error
	if p.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "obs"); err != nil {
		t.Fatal(err)
	}
	if p.video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "obs"); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []webrtc.TrackLocal{p.audio, p.video} {
		tx, err := p.PC.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		p.wg.Go(func() {
			for {
				if _, _, err := tx.Sender().ReadRTCP(); err != nil {
					return
				}
			}
		})
	}
	t.Cleanup(p.Close)
	return p
}

// Start sends 20 ms Opus frames and 25 fps VP8 with a keyframe a second
// until Close.
func (p *Publisher) Start() {
	p.wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			_ = p.audio.WriteSample(media.Sample{Data: []byte{0x78, 1, 2, 3}, Duration: 20 * time.Millisecond})
			if n%2 == 0 {
				vp8 := make([]byte, 300)
				if n%50 != 0 {
					vp8[0] = 0x01 // interframe
				}
				_ = p.video.WriteSample(media.Sample{Data: vp8, Duration: 40 * time.Millisecond})
			}
		}
	})
}

// Close stops sending and closes the PeerConnection; it may be called
// more than once.
func (p *Publisher) Close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	_ = p.PC.Close()
	p.wg.Wait()
}
