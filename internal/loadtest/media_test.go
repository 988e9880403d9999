package loadtest

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/server"
	"github.com/tandemcall/tandem/internal/testkit/testnode"
)

func TestScenarioPresets(t *testing.T) {
	want := map[string]Scenario{
		"fanout":  {Name: "fanout", Publishers: 1, Subscribers: 20, Audio: true, Video: true},
		"meeting": {Name: "meeting", Publishers: 6, Subscribers: 0, Audio: true, Video: true},
		"audio":   {Name: "audio", Publishers: 1, Subscribers: 100, Audio: true},
	}
	for name, w := range want {
		got, err := ScenarioByName(name)
		if err != nil || got != w {
			t.Errorf("ScenarioByName(%q) = %+v, %v; want %+v", name, got, err, w)
		}
	}
	if len(Scenarios()) != len(want) {
		t.Errorf("%d presets, want %d", len(Scenarios()), len(want))
	}
	if _, err := ScenarioByName("webinar"); !errors.Is(err, ErrUnknownScenario) {
		t.Errorf("ScenarioByName(webinar) = %v, want ErrUnknownScenario", err)
	}
}

// A load test never leaves the machine: a server off loopback is refused
// before any connection is made.
func TestMediaRefusesNonLoopbackServer(t *testing.T) {
	sc, _ := ScenarioByName("fanout")
	for _, u := range []string{"ws://192.0.2.1:7880/ws", "ws://[2001:db8::1]:7880/ws", "wss://10.0.0.1/ws", "http://127.0.0.1:7880/ws"} {
		_, err := Media(context.Background(), MediaConfig{URL: u, Scenario: sc, Tokens: AuthorityTokens{}})
		if err == nil {
			t.Errorf("%s: load started", u)
		}
		if _, err := NewDevTokens(u); err == nil {
			t.Errorf("%s: dev token source accepted", u)
		}
	}
	_, err := Media(context.Background(), MediaConfig{URL: "ws://192.0.2.1:7880/ws", Scenario: sc, Tokens: AuthorityTokens{}})
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("got %v, want a loopback refusal", err)
	}
}

func TestMediaConfigBounds(t *testing.T) {
	ok := MediaConfig{URL: "ws://127.0.0.1:1/ws", Tokens: AuthorityTokens{}, Scenario: Scenario{Publishers: 1, Subscribers: 1, Audio: true}}
	if err := checkMediaConfig(&ok); err != nil {
		t.Fatalf("a bounded load refused: %v", err)
	}
	if ok.Duration != DefaultDuration || ok.VideoBitrate != DefaultVideoBitrate || ok.AudioBytes != DefaultAudioBytes {
		t.Fatalf("defaults not filled in: %+v", ok)
	}
	for name, tweak := range map[string]func(*MediaConfig){
		"no publishers":       func(c *MediaConfig) { c.Scenario.Publishers = 0 },
		"too many publishers": func(c *MediaConfig) { c.Scenario.Publishers = MaxPublishers + 1 },
		"too many listeners":  func(c *MediaConfig) { c.Scenario.Subscribers = MaxSubscribers + 1 },
		"nothing published":   func(c *MediaConfig) { c.Scenario.Audio = false },
		"nobody receives":     func(c *MediaConfig) { c.Scenario.Subscribers = 0 },
		"endless":             func(c *MediaConfig) { c.Duration = MaxDuration + time.Second },
		"no tokens":           func(c *MediaConfig) { c.Tokens = nil },
	} {
		c := MediaConfig{URL: "ws://127.0.0.1:1/ws", Tokens: AuthorityTokens{}, Scenario: Scenario{Publishers: 1, Subscribers: 1, Audio: true}}
		tweak(&c)
		if err := checkMediaConfig(&c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Loss is counted per track from sequence numbers, across the 16-bit wrap,
// and only within the window.
func TestSeqCounterLoss(t *testing.T) {
	for _, tc := range []struct {
		name      string
		seqs      []uint16
		expected  uint64
		received  uint64
		wantLost  uint64
		wantHighE int64
	}{
		{"in order", []uint16{10, 11, 12, 13}, 4, 4, 0, 13},
		{"gap", []uint16{10, 11, 14, 15}, 6, 4, 2, 15},
		{"wrap", []uint16{65533, 65534, 65535, 0, 1, 2}, 6, 6, 0, 65538},
		{"gap across wrap", []uint16{65534, 1, 2}, 5, 3, 2, 65538},
		{"reordered", []uint16{5, 7, 6, 8}, 4, 4, 0, 8},
		{"late first packet", []uint16{5, 4, 6}, 3, 3, 0, 6},
		{"duplicate", []uint16{5, 6, 6, 7}, 3, 4, 0, 7},
		{"reordered across wrap", []uint16{65535, 1, 0, 2}, 4, 4, 0, 65538},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s seqCounter
			for _, q := range tc.seqs {
				s.add(q)
			}
			iv := s.position().since(s.origin())
			if iv.expected != tc.expected || iv.received != tc.received || iv.lost() != tc.wantLost || s.highest != tc.wantHighE {
				t.Fatalf("expected %d received %d lost %d highest %d; want %d %d %d %d",
					iv.expected, iv.received, iv.lost(), s.highest, tc.expected, tc.received, tc.wantLost, tc.wantHighE)
			}
		})
	}
}

func TestSeqCounterManyWraps(t *testing.T) {
	var s seqCounter
	seq := uint16(65000)
	dropped := 0
	for i := range 200_000 {
		if i%1000 == 999 {
			dropped++
		} else {
			s.add(seq)
		}
		seq++
	}
	iv := s.position().since(s.origin())
	if iv.expected != 200_000-1 || iv.lost() != uint64(dropped)-1 {
		// The last packet was dropped, so it is not expected.
		t.Fatalf("expected %d lost %d; want %d %d", iv.expected, iv.lost(), 200_000-1, dropped-1)
	}
}

// A member's window counts only what arrived between openWindow and
// closeWindow, including tracks that started in between.
func TestMemberWindow(t *testing.T) {
	mb := &member{tracks: map[uint32]*trackCounter{}}
	feed := func(ssrc uint32, from, to uint16, skip uint16) {
		for q := from; q != to; q++ {
			if q == skip {
				continue
			}
			tc := mb.tracks[ssrc]
			if tc == nil {
				tc = &trackCounter{}
				mb.tracks[ssrc] = tc
			}
			tc.seq.add(q)
			tc.bytes += 100
		}
	}
	feed(1, 65500, 10, 0)     // before the window: 46 expected, one lost
	mb.openWindow()           // from here
	feed(1, 10, 110, 50)      // 100 expected, one lost
	feed(2, 1000, 1100, 2000) // a track that starts in the window: 100 received
	mb.closeWindow()
	feed(1, 110, 200, 0) // after the window
	feed(3, 0, 10, 100)  // a track that starts after the window
	w := mb.window()
	if w.expected != 200 || w.received != 199 || w.lost != 1 || w.bytes != 19900 {
		t.Fatalf("window = %+v; want 200 expected, 199 received, 1 lost, 19900 bytes", w)
	}
}

func TestLatencyQuantiles(t *testing.T) {
	var h latencyHist
	if h.quantile(0.5) != 0 {
		t.Fatal("quantile of nothing is not 0")
	}
	// 1..10000 µs, uniform: p50 ≈ 5 ms, p95 ≈ 9.5 ms, p99 ≈ 9.9 ms.
	for us := 1; us <= 10000; us++ {
		h.add(time.Duration(us) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5 * time.Millisecond}, {0.95, 9500 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {1, 10 * time.Millisecond}} {
		got := h.quantile(tc.q)
		if rel := math.Abs(float64(got-tc.want)) / float64(tc.want); rel > 1.0/32 {
			t.Errorf("p%.0f = %v, want %v within 1/32", tc.q*100, got, tc.want)
		}
	}
	if h.max != 10*time.Millisecond || h.n != 10000 {
		t.Errorf("max %v n %d", h.max, h.n)
	}

	// Small values are exact; negative ones count as 0; huge ones are capped.
	var s latencyHist
	for _, d := range []time.Duration{-time.Millisecond, 3 * time.Microsecond, 3 * time.Microsecond, time.Hour} {
		s.add(d)
	}
	if got := s.quantile(0.5); got != 3*time.Microsecond {
		t.Errorf("p50 = %v, want 3µs", got)
	}
	if got := s.quantile(0.25); got != 0 {
		t.Errorf("p25 = %v, want 0", got)
	}
	if got := s.quantile(1); got < 60*time.Second || got > time.Hour {
		t.Errorf("p100 = %v, want the cap", got)
	}

	var m latencyHist
	m.merge(&h)
	m.merge(&s)
	if m.n != h.n+s.n || m.max != time.Hour {
		t.Errorf("merge: n %d max %v", m.n, m.max)
	}
}

// Every microsecond value lands in a bucket whose middle is within 1/32.
func TestHistBuckets(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<22; us += 1 + us/100 {
		i := histBucket(us)
		if i < prev || i >= histBuckets {
			t.Fatalf("bucket(%d) = %d after %d", us, i, prev)
		}
		prev = i
		if v := histValue(i); math.Abs(v-float64(us)) > float64(us)/32+0.5 {
			t.Fatalf("value(bucket(%d)) = %.1f", us, v)
		}
	}
	if histBucket(math.MaxUint64) != histBuckets-1 {
		t.Fatalf("the cap is not the last bucket")
	}
}

func TestParseProcStat(t *testing.T) {
	// A command name with spaces and a parenthesis; utime 250, stime 50.
	line := "4242 (tandem (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 12 0 100 1000000 500 18446744073709551615\n"
	got, err := parseProcStat([]byte(line))
	if err != nil || got != 3*time.Second {
		t.Fatalf("parseProcStat = %v, %v; want 3s", got, err)
	}
	if _, err := parseProcStat([]byte("4242 (x) S 1 2")); err == nil {
		t.Fatal("short stat accepted")
	}
	// This process's own figures parse.
	if _, err := processCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

// startServer runs a dev-mode node in this process on loopback ports chosen
// by the kernel.
func startServer(t *testing.T, tweaks ...func(*config.Config)) *server.Server {
	t.Helper()
	cfg := testnode.Config(t)
	for _, tw := range tweaks {
		tw(&cfg)
	}
	var log *slog.Logger
	if os.Getenv("TANDEM_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, _ := testnode.Start(t, cfg, log)
	return srv
}

// One publisher and three subscribers in a room of a real node: every
// subscriber receives both tracks, nothing is lost on loopback, and every
// packet carries a plausible latency.
func TestMediaLoadEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node and four pion clients")
	}
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Media(ctx, MediaConfig{
		URL:      "ws" + strings.TrimPrefix(srv.URL(), "http") + "/ws",
		Tokens:   AuthorityTokens{Authority: srv.Authority(), TTL: time.Hour},
		Scenario: Scenario{Name: "e2e", Publishers: 1, Subscribers: 3, Audio: true, Video: true},
		Warmup:   500 * time.Millisecond,
		Duration: 2 * time.Second,
		PID:      os.Getpid(),
	})
	t.Log("\n" + res.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Receivers != 3 || res.TracksExpected != 6 || res.TracksMissing != 0 || res.MediaErrors != 0 {
		t.Fatalf("receivers %d, tracks %d expected, %d missing, %d media errors",
			res.Receivers, res.TracksExpected, res.TracksMissing, res.MediaErrors)
	}
	// 3 subscribers × (50 audio + 120 video packets) a second; a busy
	// machine may delay the publisher's pacers.
	if res.PerSecond < 3*170/2 {
		t.Fatalf("%.0f packets/s forwarded, want about %d", res.PerSecond, 3*170)
	}
	if res.Lost != 0 || res.Expected < res.Forwarded {
		t.Fatalf("lost %d of %d expected, %d received", res.Lost, res.Expected, res.Forwarded)
	}
	// 1 Mbit/s of video and 120 B every 20 ms of audio, in payload.
	if res.BitrateMin < 500_000 || res.BitrateMax > 1_200_000 {
		t.Fatalf("bitrate per subscriber %.0f–%.0f bit/s, want about 1.05 Mbit/s", res.BitrateMin, res.BitrateMax)
	}
	if res.Latency.Samples != res.Forwarded || res.Latency.P50 <= 0 || res.Latency.P50 > time.Second {
		t.Fatalf("latency %+v over %d packets", res.Latency, res.Forwarded)
	}
	if res.ServerCPU <= 0 || res.CPUPerPacketUS <= 0 {
		t.Fatalf("CPU %v, %.2f µs per packet", res.ServerCPU, res.CPUPerPacketUS)
	}
}
