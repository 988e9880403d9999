package loadtest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/redistest"
)

func TestSignalingConfigBounds(t *testing.T) {
	tokens := AuthorityTokens{}
	for _, c := range []SignalingConfig{
		{Tokens: tokens, Invites: 1},
		{URLs: []string{"ws://192.0.2.1:7880/ws"}, Tokens: tokens, Invites: 1},
		{URLs: []string{"ws://127.0.0.1:7880/ws"}, Tokens: tokens},
		{URLs: []string{"ws://127.0.0.1:7880/ws"}, Tokens: tokens, Idle: 300_000},
		{URLs: []string{"ws://127.0.0.1:7880/ws"}, Tokens: tokens, Idle: 1, Sources: []string{"10.0.0.1"}},
		{URLs: []string{"ws://127.0.0.1:7880/ws"}, Invites: 1},
	} {
		if _, err := Signaling(context.Background(), c); err == nil {
			t.Errorf("Signaling(%+v) ran, want a refusal", c)
		}
	}
}

// Calls placed across three nodes of a deployment all ring and are
// declined, and idle sessions open and are measured.
func TestSignalingLoadAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts redis-server and three nodes")
	}
	rdb := redistest.Start(t)
	const secret = "a-loadtest-secret-of-at-least-32-bytes"
	var urls []string
	for range 3 {
		srv := startServer(t, func(c *config.Config) {
			c.Redis.Addrs = []string{rdb.Addr}
			c.Auth.Secret = secret
			c.HTTP.MaxConnsPerIP = 0 // each source address opens dozens of sessions
			// Each pair calls 50 times in a few seconds: lift the invite
			// limits, as a load run against a node must.
			c.Calls.CallerInvitesPerMinute, c.Calls.CalleeInvitesPerMinute, c.Calls.PairInvitesPerMinute = 0, 0, 0
		})
		urls = append(urls, "ws"+strings.TrimPrefix(srv.URL(), "http")+"/ws")
	}
	a, err := auth.New([]byte(secret), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := Signaling(ctx, SignalingConfig{URLs: urls, Tokens: AuthorityTokens{Authority: a, TTL: time.Hour},
		Invites: 200, Pairs: 4, Idle: 300, PID: os.Getpid(), Sources: []string{"127.0.0.1", "127.0.0.2"}})
	t.Log("\n" + res.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 0 || res.Invites != 200 || res.Idle != 300 {
		t.Fatalf("%d invites, %d idle sessions, %d failed (%s)", res.Invites, res.Idle, res.Failed, res.FirstFailure)
	}
	if res.RingP50 <= 0 || res.RingP99 < res.RingP50 || res.RingMax < res.RingP99 || res.InvitesPerSec <= 0 {
		t.Fatalf("ringing times p50 %v p99 %v max %v, %.0f invites/s", res.RingP50, res.RingP99, res.RingMax, res.InvitesPerSec)
	}
	if res.RSSAfter <= 0 {
		t.Fatalf("server memory not read: %+v", res)
	}
}
