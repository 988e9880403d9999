package test

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/loadtest"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/internal/turncred"
	"github.com/tandemcall/tandem/signaling/protocol"
)

const turnSecret = "interop-secret-0123456789abcdef"

// needTool finds one of coturn's utilities; it is a failure, not a skip,
// when they are missing (make test installs the coturn package).
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install the Debian package coturn (make test does this)", name)
	}
	return p
}

func freeUDPPort(t *testing.T, ip string) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// startPeer runs turnutils_peer, coturn's echo peer, on ip.
func startPeer(t *testing.T, ip string) int {
	t.Helper()
	port := freeUDPPort(t, ip)
	cmd := exec.Command(needTool(t, "turnutils_peer"), "-L", ip, "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	time.Sleep(200 * time.Millisecond) // let it bind before the first send
	return port
}

type uclientResult struct {
	out        string
	exitCode   int
	sent, recv int
	lost       string
}

var (
	totalsRe = regexp.MustCompile(`tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$`)
	lostRe   = regexp.MustCompile(`Total lost packets (\d+)`)
)

// uclient runs turnutils_uclient against 127.0.0.1 with args.
func uclient(t *testing.T, args ...string) uclientResult {
	t.Helper()
	return uclientFor(t, 90*time.Second, args...)
}

// uclientFor is uclient with a time limit; a refused client retries for a
// minute, so refusals are judged from what it printed in the first seconds.
func uclientFor(t *testing.T, limit time.Duration, args ...string) uclientResult {
	t.Helper()
	return uclientUntil(t, limit, nil, args...)
}

// uclientUntil is uclientFor that also stops the client as soon as done,
// asked with what it printed so far, reports true.
func uclientUntil(t *testing.T, limit time.Duration, done func(out string) bool, args ...string) uclientResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	// Line-buffered, so that a client cut off by the time limit has
	// still printed what the server answered.
	args = append([]string{"-oL", needTool(t, "turnutils_uclient")}, append(args, "127.0.0.1")...)
	cmd := exec.CommandContext(ctx, needTool(t, "stdbuf"), args...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if done != nil {
		tick := time.NewTicker(50 * time.Millisecond)
	watch:
		for {
			select {
			case <-exited:
				break watch
			case <-tick.C:
				if done(out.String()) {
					cancel()
					break watch
				}
			}
		}
		tick.Stop()
	}
	<-exited
	r := uclientResult{out: out.String(), exitCode: cmd.ProcessState.ExitCode()}
	for _, line := range strings.Split(r.out, "\n") {
		if m := totalsRe.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			r.sent, _ = strconv.Atoi(m[1])
			r.recv, _ = strconv.Atoi(m[2])
		}
		if m := lostRe.FindStringSubmatch(line); m != nil {
			r.lost = m[1]
		}
	}
	return r
}

// lockedBuffer is a bytes.Buffer a process writes while a test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func turnServer(t *testing.T, allow []string) *testServer {
	return startServer(t, func(c *config.Config) {
		c.TURN.Secrets = []string{turnSecret}
		c.TURN.AllowCIDRs = allow
		// turnutils_uclient makes two allocations per client (RTP and RTCP).
		c.TURN.MaxAllocationsPerUser = 100
	})
}

// TestTURNWithCoturnClient: coturn's own client relays through Tandem's
// TURN over UDP and TCP, many clients at once, losing nothing; it is
// refused for a wrong secret, an expired username and a denied peer.
func TestTURNWithCoturnClient(t *testing.T) {
	ts := turnServer(t, []string{"127.0.0.0/8"})
	tu := ts.TURN()
	peer := startPeer(t, "127.0.0.1")

	for _, tc := range []struct {
		name  string
		flags []string
		port  int
	}{
		{"udp", nil, tu.UDPAddr().Port},
		{"tcp", []string{"-t"}, tu.TCPAddr().Port},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, tc.flags...), "-W", turnSecret, "-u", "user-"+tc.name,
				"-e", "127.0.0.1", "-r", strconv.Itoa(peer))
			args = append(args, "-p", strconv.Itoa(tc.port), "-m", "20", "-n", "100", "-l", "100", "-z", "5")
			r := uclient(t, args...)
			if r.exitCode != 0 || r.sent == 0 || r.recv != r.sent || r.lost != "0" {
				t.Fatalf("exit %d, sent %d, received %d, lost %q:\n%s", r.exitCode, r.sent, r.recv, r.lost, tail(r.out, 15))
			}
			t.Logf("%s: %d messages relayed both ways, none lost", tc.name, r.recv)
		})
	}

	// A refused client retries its Allocate about thirty times; Tandem
	// answers each with 401 until the source's failure budget is spent and
	// then drops its requests, so a client guessing secrets is slowed down.
	refused := func(t *testing.T, reason string, r uclientResult) {
		t.Helper()
		st := tu.Stats()
		if r.recv != 0 || !strings.Contains(r.out, "allocate response received") {
			t.Fatalf("exit %d, %d messages relayed:\n%s", r.exitCode, r.recv, tail(r.out, 10))
		}
		if st.Auth[reason] == 0 {
			t.Fatalf("no %s refusal counted: %+v", reason, st.Auth)
		}
	}
	t.Run("wrong secret", func(t *testing.T) {
		// From its own source address: failures are limited per source.
		r := uclientFor(t, 5*time.Second, "-v", "-L", "127.0.0.3", "-W", "not-the-secret-at-all", "-u", "eve",
			"-e", "127.0.0.1", "-r", strconv.Itoa(peer), "-p", strconv.Itoa(tu.UDPAddr().Port), "-n", "5")
		refused(t, "bad_integrity", r)
		if tu.Stats().Auth["rate_limited"] == 0 {
			t.Errorf("repeated failures from one source were not rate limited: %+v", tu.Stats().Auth)
		}
	})
	t.Run("expired username", func(t *testing.T) {
		name := turncred.Username("eve", time.Now().Add(-time.Minute))
		r := uclientFor(t, 5*time.Second, "-v", "-L", "127.0.0.4", "-u", name, "-w", turncred.Password([]byte(turnSecret), name),
			"-e", "127.0.0.1", "-r", strconv.Itoa(peer), "-p", strconv.Itoa(tu.UDPAddr().Port), "-n", "5")
		refused(t, "expired", r)
	})

	t.Run("valid username from the same formula", func(t *testing.T) {
		name := turncred.Username("carol", time.Now().Add(time.Hour))
		r := uclient(t, "-u", name, "-w", turncred.Password([]byte(turnSecret), name), "-e", "127.0.0.1",
			"-r", strconv.Itoa(peer), "-p", strconv.Itoa(tu.UDPAddr().Port), "-n", "20")
		if r.exitCode != 0 || r.recv != r.sent || r.sent == 0 {
			t.Fatalf("exit %d, sent %d, received %d:\n%s", r.exitCode, r.sent, r.recv, tail(r.out, 10))
		}
	})
}

// TestTURNDeniesLoopbackPeers: with no allow list, a loopback peer (other
// than this node's own media address) is refused with 403.
func TestTURNDeniesLoopbackPeers(t *testing.T) {
	ts := turnServer(t, nil)
	peer := startPeer(t, "127.0.0.2")
	r := uclientFor(t, 5*time.Second, "-W", turnSecret, "-u", "mallory", "-e", "127.0.0.2", "-r", strconv.Itoa(peer),
		"-p", strconv.Itoa(ts.TURN().UDPAddr().Port), "-n", "5")
	if r.exitCode == 0 || !strings.Contains(r.out, "403") {
		t.Fatalf("loopback peer not refused with 403 (exit %d):\n%s", r.exitCode, tail(r.out, 10))
	}
	if r.recv != 0 {
		t.Fatalf("%d messages came back from a denied peer", r.recv)
	}
}

// TestTURNLoadtestHoldsAllocations: "tandem loadtest turn" creates and
// holds allocations from separate sockets; the server counts each one,
// and the per-user quota refuses the ones over it with 486.
func TestTURNLoadtestHoldsAllocations(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.TURN.Secrets = []string{turnSecret}
		c.TURN.MaxAllocationsPerUser = 250
	})
	tu := ts.TURN()
	res, err := loadtest.TURNAllocations(context.Background(), loadtest.TURNConfig{
		Server: tu.UDPAddr().String(), Secret: []byte(turnSecret), User: "many",
		Allocations: 300, Workers: 8, PID: os.Getpid(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", res)
	if res.Allocated != 250 || res.Failed != 50 || !strings.Contains(res.FirstError, "486") {
		t.Fatalf("allocated %d, failed %d (first error %q); want 250 and 50 refused with 486", res.Allocated, res.Failed, res.FirstError)
	}
	if st := tu.Stats(); st.Allocations["udp"] != 250 || st.QuotaRejections["user_allocations"] < 50 {
		t.Fatalf("server counts %d udp allocations and %d user-quota refusals", st.Allocations["udp"], st.QuotaRejections["user_allocations"])
	}
	if res.RSSAfter == 0 || res.FDsAfter < 250 {
		t.Fatalf("memory not measured: %+v", res)
	}
}

// TestCallOutlivesTURNCredentials: both legs may use relays only, the
// credentials live three seconds, and media keeps flowing after they
// expired; each device is handed fresh credentials before expiry.
func TestCallOutlivesTURNCredentials(t *testing.T) {
	const ttl = 3 * time.Second
	ts := startServer(t, func(c *config.Config) { c.TURN.CredentialTTL = ttl })
	dial := func(user, device string) *client.Client {
		ctx := testCtx(t, 10*time.Second)
		c, err := client.Dial(ctx, client.Options{URL: ts.wsURL(), Token: ts.token(t, user, device), LoopbackOnly: true, UseICEServers: true, RelayOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice, bob := dial("alice", "phone"), dial("bob", "laptop")
	ctx := testCtx(t, 60*time.Second)
	id := answeredCall(t, alice, bob, true)
	am, bm := startMedia(t, ctx, id, alice, bob)
	deadline := time.Now().Add(20 * time.Second)
	for !(am.Stats().Audio.PacketsReceived > 20 && bm.Stats().Audio.PacketsReceived > 20) {
		if time.Now().After(deadline) {
			t.Fatalf("no media over relays; TURN stats %+v", ts.TURN().Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	// Fresh credentials arrive before the first ones expire.
	waitType(t, bob, func(m *protocol.ICEServers) bool { return len(m.ICEServers) > 0 })

	expired := start.Add(2 * ttl)
	testkit.Eventually(t, 20*time.Second, "credentials to expire", func() bool { return time.Now().After(expired) })
	a0, b0 := am.Stats().Audio.PacketsReceived, bm.Stats().Audio.PacketsReceived
	testkit.Eventually(t, 10*time.Second, "media after expiry", func() bool {
		return am.Stats().Audio.PacketsReceived > a0+50 && bm.Stats().Audio.PacketsReceived > b0+50
	})
	var relayed uint64
	for _, n := range ts.TURN().Stats().RelayedPackets {
		relayed += n
	}
	if relayed < 200 {
		t.Fatalf("only %d packets went through TURN: media did not use the relays", relayed)
	}
	t.Logf("%d packets relayed; media flowed %v past credential expiry", relayed, time.Since(expired).Round(100*time.Millisecond))
}
