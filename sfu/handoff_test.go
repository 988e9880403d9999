package sfu

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// addTestLayer adds a layer to a test track, as the publisher's first
// packet of a new rid does.
func addTestLayer(ft *forwardTrack, rid string, width int32) *layer {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	old := *ft.layers.Load()
	l := &layer{ft: ft, idx: int8(len(old)), rid: rid, ssrc: uint32(200 + len(old)), cache: &packetCache{}, isKeyframe: keyframeReader(ft.codec.MimeType),
		firstAt: monotime()}
	l.width.Store(width)
	next := append(append([]*layer(nil), old...), l)
	ft.layers.Store(&next)
	ft.reorderLocked()
	return l
}

// TestHandoffKeepsTheQuality: Bob receives the top layer of Alice's phone.
// Her laptop takes the call and at first sends only its lowest layer, as
// a browser does while its bandwidth estimate ramps up. Bob keeps the
// phone's top layer meanwhile (the allocator does not lower him), and
// moves to the laptop at the keyframe of its top layer once it comes;
// only then has the laptop taken over. A handoff whose new device never
// sends a good layer takes the best it has after adoptWait.
func TestHandoffKeepsTheQuality(t *testing.T) {
	for _, tc := range []struct {
		name      string
		topLayer  bool // the laptop gets to send its top layer
		wantLayer string
	}{
		{"top layer comes", true, "f"},
		{"top layer never comes", false, "q"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := slog.New(slog.DiscardHandler)
			room := &Room{id: "r", log: log, participants: map[LegID]*Participant{}}
			phone := &Participant{id: "phone", streamID: "alice", kind: kindLeg, log: log, room: room, done: make(chan struct{})}
			laptop := &Participant{id: "laptop", streamID: "alice", kind: kindLeg, log: log, room: room, done: make(chan struct{}), replaces: phone}
			old, ols := newTestTrack(t, "q", "h", "f")
			old.publisher = phone
			for i, w := range []int32{320, 640, 1280} {
				ols[i].width.Store(w)
			}
			old.reorderLocked()
			subs, downs, _ := addBound(t, old, 1)
			bob, d := subs[0], downs[0]
			bob.downs = map[*downTrack]struct{}{d: {}}
			bob.log = log

			// Bob on the phone's top layer.
			d.setTarget(ols[2])
			oseq, nseq := uint16(1), uint16(30000)
			sendFrame(old, ols[2], oseq, 90, true)
			oseq++
			if d.cur.Load() != ols[2] {
				t.Fatal("Bob does not receive the phone's top layer")
			}

			// The laptop publishes its lowest layer only, and takes over.
			nw, _ := newTestTrack(t)
			nw.publisher = laptop
			nq := addTestLayer(nw, "q", 320)
			room.tracks = []*forwardTrack{old, nw}
			room.mu.Lock()
			have := room.adoptLocked(nw, phone)
			room.mu.Unlock()
			if !have[bob] {
				t.Fatal("Bob was not moved onto the laptop's track")
			}
			step := func(key bool) {
				sendFrame(old, ols[2], oseq, uint32(oseq)*3000, false)
				sendFrame(nw, nq, nseq, uint32(nseq)*3000, key)
				oseq++
				nseq++
			}
			for i := range 5 {
				step(i == 0)
				bob.allocate(time.Now(), tickInterval, []*downTrack{d})
			}
			if c := d.cur.Load(); c != ols[2] {
				t.Fatalf("Bob dropped to %s of %s while the laptop sent only its lowest layer", c.rid, c.ft.publisher.id)
			}
			if laptop.takenOver() {
				t.Fatal("the laptop took over before Bob received it")
			}

			var nf *layer
			if tc.topLayer {
				nf = addTestLayer(nw, "f", 1280)
				// Its encoder has just started: Bob waits for it to run.
				sendFrame(nw, nf, nseq+1000, uint32(nseq)*3000, true)
				step(false)
				if c := d.cur.Load(); c != ols[2] {
					t.Fatalf("Bob moved to %s of %s at the first keyframe of a layer that just started", c.rid, c.ft.publisher.id)
				}
				nf.firstAt -= int64(adoptWarmup) // it has run for a while now
				for range 3 {
					step(false)
					sendFrame(nw, nf, nseq+1000, uint32(nseq)*3000, false)
				}
				if d.cur.Load() != ols[2] {
					t.Fatal("Bob switched before the top layer's keyframe")
				}
				if d.target.Load() != nf {
					t.Fatal("Bob does not wait for the laptop's top layer now that it runs")
				}
				sendFrame(nw, nf, nseq+1000, uint32(nseq)*3000, true)
			} else {
				// Past the wait the allocator gives Bob what the laptop has.
				d.adopt.Load().until = monotime()
				bob.allocate(time.Now(), tickInterval, []*downTrack{d})
				step(true)
			}
			c := d.cur.Load()
			if c == nil || c.ft != nw || c.rid != tc.wantLayer {
				t.Fatalf("Bob receives %v, want the laptop's %s", c, tc.wantLayer)
			}
			if d.adopt.Load() != nil && !tc.topLayer {
				t.Error("the handoff's want outlived its wait")
			}
			if !laptop.takenOver() {
				t.Error("the laptop has not taken over although Bob receives it")
			}
		})
	}
}

// TestWithStartBitrate adds the start bitrate to each video codec's fmtp,
// creating the line where a codec has none, and leaves audio, RTX and the
// rest of the answer alone.
func TestWithStartBitrate(t *testing.T) {
	in := strings.Join([]string{
		"v=0", "o=- 1 2 IN IP4 0.0.0.0", "s=-",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
		"m=video 9 UDP/TLS/RTP/SAVPF 96 97 102", "a=mid:1",
		"a=rtpmap:96 VP8/90000", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
		"a=rtpmap:102 H264/90000", "a=fmtp:102 profile-level-id=42e01f",
		"a=sendrecv", "",
	}, "\r\n")
	got := withStartBitrate(in, 1800)
	want := strings.Join([]string{
		"v=0", "o=- 1 2 IN IP4 0.0.0.0", "s=-",
		"m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
		"m=video 9 UDP/TLS/RTP/SAVPF 96 97 102", "a=mid:1",
		"a=rtpmap:96 VP8/90000", "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96",
		"a=rtpmap:102 H264/90000", "a=fmtp:102 profile-level-id=42e01f;x-google-start-bitrate=1800",
		"a=sendrecv", "a=fmtp:96 x-google-start-bitrate=1800", "",
	}, "\r\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if again := withStartBitrate(got, 1800); again != got {
		t.Errorf("applied twice:\n%s", again)
	}
}

// audioBinding binds a downTrack to Opus without a PeerConnection.
type audioBinding struct{ fakeBinding }

func (audioBinding) CodecParameters() []webrtc.RTPCodecParameters {
	audio, _ := codecList()
	return audio
}

// TestAudioSwitchStartsAfterTheLastPacket: the new device's first audio
// packet may arrive a moment after the old device's last. Its timestamp
// lands after the whole of that packet (20 ms at 48 kHz), never inside
// it, where a receiver would drop one or overlap the two.
func TestAudioSwitchStartsAfterTheLastPacket(t *testing.T) {
	mk := func(id LegID) (*forwardTrack, *layer) {
		pub := &Participant{id: id, streamID: "alice", log: slog.New(slog.DiscardHandler)}
		ft := &forwardTrack{publisher: pub, kind: webrtc.RTPCodecTypeAudio, codec: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000}, id: "audio", log: pub.log}
		ft.downs.Store(&[]*downTrack{})
		l := &layer{ft: ft, ssrc: 1, isKeyframe: keyframeReader(ft.codec.MimeType)}
		ft.layers.Store(&[]*layer{l})
		ft.order.Store(&[]*layer{l})
		return ft, l
	}
	old, ol := mk("phone")
	nw, nl := mk("laptop")
	bob := &Participant{id: "bob", bwe: newEstimator()}
	bob.subUp.Store(true)
	d, err := old.addDown(bob)
	if err != nil {
		t.Fatal(err)
	}
	w := &discardWriter{}
	if _, err := d.Bind(audioBinding{fakeBinding{id: "a", w: w}}); err != nil {
		t.Fatal(err)
	}
	send := func(ft *forwardTrack, l *layer, seq uint16, ts uint32) {
		ft.fanout(l, &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts}, Payload: []byte{1, 2, 3}}, true, 15, &rtp.Header{})
	}
	send(old, ol, 10, 48000)
	last := w.last.Timestamp
	d.ft.Store(nw)
	d.setTarget(nl)
	nw.downs.Store(&[]*downTrack{d})
	send(nw, nl, 900, 5) // at once: well within the 20 ms the last packet plays
	if w.n != 2 {
		t.Fatalf("forwarded %d packets, want 2", w.n)
	}
	if step := w.last.Timestamp - last; step < 960 {
		t.Errorf("the new source's first packet is %d samples after the last one's start, want at least 960", step)
	}
}
