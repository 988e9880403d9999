package client

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

// videoStream builds the packets of a synthetic VP8 stream: frames of
// perFrame packets, a keyframe every keyEvery frames, 30 frames a second.
type videoStream struct {
	perFrame, keyEvery int
	seq                uint16
	frame              int
	t0                 time.Time
}

type sentPacket struct {
	p  *rtp.Packet
	at time.Time // when it would arrive without loss
}

func (s *videoStream) nextFrame() []sentPacket {
	key := s.frame%s.keyEvery == 0
	at := s.t0.Add(time.Duration(s.frame) * time.Second / 30)
	ts := uint32(s.frame * 3000)
	out := make([]sentPacket, 0, s.perFrame)
	for i := range s.perFrame {
		payload := []byte{0x00, 0xaa, 0xbb}
		if i == 0 {
			payload = append([]byte{0x10}, vp8Delta()[:10]...)
			if key {
				payload = append([]byte{0x10}, vp8Keyframe()[:10]...)
			}
		}
		out = append(out, sentPacket{
			p:  &rtp.Packet{Header: rtp.Header{SequenceNumber: s.seq, Timestamp: ts, Marker: i == s.perFrame-1}, Payload: payload},
			at: at,
		})
		s.seq++
	}
	s.frame++
	return out
}

func newVideoQuality() *trackQuality {
	return newTrackQuality(RemoteTrack{Kind: "video"}, 90000)
}

func TestPlayoutInOrder(t *testing.T) {
	tq := newVideoQuality()
	s := &videoStream{perFrame: 3, keyEvery: 30, seq: 65500, t0: time.Unix(100, 0)} // wraps
	for range 90 {
		for _, sp := range s.nextFrame() {
			tq.observe(sp.p, sp.at)
		}
	}
	q := tq.snapshot(s.t0.Add(3 * time.Second))
	if q.FramesDecoded != 90 || q.KeyframesDecoded != 3 || q.FramesDropped != 0 || q.FramesUndecodable != 0 {
		t.Fatalf("quality = %+v, want 90 frames decoded, 3 keyframes, nothing dropped", q)
	}
	if q.PacketsExpected != 270 || q.PacketsReceived != 270 || q.PacketsLost() != 0 {
		t.Fatalf("packets = %d of %d expected", q.PacketsReceived, q.PacketsExpected)
	}
	if q.Width != 320 || q.Height != 240 {
		t.Fatalf("size = %dx%d, want 320x240", q.Width, q.Height)
	}
	if q.LongestFreeze > 40*time.Millisecond || q.LongestGap > 40*time.Millisecond {
		t.Fatalf("freeze %v, gap %v for a steady 30 fps", q.LongestFreeze, q.LongestGap)
	}
}

// A packet lost and retransmitted within the playout delay costs nothing
// but a short freeze.
func TestPlayoutRetransmissionInTime(t *testing.T) {
	tq := newVideoQuality()
	s := &videoStream{perFrame: 3, keyEvery: 30, t0: time.Unix(100, 0)}
	var lost sentPacket
	for f := range 30 {
		for i, sp := range s.nextFrame() {
			if f == 5 && i == 1 {
				lost = sp
				continue
			}
			tq.observe(sp.p, sp.at)
		}
		if f == 8 { // three frames later: about 100 ms
			tq.observe(lost.p, lost.at.Add(100*time.Millisecond))
		}
	}
	q := tq.snapshot(s.t0.Add(time.Second))
	if q.FramesDecoded != 30 || q.FramesDropped != 0 || q.PacketsLost() != 0 || q.PacketsLate != 0 {
		t.Fatalf("quality = %+v, want every frame decoded", q)
	}
	if q.LongestFreeze < 100*time.Millisecond || q.LongestFreeze > 140*time.Millisecond {
		t.Fatalf("freeze %v, want about 100 ms while waiting for the retransmission", q.LongestFreeze)
	}
}

// A packet that never comes holds playout up until the next keyframe has
// arrived complete; the model skips to it.
func TestPlayoutSkipsToKeyframe(t *testing.T) {
	tq := newVideoQuality()
	s := &videoStream{perFrame: 2, keyEvery: 30, t0: time.Unix(100, 0)}
	var lost sentPacket
	for f := range 60 {
		for i, sp := range s.nextFrame() {
			if f == 10 && i == 0 {
				lost = sp
				continue
			}
			tq.observe(sp.p, sp.at)
		}
	}
	tq.observe(lost.p, lost.at.Add(2*frameWait)) // too late
	q := tq.snapshot(s.t0.Add(2 * time.Second))
	// Frames 0–9 and 30–59 decoded; 10–29 skipped.
	if q.FramesDecoded != 40 || q.FramesDropped != 20 || q.FramesUndecodable != 0 || q.KeyframesDecoded != 2 {
		t.Fatalf("quality = %+v, want 40 decoded, 20 dropped", q)
	}
	if q.PacketsLate != 1 || q.PacketsLost() != 1 {
		t.Fatalf("late %d, lost %d; want the one packet late and lost", q.PacketsLate, q.PacketsLost())
	}
	if q.LongestFreeze != 700*time.Millisecond {
		t.Fatalf("freeze %v, want 700 ms from frame 9 to the keyframe", q.LongestFreeze)
	}
}

// Without a keyframe in sight, the model gives the frame up after
// frameWait; the frames after it cannot be decoded until the next keyframe.
func TestPlayoutGivesUpAfterWaiting(t *testing.T) {
	tq := newVideoQuality()
	s := &videoStream{perFrame: 2, keyEvery: 60, t0: time.Unix(100, 0)}
	for f := range 90 {
		for i, sp := range s.nextFrame() {
			if f == 10 && i == 0 {
				continue
			}
			tq.observe(sp.p, sp.at)
		}
	}
	q := tq.snapshot(s.t0.Add(3 * time.Second))
	// Frames 0–9 and 60–89 decoded; 10 dropped; 11–59 undecodable.
	if q.FramesDecoded != 40 || q.FramesDropped != 1 || q.FramesUndecodable != 49 || q.KeyframesDecoded != 2 {
		t.Fatalf("quality = %+v, want 40 decoded, 1 dropped, 49 undecodable", q)
	}
	if q.LongestFreeze < frameWait {
		t.Fatalf("freeze %v, want the wait for the packet and then for the keyframe", q.LongestFreeze)
	}
}

// Frames lost whole, and padding packets between frames.
func TestPlayoutWholeFramesAndPadding(t *testing.T) {
	tq := newVideoQuality()
	s := &videoStream{perFrame: 2, keyEvery: 10, t0: time.Unix(100, 0)}
	for f := range 60 {
		frame := s.nextFrame()
		if f == 3 || f == 4 {
			continue // two frames lost whole
		}
		for _, sp := range frame {
			tq.observe(sp.p, sp.at)
		}
		if f == 12 { // padding takes a sequence number
			tq.observe(&rtp.Packet{Header: rtp.Header{SequenceNumber: s.seq, Timestamp: frame[0].p.Timestamp}}, frame[0].at)
			s.seq++
		}
	}
	q := tq.snapshot(s.t0.Add(time.Second))
	// 0–2 and 10–59 decoded; 5–9 skipped for the keyframe at 10 (3 and 4,
	// of which nothing arrived, are not counted).
	if q.FramesDecoded != 53 || q.FramesDropped != 5 || q.FramesUndecodable != 0 {
		t.Fatalf("quality = %+v", q)
	}
	if q.PacketsExpected != 121 || q.PacketsReceived != 117 {
		t.Fatalf("packets = %d of %d expected, want 117 of 121", q.PacketsReceived, q.PacketsExpected)
	}
	if q.LongestMediaGap != 100*time.Millisecond {
		t.Fatalf("longest media gap %v, want 100 ms (two frames lost)", q.LongestMediaGap)
	}
}

func TestResetQuality(t *testing.T) {
	tq := newVideoQuality()
	s := &videoStream{perFrame: 1, keyEvery: 30, t0: time.Unix(100, 0)}
	for range 10 {
		for _, sp := range s.nextFrame() {
			tq.observe(sp.p, sp.at)
		}
	}
	tq.reset(s.t0.Add(10 * time.Second / 30))
	for range 5 {
		for _, sp := range s.nextFrame() {
			tq.observe(sp.p, sp.at)
		}
	}
	q := tq.snapshot(s.t0.Add(15 * time.Second / 30))
	if q.FramesDecoded != 5 || q.PacketsExpected != 5 || q.PacketsReceived != 5 || q.Width != 320 {
		t.Fatalf("after reset = %+v, want the last 5 frames and the known size", q)
	}
}

func TestAudioQuality(t *testing.T) {
	tq := newTrackQuality(RemoteTrack{Kind: "audio"}, 48000)
	t0 := time.Unix(100, 0)
	for i := range 100 {
		if i >= 40 && i < 44 { // four in a row lost
			continue
		}
		if i%10 == 5 {
			continue
		}
		p := &rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(65530 + i), Timestamp: uint32(4294960000 + 960*i)}, Payload: []byte{0xf8}}
		at := t0.Add(time.Duration(i) * 20 * time.Millisecond)
		if i == 70 {
			at = at.Add(150 * time.Millisecond) // a stall on the way, not a loss
		}
		tq.observe(p, at)
	}
	q := tq.snapshot(t0.Add(2 * time.Second))
	if q.PacketsExpected != 100 || q.PacketsReceived != 86 || q.PacketsLost() != 14 {
		t.Fatalf("packets = %d of %d expected, want 86 of 100", q.PacketsReceived, q.PacketsExpected)
	}
	if q.LongestMediaGap != 100*time.Millisecond {
		t.Fatalf("longest media gap %v, want 100 ms (four lost)", q.LongestMediaGap)
	}
	if q.LongestGap != 170*time.Millisecond {
		t.Fatalf("longest arrival gap %v, want 170 ms (the stall)", q.LongestGap)
	}
	if q.FramesDecoded != 0 || q.LongestFreeze != 0 {
		t.Fatalf("audio has video counts: %+v", q)
	}
}

func TestParseVP8(t *testing.T) {
	key := vp8Keyframe()[:10]
	tests := []struct {
		name          string
		payload       []byte
		start, isKey  bool
		width, height int
	}{
		{"keyframe", append([]byte{0x10}, key...), true, true, 320, 240},
		{"keyframe with 15-bit picture id", append([]byte{0x90, 0x80, 0x81, 0x02}, key...), true, true, 320, 240},
		{"keyframe with tl0picidx and tid", append([]byte{0x90, 0x60, 0x05, 0x20}, key...), true, true, 320, 240},
		{"delta", append([]byte{0x10}, vp8Delta()[:3]...), true, false, 0, 0},
		{"continuation", []byte{0x00, 0x00, 0x00}, false, false, 0, 0},
		{"other partition", append([]byte{0x11}, key...), false, false, 0, 0},
		{"truncated", []byte{0x90}, false, false, 0, 0},
		{"empty", nil, false, false, 0, 0},
	}
	for _, tt := range tests {
		start, isKey, w, h := parseVP8(tt.payload)
		if start != tt.start || isKey != tt.isKey || w != tt.width || h != tt.height {
			t.Errorf("%s: got start=%v key=%v %dx%d, want start=%v key=%v %dx%d",
				tt.name, start, isKey, w, h, tt.start, tt.isKey, tt.width, tt.height)
		}
	}
}
