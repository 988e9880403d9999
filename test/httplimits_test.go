package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/testkit"
)

// fromAddr returns an HTTP client whose connections come from the local
// address ip and are not kept.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// metricValue reads one sample from /metrics (asked from 127.0.0.9).
func metricValue(t *testing.T, ts *testServer, name string) float64 {
	t.Helper()
	resp, err := fromAddr("127.0.0.9").Get(ts.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestHTTPConnectionsPerAddress: one source address holds at most
// http.max_conns_per_ip connections, WebSockets included; the next one is
// closed unanswered and counted, while another address still connects;
// closing a WebSocket gives its slot back.
func TestHTTPConnectionsPerAddress(t *testing.T) {
	const limit = 4
	ts := startServer(t, func(c *config.Config) { c.HTTP.MaxConnsPerIP = limit })
	addr := ts.Addr().String()

	// Two signaling sessions and two idle connections from 127.0.0.1.
	alice := ts.dial(t, "alice", "phone")
	ts.dial(t, "bob", "phone")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	for range limit - 2 {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}

	get := func(ip string) error {
		resp, err := fromAddr(ip).Get(ts.URL() + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	if err := get("127.0.0.1"); err == nil {
		t.Fatalf("connection %d from 127.0.0.1 was served", limit+1)
	}
	if err := get("127.0.0.2"); err != nil {
		t.Fatalf("127.0.0.2 refused while 127.0.0.1 is at its limit: %v", err)
	}
	if n := metricValue(t, ts, "tandem_http_connections_refused_total"); n < 1 {
		t.Fatalf("refusals counted: %v", n)
	}

	alice.Close()
	testkit.Eventually(t, 5*time.Second, "the closed WebSocket's slot", func() bool { return get("127.0.0.1") == nil })
}

// TestHTTPBodyTimeout: a request body sent a byte at a time is cut off at
// http.body_timeout, while a signaling WebSocket lives on past it.
func TestHTTPBodyTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	ts := startServer(t, func(c *config.Config) { c.HTTP.BodyTimeout = timeout })
	ws := ts.dial(t, "alice", "phone")

	c, err := net.Dial("tcp", ts.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	fmt.Fprintf(c, "POST /api/v1/dev/token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", ts.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			if _, err := io.WriteString(c, " "); err != nil {
				return
			}
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	status, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to a slow body after %v: %v", time.Since(start), err)
	}
	_, err = io.Copy(io.Discard, r) // the server closes the connection
	took := time.Since(start)
	if !strings.Contains(status, "400") || err != nil || took > timeout+5*time.Second {
		t.Fatalf("slow body: %q, closed after %v (%v); want 400 and close after about %v", strings.TrimSpace(status), took, err, timeout)
	}
	if n := metricValue(t, ts, "tandem_http_body_timeouts_total"); n != 1 {
		t.Fatalf("body timeouts counted: %v", n)
	}

	// The WebSocket opened before is still there: a request gets its answer.
	testkit.Eventually(t, 10*time.Second, "the body timeout to pass for the WebSocket", func() bool { return time.Since(start) > timeout+time.Second })
	if _, err := ws.Invite(testCtx(t, 5*time.Second), "nobody-at-all", false); err == nil || !strings.Contains(err.Error(), "user_unknown") {
		t.Fatalf("signaling after the body timeout: %v, want a user_unknown answer", err)
	}
}
