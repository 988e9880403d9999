// Package x11test starts private X servers (Xvfb) and test windows for
// the tests of the desktop agent and of package x11.
//
// It speaks only the core X protocol, so it shares no state with package
// x11 (see x11/ext.go) and can run alongside it in one test binary.
package x11test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jezek/xgb"
)

func init() {
	// xgb logs to stderr, for example at every connection to a server
	// without an .Xauthority entry.
	xgb.Logger = log.New(io.Discard, "", 0)
}

// Size of the screen of the servers StartXvfb starts, 24-bit TrueColor.
const (
	Width  = 1280
	Height = 720
)

// Display numbers StartXvfb tries, in order. Test binaries run in
// parallel; a number another server holds is skipped.
const (
	firstDisplay = 71
	lastDisplay  = 99
)

// StartXvfb starts an Xvfb server (1280×720×24, no TCP) on a free display
// number, waits until it accepts connections and stops it at the end of
// the test. It returns the display name, such as ":71". The test fails
// when Xvfb is not installed (Debian package xvfb).
func StartXvfb(t testing.TB) string {
	t.Helper()
	return startServer(t, "Xvfb", "xvfb", nil, "-screen", "0", fmt.Sprintf("%dx%dx24", Width, Height))
}

// startServer starts the X server program name (from Debian package pkg)
// with args on a free display number, with env added to its environment,
// as StartXvfb does.
func startServer(t testing.TB, name, pkg string, env []string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("x11test: %s not found; install the Debian package %s (apt-get install %s): %v", name, pkg, pkg, err)
	}
	var tried []string
	for n := firstDisplay; n <= lastDisplay; n++ {
		release, ok := claimDisplay(n)
		if !ok {
			tried = append(tried, fmt.Sprintf(":%d: claimed by another test process", n))
			continue
		}
		t.Cleanup(release) // runs after the server's own cleanup stopped it
		display, msg, err := startXvfb(t, path, n, env, args)
		if err != nil {
			t.Fatalf("x11test: %v", err)
		}
		if display != "" {
			return display
		}
		release()
		tried = append(tried, fmt.Sprintf(":%d: %s", n, msg))
	}
	t.Fatalf("x11test: no %s display free in :%d to :%d:\n%s", name, firstDisplay, lastDisplay, strings.Join(tried, "\n"))
	return ""
}

// claimDisplay takes display number n for this process until release:
// an exclusive lock on a file of its own in /tmp, where X keeps its
// sockets whatever TMPDIR says. Test binaries run in parallel, and a
// server that exits removes its socket by name: without the claim, one
// binary's server could start on n while another's was shutting down
// there, and lose its fresh socket to the other's cleanup.
func claimDisplay(n int) (release func(), ok bool) {
	f, err := os.OpenFile(fmt.Sprintf("/tmp/.tandem-x11test-%d.lock", n), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { f.Close() }) }, true
}

// startXvfb starts the X server at path (Xvfb, Xephyr) on display n. It
// returns the display name once the server is ready, or "" and the
// server's last words if it exited (the display number is taken), or an
// error.
func startXvfb(t testing.TB, path string, n int, env, args []string) (display, msg string, err error) {
	ready, w, err := os.Pipe()
	if err != nil {
		return "", "", err
	}
	defer ready.Close()
	var stderr lockedBuffer
	cmd := exec.Command(path, append([]string{":" + strconv.Itoa(n)}, append(args, "-nolisten", "tcp", "-noreset", "-displayfd", "3")...)...)
	cmd.ExtraFiles = []*os.File{w} // fd 3: the server writes its display number there when ready
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stderr = &stderr
	err = cmd.Start()
	w.Close()
	if err != nil {
		return "", "", fmt.Errorf("start Xvfb: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()

	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(ready).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if s == strconv.Itoa(n) {
			t.Cleanup(func() { stopXvfb(t, cmd, exited) })
			return ":" + s, "", nil
		}
		<-exited // the pipe closed: Xvfb is gone
		return "", lastLine(stderr.String()), nil
	case <-time.After(10 * time.Second):
		stopXvfb(t, cmd, exited)
		<-line
		return "", "", fmt.Errorf("%s :%d not ready after 10s: %s", path, n, stderr.String())
	}
}

// stopXvfb ends the server by its PID, politely first.
func stopXvfb(t testing.TB, cmd *exec.Cmd, exited <-chan struct{}) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(5 * time.Second):
	}
	t.Logf("x11test: X server (pid %d) ignored SIGTERM, killing it", cmd.Process.Pid)
	_ = cmd.Process.Kill()
	<-exited
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(strings.Trim(lines[i], "(EE)")); l != "" {
			return l
		}
	}
	return "exited"
}

// lockedBuffer collects a process's stderr while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64<<10 {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
