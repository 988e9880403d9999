package test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tandemcall/tandem/internal/agent"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// A Go device in the network lab is this test binary run again inside a
// home's namespace (pion opens its sockets from many goroutines, so one
// process cannot keep them in another namespace). TestMain sees
// labDeviceEnv and runs the device instead of the tests. The device
// reports on stdout, one JSON object a line, and ends when its stdin
// closes.
const labDeviceEnv = "TANDEM_LAB_DEVICE"

func TestMain(m *testing.M) {
	if spec := os.Getenv(labDeviceEnv); spec != "" {
		os.Exit(runLabDevice(spec))
	}
	os.Exit(m.Run())
}

// labDeviceSpec says what a lab device does.
type labDeviceSpec struct {
	URL   string `json:"url"`
	Token string `json:"token"`
	// Role: "call" calls Peer, "answer" answers the first call, "agent"
	// runs the desktop agent (labAgent).
	Role string `json:"role"`
	Peer string `json:"peer"`
	// Tag ends this device's frames; PeerTag is the one it waits for.
	Tag, PeerTag byte
	// VideoKbps, when set, makes the video a load source at that rate;
	// EstimateBandwidth runs congestion control on what it sends.
	VideoKbps         int  `json:"video_kbps"`
	EstimateBandwidth bool `json:"estimate_bandwidth"`
	// Agent is the agent's part of the spec.
	Agent labAgentSpec `json:"agent"`
}

// labReport is one line a lab device writes.
type labReport struct {
	Event string `json:"event"` // "signed_in", "first_frame", "stats", "error", "log"
	// FirstFrameMs: from the invite (caller) or the ring (callee) to the
	// first whole video frame of the peer.
	FirstFrameMs float64 `json:"first_frame_ms,omitempty"`
	// Frames of the peer's video received whole, and audio packets.
	Frames uint64                 `json:"frames,omitempty"`
	Audio  uint64                 `json:"audio,omitempty"`
	Paths  map[string]client.Path `json:"paths,omitempty"`
	// TargetKbps is the congestion controller's estimate of the path to
	// the server (EstimateBandwidth).
	TargetKbps int    `json:"target_kbps,omitempty"`
	Text       string `json:"text,omitempty"`
}

// labDevice is a running lab device, seen from the test.
type labDevice struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu      sync.Mutex
	reports []labReport
	more    chan struct{} // a report arrived
}

// deviceIn starts a Go device in the home's host.
func (l *lab) deviceIn(t *testing.T, h *home, name string, spec labDeviceSpec) *labDevice {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := h.host.command(context.Background(), exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), labDeviceEnv+"="+string(b), "SSL_CERT_FILE="+l.caFile)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	d := &labDevice{t: t, name: name, cmd: cmd, stdin: stdin, more: make(chan struct{}, 1)}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var r labReport
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				continue // not ours: a log line
			}
			d.mu.Lock()
			d.reports = append(d.reports, r)
			d.mu.Unlock()
			select {
			case d.more <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan error, 1)
		go func() { <-read; done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil && !t.Failed() {
				t.Errorf("%s ended with %v", name, err)
			}
		case <-time.After(10 * time.Second):
			// Its goroutines, to say where it hangs.
			_ = cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			t.Errorf("%s did not end within 10 s of its stdin closing", name)
		}
	})
	return d
}

// wait returns the first report for which ok holds, failing the test
// after d.
func (d *labDevice) wait(what string, timeout time.Duration, ok func(labReport) bool) labReport {
	d.t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		d.mu.Lock()
		for ; seen < len(d.reports); seen++ {
			r := d.reports[seen]
			if r.Event == "error" {
				d.mu.Unlock()
				d.t.Fatalf("%s: %s", d.name, r.Text)
			}
			if ok(r) {
				d.mu.Unlock()
				return r
			}
		}
		d.mu.Unlock()
		select {
		case <-d.more:
		case <-deadline:
			d.t.Fatalf("%s: timed out waiting for %s", d.name, what)
		}
	}
}

// send writes a command line to the device.
func (d *labDevice) send(line string) {
	d.t.Helper()
	if _, err := fmt.Fprintln(d.stdin, line); err != nil {
		d.t.Fatalf("%s: %v", d.name, err)
	}
}

// runLabDevice is the device's process: it returns the exit code.
func runLabDevice(raw string) int {
	var spec labDeviceSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "lab device:", err)
		return 2
	}
	out := json.NewEncoder(os.Stdout)
	var outMu sync.Mutex
	report := func(r labReport) {
		outMu.Lock()
		defer outMu.Unlock()
		_ = out.Encode(r)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- strings.TrimSpace(sc.Text())
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var err error
	if spec.Role == "agent" {
		err = runLabAgent(ctx, spec, report, lines)
	} else {
		err = runLabCaller(ctx, spec, report, lines)
	}
	if err != nil {
		report(labReport{Event: "error", Text: err.Error()})
		// Stay until told to go, so that the test reads the error.
		for range lines {
		}
		return 1
	}
	return 0
}

// runLabCaller is a person calling or answering with a Go client: real
// networking, synthetic audio and video.
func runLabCaller(ctx context.Context, spec labDeviceSpec, report func(labReport), lines <-chan string) error {
	log := labLogger()
	c, err := client.Dial(ctx, client.Options{URL: spec.URL, Token: spec.Token, Logger: log, Reconnect: true})
	if err != nil {
		return err
	}
	defer c.Close()
	report(labReport{Event: "signed_in"})
	var start time.Time
	var id string
	switch spec.Role {
	case "call":
		start = time.Now()
		if id, err = c.Invite(ctx, spec.Peer, true); err != nil {
			return err
		}
		if _, err := client.WaitForType[*protocol.Accepted](ctx, c, nil); err != nil {
			return err
		}
	case "answer":
		in, err := client.WaitForType[*protocol.Incoming](ctx, c, nil)
		if err != nil {
			return err
		}
		start, id = time.Now(), in.CallID
		if err := c.Accept(ctx, id, true); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown role %q", spec.Role)
	}
	var frames atomic.Uint64
	var first sync.Once
	m, err := c.StartMedia(ctx, id, client.MediaOptions{
		Audio: true, Video: true, Tag: spec.Tag, VideoBitrate: spec.VideoKbps * 1000, EstimateBandwidth: spec.EstimateBandwidth,
		OnRTP: func(t client.RemoteTrack, p *rtp.Packet, at time.Time) {
			if t.Kind != "video" || !p.Marker || len(p.Payload) == 0 || p.Payload[len(p.Payload)-1] != spec.PeerTag {
				return
			}
			frames.Add(1)
			first.Do(func() {
				report(labReport{Event: "first_frame", FirstFrameMs: float64(at.Sub(start).Microseconds()) / 1000})
			})
		},
	})
	if err != nil {
		return err
	}
	defer m.Close()
	ended := make(chan struct{})
	go func() {
		_, _ = client.WaitForType(ctx, c, func(e *protocol.Ended) bool { return e.CallID == id })
		close(ended)
	}()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case _, ok := <-lines:
			if !ok {
				_ = c.Hangup(context.Background(), id)
				return nil
			}
		case <-ended:
			// The other side hung up: the media goes with the call.
			report(labReport{Event: "ended"})
			for range lines {
			}
			return nil
		case <-tick.C:
			if err := m.Err(); err != nil {
				return err
			}
			report(labReport{Event: "stats", Frames: frames.Load(), Audio: m.Stats().Audio.PacketsReceived, Paths: m.Paths(), TargetKbps: m.TargetBitrate() / 1000})
		}
	}
}

// labAgentSpec is the desktop agent's part of a lab device.
type labAgentSpec struct {
	Display     string `json:"display"`
	FPS         int    `json:"fps"`
	BitrateKbps int    `json:"bitrate_kbps"`
}

// labConsent is the person at the helped machine, told by the test what
// to allow: stdin lines "allow view,control", "stop".
type labConsent struct {
	mu    sync.Mutex
	allow []string
}

func (c *labConsent) AnswerCall(context.Context, string) bool { return true }

func (c *labConsent) Grant(_ context.Context, _ string, requested []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, g := range requested {
		for _, a := range c.allow {
			if g == a {
				out = append(out, g)
			}
		}
	}
	return out
}

// runLabAgent runs the desktop agent as a person installs it: the real
// client, whatever network it is on.
func runLabAgent(ctx context.Context, spec labDeviceSpec, report func(labReport), lines <-chan string) error {
	log := labLogger()
	consent := &labConsent{}
	a := agent.New(agent.Config{
		URL: spec.URL, Token: spec.Token, Display: spec.Agent.Display, FPS: spec.Agent.FPS,
		BitrateKbps: spec.Agent.BitrateKbps, LocalPause: 500 * time.Millisecond, Logger: log,
	}, consent)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			stop()
			if err == nil {
				err = errors.New("the agent stopped")
			}
			return err
		case line, ok := <-lines:
			switch {
			case !ok:
				stop()
				return <-done
			case strings.HasPrefix(line, "allow "):
				consent.mu.Lock()
				consent.allow = strings.Split(strings.TrimPrefix(line, "allow "), ",")
				consent.mu.Unlock()
			case line == "stop":
				a.StopHelp()
			}
		case <-tick.C:
			s := a.Stats()
			report(labReport{Event: "stats", Frames: s.Frames, TargetKbps: int(s.BitrateKbps),
				Text: fmt.Sprintf("applied=%d not_granted=%d estimate=%d frames=%d", s.Applied, s.NotGranted, s.EstimateKbps, s.Frames)})
		}
	}
}

// labLogger is a lab device's log: warnings, or everything with
// TANDEM_TEST_LOG set.
func labLogger() *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("TANDEM_TEST_LOG") != "" {
		lvl = slog.LevelDebug - 4
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}
