package loadtest

import (
	"context"
	"log/slog"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/redistest"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/internal/testkit/testnode"
)

// soakNodes starts n nodes (sharing a redis-server when n > 1) set up as
// a soak needs: a short ring timeout, no invite limits, many sessions per
// address; it returns their URLs and a token source.
func soakNodes(t *testing.T, n int) ([]string, TokenSource) {
	t.Helper()
	var rdb string
	if n > 1 {
		rdb = redistest.Start(t).Addr
	}
	return soakNodesOn(t, n, rdb)
}

// soakNodesOn is soakNodes sharing the redis-server at rdb ("": none).
func soakNodesOn(t *testing.T, n int, rdb string) ([]string, TokenSource) {
	t.Helper()
	const secret = "a-soak-secret-of-at-least-32-bytes-long"
	// Every error line the nodes log, to their shutdown (this cleanup
	// runs after theirs), must name its cause.
	var next slog.Handler
	if os.Getenv("TANDEM_TEST_LOG") != "" {
		next = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	causes := testkit.NewCauses(next)
	t.Cleanup(func() {
		missing, n := causes.Uncaused()
		for _, m := range missing {
			t.Errorf("an error line that does not name its cause: %s", m)
		}
		t.Logf("the nodes logged %d error lines", n)
	})
	var urls []string
	for range n {
		cfg := testnode.Config(t)
		if rdb != "" {
			cfg.Redis.Addrs = []string{rdb}
		}
		cfg.Auth.Secret = secret
		cfg.HTTP.MaxConnsPerIP = 0
		cfg.Calls.CallerInvitesPerMinute, cfg.Calls.CalleeInvitesPerMinute, cfg.Calls.PairInvitesPerMinute = 0, 0, 0
		cfg.Calls.RingTimeout = 2 * time.Second
		srv, _ := testnode.Start(t, cfg, slog.New(causes))
		urls = append(urls, "ws"+strings.TrimPrefix(srv.URL(), "http")+"/ws")
	}
	a, err := auth.New([]byte(secret), "")
	if err != nil {
		t.Fatal(err)
	}
	return urls, AuthorityTokens{Authority: a, TTL: time.Hour}
}

// TestSoak: a short soak, on one node and on three sharing Redis: every
// scenario kind completes, and every invariant holds.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes and runs a load for a while")
	}
	for _, n := range []int{1, 3} {
		t.Run(map[int]string{1: "one node", 3: "three nodes"}[n], func(t *testing.T) {
			urls, tokens := soakNodes(t, n)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := Soak(ctx, SoakConfig{
				URLs: urls, Tokens: tokens, People: 12, Devices: 2,
				Duration: 15 * time.Second, Rate: 6, Hold: 600 * time.Millisecond, RingTimeout: 2 * time.Second,
				Progress: os.Stderr, ProgressEvery: 5 * time.Second, Seed: uint64(n),
			})
			t.Log("\n" + res.String())
			if err != nil {
				t.Fatal(err)
			}
			if !res.OK() {
				t.Errorf("%d invariants broken", len(res.Violation))
			}
			for _, w := range soakWeights {
				if res.Completed[w.kind] == 0 {
					t.Errorf("no %s scenario completed", w.kind)
				}
			}
		})
	}
}

// TestSoakRedisOutage: a soak on three nodes during which Redis is
// killed and comes back after a while with what it had kept. Calls tried
// meanwhile are refused and tried again; every call still ends
// everywhere, no device keeps ringing, and every answered call is in its
// members' histories once, those that ended during the outage too. The
// second time, Redis comes back empty: the histories written before are
// lost (a production Redis persists them), and everything after must be
// whole again.
//
// make soak runs it long: TANDEM_SOAK=30m soaks for 30 minutes, with an
// outage of 30 s every 5 minutes (every third of a shorter run).
func TestSoakRedisOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and three nodes")
	}
	// Two outages, the second leaving Redis empty, and load after.
	duration, every, outage, long := 27*time.Second, 5*time.Second, 5*time.Second, false
	if v := os.Getenv("TANDEM_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > 24*time.Hour {
			t.Fatalf("TANDEM_SOAK=%q: want a duration from 1m to 24h", v)
		}
		duration, every, outage, long = d, min(5*time.Minute, d/3), 30*time.Second, true
	}
	rdb := redistest.StartPersistent(t) // as a production Redis keeps what it holds
	urls, tokens := soakNodesOn(t, 3, rdb.Addr)
	ctx, cancel := context.WithTimeout(context.Background(), duration+3*time.Minute)
	defer cancel()
	res, err := Soak(ctx, SoakConfig{
		URLs: urls, Tokens: tokens, People: 12, Devices: 2,
		Duration: duration, Rate: 6, Hold: 600 * time.Millisecond, RingTimeout: 2 * time.Second,
		Progress: os.Stderr, ProgressEvery: min(duration/4, time.Minute), Seed: 7,
		MaxRSSSlope: 64, // MiB an hour: checked on runs of 10 minutes or more
		LinkBursts:  2 * time.Second,
		// A device on another node hears of an end that came during the
		// outage once Redis is back.
		EndWait: outage + 15*time.Second,
		Chaos: func(ctx context.Context, c ChaosControl) {
			for i := 0; long || i < 2; i++ {
				select {
				case <-ctx.Done():
					return
				case <-time.After(every):
				}
				rdb.Stop()
				c.Note("Redis killed")
				select {
				case <-ctx.Done():
				case <-time.After(outage):
				}
				if i == 1 {
					// Once, Redis comes back with nothing: the
					// deployment must carry on all the same.
					rdb.RestartEmpty()
					c.Wiped()
					c.Note("Redis back, empty")
					continue
				}
				rdb.Restart()
				c.Note("Redis back")
			}
		},
	})
	t.Log("\n" + res.String())
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Errorf("%d invariants broken", len(res.Violation))
	}
	if len(res.Chaos) < 2 || res.Refused["invite (unavailable)"] == 0 {
		t.Errorf("the outage did not show: chaos %v, refused %v", res.Chaos, res.Refused)
	}
}

// TestRSSSlope: the slope is fitted after the first fifth of the run, per
// node, and the steepest reported.
func TestRSSSlope(t *testing.T) {
	var samples []ResourceSample
	for i := range 11 {
		at := time.Duration(i) * 6 * time.Minute
		flat := int64(100 << 20)
		if i == 0 {
			flat = 10 << 20 // the warm-up: not counted
		}
		growing := int64(100<<20) + int64(i)*(5<<20) // 5 MiB each 6 minutes: 50 MiB an hour
		samples = append(samples, ResourceSample{At: at, Nodes: []Resources{{RSSBytes: flat}, {RSSBytes: growing}}})
	}
	if got := rssSlope(samples, time.Hour); math.Abs(got-50) > 0.01 {
		t.Errorf("slope %.2f MiB an hour, want 50", got)
	}
	if got := rssSlope(samples[:2], time.Hour); got != 0 {
		t.Errorf("slope from 2 samples: %v, want 0", got)
	}
}

func TestSoakConfigBounds(t *testing.T) {
	tokens := AuthorityTokens{}
	for _, c := range []SoakConfig{
		{Tokens: tokens, Duration: time.Second},
		{URLs: []string{"ws://192.0.2.1:7880/ws"}, Tokens: tokens, Duration: time.Second},
		{URLs: []string{"ws://127.0.0.1:7880/ws"}, Duration: time.Second},
		{URLs: []string{"ws://127.0.0.1:7880/ws"}, Tokens: tokens},
		{URLs: []string{"ws://127.0.0.1:7880/ws"}, Tokens: tokens, Duration: time.Second, People: 2},
	} {
		if _, err := Soak(context.Background(), c); err == nil {
			t.Errorf("Soak(%+v) ran, want a refusal", c)
		}
	}
}
