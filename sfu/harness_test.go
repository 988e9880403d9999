package sfu

import (
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/tandemcall/tandem/internal/testkit/pionpc"
)

// testLogger logs at Debug when SFU_TEST_DEBUG is set, else only warnings.
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("SFU_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test", t.Name())
}

// newTestSFU starts an SFU on a loopback port and closes it at cleanup.
func newTestSFU(t *testing.T) *SFU {
	t.Helper()
	s, err := New(Config{UDPListen: "127.0.0.1:0"}, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// fifo is an unbounded ordered queue of actions run by one goroutine: the
// test's stand-in for a signaling session's event loop.
type fifo struct {
	mu     sync.Mutex
	items  []func()
	signal chan struct{}
	done   chan struct{}
	wg     sync.WaitGroup
}

func newFIFO() *fifo {
	return &fifo{signal: make(chan struct{}, 1), done: make(chan struct{})}
}

func (q *fifo) post(f func()) {
	q.mu.Lock()
	q.items = append(q.items, f)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *fifo) run() {
	q.wg.Go(func() {
		for {
			select {
			case <-q.done:
				return
			case <-q.signal:
			}
			for {
				q.mu.Lock()
				if len(q.items) == 0 {
					q.mu.Unlock()
					break
				}
				f := q.items[0]
				q.items = q.items[1:]
				q.mu.Unlock()
				f()
			}
		}
	})
}

func (q *fifo) stop() {
	close(q.done)
	q.wg.Wait()
}

// remoteTrack is a track a test client receives on its sub PC.
type remoteTrack struct {
	track   *webrtc.TrackRemote
	packets atomic.Int64
	ended   atomic.Bool
}

// client is a pion peer driving one participant over loopback.
type client struct {
	t        *testing.T
	name     string
	p        *Participant
	q        *fifo
	pub, sub *webrtc.PeerConnection
	wg       sync.WaitGroup

	mu     sync.Mutex
	tracks []*remoteTrack
	offers []string
	errs   []error

	audio, video *webrtc.TrackLocalStaticSample
	videoSender  *webrtc.RTPSender
	plis         atomic.Int64 // PLIs received for the video sender's SSRC
	stopMedia    chan struct{}
	closeOnce    sync.Once

	// garbageAnswer makes the client answer its first sub offer with bad
	// SDP before the real answer; the error is kept in garbageErr.
	garbageAnswer bool
	garbageErr    error

	// mangleOffer and mangleAnswer, if set, change the client's pub offers
	// and sub answers on their way to the SFU.
	mangleOffer, mangleAnswer func(string) string

	// subSettings, if set, adjusts the setting engine of the sub PC.
	subSettings func(*webrtc.SettingEngine)
	// pubRegistry, if set, registers more on the pub PC's media engine
	// and interceptor registry.
	pubRegistry func(*webrtc.MediaEngine, *interceptor.Registry) error
}

var _ Events = (*client)(nil)

// newClientPC builds a loopback-only pion PeerConnection with pion's default
// codecs and interceptors; the non-nil tune functions adjust its setting
// engine.
func newClientPC(t *testing.T, tune ...func(*webrtc.SettingEngine)) *webrtc.PeerConnection {
	return newClientPCWith(t, nil, tune...)
}

// newClientPCWith is newClientPC with reg, if not nil, registering more on
// the media engine and interceptor registry.
func newClientPCWith(t *testing.T, reg func(*webrtc.MediaEngine, *interceptor.Registry) error,
	tune ...func(*webrtc.SettingEngine),
) *webrtc.PeerConnection {
	t.Helper()
	return pionpc.New(t, pionpc.Options{AnswerAsDTLSClient: true, Register: reg, Tune: tune})
}

// joinClient joins room r as name (stream id "user-"+name) with a pion
// client behind it.
func joinClient(t *testing.T, r *Room, name string, opts ...func(*client)) *client {
	t.Helper()
	c := &client{t: t, name: name, q: newFIFO(), stopMedia: make(chan struct{})}
	for _, o := range opts {
		o(c)
	}
	c.pub = newClientPCWith(t, c.pubRegistry)
	c.sub = newClientPC(t, c.subSettings)
	c.pub.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic != nil {
			init := ic.ToJSON()
			c.q.post(func() { c.check(c.p.AddICECandidate(PCPub, init)) })
		}
	})
	c.sub.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic != nil {
			init := ic.ToJSON()
			c.q.post(func() { c.check(c.p.AddICECandidate(PCSub, init)) })
		}
	})
	c.sub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		rt := &remoteTrack{track: tr}
		c.mu.Lock()
		c.tracks = append(c.tracks, rt)
		c.mu.Unlock()
		c.wg.Go(func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := tr.Read(buf); err != nil {
					rt.ended.Store(true)
					return
				}
				rt.packets.Add(1)
			}
		})
	})
	p, err := r.Join(LegID(name), "user-"+name, c)
	if err != nil {
		t.Fatalf("Join %s: %v", name, err)
	}
	c.p = p
	c.q.run()
	t.Cleanup(c.close)
	return c
}

// check records an unexpected signaling error.
func (c *client) check(err error) {
	if err != nil {
		c.mu.Lock()
		c.errs = append(c.errs, err)
		c.mu.Unlock()
	}
}

func (c *client) errors() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.errs...)
}

// SubscriberOffer answers the SFU's offer on the client's sub PC.
func (c *client) SubscriberOffer(sdp string) {
	c.q.post(func() {
		c.mu.Lock()
		c.offers = append(c.offers, sdp)
		c.mu.Unlock()
		if err := c.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
			c.check(err)
			return
		}
		ans, err := c.sub.CreateAnswer(nil)
		if err != nil {
			c.check(err)
			return
		}
		if err := c.sub.SetLocalDescription(ans); err != nil {
			c.check(err)
			return
		}
		c.mu.Lock()
		garbage := c.garbageAnswer
		c.garbageAnswer = false
		c.mu.Unlock()
		if garbage {
			err := c.p.HandleAnswer("v=0\r\nnot an answer")
			c.mu.Lock()
			c.garbageErr = err
			c.mu.Unlock()
		}
		sdp := ans.SDP
		if c.mangleAnswer != nil {
			sdp = c.mangleAnswer(sdp)
		}
		c.check(c.p.HandleAnswer(sdp))
	})
}

// ICECandidate passes an SFU candidate to the client PC.
func (c *client) ICECandidate(pc string, ic *webrtc.ICECandidateInit) {
	if ic == nil {
		return
	}
	init := *ic
	c.q.post(func() {
		target := c.pub
		if pc == PCSub {
			target = c.sub
		}
		c.check(target.AddICECandidate(init))
	})
}

// ConnectionState is not used by the tests.
func (c *client) ConnectionState(string, webrtc.PeerConnectionState) {}
func (c *client) Layers(string, map[string]bool)                     {}
func (c *client) Speakers([]Speaker)                                 {}

// publish adds an Opus and a VP8 track to the client's pub PC, negotiates it
// and starts sending synthetic media.
func (c *client) publish() {
	t := c.t
	var err error
	c.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "a", "client-stream")
	if err != nil {
		t.Fatal(err)
	}
	c.video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "v", "client-stream")
	if err != nil {
		t.Fatal(err)
	}
	sendonly := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}
	at, err := c.pub.AddTransceiverFromTrack(c.audio, sendonly)
	if err != nil {
		t.Fatal(err)
	}
	vt, err := c.pub.AddTransceiverFromTrack(c.video, sendonly)
	if err != nil {
		t.Fatal(err)
	}
	c.videoSender = vt.Sender()
	c.drainRTCP(at.Sender(), false)
	c.drainRTCP(vt.Sender(), true)
	c.negotiatePub()
	c.wg.Go(c.sendMedia)
}

// negotiatePub offers the client's pub PC to the SFU and applies its answer,
// failing the test on any signaling error.
func (c *client) negotiatePub() {
	t := c.t
	t.Helper()
	answered := make(chan struct{})
	c.q.post(func() {
		defer close(answered)
		offer, err := c.pub.CreateOffer(nil)
		if err != nil {
			c.check(err)
			return
		}
		if err := c.pub.SetLocalDescription(offer); err != nil {
			c.check(err)
			return
		}
		sdp := offer.SDP
		if c.mangleOffer != nil {
			sdp = c.mangleOffer(sdp)
		}
		ans, err := c.p.HandleOffer(sdp)
		if err != nil {
			c.check(err)
			return
		}
		c.check(c.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans}))
	})
	<-answered
	if errs := c.errors(); len(errs) > 0 {
		t.Fatalf("publish: %v", errs)
	}
}

// drainRTCP reads RTCP from a sender, counting PLIs for its SSRC if video.
func (c *client) drainRTCP(s *webrtc.RTPSender, video bool) {
	c.wg.Go(func() {
		for {
			pkts, _, err := s.ReadRTCP()
			if err != nil {
				return
			}
			if !video {
				continue
			}
			ssrc := uint32(s.GetParameters().Encodings[0].SSRC)
			for _, p := range pkts {
				if pli, ok := p.(*rtcp.PictureLossIndication); ok && pli.MediaSSRC == ssrc {
					c.plis.Add(1)
				}
			}
		}
	})
}

// sendMedia writes 20 ms Opus frames and ~30 fps VP8 frames (a keyframe
// every 30 frames) until stopped.
func (c *client) sendMedia() {
	audioTick := time.NewTicker(20 * time.Millisecond)
	defer audioTick.Stop()
	videoTick := time.NewTicker(33 * time.Millisecond)
	defer videoTick.Stop()
	opus := make([]byte, 40)
	frame := 0
	for {
		select {
		case <-c.stopMedia:
			return
		case <-audioTick.C:
			opus[0] = 0x78 // any TOC byte: the SFU does not decode.
			_ = c.audio.WriteSample(media.Sample{Data: opus, Duration: 20 * time.Millisecond})
		case <-videoTick.C:
			vp8 := make([]byte, 300)
			if frame%30 != 0 {
				vp8[0] = 0x01 // bit 0 set: interframe
			}
			frame++
			_ = c.video.WriteSample(media.Sample{Data: vp8, Duration: 33 * time.Millisecond})
		}
	}
}

// remoteTracks returns a copy of the tracks received so far.
func (c *client) remoteTracks() []*remoteTrack {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*remoteTrack(nil), c.tracks...)
}

func (c *client) offerCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.offers)
}

func (c *client) lastOffer() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.offers) == 0 {
		return ""
	}
	return c.offers[len(c.offers)-1]
}

// trackFrom returns the received live track of the given kind from stream,
// or nil.
func (c *client) trackFrom(stream string, kind webrtc.RTPCodecType) *remoteTrack {
	for _, rt := range c.remoteTracks() {
		if rt.track.StreamID() == stream && rt.track.Kind() == kind && !rt.ended.Load() {
			return rt
		}
	}
	return nil
}

// close stops media and closes the client's PCs and goroutines. The
// participant is closed too.
func (c *client) close() {
	c.closeOnce.Do(func() {
		close(c.stopMedia)
		if c.p != nil {
			_ = c.p.Close()
		}
		_ = c.pub.Close()
		_ = c.sub.Close()
		c.wg.Wait()
		c.q.stop()
	})
}
