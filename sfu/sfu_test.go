package sfu

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/testkit"
)

// sendingStreams returns the msid stream ids of the media sections an offer
// sends on.
func sendingStreams(t *testing.T, offer string) []string {
	t.Helper()
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		t.Fatalf("parse offer: %v", err)
	}
	var out []string
	for _, m := range d.MediaDescriptions {
		_, sendonly := m.Attribute("sendonly")
		_, sendrecv := m.Attribute("sendrecv")
		msid, ok := m.Attribute("msid")
		if ok && (sendonly || sendrecv) {
			out = append(out, strings.Fields(msid)[0])
		}
	}
	return out
}

// TestForwarding drives a room with pion clients over loopback: A publishes
// Opus and VP8, B and (later) C receive them with A's stream id, PLIs flow
// back to A, bad SDP is rejected without harm, A's departure renegotiates the
// others' sub PCs, and SFU.Close leaves no goroutines behind.
func TestForwarding(t *testing.T) {
	leakCheck := testkit.LeakCheck(t, 0)
	s, err := New(Config{UDPListen: "127.0.0.1:0"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if !s.UDPAddr().IP.IsLoopback() || s.UDPAddr().Port == 0 {
		t.Fatalf("UDPAddr = %v", s.UDPAddr())
	}
	room := s.Room("r1")
	if s.Room("r1") != room {
		t.Fatal("Room did not return the existing room")
	}

	a := joinClient(t, room, "A")
	b := joinClient(t, room, "B")
	a.publish()

	// B receives both tracks, labelled with A's stream id.
	var bAudio, bVideo *remoteTrack
	testkit.Eventually(t, 10*time.Second, "B to receive A's audio and video", func() bool {
		bAudio = b.trackFrom("user-A", webrtc.RTPCodecTypeAudio)
		bVideo = b.trackFrom("user-A", webrtc.RTPCodecTypeVideo)
		return bAudio != nil && bVideo != nil && bAudio.packets.Load() > 25 && bVideo.packets.Load() > 25
	})
	if got := bVideo.track.Codec().MimeType; !strings.EqualFold(got, webrtc.MimeTypeVP8) {
		t.Errorf("B's video codec = %s, want VP8", got)
	}
	if got := bAudio.track.Codec().MimeType; !strings.EqualFold(got, webrtc.MimeTypeOpus) {
		t.Errorf("B's audio codec = %s, want Opus", got)
	}
	if got := bVideo.track.ID(); got != "video" {
		t.Errorf("B's video track id = %q, want %q", got, "video")
	}

	// A never receives its own tracks: nothing to forward, so no offer.
	if n := a.offerCount(); n != 0 {
		t.Errorf("A got %d subscriber offers, want 0", n)
	}
	if n := len(a.remoteTracks()); n != 0 {
		t.Errorf("A received %d tracks, want 0", n)
	}

	// Counters on both sides of the SFU.
	as, bs := a.p.Stats(), b.p.Stats()
	if as.Audio.PacketsReceived == 0 || as.Video.PacketsReceived == 0 || as.Video.BytesReceived == 0 {
		t.Errorf("A stats: %+v", as)
	}
	if bs.Audio.PacketsForwarded == 0 || bs.Video.PacketsForwarded == 0 {
		t.Errorf("B stats: %+v", bs)
	}
	// B's media left by direct SRTP output, and B could decrypt it: the
	// packets B counted above got through B's SRTP session.
	if n := b.p.stats.direct.Load(); n == 0 || b.p.out.Load() == nil {
		t.Errorf("B's media went through pion's SRTP path (direct packets %d)", n)
	}

	// The SFU asked A for a keyframe when B subscribed.
	testkit.Eventually(t, 5*time.Second, "initial keyframe request to A", func() bool { return a.plis.Load() > 0 })

	// A PLI from B reaches A as a PLI for A's video SSRC.
	base := a.plis.Load()
	testkit.Eventually(t, 5*time.Second, "B's PLI to reach A", func() bool {
		pli := &rtcp.PictureLossIndication{MediaSSRC: uint32(bVideo.track.SSRC())}
		if err := b.sub.WriteRTCP([]rtcp.Packet{pli}); err != nil {
			t.Fatalf("B WriteRTCP: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
		return a.plis.Load() > base
	})

	// Bad SDP is rejected and media keeps flowing.
	for _, bad := range []string{
		"",
		"garbage",
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n",
	} {
		if _, err := a.p.HandleOffer(bad); !errors.Is(err, ErrBadSDP) {
			t.Errorf("HandleOffer(%q) error = %v, want ErrBadSDP", bad, err)
		}
	}
	if err := b.p.HandleAnswer("garbage"); !errors.Is(err, ErrNoOffer) && !errors.Is(err, ErrBadSDP) {
		t.Errorf("HandleAnswer(garbage) error = %v", err)
	}
	before := bVideo.packets.Load()
	testkit.Eventually(t, 5*time.Second, "media to keep flowing after bad SDP", func() bool {
		return bVideo.packets.Load() > before+20
	})

	// A late joiner receives A's tracks too.
	c := joinClient(t, room, "C")
	testkit.Eventually(t, 10*time.Second, "C to receive A's audio and video", func() bool {
		ca := c.trackFrom("user-A", webrtc.RTPCodecTypeAudio)
		cv := c.trackFrom("user-A", webrtc.RTPCodecTypeVideo)
		return ca != nil && cv != nil && ca.packets.Load() > 10 && cv.packets.Load() > 10
	})

	for _, cl := range []*client{a, b, c} {
		if errs := cl.errors(); len(errs) > 0 {
			t.Errorf("client %s signaling errors: %v", cl.name, errs)
		}
	}

	// A leaves: B's sub PC is renegotiated without A's tracks.
	offersBefore := b.offerCount()
	if err := a.p.Close(); err != nil {
		t.Errorf("A Close: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, "B's renegotiation without A's tracks", func() bool {
		return b.offerCount() > offersBefore && len(sendingStreams(t, b.lastOffer())) == 0
	})
	testkit.Eventually(t, 5*time.Second, "B's tracks from A to end", func() bool {
		return b.trackFrom("user-A", webrtc.RTPCodecTypeAudio) == nil &&
			b.trackFrom("user-A", webrtc.RTPCodecTypeVideo) == nil
	})
	if _, err := a.p.HandleOffer("v=0"); !errors.Is(err, ErrClosed) {
		t.Errorf("HandleOffer after Close: %v, want ErrClosed", err)
	}

	// SFU.Close closes everything and leaves no goroutines.
	if err := s.Close(); err != nil {
		t.Errorf("SFU Close: %v", err)
	}
	if err := b.p.AddICECandidate(PCSub, webrtc.ICECandidateInit{}); !errors.Is(err, ErrClosed) {
		t.Errorf("AddICECandidate after SFU Close: %v, want ErrClosed", err)
	}
	if _, err := s.Room("r1").Join("D", "user-D", b); !errors.Is(err, ErrClosed) {
		t.Errorf("Join after SFU Close: %v, want ErrClosed", err)
	}
	for _, cl := range []*client{a, b, c} {
		cl.close()
	}
	leakCheck()
}
