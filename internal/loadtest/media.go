package loadtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/bits"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/client"
)

// A media load puts synthetic publishers and receive-only subscribers in
// one room of a running node and measures, over a window after a warm-up,
// what the subscribers receive: bitrate, loss by RTP sequence numbers,
// one-way latency from the send time stamped in every packet (publishers
// and subscribers share this process's clock), and the server's CPU time
// per forwarded packet.

// Scenario is a named shape of room.
type Scenario struct {
	Name        string
	Publishers  int  // members that publish and also receive everyone else
	Subscribers int  // receive-only members
	Audio       bool // each publisher sends Opus
	Video       bool // each publisher sends VP8
}

// Scenarios are the presets of "tandem loadtest media --scenario".
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "fanout", Publishers: 1, Subscribers: 20, Audio: true, Video: true},
		{Name: "meeting", Publishers: 6, Subscribers: 0, Audio: true, Video: true},
		{Name: "audio", Publishers: 1, Subscribers: 100, Audio: true},
	}
}

// ErrUnknownScenario means no preset has the name asked for.
var ErrUnknownScenario = errors.New("loadtest: unknown scenario")

// ScenarioByName returns the preset called name.
func ScenarioByName(name string) (Scenario, error) {
	for _, s := range Scenarios() {
		if s.Name == name {
			return s, nil
		}
	}
	names := make([]string, 0, 3)
	for _, s := range Scenarios() {
		names = append(names, s.Name)
	}
	return Scenario{}, fmt.Errorf("%w %q (have %s)", ErrUnknownScenario, name, strings.Join(names, ", "))
}

// Bounds of a media load.
const (
	MaxPublishers  = 50
	MaxSubscribers = 500
	MaxDuration    = 10 * time.Minute
	maxWarmup      = time.Minute
	maxSetup       = 5 * time.Minute
)

// Defaults of a media load.
const (
	DefaultVideoBitrate = 1_000_000 // bits per second per video publisher
	DefaultAudioBytes   = 120       // bytes per 20 ms Opus packet
	DefaultDuration     = 20 * time.Second
	DefaultWarmup       = 3 * time.Second
	defaultSetup        = 60 * time.Second
	defaultDialers      = 8
	hangupWait          = 5 * time.Second
)

// TokenSource mints an access token for one member of a load.
type TokenSource interface {
	Token(ctx context.Context, user, device string) (string, error)
}

// MediaConfig describes a media load.
type MediaConfig struct {
	URL          string      // signaling WebSocket, e.g. ws://127.0.0.1:7880/ws
	Tokens       TokenSource // mints each member's token
	Scenario     Scenario
	Room         string        // room name; empty = a fresh one per run
	VideoBitrate int           // bits per second per video track; 0 = DefaultVideoBitrate
	Simulcast    bool          // video as three simulcast layers, VideoBitrate the top one
	AudioBytes   int           // bytes per Opus packet; 0 = DefaultAudioBytes
	Warmup       time.Duration // after every member receives every track
	Duration     time.Duration // the measured window
	SetupTimeout time.Duration // for every member to join and receive every track
	PID          int           // server process whose CPU time is measured; 0 = none
	Dialers      int           // members set up at once
	Logger       *slog.Logger  // the members' client logs; nil discards them
}

// Latency is a latency distribution's summary.
type Latency struct {
	Samples            uint64
	P50, P95, P99, Max time.Duration
}

// MediaResult is what a media load measured in its window.
type MediaResult struct {
	Scenario    string
	Publishers  int
	Subscribers int // receive-only members
	Receivers   int // members that should receive something
	Setup       time.Duration
	Window      time.Duration

	TracksExpected int // remote tracks summed over receivers
	TracksMissing  int // of those, never received
	MediaErrors    int // members whose media signaling failed

	Forwarded  uint64  // RTP packets the receivers got in the window
	PerSecond  float64 // Forwarded per second
	Expected   uint64  // by sequence numbers
	Lost       uint64  // Expected minus received, per track, not below 0
	LossPct    float64
	BitrateMin float64 // RTP payload bits per second, per receiver
	BitrateAvg float64
	BitrateMax float64

	Latency      Latency // all packets
	AudioLatency Latency
	VideoLatency Latency

	ServerCPU       time.Duration // user + system time in the window (PID given)
	CPUPerPacketUS  float64       // ServerCPU per forwarded packet, µs
	ServerCPUPctAvg float64       // ServerCPU over the window, % of one core
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (r MediaResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s: %d publishers, %d receive-only subscribers, %d receivers; set up in %s, measured %s\n",
		r.Scenario, r.Publishers, r.Subscribers, r.Receivers, r.Setup.Round(time.Millisecond), r.Window.Round(time.Millisecond))
	fmt.Fprintf(&b, "tracks: %d expected, %d missing; media errors: %d\n", r.TracksExpected, r.TracksMissing, r.MediaErrors)
	fmt.Fprintf(&b, "forwarded: %d packets (%.0f/s); lost %d of %d expected (%.3f %%)\n",
		r.Forwarded, r.PerSecond, r.Lost, r.Expected, r.LossPct)
	fmt.Fprintf(&b, "received bitrate per receiver (RTP payload): min %.0f, avg %.0f, max %.0f kbit/s\n",
		r.BitrateMin/1000, r.BitrateAvg/1000, r.BitrateMax/1000)
	for _, l := range []struct {
		name string
		l    Latency
	}{{"all", r.Latency}, {"audio", r.AudioLatency}, {"video", r.VideoLatency}} {
		if l.l.Samples == 0 {
			continue
		}
		fmt.Fprintf(&b, "latency %s: p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, max %.2f ms (%d packets)\n",
			l.name, ms(l.l.P50), ms(l.l.P95), ms(l.l.P99), ms(l.l.Max), l.l.Samples)
	}
	if r.ServerCPU > 0 {
		fmt.Fprintf(&b, "server CPU: %s in the window (%.0f %% of a core): %.2f µs per forwarded packet\n",
			r.ServerCPU, r.ServerCPUPctAvg, r.CPUPerPacketUS)
	}
	b.WriteString(r.Summary())
	b.WriteByte('\n')
	return b.String()
}

// Summary is the result on one line of key=value pairs, starting with
// "result".
func (r MediaResult) Summary() string {
	cpu := "-"
	if r.ServerCPU > 0 {
		cpu = strconv.FormatFloat(r.CPUPerPacketUS, 'f', 2, 64)
	}
	return fmt.Sprintf("result scenario=%s publishers=%d subscribers=%d receivers=%d forwarded_pps=%.0f cpu_us_per_packet=%s loss_pct=%.3f latency_p50_ms=%.2f latency_p95_ms=%.2f missing_tracks=%d",
		r.Scenario, r.Publishers, r.Subscribers, r.Receivers, r.PerSecond, cpu, r.LossPct, ms(r.Latency.P50), ms(r.Latency.P95), r.TracksMissing)
}

// checkMediaConfig fills in defaults and refuses loads that leave the
// machine or have no bounds.
func checkMediaConfig(cfg *MediaConfig) error {
	if err := checkLoopbackURL(cfg.URL); err != nil {
		return err
	}
	sc := cfg.Scenario
	switch {
	case cfg.Tokens == nil:
		return errors.New("loadtest: no token source")
	case sc.Publishers < 1 || sc.Publishers > MaxPublishers:
		return fmt.Errorf("loadtest: %d publishers, want 1–%d", sc.Publishers, MaxPublishers)
	case sc.Subscribers < 0 || sc.Subscribers > MaxSubscribers:
		return fmt.Errorf("loadtest: %d subscribers, want 0–%d", sc.Subscribers, MaxSubscribers)
	case !sc.Audio && !sc.Video:
		return errors.New("loadtest: publishers send neither audio nor video")
	case sc.Publishers == 1 && sc.Subscribers == 0:
		return errors.New("loadtest: one publisher and no subscribers: nothing is forwarded")
	case cfg.Duration < 0 || cfg.Duration > MaxDuration:
		return fmt.Errorf("loadtest: duration %s, want at most %s", cfg.Duration, MaxDuration)
	case cfg.Warmup < 0 || cfg.Warmup > maxWarmup:
		return fmt.Errorf("loadtest: warm-up %s, want at most %s", cfg.Warmup, maxWarmup)
	case cfg.SetupTimeout < 0 || cfg.SetupTimeout > maxSetup:
		return fmt.Errorf("loadtest: setup timeout %s, want at most %s", cfg.SetupTimeout, maxSetup)
	}
	if cfg.VideoBitrate == 0 {
		cfg.VideoBitrate = DefaultVideoBitrate
	}
	if cfg.AudioBytes == 0 {
		cfg.AudioBytes = DefaultAudioBytes
	}
	if cfg.Duration == 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.SetupTimeout == 0 {
		cfg.SetupTimeout = defaultSetup
	}
	if cfg.Dialers <= 0 {
		cfg.Dialers = defaultDialers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// checkLoopbackURL refuses a signaling URL whose host is not a loopback
// address.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("loadtest: url %q: %w", raw, err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return fmt.Errorf("loadtest: url %q: scheme must be ws or wss", raw)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"ws": "80", "wss": "443"}[u.Scheme]
	}
	addr, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return fmt.Errorf("loadtest: url %q: %w", raw, err)
	}
	if !addr.IP.IsLoopback() {
		return fmt.Errorf("loadtest: server %s is not a loopback address; load tests stay on this machine", addr.IP)
	}
	return nil
}

// Media runs a media load and reports what it measured in its window.
func Media(ctx context.Context, cfg MediaConfig) (MediaResult, error) {
	if err := checkMediaConfig(&cfg); err != nil {
		return MediaResult{}, err
	}
	sc := cfg.Scenario
	res := MediaResult{Scenario: sc.Name, Publishers: sc.Publishers, Subscribers: sc.Subscribers}
	run := runID()
	room := cfg.Room
	if room == "" {
		room = "load-" + sc.Name + "-" + run
	}
	members := make([]*member, 0, sc.Publishers+sc.Subscribers)
	perPublisher := 0
	if sc.Audio {
		perPublisher++
	}
	if sc.Video {
		perPublisher++
	}
	for i := range sc.Publishers {
		members = append(members, &member{
			name: fmt.Sprintf("load-%s-p%02d", run, i+1), publishes: true,
			wantTracks: (sc.Publishers - 1) * perPublisher,
		})
	}
	for i := range sc.Subscribers {
		members = append(members, &member{
			name:       fmt.Sprintf("load-%s-s%03d", run, i+1),
			wantTracks: sc.Publishers * perPublisher,
		})
	}
	for _, mb := range members {
		mb.tracks = make(map[uint32]*trackCounter)
		if mb.wantTracks > 0 {
			res.Receivers++
			res.TracksExpected += mb.wantTracks
		}
	}
	defer teardown(members)

	start := time.Now()
	setupCtx, cancel := context.WithTimeout(ctx, cfg.SetupTimeout)
	err := setup(setupCtx, cfg, room, members)
	if err == nil {
		err = waitTracks(setupCtx, members)
	}
	cancel()
	res.Setup = time.Since(start)
	if err != nil {
		res.TracksMissing = missingTracks(members)
		return res, fmt.Errorf("loadtest: setting up %d members in room %s: %w", len(members), room, err)
	}

	if !sleepCtx(ctx, cfg.Warmup) {
		return res, ctx.Err()
	}
	var cpuBefore, cpuAfter time.Duration
	if cfg.PID > 0 {
		if cpuBefore, err = processCPU(cfg.PID); err != nil {
			return res, err
		}
	}
	for _, mb := range members {
		mb.openWindow()
	}
	winStart := time.Now()
	sleepCtx(ctx, cfg.Duration)
	for _, mb := range members {
		mb.closeWindow()
	}
	res.Window = time.Since(winStart)
	if cfg.PID > 0 {
		if cpuAfter, err = processCPU(cfg.PID); err != nil {
			return res, err
		}
	}
	res.ServerCPU = cpuAfter - cpuBefore
	summarize(&res, members)
	return res, ctx.Err()
}

// runID names one run's room and users, so that runs against one node
// never meet.
func runID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// setup signs every member in, joins the room and starts media, publishers
// first, cfg.Dialers at a time.
func setup(ctx context.Context, cfg MediaConfig, room string, members []*member) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	for range min(cfg.Dialers, len(members)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(members) {
					return
				}
				if err := members[i].start(ctx, cfg, room); err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("%s: %w", members[i].name, err)
					}
					errMu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// waitTracks waits until every member receives every track it should.
func waitTracks(ctx context.Context, members []*member) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if missingTracks(members) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d tracks never arrived: %w", missingTracks(members), ctx.Err())
		case <-t.C:
		}
	}
}

func missingTracks(members []*member) int {
	n := 0
	for _, mb := range members {
		n += max(0, mb.wantTracks-mb.trackCount())
	}
	return n
}

// teardown hangs every member up and closes it, a few at a time.
func teardown(members []*member) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, defaultDialers*2)
	for _, mb := range members {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			mb.stop()
		})
	}
	wg.Wait()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// summarize adds up the members' windows.
func summarize(res *MediaResult, members []*member) {
	var all, audio, video latencyHist
	secs := res.Window.Seconds()
	res.BitrateMin = math.Inf(1)
	var bitrateSum float64
	for _, mb := range members {
		w := mb.window()
		res.Forwarded += w.received
		res.Expected += w.expected
		res.Lost += w.lost
		if mb.wantTracks > 0 && secs > 0 {
			br := float64(w.bytes) * 8 / secs
			bitrateSum += br
			res.BitrateMin = min(res.BitrateMin, br)
			res.BitrateMax = max(res.BitrateMax, br)
		}
		audio.merge(&mb.lat[kindAudio])
		video.merge(&mb.lat[kindVideo])
		if mb.m != nil && mb.m.Err() != nil {
			res.MediaErrors++
		}
	}
	if res.Receivers > 0 {
		res.BitrateAvg = bitrateSum / float64(res.Receivers)
	}
	if math.IsInf(res.BitrateMin, 1) {
		res.BitrateMin = 0
	}
	if secs > 0 {
		res.PerSecond = float64(res.Forwarded) / secs
		res.ServerCPUPctAvg = 100 * res.ServerCPU.Seconds() / secs
	}
	if res.Expected > 0 {
		res.LossPct = 100 * float64(res.Lost) / float64(res.Expected)
	}
	if res.Forwarded > 0 && res.ServerCPU > 0 {
		res.CPUPerPacketUS = float64(res.ServerCPU.Microseconds()) / float64(res.Forwarded)
	}
	all.merge(&audio)
	all.merge(&video)
	res.Latency, res.AudioLatency, res.VideoLatency = all.summary(), audio.summary(), video.summary()
	res.TracksMissing = missingTracks(members)
}

// Kinds of media, as indexes.
const (
	kindAudio = iota
	kindVideo
)

// member is one device in the room.
type member struct {
	name       string
	publishes  bool
	wantTracks int

	c      *client.Client
	m      *client.Media
	callID string

	// mu guards what the track readers update; they call onRTP.
	mu        sync.Mutex
	recording bool
	tracks    map[uint32]*trackCounter // by SSRC
	lat       [2]latencyHist           // audio, video; in the window only
}

// start signs the member in, joins the room and starts its media.
func (mb *member) start(ctx context.Context, cfg MediaConfig, room string) error {
	tok, err := cfg.Tokens.Token(ctx, mb.name, "load")
	if err != nil {
		return err
	}
	c, err := client.Dial(ctx, client.Options{URL: cfg.URL, Token: tok, Logger: cfg.Logger.With("member", mb.name), LoopbackOnly: true})
	if err != nil {
		return err
	}
	mb.c = c
	if mb.callID, err = c.Join(ctx, room); err != nil {
		return fmt.Errorf("join %s: %w", room, err)
	}
	o := client.MediaOptions{ReceiveOnly: true, OnRTP: mb.onRTP}
	if mb.publishes {
		o = client.MediaOptions{
			Audio: cfg.Scenario.Audio, Video: cfg.Scenario.Video,
			VideoBitrate: cfg.VideoBitrate, AudioFrameBytes: cfg.AudioBytes,
			Simulcast: cfg.Simulcast && cfg.Scenario.Video,
			OnRTP:     mb.onRTP,
		}
	}
	if mb.m, err = c.StartMedia(ctx, mb.callID, o); err != nil {
		return err
	}
	return nil
}

// stop leaves the room and closes the connection.
func (mb *member) stop() {
	if mb.c == nil {
		return
	}
	if mb.callID != "" {
		ctx, cancel := context.WithTimeout(context.Background(), hangupWait)
		_ = mb.c.Hangup(ctx, mb.callID)
		cancel()
	}
	_ = mb.c.Close()
}

// onRTP counts one received packet; it runs on the track's reader.
func (mb *member) onRTP(tr client.RemoteTrack, p *rtp.Packet, at time.Time) {
	kind := kindAudio
	if tr.Kind == "video" {
		kind = kindVideo
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	t := mb.tracks[tr.SSRC]
	if t == nil {
		t = &trackCounter{}
		mb.tracks[tr.SSRC] = t
	}
	t.seq.add(p.SequenceNumber)
	t.bytes += uint64(len(p.Payload))
	if mb.recording {
		if sent, ok := client.SentAt(p.Payload); ok {
			mb.lat[kind].add(at.Sub(sent))
		}
	}
}

func (mb *member) trackCount() int {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return len(mb.tracks)
}

// openWindow marks every track's counters and starts recording latency.
func (mb *member) openWindow() {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	for _, t := range mb.tracks {
		t.mark = t.position()
		t.marked = true
	}
	mb.recording = true
}

// closeWindow stops recording and marks where the window ends.
func (mb *member) closeWindow() {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	mb.recording = false
	for _, t := range mb.tracks {
		t.end = t.position()
		t.ended = true
	}
}

// windowCounts are one member's counts in the window.
type windowCounts struct {
	received, expected, lost, bytes uint64
}

func (mb *member) window() windowCounts {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	var w windowCounts
	for _, t := range mb.tracks {
		if !t.ended { // the track arrived after the window
			continue
		}
		from := t.mark
		if !t.marked { // the track arrived in the window
			from = t.seq.origin()
		}
		iv := t.end.since(from)
		w.received += iv.received
		w.expected += iv.expected
		w.lost += iv.lost()
		w.bytes += t.end.bytes - from.bytes
	}
	return w
}

// trackCounter counts one remote track.
type trackCounter struct {
	seq    seqCounter
	bytes  uint64
	mark   position // at the window's start
	marked bool
	end    position // at the window's end
	ended  bool
}

func (t *trackCounter) position() position {
	p := t.seq.position()
	p.bytes = t.bytes
	return p
}

// position is where a track's counters stood at some moment.
type position struct {
	highest  int64  // extended highest sequence number
	received uint64 // packets received
	bytes    uint64
}

// interval is what happened on a track between two positions.
type interval struct {
	expected, received uint64
}

func (p position) since(from position) interval {
	return interval{expected: uint64(max(0, p.highest-from.highest)), received: p.received - from.received}
}

// lost is expected minus received, not below zero: a retransmission of a
// packet that had arrived counts twice.
func (iv interval) lost() uint64 {
	if iv.received >= iv.expected {
		return 0
	}
	return iv.expected - iv.received
}

// seqCounter extends 16-bit RTP sequence numbers across wraps, as RFC 3550
// A.1 does: a packet within half the space of the highest seen is before
// or after it.
type seqCounter struct {
	started  bool
	lowest   int64 // extended sequence number of the earliest packet
	highest  int64
	received uint64
}

func (s *seqCounter) add(seq uint16) {
	s.received++
	if !s.started {
		s.started = true
		s.lowest, s.highest = int64(seq), int64(seq)
		return
	}
	ext := s.highest + int64(int16(seq-uint16(s.highest)))
	s.highest = max(s.highest, ext)
	s.lowest = min(s.lowest, ext)
}

func (s *seqCounter) position() position {
	return position{highest: s.highest, received: s.received}
}

// origin is the position just before the first packet.
func (s *seqCounter) origin() position {
	return position{highest: s.lowest - 1}
}

// latencyHist counts latencies in microseconds: exactly below 64 µs, then
// 32 buckets per power of two, so a bucket is at most 1/32 of its value
// wide. Latencies beyond histMax count as histMax.
type latencyHist struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
}

const (
	histSub     = 32
	histMaxBits = 26 // 2^26 µs, about 67 s
	histBuckets = 2*histSub + (histMaxBits-6)*histSub
	histMax     = 1<<histMaxBits - 1 // µs
)

// histBucket returns the bucket of us microseconds.
func histBucket(us uint64) int {
	us = min(us, histMax)
	if us < 2*histSub {
		return int(us)
	}
	e := bits.Len64(us) - 6 // us>>e is in [32, 64)
	return 2*histSub + (e-1)*histSub + int(us>>e) - histSub
}

// histValue returns the middle of bucket i, in microseconds.
func histValue(i int) float64 {
	if i < 2*histSub {
		return float64(i)
	}
	e := (i-2*histSub)/histSub + 1
	m := (i-2*histSub)%histSub + histSub
	lo := uint64(m) << e
	return float64(lo) + float64(uint64(1)<<e)/2
}

func (h *latencyHist) add(d time.Duration) {
	d = max(d, 0)
	h.counts[histBucket(uint64(d.Microseconds()))]++
	h.n++
	h.max = max(h.max, d)
}

func (h *latencyHist) merge(o *latencyHist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the latency below which a fraction q of the samples
// fall, to the bucket's precision; 0 without samples.
func (h *latencyHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(histValue(i) * float64(time.Microsecond))
			return min(v, h.max)
		}
	}
	return h.max
}

func (h *latencyHist) summary() Latency {
	return Latency{Samples: h.n, P50: h.quantile(0.50), P95: h.quantile(0.95), P99: h.quantile(0.99), Max: h.max}
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Tandem runs on.
const clockTicks = 100

// processCPU returns the user + system time process pid has used, from
// /proc/PID/stat (all threads).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("loadtest: server process: %w", err)
	}
	return parseProcStat(b)
}

// parseProcStat reads utime and stime (fields 14 and 15) from a
// /proc/PID/stat line. The command name in field 2 may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseProcStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("loadtest: /proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("loadtest: /proc stat: too few fields")
	}
	var ticks int64
	for _, s := range f[11:13] { // fields 14 and 15; f[0] is field 3
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("loadtest: /proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// DevTokens mints tokens from a dev-mode node's /api/v1/dev/token.
type DevTokens struct {
	endpoint string
	http     *http.Client
}

var _ TokenSource = (*DevTokens)(nil)

// NewDevTokens returns a DevTokens for the node whose signaling URL is
// wsURL; the node must be on loopback.
func NewDevTokens(wsURL string) (*DevTokens, error) {
	if err := checkLoopbackURL(wsURL); err != nil {
		return nil, err
	}
	u, _ := url.Parse(wsURL)
	u.Scheme = strings.Replace(u.Scheme, "ws", "http", 1)
	u.Path, u.RawQuery = "/api/v1/dev/token", ""
	return &DevTokens{endpoint: u.String(), http: &http.Client{Timeout: 10 * time.Second}}, nil
}

// Token implements TokenSource.
func (d *DevTokens) Token(ctx context.Context, user, device string) (string, error) {
	body, _ := json.Marshal(map[string]string{"user": user, "device": device})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.endpoint, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("loadtest: dev token: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("loadtest: dev token: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("loadtest: dev token: %s: %s (is the node in dev mode?)", resp.Status, bytes.TrimSpace(b))
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("loadtest: dev token: no token in the answer")
	}
	return out.Token, nil
}

// AuthorityTokens mints tokens with the node's signing secret.
type AuthorityTokens struct {
	Authority *auth.Authority
	TTL       time.Duration
}

var _ TokenSource = AuthorityTokens{}

// Token implements TokenSource.
func (a AuthorityTokens) Token(_ context.Context, user, device string) (string, error) {
	tok, _, err := a.Authority.Mint(user, device, nil, a.TTL)
	return tok, err
}
