package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/loadtest"
)

const loadtestUsage = `Usage:
  tandem loadtest turn --server 127.0.0.1:3478 --secret S [--allocations 10000]
  tandem loadtest media --url ws://127.0.0.1:7880/ws [--scenario fanout|meeting|audio] [--pid PID]
  tandem loadtest signaling --url ws://127.0.0.1:7880/ws [--url …] [--invites 10000] [--idle 50000 --pid PID]
  tandem loadtest soak --url ws://127.0.0.1:7880/ws [--url …] [--duration 10m] [--rate 5] [--people 12] [--link-bursts 5s]

Load tests run against servers on this machine only (loopback).
`

func loadtestCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "turn":
			return loadtestTURN(args[1:], stdout, stderr)
		case "media":
			return loadtestMedia(args[1:], stdout, stderr)
		case "signaling":
			return loadtestSignaling(args[1:], stdout, stderr)
		case "soak":
			return loadtestSoak(args[1:], stdout, stderr)
		}
	}
	fmt.Fprint(stderr, loadtestUsage)
	return errors.New("loadtest: name a load: turn, media, signaling or soak")
}

func loadtestTURN(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("loadtest turn", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadtest.TURNConfig
	var secret string
	fs.StringVar(&cfg.Server, "server", "127.0.0.1:3478", "TURN server host:port (UDP, loopback)")
	fs.StringVar(&secret, "secret", "", "TURN REST secret (required)")
	clientIP := fs.IP("client-ip", nil, "source address of the clients (default: loopback)")
	fs.StringVar(&cfg.User, "user", "loadtest", "user id in the REST usernames")
	fs.IntVar(&cfg.Allocations, "allocations", 1000, "allocations to create and hold")
	fs.IntVar(&cfg.Workers, "workers", 16, "allocations in flight at once")
	fs.DurationVar(&cfg.Hold, "hold", 0, "how long to hold the allocations after the last one")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id whose memory to measure")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if secret == "" {
		return errors.New("loadtest turn: --secret is required")
	}
	if cfg.Allocations <= 0 || cfg.Allocations > 1_000_000 {
		return fmt.Errorf("loadtest turn: --allocations %d out of range 1–1000000", cfg.Allocations)
	}
	cfg.Secret = []byte(secret)
	cfg.ClientIP = *clientIP
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	res, err := loadtest.TURNAllocations(ctx, cfg)
	fmt.Fprint(stdout, res)
	if err != nil {
		return err
	}
	if res.Failed > 0 {
		return fmt.Errorf("loadtest turn: %d allocations failed", res.Failed)
	}
	return nil
}

func loadtestMedia(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("loadtest media", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadtest.MediaConfig
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:7880/ws", "signaling WebSocket of the node (loopback)")
	scenario := fs.String("scenario", "fanout", "preset: fanout (1 video+audio publisher, 20 subscribers), meeting (6 members publishing video+audio), audio (1 audio publisher, 100 subscribers)")
	publishers := fs.Int("publishers", 0, "publishers, each also receiving every other (default: the scenario's)")
	subscribers := fs.Int("subscribers", 0, "receive-only subscribers (default: the scenario's)")
	audio := fs.Bool("audio", false, "publishers send Opus (default: the scenario's)")
	video := fs.Bool("video", false, "publishers send VP8 (default: the scenario's)")
	fs.IntVar(&cfg.VideoBitrate, "video-bitrate", loadtest.DefaultVideoBitrate, "bits per second per video publisher, 30 fps")
	fs.BoolVar(&cfg.Simulcast, "simulcast", false, "publish video as three simulcast layers (q, h, f at a tenth, a third and all of --video-bitrate)")
	fs.IntVar(&cfg.AudioBytes, "audio-bytes", loadtest.DefaultAudioBytes, "bytes per 20 ms Opus packet")
	fs.DurationVar(&cfg.Duration, "duration", loadtest.DefaultDuration, "measured window")
	fs.DurationVar(&cfg.Warmup, "warmup", loadtest.DefaultWarmup, "wait after every track arrived, before measuring")
	fs.DurationVar(&cfg.SetupTimeout, "setup-timeout", time.Minute, "for every member to join and receive every track")
	fs.StringVar(&cfg.Room, "room", "", "room name (default: a fresh one per run)")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id whose CPU time to measure")
	secret := fs.String("secret", "", "the node's auth secret, to mint tokens here (default: ask the dev-mode node's /api/v1/dev/token)")
	issuer := fs.String("issuer", "", "token issuer, with --secret")
	verbose := fs.Bool("verbose", false, "log the clients' warnings to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sc, err := loadtest.ScenarioByName(*scenario)
	if err != nil {
		return err
	}
	if fs.Changed("publishers") {
		sc.Publishers = *publishers
	}
	if fs.Changed("subscribers") {
		sc.Subscribers = *subscribers
	}
	if fs.Changed("audio") {
		sc.Audio = *audio
	}
	if fs.Changed("video") {
		sc.Video = *video
	}
	cfg.Scenario = sc
	if *secret != "" {
		a, err := auth.New([]byte(*secret), *issuer)
		if err != nil {
			return err
		}
		cfg.Tokens = loadtest.AuthorityTokens{Authority: a, TTL: time.Hour}
	} else {
		dev, err := loadtest.NewDevTokens(cfg.URL)
		if err != nil {
			return err
		}
		cfg.Tokens = dev
	}
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.SetupTimeout+cfg.Warmup+cfg.Duration+time.Minute)
	defer cancel()
	res, err := loadtest.Media(ctx, cfg)
	if res.Window > 0 {
		fmt.Fprint(stdout, res)
	}
	if err != nil {
		return err
	}
	if res.TracksMissing > 0 || res.MediaErrors > 0 {
		return fmt.Errorf("loadtest media: %d tracks missing, %d members with media errors", res.TracksMissing, res.MediaErrors)
	}
	return nil
}

func loadtestSignaling(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("loadtest signaling", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadtest.SignalingConfig
	fs.StringSliceVar(&cfg.URLs, "url", []string{"ws://127.0.0.1:7880/ws"}, "signaling WebSocket of a node (loopback); repeat for the nodes of a deployment")
	fs.IntVar(&cfg.Invites, "invites", 0, "calls to place, each declined as soon as it rings; callers and callees on different nodes")
	fs.IntVar(&cfg.Pairs, "pairs", 200, "caller/callee pairs placing calls at once, each at most 40 a second")
	fs.IntVar(&cfg.Idle, "idle", 0, "idle device sessions to open and hold")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id whose memory the idle sessions are measured by")
	fs.DurationVar(&cfg.Hold, "hold", 0, "how long to hold the idle sessions after measuring")
	fs.StringSliceVar(&cfg.Sources, "source", nil, "loopback address to connect from (repeat: each gives another ~28,000 ports)")
	tokens := tokenFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if cfg.Tokens, err = tokens(cfg.URLs); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	res, err := loadtest.Signaling(ctx, cfg)
	fmt.Fprint(stdout, res)
	if err != nil {
		return err
	}
	if res.Failed > 0 {
		return fmt.Errorf("loadtest signaling: %d failed", res.Failed)
	}
	return nil
}

// tokenFlags adds the flags that say how a load gets its devices' tokens,
// and returns what makes the source from them: minted here with the
// nodes' secret or a dev node's key, or asked of a dev node.
func tokenFlags(fs *pflag.FlagSet) func(urls []string) (loadtest.TokenSource, error) {
	secret := fs.String("secret", "", "the nodes' auth secret, to mint tokens here")
	issuer := fs.String("issuer", "", "token issuer, with --secret")
	dataDir := fs.String("data-dir", "", "a dev-mode node's data directory, to mint tokens with its key")
	return func(urls []string) (loadtest.TokenSource, error) {
		switch {
		case *secret != "" || *dataDir != "":
			key := []byte(*secret)
			if *dataDir != "" {
				var err error
				if key, err = auth.LoadOrCreateKey(*dataDir); err != nil {
					return nil, err
				}
			}
			a, err := auth.New(key, *issuer)
			if err != nil {
				return nil, err
			}
			return loadtest.AuthorityTokens{Authority: a, TTL: 24 * time.Hour}, nil
		case len(urls) > 0:
			return loadtest.NewDevTokens(urls[0])
		}
		return nil, nil
	}
}

func loadtestSoak(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("loadtest soak", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadtest.SoakConfig
	fs.StringSliceVar(&cfg.URLs, "url", []string{"ws://127.0.0.1:7880/ws"}, "signaling WebSocket of a node (loopback); repeat for the nodes of a deployment")
	fs.IntVar(&cfg.People, "people", 12, "simulated people")
	fs.IntVar(&cfg.Devices, "devices", 2, "devices each person has online, spread over the nodes")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "how long to start scenarios (at most 24h)")
	fs.IntVar(&cfg.Actions, "actions", 0, "at most this many scenarios (0: as many as the duration allows)")
	fs.Float64Var(&cfg.Rate, "rate", 5, "scenarios started per second")
	fs.DurationVar(&cfg.Hold, "hold", time.Second, "how long an answered call lasts, on average")
	fs.DurationVar(&cfg.RingTimeout, "ring-timeout", 45*time.Second, "the nodes' calls.ring_timeout (configs/tandem.yaml: 45s): when an unanswered call is missed")
	fs.DurationVar(&cfg.ProgressEvery, "progress", 10*time.Second, "how often to print a progress line")
	fs.DurationVar(&cfg.LinkBursts, "link-bursts", 0, "impair one device's link at a time this often (loss up to 30%, up to 300 ms late, for 1–4 s); 0: never")
	tokens := tokenFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.LinkBursts < 0 || cfg.LinkBursts > 0 && cfg.LinkBursts < 100*time.Millisecond {
		return errors.New("loadtest soak: --link-bursts is 0 or at least 100ms")
	}
	if cfg.Duration <= 0 || cfg.Duration > 24*time.Hour {
		return errors.New("loadtest soak: --duration must be more than 0 and at most 24h")
	}
	if cfg.Rate > 200 {
		return errors.New("loadtest soak: --rate is at most 200 scenarios a second")
	}
	var err error
	if cfg.Tokens, err = tokens(cfg.URLs); err != nil {
		return err
	}
	cfg.Progress = stderr
	cfg.Seed = uint64(time.Now().UnixNano())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Scenarios still running at the end get a minute to finish.
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration+time.Minute)
	defer cancel()
	res, err := loadtest.Soak(ctx, cfg)
	fmt.Fprint(stdout, res)
	if err != nil {
		return err
	}
	if !res.OK() {
		return fmt.Errorf("loadtest soak: %d invariants broken", len(res.Violation))
	}
	return nil
}
