package sfu

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/sdpfrag"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/internal/whiptest"
)

// newWHIPPublisher returns a WHIP publisher on a test client PC and its
// offer.
func newWHIPPublisher(t *testing.T) (*whiptest.Publisher, string) {
	t.Helper()
	w := whiptest.NewPublisher(t, newClientPC(t))
	return w, whiptest.Offer(t, w.PC, nil)
}

// whepViewer is a pion client receiving over WHEP, counting packets per kind.
type whepViewer struct {
	pc           *webrtc.PeerConnection
	audio, video atomic.Int64
	tracks       atomic.Int32
}

func newWHEPViewer(t *testing.T, kinds ...webrtc.RTPCodecType) (*whepViewer, string) {
	t.Helper()
	v := &whepViewer{pc: newClientPC(t)}
	for _, k := range kinds {
		if _, err := v.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	v.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		v.tracks.Add(1)
		n := &v.audio
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			n = &v.video
		}
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			n.Add(1)
		}
	})
	return v, whiptest.Offer(t, v.pc, nil)
}

// TestWHIPWHEPSession publishes with a WHIP session and plays it with a
// WHEP session in the same room: the viewer receives both kinds, a call
// leg in the room receives the WHIP tracks too, an ICE restart of the
// viewer keeps media flowing, the publisher's leaving stops the viewer's
// tracks, and nothing leaks.
func TestWHIPWHEPSession(t *testing.T) {
	leakCheck := testkit.LeakCheck(t, 0)
	s, err := New(Config{UDPListen: "127.0.0.1:0"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	room := s.Room("whip:r")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Nothing published yet: a viewer is refused and leaves nothing.
	early, earlyOffer := newWHEPViewer(t, webrtc.RTPCodecTypeVideo)
	if _, _, err := room.View(ctx, "early", earlyOffer); !errors.Is(err, ErrNothingPublished) {
		t.Fatalf("View with nothing published: %v", err)
	}
	_ = early.pc.Close()

	pub, offer := newWHIPPublisher(t)
	defer pub.Close()
	if _, _, err := room.Publish(ctx, "bad", "x", "v=0\r\nnonsense"); !errors.Is(err, ErrBadSDP) {
		t.Fatalf("Publish bad SDP: %v", err)
	}
	ps, ans, err := room.Publish(ctx, "pub", "obs", offer)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ans, "a=candidate:") {
		t.Fatalf("answer carries no candidates:\n%s", ans)
	}
	if err := pub.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans}); err != nil {
		t.Fatal(err)
	}
	pub.Start()

	// A second publisher under the same stream id gets a distinct one.
	pub2, offer2 := newWHIPPublisher(t)
	ps2, ans2, err := room.Publish(ctx, "pub2", "obs", offer2)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub2.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans2}); err != nil {
		t.Fatal(err)
	}
	if id := ps2.Participant().StreamID(); id != "obs-2" {
		t.Errorf("second publisher's stream id %q, want obs-2", id)
	}
	_ = ps2.Close()
	pub2.Close()

	leg := joinClient(t, room, "leg")
	testkit.Eventually(t, 10*time.Second, "the call leg to receive the WHIP video", func() bool {
		rt := leg.trackFrom("obs", webrtc.RTPCodecTypeVideo)
		return rt != nil && rt.packets.Load() > 10
	})
	if ps.Participant().Stats().Video.PacketsForwarded != 0 {
		t.Error("a WHIP publisher was sent media")
	}

	var vs *WHIPSession
	viewer, voffer := newWHEPViewer(t, webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo)
	defer viewer.pc.Close()
	testkit.Eventually(t, 10*time.Second, "the publisher's tracks", func() bool {
		var err error
		var vans string
		vs, vans, err = room.View(ctx, "viewer", voffer)
		if errors.Is(err, ErrNothingPublished) {
			return false
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := viewer.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: vans}); err != nil {
			t.Fatal(err)
		}
		return true
	})
	testkit.Eventually(t, 10*time.Second, "the viewer to receive audio and video", func() bool {
		return viewer.audio.Load() > 20 && viewer.video.Load() > 20
	})
	if st := vs.Participant().Stats(); st.Video.PacketsForwarded == 0 || st.Audio.PacketsForwarded == 0 {
		t.Errorf("viewer stats: %+v", st)
	}

	// ICE restart: the client's new credentials, the SFU's new ones back.
	restart := whiptest.Offer(t, viewer.pc, &webrtc.OfferOptions{ICERestart: true})
	ufrag, pwd := sdpfrag.Credentials(restart)
	f, err := sdpfrag.Parse("a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n")
	if err != nil {
		t.Fatal(err)
	}
	frag, restarted, err := vs.Patch(ctx, f)
	if err != nil || !restarted {
		t.Fatalf("restart: %v %v", restarted, err)
	}
	back, err := sdpfrag.Parse(frag)
	if err != nil {
		t.Fatalf("restart answer %q: %v", frag, err)
	}
	oldUfrag, _ := sdpfrag.Credentials(viewer.pc.RemoteDescription().SDP)
	if back.Ufrag == oldUfrag || back.Pwd == "" || len(back.Candidates) == 0 {
		t.Fatalf("restart answer: %+v (old ufrag %s)", back, oldUfrag)
	}
	newAns := sdpfrag.WithCredentials(viewer.pc.RemoteDescription().SDP, back.Ufrag, back.Pwd)
	if err := viewer.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: newAns}); err != nil {
		t.Fatal(err)
	}
	for _, c := range back.Candidates {
		if err := viewer.pc.AddICECandidate(c); err != nil {
			t.Fatal(err)
		}
	}
	before := viewer.video.Load()
	testkit.Eventually(t, 10*time.Second, "video after the ICE restart", func() bool { return viewer.video.Load() > before+30 })

	// Stale credentials without a password are refused.
	if _, _, err := vs.Patch(ctx, sdpfrag.Fragment{Ufrag: ufrag + "x"}); !errors.Is(err, ErrICEMismatch) {
		t.Errorf("mismatched ufrag: %v", err)
	}

	// The publisher leaves: the viewer's tracks stop, the viewer stays.
	if err := ps.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ps.Done():
	default:
		t.Error("Done not closed after Close")
	}
	time.Sleep(300 * time.Millisecond)
	stopped := viewer.video.Load()
	time.Sleep(300 * time.Millisecond)
	if viewer.video.Load() != stopped {
		t.Error("viewer still receives video after the publisher left")
	}
	if len(vs.Participant().downTracks()) != 0 {
		t.Error("viewer keeps down tracks of a publisher that left")
	}

	// The viewer's client goes away: its PC fails or is closed.
	_ = viewer.pc.Close()
	_ = vs.Close()
	if s.CloseRoomIfEmpty("whip:r") {
		t.Error("room closed while the call leg is in it")
	}
	leg.close()
	if !s.CloseRoomIfEmpty("whip:r") {
		t.Error("empty room not closed")
	}
	if _, _, err := room.Publish(ctx, "late", "x", offer); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish into a closed room: %v", err)
	}
	pub.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	leakCheck()
}

// TestWHEPPicksNoScreen: what a WHEP viewer is given never includes a
// screen share, whether it was published last, is the only video, or is
// the helped user's screen of an assistance with view granted; the
// helper still may receive it.
func TestWHEPPicksNoScreen(t *testing.T) {
	alice := &Participant{id: "alice", streamID: "alice", kind: kindLeg}
	bob := &Participant{id: "bob", streamID: "bob", kind: kindLeg}
	viewer := &Participant{id: "whep-1", streamID: "whep-1", kind: kindViewer}
	aliceAudio := &forwardTrack{publisher: alice, kind: webrtc.RTPCodecTypeAudio, id: "audio"}
	aliceScreen := &forwardTrack{publisher: alice, kind: webrtc.RTPCodecTypeVideo, id: "screen", screen: true}
	bobVideo := &forwardTrack{publisher: bob, kind: webrtc.RTPCodecTypeVideo, id: "video"}
	bobAudio := &forwardTrack{publisher: bob, kind: webrtc.RTPCodecTypeAudio, id: "audio"}
	helping := &Assist{Helper: "bob", Helped: "alice", View: true}

	for _, c := range []struct {
		what             string
		tracks           []*forwardTrack
		assist           *Assist
		wantVideo, wantA *forwardTrack
	}{
		{"screen published last", []*forwardTrack{bobVideo, bobAudio, aliceAudio, aliceScreen}, nil, bobVideo, bobAudio},
		{"screen published last, assistance with view", []*forwardTrack{bobVideo, bobAudio, aliceAudio, aliceScreen}, helping, bobVideo, bobAudio},
		{"only a screen", []*forwardTrack{aliceAudio, aliceScreen}, helping, nil, aliceAudio},
		{"camera last", []*forwardTrack{aliceScreen, aliceAudio, bobVideo}, nil, bobVideo, aliceAudio},
	} {
		r := &Room{tracks: c.tracks}
		r.assist.cur.Store(c.assist)
		video, audio := r.pickLocked(viewer, true, true)
		if video != c.wantVideo || audio != c.wantA {
			t.Errorf("%s: picked video %s, audio %s; want %s, %s", c.what, trackName(video), trackName(audio), trackName(c.wantVideo), trackName(c.wantA))
		}
		if r.mayReceive(aliceScreen, viewer) {
			t.Errorf("%s: a viewer may receive the screen", c.what)
		}
		if c.assist != nil && !r.mayReceive(aliceScreen, bob) {
			t.Errorf("%s: the helper granted view may not receive the screen", c.what)
		}
	}
}

// trackName names a track as "<stream id>/<track id>".
func trackName(ft *forwardTrack) string {
	if ft == nil {
		return "none"
	}
	return ft.publisher.streamID + "/" + ft.id
}
