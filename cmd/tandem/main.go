// Command tandem runs a Tandem node (serve) and its operator tools (token,
// loadtest).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/hugepage"
	"github.com/tandemcall/tandem/internal/server"
	"github.com/tandemcall/tandem/signaling/protocol"
)

const usage = `tandem — self-hosted calls, handoff and remote assistance

Usage:
  tandem serve [--dev] [--config FILE] [flags]   run a node
  tandem token --user ID --device ID [--ttl 1h] [--room R]...  print an access token
  tandem loadtest turn --server ADDR --secret S  hold many TURN allocations
  tandem loadtest media --url WS --scenario S    synthetic media load on a room
  tandem agent --config agent.yaml                share this X11 desktop for remote help
  tandem agent install --config agent.yaml [--now] run the agent as a user service at every login
  tandem admin [--server URL] COMMAND          operate a node: rooms, end, remove, sessions, export, erase, revoke
  tandem version

Run "tandem serve --help" for the serve flags.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, pflag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "tandem:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "token":
		return token(args[1:], stdout, stderr)
	case "loadtest":
		return loadtestCmd(args[1:], stdout, stderr)
	case "agent":
		return agentCmd(args[1:], stdout, stderr)
	case "admin":
		return adminCmd(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "tandem", server.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func newLogger(c config.LogConfig, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func serve(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	config.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(fs, os.Environ())
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log, stderr)
	if cfg.Media.HugePages {
		// Each second, so that heap mapped for a burst of joins is huge
		// before the media of those joins flows for long.
		stop := make(chan struct{})
		defer close(stop)
		go hugepage.Keep(time.Second, stop)
	}

	srv, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	// Catch signals before announcing the node: a supervisor that stops it
	// as soon as it reports ready must get a drain, not the default exit.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	srv.Start()
	if cfg.Debug.PprofListen != "" {
		stop, err := servePprof(cfg.Debug.PprofListen, log)
		if err != nil {
			_ = srv.Shutdown(context.Background())
			return err
		}
		defer stop()
	}
	log.Info("tandem serving", "http", srv.Addr().String(), "media_udp", srv.MediaAddr().String(), "dev", cfg.Dev, "data_dir", cfg.DataDir)
	if cfg.Dev {
		fmt.Fprintf(stdout, "\n  Tandem is running (dev mode). Open %s in two browser windows and sign in as two people.\n\n", srv.URL())
	}
	select {
	case err := <-srv.Done():
		_ = srv.Shutdown(context.Background())
		return err
	case sig := <-sigs:
		log.Info("draining; send the signal again to stop at once", "signal", sig.String(), "timeout", cfg.Shutdown.DrainTimeout.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Shutdown.DrainTimeout)
	defer cancel()
	go func() {
		select {
		case <-sigs:
			log.Warn("second signal: stopping now")
			cancel()
		case <-ctx.Done():
		}
	}()
	err = srv.Shutdown(ctx)
	log.Info("stopped")
	return err
}

func token(args []string, stdout, stderr io.Writer) error {
	fs := pflag.NewFlagSet("token", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	config.RegisterFlags(fs)
	user := fs.String("user", "", "user id (required)")
	device := fs.String("device", "", "device id (required)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	grants := fs.String("grants", strings.Join(auth.DefaultGrants(), ","), "comma-separated grants")
	rooms := fs.StringArray("room", nil, "a room the publish and subscribe grants hold for (WHIP/WHEP); repeat for more")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" || *device == "" {
		return errors.New("token: --user and --device are required")
	}
	cfg, err := config.Load(fs, os.Environ())
	if err != nil {
		return err
	}
	secret := []byte(cfg.Auth.Secret)
	if len(secret) == 0 {
		if secret, err = auth.LoadOrCreateKey(cfg.DataDir); err != nil {
			return err
		}
	}
	a, err := auth.New(secret, cfg.Auth.Issuer, auth.WithMaxTTL(cfg.Auth.MaxTokenTTL))
	if err != nil {
		return err
	}
	var gs []string
	for _, g := range strings.Split(*grants, ",") {
		if g = strings.TrimSpace(g); g != "" {
			gs = append(gs, g)
		}
	}
	for _, r := range *rooms {
		if err := protocol.CheckRoom(r); err != nil {
			return fmt.Errorf("token: --room %q: %w", r, err)
		}
	}
	// WHIP and WHEP refuse a token that names no rooms: say so now rather
	// than print a stream key that cannot stream.
	if len(*rooms) == 0 && (slices.Contains(gs, auth.GrantPublish) || slices.Contains(gs, auth.GrantSubscribe)) {
		return errors.New("token: publish and subscribe hold only in the rooms the token names: add --room ROOM (repeat for more)")
	}
	tok, exp, err := a.Mint(*user, *device, gs, *ttl, auth.WithRooms(*rooms...))
	if errors.Is(err, auth.ErrTTL) {
		return fmt.Errorf("token: --ttl %v is longer than auth.max_token_ttl (%v); mint a shorter token, or raise auth.max_token_ttl on every node", *ttl, a.MaxTTL())
	}
	if err != nil {
		return err
	}
	id, err := a.Verify(tok)
	if err != nil {
		return fmt.Errorf("token: the token just minted does not verify: %w", err)
	}
	fmt.Fprintln(stdout, tok)
	// The token alone goes to stdout, for scripts; its id, to revoke it
	// later, to stderr.
	fmt.Fprintf(stderr, "token id %s, expires %s; revoke it with: tandem admin revoke token %s\n",
		id.ID, exp.UTC().Format(time.RFC3339), id.ID)
	return nil
}
