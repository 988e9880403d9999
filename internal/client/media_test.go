package client

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// echoSFU is a one-leg SFU for tests: whatever the client publishes on
// "pub" comes back on "sub" under the stream id "echo", and PLIs from "sub"
// go to the publisher. A ping instead makes it offer "sub" with an audio
// track of user "bob". Its handler runs on the fake server's reader.
type echoSFU struct {
	t *testing.T

	pub, sub           *webrtc.PeerConnection
	subAudio, subVideo *webrtc.TrackLocalStaticRTP
	videoSSRC          atomic.Uint32
	forwarders         sync.WaitGroup // the sub-only feeder
	stop               chan struct{}  // stops the feeder
	callID             string
}

func (s *echoSFU) handle(fc *fakeConn, msg any) {
	switch m := msg.(type) {
	case *protocol.SDP:
		switch m.PC {
		case protocol.PCPub:
			s.answerPub(fc, m)
		case protocol.PCSub:
			if err := s.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
				s.t.Errorf("sfu: set sub answer: %v", err)
			}
		}
	case *protocol.Header: // ping: offer "sub" before the client starts media
		s.offerSubOnly(fc)
		fc.send(protocol.TypePong, &protocol.Header{})
	case *protocol.ICE:
		pc := s.pub
		if m.PC == protocol.PCSub {
			pc = s.sub
		}
		if err := pc.AddICECandidate(toInit(m.Candidate)); err != nil {
			s.t.Errorf("sfu: add %s candidate: %v", m.PC, err)
		}
	}
}

func (s *echoSFU) newPC(fc *fakeConn, name string) *webrtc.PeerConnection {
	pc, err := newPeerConnection(slog.New(slog.DiscardHandler), webrtc.Configuration{}, pcSettings{loopback: true})
	if err != nil {
		s.t.Fatalf("sfu: %v", err)
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		var cand protocol.ICECandidate
		if c != nil {
			cand = fromInit(c.ToJSON())
		}
		fc.send(protocol.TypeICE, &protocol.ICE{CallID: s.callID, PC: name, Candidate: cand})
	})
	return pc
}

// answerPub answers the client's offer and offers "sub" with one audio and
// one video track.
func (s *echoSFU) answerPub(fc *fakeConn, m *protocol.SDP) {
	s.callID = m.CallID
	s.pub = s.newPC(fc, protocol.PCPub)
	s.sub = s.newPC(fc, protocol.PCSub)
	var err error
	s.subAudio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "echo")
	if err != nil {
		s.t.Fatal(err)
	}
	s.subVideo, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "v", "echo")
	if err != nil {
		s.t.Fatal(err)
	}
	for _, tr := range []*webrtc.TrackLocalStaticRTP{s.subAudio, s.subVideo} {
		sender, err := s.sub.AddTrack(tr)
		if err != nil {
			s.t.Fatal(err)
		}
		go s.relayPLI(sender)
	}
	s.pub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		out := s.subAudio
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			out = s.subVideo
			s.videoSSRC.Store(uint32(tr.SSRC()))
		}
		go func() {
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				_ = out.WriteRTP(p)
			}
		}()
	})

	if err := s.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
		s.t.Fatalf("sfu: set pub offer: %v", err)
	}
	answer, err := s.pub.CreateAnswer(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.pub.SetLocalDescription(answer); err != nil {
		s.t.Fatal(err)
	}
	fc.send(protocol.TypeSDP, &protocol.SDP{CallID: m.CallID, PC: protocol.PCPub, Kind: protocol.SDPAnswer, SDP: answer.SDP})

	offer, err := s.sub.CreateOffer(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.sub.SetLocalDescription(offer); err != nil {
		s.t.Fatal(err)
	}
	fc.send(protocol.TypeSDP, &protocol.SDP{CallID: m.CallID, PC: protocol.PCSub, Kind: protocol.SDPOffer, SDP: offer.SDP})
}

// relayPLI passes keyframe requests from "sub" to the publisher.
func (s *echoSFU) relayPLI(sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if _, ok := p.(*rtcp.PictureLossIndication); ok {
				_ = s.pub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: s.videoSSRC.Load()}})
			}
		}
	}
}

// offerSubOnly offers "sub" with one audio track fed with Opus frames
// until close.
func (s *echoSFU) offerSubOnly(fc *fakeConn) {
	s.callID = "c_1"
	s.stop = make(chan struct{})
	s.sub = s.newPC(fc, protocol.PCSub)
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "bob")
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.sub.AddTrack(track); err != nil {
		s.t.Fatal(err)
	}
	s.forwarders.Add(1)
	go func() {
		defer s.forwarders.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
				_ = track.WriteSample(media.Sample{Data: opusFrame, Duration: 20 * time.Millisecond})
			}
		}
	}()
	offer, err := s.sub.CreateOffer(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.sub.SetLocalDescription(offer); err != nil {
		s.t.Fatal(err)
	}
	fc.send(protocol.TypeSDP, &protocol.SDP{CallID: s.callID, PC: protocol.PCSub, Kind: protocol.SDPOffer, SDP: offer.SDP})
}

func (s *echoSFU) close() {
	if s.stop != nil {
		close(s.stop)
		s.forwarders.Wait()
	}
	if s.pub != nil {
		_ = s.pub.Close()
	}
	if s.sub != nil {
		_ = s.sub.Close()
	}
}

func TestMediaEcho(t *testing.T) {
	leaks := testkit.LeakCheck(t, 0)
	sfu := &echoSFU{t: t}
	fs := newFakeServer(t, sfu.handle)
	ctx := testContext(t)
	// A verbose logger exercises the pion log adapter under -race.
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug - 4}))
	c, err := Dial(ctx, Options{URL: fs.url(), Token: "alice", Logger: log, LoopbackOnly: true})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	m, err := c.StartMedia(ctx, "c_1", MediaOptions{Audio: true, Video: true})
	if err != nil {
		t.Fatalf("StartMedia: %v", err)
	}
	if _, err := c.StartMedia(ctx, "c_1", MediaOptions{}); !errors.Is(err, ErrMediaActive) {
		t.Fatalf("second StartMedia = %v, want ErrMediaActive", err)
	}

	testkit.Eventually(t, 10*time.Second, "audio and video to come back", func() bool {
		s := m.Stats()
		return s.Audio.PacketsReceived >= 10 && s.Video.PacketsReceived >= 10 && s.KeyframesReceived >= 1
	})
	if got := m.RemoteStreams(); !slices.Equal(got, []string{"echo"}) {
		t.Fatalf("RemoteStreams = %v, want [echo]", got)
	}
	s := m.Stats()
	if s.Audio.PacketsSent == 0 || s.Video.PacketsSent == 0 || s.Audio.BytesReceived < s.Audio.PacketsReceived*uint64(len(opusFrame)) {
		t.Fatalf("stats = %+v", s)
	}

	keys := s.KeyframesReceived
	if err := m.RequestKeyframe(); err != nil {
		t.Fatalf("RequestKeyframe: %v", err)
	}
	testkit.Eventually(t, 5*time.Second, "a PLI and a keyframe", func() bool {
		s := m.Stats()
		return s.PLIsReceived >= 1 && s.KeyframesReceived > keys
	})
	if err := m.Err(); err != nil {
		t.Fatalf("media error: %v", err)
	}
	// No sdp or ice reached the buffer.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if msg, err := c.Next(short); err == nil {
		t.Fatalf("Next = %#v, want nothing", msg)
	}

	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sfu.close()
	fs.stop()
	leaks()
}

func TestMediaTakesBufferedOffer(t *testing.T) {
	leaks := testkit.LeakCheck(t, 0)
	sfu := &echoSFU{t: t}
	fs := newFakeServer(t, sfu.handle)
	ctx := testContext(t)
	c, err := Dial(ctx, Options{URL: fs.url(), Token: "alice", LoopbackOnly: true})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if err := c.Send(ctx, protocol.TypePing, &protocol.Header{}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	// The offer arrives before the pong and waits in the buffer.
	if _, err := c.WaitFor(ctx, func(m any) bool { _, ok := m.(*protocol.Header); return ok }); err != nil {
		t.Fatalf("WaitFor pong: %v", err)
	}
	m, err := c.StartMedia(ctx, "c_1", MediaOptions{})
	if err != nil {
		t.Fatalf("StartMedia: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, "audio from the buffered offer", func() bool {
		return m.Stats().Audio.PacketsReceived >= 10
	})
	if got := m.RemoteStreams(); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("RemoteStreams = %v, want [bob]", got)
	}
	if s := m.Stats(); s.Audio.PacketsSent != 0 || s.Video.PacketsReceived != 0 {
		t.Fatalf("stats = %+v, want audio received only", s)
	}
	if err := m.RequestKeyframe(); !errors.Is(err, ErrNoVideo) {
		t.Fatalf("RequestKeyframe = %v, want ErrNoVideo", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Media.Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sfu.close()
	fs.stop()
	leaks()
}
