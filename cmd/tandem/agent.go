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

	"github.com/tandemcall/tandem/internal/agent"
	"github.com/tandemcall/tandem/internal/agent/portal"
	"github.com/tandemcall/tandem/internal/agent/vpx"
)

// agentCmd runs the desktop agent: this desktop (X11, or Wayland through
// its XDG desktop portal) joins the helped user's calls as one of their
// devices.
func agentCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "install" || args[0] == "uninstall") {
		return agentInstallCmd(args[1:], stdout, stderr, args[0] == "uninstall")
	}
	fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "agent configuration file (see configs/agent.yaml)")
	server := fs.String("server", "", "signaling URL, e.g. wss://tandem.example.org/ws (overrides the file)")
	tokenFile := fs.String("token-file", "", "file holding the helped user's access token for this device (overrides the file)")
	display := fs.String("display", "", "X display to share (default $DISPLAY); on a Wayland session the desktop portal is used unless this is set")
	verbose := fs.Bool("verbose", false, "log debug messages")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if enc, err := vpx.NewEncoder(vpx.EncoderConfig{Width: 16, Height: 16}); errors.Is(err, vpx.ErrUnavailable) {
		return errors.New("this tandem was built without the agent's video encoder: build it with make agent (needs gcc, pkg-config and libvpx-dev)")
	} else if err == nil {
		enc.Close()
	}
	var f agent.File
	if *cfgPath != "" {
		var err error
		if f, err = agent.LoadFile(*cfgPath); err != nil {
			return err
		}
	}
	if *server != "" {
		f.Server = *server
	}
	if *tokenFile != "" {
		f.TokenFile = *tokenFile
	}
	if *display != "" {
		f.Display = *display
	}
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	if cfg.Desktop == "" {
		cfg.Desktop = agent.ChooseDesktop(*display, os.Getenv)
	}
	if cfg.Desktop == agent.DesktopPortal {
		if !portal.HasPipeWire {
			return portal.ErrNoPipeWire
		}
		// Say now, not at the first call, if this desktop cannot do it.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := portal.Check(ctx)
		cancel()
		if err != nil {
			return err
		}
	}
	if cfg.URL == "" || cfg.Token == "" {
		return errors.New("agent: a server and a token are needed: --server and --token-file, or --config")
	}
	lvl := slog.LevelInfo
	if *verbose {
		lvl = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var a *agent.Agent
	term := agent.NewTerminal(os.Stdin, stdout, func() { a.StopHelp() })
	a = agent.New(cfg, term)
	fmt.Fprintln(stdout, "Tandem agent: calls to this computer's user can share this screen, only as you allow. Type stop at any time to end any help.")
	return a.Run(ctx)
}
