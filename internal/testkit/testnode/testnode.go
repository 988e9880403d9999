// Package testnode starts a whole Tandem node in the test's process, the
// same way for every package's tests: the real server on loopback ports the
// kernel picks.
package testnode

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/server"
)

// Config is a dev-mode node's configuration: every listener on 127.0.0.1
// at a port the kernel picks, its data in a directory removed after the
// test. With TANDEM_TEST_PION_INPUT set, media takes pion's receive path
// instead of the direct one, so any suite can be run on either.
func Config(t testing.TB) config.Config {
	cfg := config.Default(true)
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Media.UDPListen = "127.0.0.1:0"
	cfg.TURN.UDPListen = "127.0.0.1:0"
	cfg.TURN.TCPListen = "127.0.0.1:0"
	if os.Getenv("TANDEM_TEST_PION_INPUT") != "" {
		cfg.Media.DirectInput = false
	}
	return cfg
}

// Start validates cfg and starts a node with it, logging to log (nil:
// nowhere). stop shuts the node down, waiting up to 10 s for its calls; it
// runs once, at the latest when the test ends, however often it is called.
func Start(t testing.TB, cfg config.Config, log *slog.Logger) (srv *server.Server, stop func()) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv, err := server.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Logf("node shutdown: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return srv, stop
}
