package test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/testkit/passkey"
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
	post := func(path, token string, body, out any) {
		bb, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(bb))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		if out != nil {
			_ = json.NewDecoder(resp.Body).Decode(out)
		}
	}
	join := func(link, name string) (tok, cred string) {
		_, secret, _ := strings.Cut(link, "#invite=")
		var begun struct {
			Ceremony string
			Options  json.RawMessage
		}
		post("/api/v1/account/register/begin", "", map[string]string{"invite": secret, "name": name}, &begun)
		c, err := passkey.New(base).Create(begun.Options)
		if err != nil {
			b.Fatal(err)
		}
		var in struct{ Token, Credential string }
		post("/api/v1/account/register/finish", "", map[string]any{"ceremony": begun.Ceremony, "credential": json.RawMessage(c)}, &in)
		return in.Token, in.Credential
	}
	momTok, _ := join(srv.SetupLink(), "Mom")
	var inv struct{ Link string }
	post("/api/v1/account/invites", momTok, map[string]string{}, &inv)
	gpTok, _ := join(inv.Link, "Grandpa")
	svc := pushsvc.Start(b)
	var info struct {
		PushKey string `json:"push_key"`
	}
	if resp, err := http.Get(srv.URL() + "/api/v1/info"); err == nil {
		_ = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
	}
	sub := svc.Subscribe(info.PushKey)
	req, _ := http.NewRequest("PUT", base+"/api/v1/account/push", strings.NewReader(mustMarshal(map[string]any{"subscription": sub.Subscription})))
	req.Header.Set("Authorization", "Bearer "+gpTok)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		b.Fatalf("subscribe: %v %v", resp, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	mom, err := client.Dial(ctx, client.Options{URL: "ws" + strings.TrimPrefix(srv.URL(), "http") + "/ws", Token: momTok})
	if err != nil {
		b.Fatal(err)
	}
	defer mom.Close()

	var took []time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		id, err := mom.Invite(ctx, "grandpa", false)
		if err != nil {
			b.Fatal(err)
		}
		p := svc.Wait(sub, 2*i+1, 10*time.Second)[2*i]
		took = append(took, p.At.Sub(start))
		if err := mom.Hangup(ctx, id); err != nil {
			b.Fatal(err)
		}
		svc.Wait(sub, 2*i+2, 10*time.Second) // the cancelled ring's push
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
