package test

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Tests that impair links (tc, nftables) run in a network namespace of
// their own: the test binary runs itself again under `unshare -n`, with
// only that test selected, and the child applies its rules to a loopback
// nobody else uses. The rules die with the namespace. They never touch the
// namespace the tests were started in, even when that is
// scripts/loopback-only.sh's (namespaces nest).

// Environment passed to the child.
const (
	// netnsChildEnv names the test the child runs.
	netnsChildEnv = "TANDEM_NETNS_CHILD"
	// netnsParentEnv is the parent's network namespace (the target of
	// /proc/self/ns/net); the child refuses to shape traffic in it.
	netnsParentEnv = "TANDEM_NETNS_PARENT"
)

// inPrivateNetns makes the calling test run in a fresh network namespace
// holding only loopback. In the parent it runs the test binary again
// there, relays the child's output and result, and returns false: the
// caller returns at once. In the child it brings loopback up, checks that
// it is alone, and returns true: the caller goes on and may impair lo.
// tools are the commands the test needs besides unshare, ip and tc.
func inPrivateNetns(t *testing.T, tools ...string) bool {
	t.Helper()
	if os.Getenv(netnsChildEnv) == t.Name() {
		enterPrivateNetns(t)
		return true
	}
	for _, tool := range append([]string{"unshare", "ip", "tc"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install it (scripts/test-deps.sh does) to run the impaired-network tests", tool)
		}
	}
	if out, err := exec.Command("unshare", "-n", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace (needs root or CAP_SYS_ADMIN): %v: %s", err, bytesTrim(out))
	}
	runInPrivateNetns(t)
	return false
}

// runInPrivateNetns runs t's test alone in the test binary under
// `unshare -n` and fails, skips or passes as the child did.
func runInPrivateNetns(t *testing.T) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("finding the test binary: %v", err)
	}
	ns, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatalf("reading this process's network namespace: %v", err)
	}
	ctx := context.Background()
	args := []string{"-n", "--", exe, "-test.run=^" + regexp.QuoteMeta(t.Name()) + "$", "-test.count=1", "-test.v"}
	if deadline, ok := t.Deadline(); ok {
		// The child times out first, so its own panic report, with every
		// goroutine's stack, reaches this log.
		left := time.Until(deadline)
		args = append(args, "-test.timeout="+(left-left/10).String())
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-left/20))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "unshare", args...)
	cmd.Env = append(os.Environ(), netnsChildEnv+"="+t.Name(), netnsParentEnv+"="+ns)
	cmd.WaitDelay = 5 * time.Second
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		_ = r.Close()
		_ = w.Close()
		t.Fatalf("starting %s in a network namespace: %v", t.Name(), err)
	}
	_ = w.Close() // the child holds its own copy; EOF when it exits

	passed, skipped := false, false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		t.Log(line)
		passed = passed || strings.HasPrefix(line, "--- PASS: "+t.Name()+" ")
		skipped = skipped || strings.HasPrefix(line, "--- SKIP: "+t.Name()+" ")
	}
	if err := sc.Err(); err != nil {
		t.Logf("reading the child's output: %v", err)
		_, _ = io.Copy(io.Discard, r) // keep the child from blocking on a full pipe
	}
	_ = r.Close()
	err = cmd.Wait()
	switch {
	case err != nil:
		t.Fatalf("%s failed in its network namespace: %v (its output is above)", t.Name(), err)
	case skipped:
		t.Skip("skipped in its network namespace (the reason is above)")
	case !passed:
		t.Fatalf("%s did not run in its network namespace (its output is above)", t.Name())
	}
}

// enterPrivateNetns runs first in the child: it makes sure this is not the
// namespace the parent ran in, brings lo up and checks that lo is the only
// interface, so that whatever the test shapes is its own.
func enterPrivateNetns(t *testing.T) {
	t.Helper()
	ns, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatalf("reading this process's network namespace: %v", err)
	}
	if parent := os.Getenv(netnsParentEnv); parent == "" || parent == ns {
		t.Fatalf("refusing to shape traffic: network namespace %s is not a private one (parent %q)", ns, parent)
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v: %s", err, bytesTrim(out))
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagLoopback == 0 {
			t.Fatalf("refusing to shape traffic: the namespace has interface %s besides loopback", ifc.Name)
		}
	}
}

// mustBePrivateNetns stops a test that would shape traffic outside a
// namespace made by inPrivateNetns.
func mustBePrivateNetns(t *testing.T) {
	t.Helper()
	if os.Getenv(netnsChildEnv) != t.Name() {
		t.Fatal("refusing to shape traffic outside the test's own network namespace (call inPrivateNetns first)")
	}
}

func bytesTrim(b []byte) string { return strings.TrimSpace(string(b)) }
