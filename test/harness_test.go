// Package test holds Tandem's integration tests: they start the real server
// on port 0 and drive it with real clients (pion, headless Chromium).
package test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/server"
	"github.com/tandemcall/tandem/internal/testkit/testnode"
	"github.com/tandemcall/tandem/signaling/protocol"
)

type testServer struct {
	*server.Server
	cfg config.Config
	// others are the other nodes of a deployment started by acrossNodes;
	// dial spreads devices over all of them.
	others []*server.Server
	dials  int
	// stops shut the nodes down, the first node first.
	stops []func()
}

// acrossNodes makes startServer start three nodes on one redis-server
// instead of one node: the same tests then prove calls between devices
// on different nodes (TestSuiteAcrossNodes).
var acrossNodes bool

// startServer runs a dev-mode node on loopback ports chosen by the kernel.
func startServer(t *testing.T, tweak func(*config.Config)) *testServer {
	t.Helper()
	cfg := testConfig(t)
	if tweak != nil {
		tweak(&cfg)
	}
	if acrossNodes {
		return startCluster(t, cfg, 3)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return startWith(t, cfg)
}

// testConfig is a dev-mode node's configuration with every port chosen by
// the kernel.
func testConfig(t *testing.T) config.Config { return testnode.Config(t) }

func startWith(t *testing.T, cfg config.Config) *testServer {
	t.Helper()
	return startLogged(t, cfg, testLogger(t))
}

// startLogged starts a node that logs to log.
func startLogged(t *testing.T, cfg config.Config, log *slog.Logger) *testServer {
	t.Helper()
	srv, stop := testnode.Start(t, cfg, log)
	return &testServer{Server: srv, cfg: cfg, stops: []func(){stop}}
}

// stop shuts every node of ts down.
func (ts *testServer) stop(t *testing.T) {
	for _, stop := range ts.stops {
		stop()
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("TANDEM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (ts *testServer) wsURL() string {
	return "ws" + strings.TrimPrefix(ts.URL(), "http") + "/ws"
}

func (ts *testServer) token(t *testing.T, user, device string) string {
	t.Helper()
	tok, _, err := ts.Authority().Mint(user, device, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// dial signs a device in; it is closed at the end of the test.
func (ts *testServer) dial(t *testing.T, user, device string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := ts.wsURL()
	if len(ts.others) > 0 {
		if i := ts.dials % (len(ts.others) + 1); i > 0 {
			url = "ws" + strings.TrimPrefix(ts.others[i-1].URL(), "http") + "/ws"
		}
		ts.dials++
	}
	c, err := client.Dial(ctx, client.Options{URL: url, Token: ts.token(t, user, device), Logger: clientLogger(t), LoopbackOnly: true})
	if err != nil {
		t.Fatalf("dial %s/%s: %v", user, device, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitType waits for the next message of type T on c (others are kept).
func waitType[T any](t *testing.T, c *client.Client, match func(T) bool) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	m, err := client.WaitForType(ctx, c, match)
	if err != nil {
		t.Fatalf("waiting for %T: %v", m, err)
	}
	return m
}

// answeredCall has caller call the callee's device and the callee answer;
// it returns the call id once the caller has seen the answer.
func answeredCall(t *testing.T, caller, callee *client.Client, video bool) string {
	t.Helper()
	ctx := testCtx(t, 20*time.Second)
	id, err := caller.Invite(ctx, callee.Welcome().User, video)
	if err != nil {
		t.Fatal(err)
	}
	waitType(t, callee, func(m *protocol.Incoming) bool { return m.CallID == id })
	if err := callee.Accept(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	waitType(t, caller, func(m *protocol.Accepted) bool { return m.CallID == id })
	return id
}

func ended(t *testing.T, c *client.Client, callID string) *protocol.Ended {
	t.Helper()
	return waitType(t, c, func(e *protocol.Ended) bool { return e.CallID == callID })
}

// startMedia publishes synthetic audio and video from both legs of a call.
func startMedia(t *testing.T, ctx context.Context, callID string, a, b *client.Client) (am, bm *client.Media) {
	t.Helper()
	var err error
	if am, err = a.StartMedia(ctx, callID, client.MediaOptions{Audio: true, Video: true}); err != nil {
		t.Fatal(err)
	}
	if bm, err = b.StartMedia(ctx, callID, client.MediaOptions{Audio: true, Video: true}); err != nil {
		t.Fatal(err)
	}
	return am, bm
}

// clientLogger is a client's logger: its own and pion's debug logs with
// TANDEM_TEST_LOG set, nothing otherwise.
func clientLogger(t *testing.T) *slog.Logger {
	if os.Getenv("TANDEM_TEST_LOG") == "" {
		return nil
	}
	return testLogger(t).With("side", "client")
}
