package server

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// bodyServer serves h behind withBodyTimeout(d) on loopback, with the
// node's header timeout.
func bodyServer(t *testing.T, d time.Duration, timeouts *atomic.Uint64, h http.Handler) string {
	t.Helper()
	ts := httptest.NewUnstartedServer(withBodyTimeout(d, timeouts, h))
	ts.Config.ReadHeaderTimeout = 10 * time.Second
	ts.Start()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

// sendSlowly writes a request with a body of n bytes in chunks, pausing
// between them, and returns the status line of the answer (or the
// error) and how long it took.
func sendSlowly(t *testing.T, addr, path string, n, chunk int, pause time.Duration) (string, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", path, n)
	go func() {
		body := strings.Repeat("a", chunk)
		for sent := 0; sent < n; sent += chunk {
			time.Sleep(pause)
			if _, err := io.WriteString(c, body[:min(chunk, n-sent)]); err != nil {
				return
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "error: " + err.Error(), time.Since(start)
	}
	return strings.TrimSpace(line), time.Since(start)
}

func TestBodyTimeout(t *testing.T) {
	var timeouts atomic.Uint64
	var ctxErr atomic.Value
	const timeout = 2 * time.Second
	addr := bodyServer(t, timeout, &timeouts, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.URL.Path == "/work" {
			// Work on after the body, past the deadline.
			time.Sleep(timeout + time.Second)
			ctxErr.Store(fmt.Sprint(r.Context().Err()))
		}
		fmt.Fprintf(w, "%d", len(b))
	}))

	// A body that dribbles in is cut at the deadline, not when it ends.
	status, took := sendSlowly(t, addr, "/", 1000, 1, 100*time.Millisecond)
	if !strings.Contains(status, " 400 ") || took > 10*time.Second {
		t.Fatalf("slowloris body: %q after %v, want 400 after about %v", status, took, timeout)
	}
	if timeouts.Load() != 1 {
		t.Fatalf("timeouts counted: %d", timeouts.Load())
	}

	// A 64 KiB offer over a slow link (in 8 pieces over 0.4 s) is read.
	if status, _ := sendSlowly(t, addr, "/", 64<<10, 8<<10, 50*time.Millisecond); !strings.Contains(status, " 200 ") {
		t.Fatalf("slow 64 KiB body: %q", status)
	}
	// A handler working after reading the whole body keeps its request.
	if status, _ := sendSlowly(t, addr, "/work", 10, 10, 0); !strings.Contains(status, " 200 ") {
		t.Fatalf("handler working past the deadline: %q", status)
	}
	if got := ctxErr.Load(); got != "<nil>" {
		t.Fatalf("request context after the body was read: %v", got)
	}
	if timeouts.Load() != 1 {
		t.Fatalf("timeouts counted: %d", timeouts.Load())
	}
}

// TestBodyTimeoutSparesHijackedConnections: a connection taken over by
// its handler (a WebSocket) outlives the body timeout.
func TestBodyTimeoutSparesHijackedConnections(t *testing.T) {
	var timeouts atomic.Uint64
	addr := bodyServer(t, 200*time.Millisecond, &timeouts, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\n\r\n")
		rw.Flush()
		line, err := rw.ReadString('\n') // arrives after the body timeout
		if err == nil {
			rw.WriteString("echo " + line)
			rw.Flush()
		}
	}))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	r := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || !strings.Contains(line, "101") {
		t.Fatalf("upgrade: %q %v", line, err)
	}
	r.ReadString('\n')
	time.Sleep(500 * time.Millisecond)
	io.WriteString(c, "still here\n")
	if line, err := r.ReadString('\n'); err != nil || line != "echo still here\n" {
		t.Fatalf("after the body timeout: %q %v", line, err)
	}
}
