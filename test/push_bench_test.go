package test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/testkit/pushsvc"
	"github.com/tandemcall/tandem/internal/testkit/testnode"
)

// BenchmarkInviteToPush: from a caller's invite leaving its device to the
// push service receiving the callee's ringing push (checked and
// decrypted), on loopback: the time Tandem adds before a closed phone
// can ring. It reports the median and 95th percentile.
//
//	go test -run '^$' -bench InviteToPush -benchtime 200x ./test/
func BenchmarkInviteToPush(b *testing.B) {
	cfg := testnode.Config(b)
	cfg.Dev, cfg.Auth.Secret = false, "a-family-server-secret-of-32-bytes!"
	cfg.Accounts.Push.AllowLoopback = true
	cfg.Calls.RingTimeout = 30 * time.Second
	// Hundreds of calls to one person: no invite limits here.
	cfg.Calls.CallerInvitesPerMinute, cfg.Calls.CalleeInvitesPerMinute, cfg.Calls.PairInvitesPerMinute = 0, 0, 0
	cfg.Signaling.RateLimit = 10_000
	srv, _ := testnode.Start(b, cfg, nil)
	base := strings.Replace(srv.URL(), "127.0.0.1", "localhost", 1)
	mom, grandpa := familyAt(b, base, srv.SetupLink())
	var info struct {
		PushKey string `json:"push_key"`
	}
	apiCall(b, "GET", base+"/api/v1/info", "", nil, &info)
	svc := pushsvc.Start(b)
	sub := svc.Subscribe(info.PushKey)
	if st := apiCall(b, "PUT", base+"/api/v1/account/push", grandpa.Token, map[string]any{"subscription": sub.Subscription}, nil); st != http.StatusOK {
		b.Fatalf("subscribe: %d", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	caller, err := client.Dial(ctx, client.Options{URL: "ws" + strings.TrimPrefix(srv.URL(), "http") + "/ws", Token: mom.Token, LoopbackOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	defer caller.Close()

	var took []time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		id, err := caller.Invite(ctx, "grandpa", false)
		if err != nil {
			b.Fatal(err)
		}
		p := svc.Wait(sub, 2*i+1, 10*time.Second)[2*i]
		took = append(took, p.At.Sub(start))
		if err := caller.Hangup(ctx, id); err != nil {
			b.Fatal(err)
		}
		svc.Wait(sub, 2*i+2, 10*time.Second) // the cancelled ring's push
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
}
