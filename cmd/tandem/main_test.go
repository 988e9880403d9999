package main

// These tests build the real tandem binary once and run it as an operator
// would: flags, environment, config file, stdout, stderr, exit status and
// signals. Every server listens on 127.0.0.1 with kernel-chosen ports.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// tandemBin is the binary built by TestMain.
var tandemBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tandem-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: temp dir for the tandem binary:", err)
		os.Exit(1)
	}
	tandemBin = filepath.Join(dir, "tandem")
	build := exec.Command("go", "build", "-o", tandemBin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: go build -o %s . failed: %v\n%s\n", tandemBin, err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// childEnv is this process's environment without TANDEM_* variables (the
// binary rejects unknown ones, and a developer's own settings must not leak
// in), with the TURN listeners on ports the kernel picks so that tests
// never contend for 3478, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TANDEM_") {
			env = append(env, kv)
		}
	}
	env = append(env, "TANDEM_TURN_UDP_LISTEN=127.0.0.1:0", "TANDEM_TURN_TCP_LISTEN=127.0.0.1:0")
	return append(env, extra...)
}

// syncBuffer collects a child's output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// proc is a running tandem process started by the test.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{} // closed when the process has exited
	waitErr        error         // valid after done
}

// startTandem runs the binary in the background; it is killed at the end of
// the test if it is still running.
func startTandem(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(tandemBin, args...)
	p.cmd.Env = env
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start tandem %v: %v", args, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("tandem %v stdout:\n%s\nstderr:\n%s", args, p.stdout, p.stderr)
		}
	})
	return p
}

func (p *proc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// exitCode waits up to d for the process to exit and returns its status.
func (p *proc) exitCode(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("tandem still running %v later", d)
	}
	if p.waitErr == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ExitCode()
	}
	t.Fatalf("wait: %v", p.waitErr)
	return -1
}

// runsFor reports whether the process is still running for all of d.
func (p *proc) runsFor(d time.Duration) bool {
	select {
	case <-p.done:
		return false
	case <-time.After(d):
		return true
	}
}

var urlRE = regexp.MustCompile(`http://127\.0\.0\.1:(\d+)`)

// waitURL waits for the base URL the server prints on stdout.
func (p *proc) waitURL(t *testing.T) string {
	t.Helper()
	var u string
	testkit.Eventually(t, 10*time.Second, "the URL on stdout", func() bool {
		select {
		case <-p.done:
			t.Fatalf("tandem exited before printing its URL: %v\nstderr:\n%s", p.waitErr, p.stderr)
		default:
		}
		m := urlRE.FindStringSubmatch(p.stdout.String())
		if m == nil {
			return false
		}
		if m[1] == "0" {
			t.Fatalf("printed URL %s shows port 0, not the bound port", m[0])
		}
		u = m[0]
		return true
	})
	return u
}

// result is a finished run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

// runTandem runs the binary to completion (at most 15 s).
func runTandem(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tandemBin, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("tandem %v did not finish (killed after 15 s)\nstderr:\n%s", args, r.stderr)
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("tandem %v: %v", args, err)
	}
	return r
}

// mintToken runs `tandem token` against dataDir and returns the token.
func mintToken(t *testing.T, dataDir, user, device string) string {
	t.Helper()
	r := runTandem(t, childEnv(), "token", "--dev", "--data-dir", dataDir, "--user", user, "--device", device, "--ttl", "1h")
	if r.code != 0 {
		t.Fatalf("tandem token exited %d: %s", r.code, r.stderr)
	}
	tok := strings.TrimSpace(r.stdout)
	if strings.Count(tok, ".") != 2 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("tandem token printed %q, want one JWT", r.stdout)
	}
	return tok
}

func httpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// devServer starts `tandem serve --dev` on loopback port 0 with dataDir and
// returns it with its printed base URL.
func devServer(t *testing.T, dataDir string, env ...string) (*proc, string) {
	t.Helper()
	p := startTandem(t, childEnv(env...), "serve", "--dev", "--data-dir", dataDir,
		"--listen", "127.0.0.1:0", "--media-udp", "127.0.0.1:0")
	return p, p.waitURL(t)
}

func dial(t *testing.T, baseURL, token string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: "ws" + strings.TrimPrefix(baseURL, "http") + "/ws", Token: token, LoopbackOnly: true})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitMsg waits up to 10 s for a message of type T on c matching match.
func waitMsg[T any](t *testing.T, c *client.Client, match func(T) bool) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := client.WaitForType(ctx, c, match)
	if err != nil {
		t.Fatalf("waiting for %T: %v", m, err)
	}
	return m
}

// hasEnded reports, without waiting, whether c has received ended for callID.
func hasEnded(c *client.Client, callID string) bool {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.WaitFor(ctx, func(m any) bool {
		e, ok := m.(*protocol.Ended)
		return ok && e.CallID == callID
	})
	return err == nil
}

// TestDevServeNeedsNoConfig: `tandem serve --dev` starts from nothing,
// prints a URL with the port it really bound, serves /healthz, and keeps a
// private signing key in the data dir.
func TestDevServeNeedsNoConfig(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data") // does not exist yet
	p, url := devServer(t, dataDir)

	if code, body := httpGet(t, url+"/healthz", ""); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("GET /healthz = %d %q", code, body)
	}
	if code, _ := httpGet(t, url+"/readyz", ""); code != 200 {
		t.Errorf("GET /readyz = %d, want 200", code)
	}
	if !strings.Contains(p.stdout.String(), "dev mode") {
		t.Errorf("stdout does not say dev mode: %q", p.stdout)
	}
	fi, err := os.Stat(filepath.Join(dataDir, "signing.key"))
	if err != nil {
		t.Fatalf("signing key: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("signing.key mode = %v, want 0600", perm)
	}

	// With no call up, SIGTERM is a clean, prompt stop. (The signal handler
	// is installed before the URL is printed, so a supervisor may stop the
	// node as soon as it reports ready.)
	p.signal(t, syscall.SIGTERM)
	if code := p.exitCode(t, 5*time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM on an idle node, want 0", code)
	}
}

// TestRefusalsNameTheKey: a start-up that cannot be safe or is mistyped
// fails at once with a non-zero status and a message on stderr naming the
// setting to fix.
func TestRefusalsNameTheKey(t *testing.T) {
	cfgFile := filepath.Join(t.TempDir(), "tandem.yaml")
	if err := os.WriteFile(cfgFile, []byte("calls:\n  ring_timout: 10s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	loop := []string{"--listen", "127.0.0.1:0", "--media-udp", "127.0.0.1:0"}
	tests := []struct {
		name string
		env  []string
		args []string
		want []string // all must appear on stderr
	}{
		{"public without secret", nil,
			[]string{"--listen", "0.0.0.0:0", "--media-udp", "127.0.0.1:0"}, []string{"auth.secret"}},
		{"dev off loopback", nil,
			[]string{"--dev", "--listen", "0.0.0.0:0", "--media-udp", "127.0.0.1:0"}, []string{"http.listen"}},
		{"unknown config file key", nil,
			append([]string{"--dev", "--config", cfgFile}, loop...), []string{"calls.ring_timout", cfgFile}},
		{"bad duration in env", []string{"TANDEM_CALLS_RING_TIMEOUT=forever"},
			append([]string{"--dev"}, loop...), []string{"calls.ring_timeout", "TANDEM_CALLS_RING_TIMEOUT", `"forever"`}},
		{"unknown env var", []string{"TANDEM_HTTP_LISTN=127.0.0.1:0"},
			append([]string{"--dev"}, loop...), []string{"TANDEM_HTTP_LISTN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dataDir := t.TempDir()
			args := append([]string{"serve", "--data-dir", dataDir}, tt.args...)
			r := runTandem(t, childEnv(tt.env...), args...)
			if r.code == 0 {
				t.Fatalf("exit status 0, want a refusal\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not name %s:\n%s", w, r.stderr)
				}
			}
			if strings.Contains(r.stdout, "http://") {
				t.Errorf("a refused start printed a URL: %q", r.stdout)
			}
		})
	}
}

// TestTokenIsAcceptedByTheServer: `tandem token` with the server's data dir
// mints a token the running server accepts, over HTTP and WebSocket; a token
// from another data dir (another key) is refused.
func TestTokenIsAcceptedByTheServer(t *testing.T) {
	dataDir := t.TempDir()
	_, url := devServer(t, dataDir)
	tok := mintToken(t, dataDir, "alice", "laptop")

	if code, body := httpGet(t, url+"/api/v1/calls", tok); code != 200 {
		t.Errorf("GET /api/v1/calls with the token = %d %s, want 200", code, body)
	}
	c := dial(t, url, tok)
	if w := c.Welcome(); w.User != "alice" || w.Device != "laptop" {
		t.Errorf("welcome = %+v, want alice/laptop", w)
	}

	other := mintToken(t, t.TempDir(), "alice", "laptop")
	if code, _ := httpGet(t, url+"/api/v1/calls", other); code != 401 {
		t.Errorf("token signed with another key: status %d, want 401", code)
	}
	if code, _ := httpGet(t, url+"/api/v1/calls", ""); code != 401 {
		t.Errorf("no token: status %d, want 401", code)
	}
}

// TestTokenRooms: `tandem token --room` names the rooms a publish or
// subscribe token holds for; such a token without --room, which WHIP and
// WHEP would refuse, is not minted, and a bad room name is refused.
func TestTokenRooms(t *testing.T) {
	dataDir := t.TempDir()
	mint := func(args ...string) result {
		return runTandem(t, childEnv(), append([]string{"token", "--dev", "--data-dir", dataDir, "--user", "studio", "--device", "obs"}, args...)...)
	}
	r := mint("--grants", "publish", "--room", "show", "--room", "show.b", "--ttl", "12h")
	if r.code != 0 {
		t.Fatalf("tandem token --room exited %d: %s", r.code, r.stderr)
	}
	key, err := auth.LoadOrCreateKey(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.New(key, "")
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Verify(strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(id.Rooms, []string{"show", "show.b"}) || !slices.Equal(id.Grants, []string{auth.GrantPublish}) {
		t.Errorf("minted %+v, want publish in show and show.b", id)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--grants", "publish"}, "--room"},
		{[]string{"--grants", "call,subscribe"}, "--room"},
		{[]string{"--grants", "publish", "--room", "Show Room"}, `--room "Show Room"`},
	} {
		r := mint(c.args...)
		if r.code == 0 || r.stdout != "" || !strings.Contains(r.stderr, c.want) {
			t.Errorf("tandem token %v: exit %d, stdout %q, stderr %q; want a refusal naming %s", c.args, r.code, r.stdout, r.stderr, c.want)
		}
	}
	// Tokens without publish or subscribe need no room.
	if r := mint("--grants", "call"); r.code != 0 {
		t.Errorf("tandem token --grants call exited %d: %s", r.code, r.stderr)
	}
}

// callUp starts a dev server with a 30 s drain timeout and puts alice and
// bob in an answered call; carol is signed in too.
func callUp(t *testing.T) (p *proc, url string, alice, bob, carol *client.Client, callID string) {
	t.Helper()
	dataDir := t.TempDir()
	p, url = devServer(t, dataDir, "TANDEM_SHUTDOWN_DRAIN_TIMEOUT=30s")
	alice = dial(t, url, mintToken(t, dataDir, "alice", "phone"))
	bob = dial(t, url, mintToken(t, dataDir, "bob", "phone"))
	carol = dial(t, url, mintToken(t, dataDir, "carol", "phone"))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := alice.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatalf("invite: %v", err)
	}
	waitMsg(t, bob, func(m *protocol.Incoming) bool { return m.CallID == id })
	if err := bob.Accept(ctx, id, false); err != nil {
		t.Fatalf("accept: %v", err)
	}
	waitMsg(t, alice, func(m *protocol.Accepted) bool { return m.CallID == id })
	return p, url, alice, bob, carol, id
}

// waitDraining waits until /readyz reports the node out of rotation, which
// it does once new calls are refused.
func waitDraining(t *testing.T, p *proc, url string) {
	t.Helper()
	c := &http.Client{Timeout: 2 * time.Second}
	testkit.Eventually(t, 5*time.Second, "/readyz to report draining", func() bool {
		select {
		case <-p.done:
			t.Fatalf("tandem exited (%v) instead of draining with a call up", p.waitErr)
		default:
		}
		resp, err := c.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
}

// TestSIGTERMDrainsThenExits: after SIGTERM the node refuses new calls but
// keeps running while a call is up; when the last call hangs up it exits 0
// by itself.
func TestSIGTERMDrainsThenExits(t *testing.T) {
	p, url, alice, bob, carol, id := callUp(t)

	p.signal(t, syscall.SIGTERM)
	waitDraining(t, p, url)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := carol.Invite(ctx, "alice", false); !client.IsCode(err, protocol.CodeShuttingDown) {
		t.Errorf("new invite while draining: %v, want %s", err, protocol.CodeShuttingDown)
	}
	if !p.runsFor(time.Second) {
		t.Fatalf("tandem exited during the drain with a call up (%v)", p.waitErr)
	}
	if hasEnded(alice, id) || hasEnded(bob, id) {
		t.Fatal("the running call was ended by the drain")
	}
	if code, body := httpGet(t, url+"/healthz", ""); code != 200 {
		t.Errorf("GET /healthz while draining = %d %q, want 200 (alive)", code, body)
	}

	if err := alice.Hangup(ctx, id); err != nil {
		t.Fatalf("hangup: %v", err)
	}
	if r := waitMsg(t, bob, func(m *protocol.Ended) bool { return m.CallID == id }).Reason; r != protocol.ReasonCompleted {
		t.Errorf("bob's call ended with %q, want %s", r, protocol.ReasonCompleted)
	}
	if code := p.exitCode(t, 5*time.Second); code != 0 {
		t.Errorf("exit status %d after the drain, want 0\nstderr:\n%s", code, p.stderr)
	}
}

// TestSecondSignalStopsAtOnce: a second SIGTERM during the drain stops the
// node well before the 30 s drain timeout. The server ends the call that is
// still up with reason failed, sends both devices ended, then closes their
// sockets; the process exits 0, as after a clean drain (the stop was asked
// for).
func TestSecondSignalStopsAtOnce(t *testing.T) {
	p, url, alice, bob, _, id := callUp(t)

	p.signal(t, syscall.SIGTERM)
	waitDraining(t, p, url)
	if !p.runsFor(200 * time.Millisecond) {
		t.Fatalf("tandem exited on the first signal with a call up (%v)", p.waitErr)
	}
	p.signal(t, syscall.SIGTERM)
	start := time.Now()
	if code := p.exitCode(t, 10*time.Second); code != 0 {
		t.Errorf("exit status %d after the second signal, want 0\nstderr:\n%s", code, p.stderr)
	}
	t.Logf("stopped %v after the second signal", time.Since(start).Round(time.Millisecond))

	for name, c := range map[string]*client.Client{"alice": alice, "bob": bob} {
		if r := waitMsg(t, c, func(m *protocol.Ended) bool { return m.CallID == id }).Reason; r != protocol.ReasonFailed {
			t.Errorf("%s's call ended with %q, want %s", name, r, protocol.ReasonFailed)
		}
		// Then the socket is gone.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := c.WaitFor(ctx, func(any) bool { return false })
		cancel()
		if !errors.Is(err, client.ErrDisconnected) {
			t.Errorf("%s: after the stop, err = %v, want a disconnect", name, err)
		}
	}
}
