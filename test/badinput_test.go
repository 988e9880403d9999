package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// rawConn is a bare WebSocket for sending what a real client never would.
type rawConn struct {
	t *testing.T
	c *websocket.Conn
}

func (ts *testServer) raw(t *testing.T) *rawConn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(ts.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if err := r.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// next reads the next message, skipping none; it fails the test on close.
func (r *rawConn) next() map[string]any {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := r.c.ReadMessage()
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		r.t.Fatalf("server sent non-JSON %q", b)
	}
	return m
}

// closed waits for the server to close the socket and returns the code.
func (r *rawConn) closed() int {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := r.c.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code
		}
		r.t.Fatalf("socket ended without a close frame: %v", err)
	}
}

func (r *rawConn) hello(token string) {
	r.t.Helper()
	r.send(`{"v":1,"type":"hello","token":"` + token + `"}`)
	if m := r.next(); m["type"] != "welcome" {
		r.t.Fatalf("hello answered with %v", m)
	}
}

func TestBadMessagesGetErrorsAndTheSessionCarriesOn(t *testing.T) {
	ts := startServer(t, nil)
	// A call in progress between two others must not notice anything.
	alice := ts.dial(t, "alice", "phone")
	bob := ts.dial(t, "bob", "phone")
	ctx := testCtx(t, 30*time.Second)
	id, err := alice.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatal(err)
	}
	waitType(t, bob, func(m *protocol.Incoming) bool { return m.CallID == id })

	r := ts.raw(t)
	r.hello(ts.token(t, "mallory", "laptop"))
	tests := []struct{ in, code string }{
		{`{not json`, protocol.CodeBadMessage},
		{`[]`, protocol.CodeBadMessage},
		{`{"type":"teleport","id":"q1"}`, protocol.CodeUnknownType},
		{`{"v":7,"type":"ping"}`, protocol.CodeUnsupportedVersion},
		{`{"type":"invite","to":42}`, protocol.CodeBadMessage},
		{`{"type":"accept","call_id":"` + id + `"}`, protocol.CodeNotInCall},
		{`{"type":"hangup","call_id":"` + id + `"}`, protocol.CodeNotInCall},
		{`{"type":"sdp","call_id":"` + id + `","pc":"pub","kind":"offer","sdp":"v=0"}`, protocol.CodeNotInCall},
		{`{"type":"hello","token":"again"}`, protocol.CodeHelloRequired},
	}
	for _, tt := range tests {
		r.send(tt.in)
		m := r.next()
		if m["type"] != "error" || m["code"] != tt.code || m["message"] == "" {
			t.Errorf("%s → %v, want error %s", tt.in, m, tt.code)
		}
	}
	r.send(`{"type":"ping","id":"p1"}`)
	if m := r.next(); m["type"] != "pong" {
		t.Errorf("ping after bad input → %v", m)
	}
	r.c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3})
	if m := r.next(); m["code"] != protocol.CodeBadMessage {
		t.Errorf("binary frame → %v", m)
	}

	// The call between Alice and Bob is untouched.
	if err := bob.Accept(ctx, id, false); err != nil {
		t.Fatalf("bob cannot accept after mallory's noise: %v", err)
	}
	waitType(t, alice, func(m *protocol.Accepted) bool { return m.CallID == id })
}

func TestBadTokensAndOversizedMessages(t *testing.T) {
	const secret = "test-secret-test-secret-test-secret!"
	ts := startServer(t, func(c *config.Config) {
		c.Signaling.MaxMessageBytes = 8192
		c.Auth.Secret = secret
	})
	other, _ := startServer(t, nil), 0

	tests := []struct {
		name, first, code string
	}{
		{"forged", `{"type":"hello","token":"` + other.token(t, "alice", "x") + `"}`, protocol.CodeUnauthorized},
		{"garbage", `{"type":"hello","token":"abc"}`, protocol.CodeUnauthorized},
		{"no hello", `{"type":"invite","to":"bob"}`, protocol.CodeHelloRequired},
		{"not json", `hello`, protocol.CodeHelloRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.raw(t)
			r.send(tt.first)
			if m := r.next(); m["code"] != tt.code {
				t.Fatalf("got %v, want %s", m, tt.code)
			}
			if code := r.closed(); code != 4001 {
				t.Fatalf("close code %d, want 4001", code)
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		// Signed with the right key by an app backend, but an hour old.
		tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "alice", "dev": "x", "grants": []string{"call"},
			"exp": time.Now().Add(-time.Hour).Unix(),
		}).SignedString([]byte(secret))
		r := ts.raw(t)
		r.send(`{"type":"hello","token":"` + tok + `"}`)
		if m := r.next(); m["code"] != protocol.CodeTokenExpired {
			t.Fatalf("got %v, want token_expired", m)
		}
		var e struct{ Error struct{ Code string } }
		getJSON(t, ts.URL()+"/api/v1/calls", tok, 401, &e)
		if e.Error.Code != protocol.CodeTokenExpired {
			t.Fatalf("HTTP with expired token: %+v", e)
		}
	})

	t.Run("too large", func(t *testing.T) {
		bystander := ts.dial(t, "carol", "phone")
		r := ts.raw(t)
		r.hello(ts.token(t, "mallory", "laptop"))
		r.send(`{"type":"ping","pad":"` + strings.Repeat("x", 9000) + `"}`)
		if code := r.closed(); code != websocket.CloseMessageTooBig {
			t.Fatalf("close code %d, want 1009", code)
		}
		if err := bystander.Send(testCtx(t, 5*time.Second), protocol.TypePing, &protocol.Header{}); err != nil {
			t.Fatal(err)
		}
		waitType(t, bystander, func(*protocol.Header) bool { return true })
	})
}

func TestSameDeviceSigningInAgainReplacesTheOldSession(t *testing.T) {
	ts := startServer(t, nil)
	r := ts.raw(t)
	r.hello(ts.token(t, "alice", "laptop"))
	ts.dial(t, "alice", "laptop")
	if m := r.next(); m["code"] != protocol.CodeReplaced {
		t.Fatalf("old session got %v, want replaced", m)
	}
	if code := r.closed(); code != 4009 {
		t.Fatalf("close code %d, want 4009", code)
	}
}

func TestForeignOriginIsRefused(t *testing.T) {
	ts := startServer(t, nil)
	h := http.Header{"Origin": {"https://evil.example"}}
	_, resp, err := websocket.DefaultDialer.Dial(ts.wsURL(), h)
	if err == nil {
		t.Fatal("cross-origin WebSocket accepted")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin upgrade: %v", resp)
	}
}

// TestMessageFloodIsAnsweredPerRequest: a socket sending faster than
// signaling.rate_limit gets rate_limited for each message over it, naming
// that message's request id so the client knows which request failed, and
// the socket carries on once it slows down.
func TestMessageFloodIsAnsweredPerRequest(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Signaling.RateLimit = 5 })
	r := ts.raw(t)
	r.hello(ts.token(t, "mallory", "laptop"))
	const n = 40
	for i := range n {
		r.send(fmt.Sprintf(`{"type":"ping","id":"p%d"}`, i))
	}
	pongs, limited := 0, 0
	for range n {
		m := r.next()
		switch {
		case m["type"] == "pong":
			pongs++
		case m["type"] == "error" && m["code"] == protocol.CodeRateLimited:
			limited++
			if re, _ := m["re"].(string); !strings.HasPrefix(re, "p") {
				t.Errorf("rate_limited without the request's id: %v", m)
			}
		default:
			t.Fatalf("flood answered with %v", m)
		}
	}
	if limited == 0 || pongs == 0 {
		t.Fatalf("%d pongs and %d rate_limited for %d pings at once, want both", pongs, limited, n)
	}
	time.Sleep(time.Second) // the bucket refills
	r.send(`{"type":"ping","id":"after"}`)
	if m := r.next(); m["type"] != "pong" {
		t.Errorf("a ping after the flood → %v, want pong", m)
	}
}
