package client

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

func TestStampRoundTrip(t *testing.T) {
	b := make([]byte, 40)
	at := time.Unix(1_700_000_000, 123_456_789)
	putStamp(b, at)
	got, ok := SentAt(b)
	if !ok || !got.Equal(at) {
		t.Fatalf("SentAt = %v, %v; want %v", got, ok, at)
	}
	for _, p := range [][]byte{nil, opusFrame, vp8Delta(), b[:stampLen-1]} {
		if _, ok := SentAt(p); ok {
			t.Fatalf("SentAt(%d bytes without a stamp) = ok", len(p))
		}
	}
}

func TestLoadFrameSizes(t *testing.T) {
	for _, tc := range []struct {
		frame int
		want  []int
	}{
		{23, []int{23}},
		{1200, []int{1200}},
		{1201, []int{601, 600}},
		{4166, []int{1042, 1042, 1042, 1040}}, // 1 Mbit/s at 30 fps
		{3600, []int{1200, 1200, 1200}},
	} {
		got := loadFrameSizes(tc.frame)
		if !slices.Equal(got, tc.want) {
			t.Errorf("loadFrameSizes(%d) = %v, want %v", tc.frame, got, tc.want)
		}
	}
}

func TestMediaOptionsChecked(t *testing.T) {
	fs := newFakeServer(t, nil)
	c := dial(t, fs, "alice")
	for _, o := range []MediaOptions{
		{ReceiveOnly: true, Audio: true},
		{Audio: true, AudioFrameBytes: MinLoadAudioBytes - 1},
		{Audio: true, AudioFrameBytes: MaxLoadPayload + 1},
		{Video: true, VideoBitrate: MinLoadVideoBitrate - 1},
	} {
		if _, err := c.StartMedia(testContext(t), "c_1", o); !errors.Is(err, ErrMediaOptions) {
			t.Errorf("StartMedia(%+v) = %v, want ErrMediaOptions", o, err)
		}
	}
}

// received collects what OnRTP sees, per kind.
type received struct {
	mu      sync.Mutex
	sizes   map[string][]int
	seqs    map[string][]uint16
	latency []time.Duration
	stamped int
}

func (r *received) onRTP(tr RemoteTrack, p *rtp.Packet, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sizes[tr.Kind] = append(r.sizes[tr.Kind], len(p.Payload))
	r.seqs[tr.Kind] = append(r.seqs[tr.Kind], p.SequenceNumber)
	if sent, ok := SentAt(p.Payload); ok {
		r.stamped++
		r.latency = append(r.latency, at.Sub(sent))
	}
}

func (r *received) count(kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seqs[kind])
}

// Load sources send realistic packet sizes with a send time in each, and
// OnRTP sees every packet that comes back.
func TestMediaLoadSources(t *testing.T) {
	leaks := testkit.LeakCheck(t, 0)
	sfu := &echoSFU{t: t}
	fs := newFakeServer(t, sfu.handle)
	ctx := testContext(t)
	c, err := Dial(ctx, Options{URL: fs.url(), Token: "alice", LoopbackOnly: true})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	rec := &received{sizes: map[string][]int{}, seqs: map[string][]uint16{}}
	m, err := c.StartMedia(ctx, "c_1", MediaOptions{
		Audio: true, Video: true, VideoBitrate: 1_000_000, AudioFrameBytes: 120, OnRTP: rec.onRTP,
	})
	if err != nil {
		t.Fatalf("StartMedia: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, "audio, video and a keyframe to come back", func() bool {
		return rec.count("audio") >= 25 && rec.count("video") >= 60 && m.Stats().KeyframesReceived > 0
	})
	s := m.Stats()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sfu.close()
	fs.stop()
	leaks()

	if s.KeyframesReceived == 0 || s.Video.PacketsSent < s.Video.PacketsReceived {
		t.Fatalf("stats = %+v", s)
	}
	for _, n := range rec.sizes["audio"] {
		if n != 120 {
			t.Fatalf("audio payload of %d bytes, want 120", n)
		}
	}
	for _, n := range rec.sizes["video"] {
		if n < 1000 || n > MaxLoadPayload {
			t.Fatalf("video payload of %d bytes, want 1000–%d", n, MaxLoadPayload)
		}
	}
	for kind, seqs := range rec.seqs {
		for i := 1; i < len(seqs); i++ {
			if seqs[i] != seqs[i-1]+1 {
				t.Fatalf("%s sequence numbers %d then %d", kind, seqs[i-1], seqs[i])
			}
		}
	}
	if rec.stamped != rec.count("audio")+rec.count("video") {
		t.Fatalf("%d of %d packets stamped", rec.stamped, rec.count("audio")+rec.count("video"))
	}
	for _, d := range rec.latency {
		if d <= 0 || d > 5*time.Second {
			t.Fatalf("latency %v", d)
		}
	}
}

// A receive-only member still offers on "pub", with nothing to send.
func TestMediaReceiveOnlyOffers(t *testing.T) {
	offers := make(chan string, 1)
	fs := newFakeServer(t, func(fc *fakeConn, msg any) {
		if m, ok := msg.(*protocol.SDP); ok && m.PC == protocol.PCPub {
			offers <- m.SDP
		}
	})
	c := dial(t, fs, "alice")
	ctx := testContext(t)
	m, err := c.StartMedia(ctx, "c_1", MediaOptions{ReceiveOnly: true})
	if err != nil {
		t.Fatalf("StartMedia: %v", err)
	}
	defer m.Close()
	select {
	case sdp := <-offers:
		if !strings.Contains(sdp, "m=audio") || !strings.Contains(sdp, "a=recvonly") || strings.Contains(sdp, "a=sendonly") {
			t.Fatalf("pub offer is not receive-only:\n%s", sdp)
		}
	case <-ctx.Done():
		t.Fatal("no pub offer")
	}
}
