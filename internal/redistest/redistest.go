// Package redistest starts a real redis-server for tests: on a free
// loopback port, with its own directory, stopped when the test ends.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is a running redis-server.
type Server struct {
	Addr string
	cmd  *exec.Cmd
	t    testing.TB
	args []string
}

// Start runs redis-server on 127.0.0.1 and a free port, persisting
// nothing, and waits until it answers PING. A missing redis-server fails
// the test with the package to install.
func Start(t testing.TB) *Server { t.Helper(); return start(t, false) }

// StartPersistent is Start with every write kept on disk (an append-only
// file, synced at each write), as a production Redis is set up: Restart
// brings back what it held.
func StartPersistent(t testing.TB) *Server { t.Helper(); return start(t, true) }

func start(t testing.TB, persist bool) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not found: install the Debian package redis-server (make test does)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	aof := []string{"--appendonly", "no"}
	if persist {
		aof = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), t: t,
		args: append([]string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
			"--dir", t.TempDir(), "--protected-mode", "yes", "--loglevel", "warning"}, aof...)}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !s.ping() {
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("redis-server on %s did not answer PING within 10 s", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (as a crash would) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts it again on the same address: empty, or, started with
// StartPersistent, with what it held.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// RestartEmpty starts it again on the same address with nothing it held,
// as a Redis without persistence, or one whose disk was lost, comes back.
func (s *Server) RestartEmpty() {
	s.t.Helper()
	s.Stop()
	for i, a := range s.args {
		if a == "--dir" && i+1 < len(s.args) {
			entries, _ := os.ReadDir(s.args[i+1])
			for _, e := range entries {
				_ = os.RemoveAll(filepath.Join(s.args[i+1], e.Name()))
			}
		}
	}
	s.start()
}

// ping reports whether the server answers PING.
func (s *Server) ping() bool {
	c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprint(c, "PING\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}
