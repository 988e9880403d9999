package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/loadtest"
	"github.com/tandemcall/tandem/internal/redistest"
)

// soakNodeEnv sets a node up as a soak needs: a short ring timeout, no
// invite limits, many sessions per address, a short drain and a short
// reconnect grace (a call whose device is gone ends within seconds).
var soakNodeEnv = []string{
	"TANDEM_CALLS_RING_TIMEOUT=2s",
	"TANDEM_CALLS_RECONNECT_GRACE=5s",
	"TANDEM_CALLS_CALLER_INVITES_PER_MINUTE=0",
	"TANDEM_CALLS_CALLEE_INVITES_PER_MINUTE=0",
	"TANDEM_CALLS_PAIR_INVITES_PER_MINUTE=0",
	"TANDEM_HTTP_MAX_CONNS_PER_IP=0",
	"TANDEM_SHUTDOWN_DRAIN_TIMEOUT=2s",
}

// soakNode is one `tandem serve` process of a soak's deployment, started
// again on the same address after it is killed or drained.
type soakNode struct {
	t       *testing.T
	redis   string
	dataDir string
	addr    string // host:port it listens on

	mu   sync.Mutex
	p    *proc
	past []*proc // every process it ran, the one running last
}

// uncaused returns the error lines of the node's processes that do not
// name their cause (an err or reason attribute, or pion's error text after
// a colon), and the lines that tell of a panic or a data race.
func (n *soakNode) uncaused() (bad []string, errors int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.past {
		for line := range strings.Lines(p.stderr.String()) {
			line = strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(line, "panic:"), strings.Contains(line, "DATA RACE"):
				bad = append(bad, line)
			case strings.Contains(line, "level=ERROR"):
				errors++
				if !strings.Contains(line, " err=") && !strings.Contains(line, " reason=") &&
					!(strings.Contains(line, " pion=") && strings.Contains(line, ": ")) {
					bad = append(bad, line)
				}
			}
		}
	}
	return bad, errors
}

func startSoakNode(t *testing.T, redis string) *soakNode {
	t.Helper()
	n := &soakNode{t: t, redis: redis, dataDir: t.TempDir(), addr: "127.0.0.1:0"}
	if err := n.start(); err != nil {
		t.Fatal(err)
	}
	return n
}

var listenRE = regexp.MustCompile(`http://(127\.0\.0\.1:\d+)`)

// start runs the node and waits for it to listen; it may run on the
// chaos goroutine, so it reports failure rather than failing the test.
func (n *soakNode) start() error {
	env := append([]string{"TANDEM_REDIS_ADDRS=" + n.redis, "TANDEM_AUTH_SECRET=" + clusterSecret}, soakNodeEnv...)
	p := startTandem(n.t, childEnv(env...), "serve", "--dev", "--data-dir", n.dataDir,
		"--listen", n.addr, "--media-udp", "127.0.0.1:0")
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-p.done:
			return fmt.Errorf("node on %s exited at start: %v\n%s", n.addr, p.waitErr, p.stderr)
		default:
		}
		if m := listenRE.FindStringSubmatch(p.stdout.String()); m != nil {
			n.mu.Lock()
			n.addr, n.p = m[1], p
			n.past = append(n.past, p)
			n.mu.Unlock()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node on %s printed no URL in 15 s", n.addr)
		}
	}
}

func (n *soakNode) url() string { return "ws://" + n.addr + "/ws" }

// stop sends sig and waits up to d for the node to exit.
func (n *soakNode) stop(sig syscall.Signal, d time.Duration) error {
	n.mu.Lock()
	p := n.p
	n.mu.Unlock()
	if err := p.cmd.Process.Signal(sig); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(d):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("still running %v after %v", d, sig)
	}
}

// busiest returns the node holding the most calls now.
func busiest(nodes []*soakNode) *soakNode {
	best, most := nodes[0], -1
	for _, n := range nodes {
		if c := nodeCalls(n.addr); c > most {
			best, most = n, c
		}
	}
	return best
}

var callsRE = regexp.MustCompile(`(?m)^tandem_signaling_calls (\d+)`)

// nodeCalls reads tandem_signaling_calls from the node's /metrics; -1 if
// it cannot.
func nodeCalls(addr string) int {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	m := callsRE.FindSubmatch(b)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestSoakNodeKills: a soak on three node processes sharing Redis, while
// chaos SIGKILLs a node and starts it again, and drains another with
// SIGTERM and replaces it. Devices on a node that goes sign in again on
// another, as apps do; calls the node held go on elsewhere or end. Every
// call must end everywhere, no device may go on ringing, every answered
// call must be in its members' histories exactly once, and once the load
// stops no node may hold a call or a room, nor more goroutines or files.
//
// make soak runs it long (TANDEM_SOAK=30m), with a kill or a drain every
// 5 minutes.
func TestSoakNodeKills(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and three nodes for a while")
	}
	duration, every := 40*time.Second, 12*time.Second
	if v := os.Getenv("TANDEM_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || d > 24*time.Hour {
			t.Fatalf("TANDEM_SOAK=%q: want a duration from 1m to 24h", v)
		}
		duration, every = d, min(5*time.Minute, d/3)
	}
	rdb := redistest.StartPersistent(t)
	var nodes []*soakNode
	var urls []string
	for range 3 {
		n := startSoakNode(t, rdb.Addr)
		nodes = append(nodes, n)
		urls = append(urls, n.url())
	}
	a, err := auth.New([]byte(clusterSecret), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration+3*time.Minute)
	defer cancel()
	var chaosErr []string
	res, err := loadtest.Soak(ctx, loadtest.SoakConfig{
		URLs: urls, Tokens: loadtest.AuthorityTokens{Authority: a, TTL: time.Hour}, People: 12, Devices: 2,
		Duration: duration, Rate: 5, Hold: 600 * time.Millisecond, RingTimeout: 2 * time.Second,
		Progress: os.Stderr, ProgressEvery: min(duration/4, time.Minute), Seed: 11,
		MaxRSSSlope: 64,
		LinkBursts:  3 * time.Second,
		// A call whose node was killed is found dead, taken over and,
		// if a device does not come back, ended after the grace.
		EndWait: 30 * time.Second,
		Chaos: func(ctx context.Context, c loadtest.ChaosControl) {
			rng := rand.New(rand.NewPCG(5, 5))
			for i := 0; ; i++ {
				select {
				case <-ctx.Done():
					return
				case <-time.After(every):
				}
				n := nodes[rng.IntN(len(nodes))]
				if i%2 == 1 {
					// A drain of the node holding the most calls: one
					// holding none exits at once and hands nothing over.
					n = busiest(nodes)
				}
				if i%2 == 0 {
					if err := n.stop(syscall.SIGKILL, 10*time.Second); err != nil {
						chaosErr = append(chaosErr, err.Error())
					}
					c.Note("node on %s killed (SIGKILL)", n.addr)
					time.Sleep(time.Second)
				} else {
					c.Note("node on %s draining (SIGTERM)", n.addr)
					if err := n.stop(syscall.SIGTERM, 20*time.Second); err != nil {
						chaosErr = append(chaosErr, "drain: "+err.Error())
					}
					c.Note("node on %s drained and gone", n.addr)
				}
				if err := n.start(); err != nil {
					chaosErr = append(chaosErr, err.Error())
					return
				}
				c.Note("node on %s started again", n.addr)
			}
		},
	})
	t.Log("\n" + res.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(chaosErr) > 0 {
		t.Errorf("the chaos itself failed: %s", strings.Join(chaosErr, "; "))
	}
	if !res.OK() {
		t.Errorf("%d invariants broken", len(res.Violation))
	}
	errLines := 0
	for _, n := range nodes {
		bad, errs := n.uncaused()
		errLines += errs
		for _, l := range bad {
			t.Errorf("node on %s: %s", n.addr, l)
		}
	}
	t.Logf("the nodes logged %d error lines, each naming its cause", errLines)
	if len(res.Chaos) < 4 || res.SignIns == 0 {
		t.Errorf("the chaos did not show: %v, %d devices signed in again", res.Chaos, res.SignIns)
	}
}
