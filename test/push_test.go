package test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/testkit/pushsvc"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// ringPush is what a ringing push carries, as the service worker reads it.
type ringPush struct {
	Type   string `json:"type"`
	CallID string `json:"call_id"`
	From   string `json:"from"`
	Name   string `json:"from_name"`
	Video  bool   `json:"video"`
	Reason string `json:"reason"`
	Device string `json:"device"`
}

func decodePush(t *testing.T, p pushsvc.Push) ringPush {
	t.Helper()
	var r ringPush
	if err := json.Unmarshal(p.Payload, &r); err != nil {
		t.Fatalf("push payload %q: %v", p.Payload, err)
	}
	return r
}

// subscribePush subscribes a's device at svc for the node's pushes.
func subscribePush(t *testing.T, ts *testServer, svc *pushsvc.Service, a account) *pushsvc.Sub {
	t.Helper()
	var info struct {
		PushKey string `json:"push_key"`
	}
	apiCall(t, "GET", ts.URL()+"/api/v1/info", "", nil, &info)
	if info.PushKey == "" {
		t.Fatal("the server offers no push key")
	}
	sub := svc.Subscribe(info.PushKey)
	if st := apiCall(t, "PUT", ts.URL()+"/api/v1/account/push", a.Token, map[string]any{"subscription": sub.Subscription}, nil); st != http.StatusOK {
		t.Fatalf("subscribing: %d", st)
	}
	return sub
}

// pushNode is a family node whose pushes may go to a push service on
// loopback, with a short ring.
func pushNode(t *testing.T) *testServer { return pushNodeRinging(t, 3*time.Second) }

// pushNodeRinging is pushNode with calls ringing for ring.
func pushNodeRinging(t *testing.T, ring time.Duration) *testServer {
	return startServer(t, func(c *config.Config) {
		c.Dev, c.Auth.Secret = false, "a-family-server-secret-of-32-bytes!"
		c.Accounts.Push.AllowLoopback = true
		c.Calls.RingTimeout = ring
	})
}

// TestPushRingsAClosedApp: a call to someone whose phone has no
// connection is pushed to it, encrypted for it, high urgency, for as long
// as it rings, topic the call; declining from the notification declines
// the call; answered on another device, cancelled or missed, the phone is
// told, under the same topic, so its notification is replaced.
func TestPushRingsAClosedApp(t *testing.T) {
	ts := pushNode(t)
	svc := pushsvc.Start(t)
	mom, phone := family(t, ts) // Grandpa's phone: subscribed, and closed
	sub := subscribePush(t, ts, svc, phone)
	momC := dialAccount(t, ts, mom)
	ctx := testCtx(t, 60*time.Second)

	// 1. The phone is pushed; Decline on its notification declines.
	id, err := momC.Invite(ctx, "grandpa", true)
	if err != nil {
		t.Fatal(err)
	}
	got := svc.Wait(sub, 1, 5*time.Second)
	r := decodePush(t, got[0])
	if r.Type != "ring" || r.CallID != id || r.From != "mom" || r.Name != "Mom" || !r.Video {
		t.Fatalf("the ringing push says %+v", r)
	}
	if got[0].Urgency != "high" || got[0].TTL != 3 || !strings.HasPrefix(got[0].Topic, "call-") || len(got[0].Topic) > 32 {
		t.Fatalf("the ringing push's urgency %q, TTL %d, topic %q", got[0].Urgency, got[0].TTL, got[0].Topic)
	}
	if b := string(got[0].Payload); strings.Contains(b, "token") || strings.Contains(b, "credential") {
		t.Fatalf("the push carries more than it should: %s", b)
	}
	if st := apiCall(t, "POST", ts.URL()+"/api/v1/account/push/decline", "", map[string]string{"credential": phone.Credential, "call_id": id}, nil); st != http.StatusOK {
		t.Fatalf("decline from the notification: %d", st)
	}
	if e := ended(t, momC, id); e.Reason != protocol.ReasonDeclined {
		t.Fatalf("mom heard %s, want declined", e.Reason)
	}
	if st := apiCall(t, "POST", ts.URL()+"/api/v1/account/push/decline", "", map[string]string{"credential": phone.Credential, "call_id": id}, nil); st != http.StatusGone {
		t.Fatalf("declining again: %d, want 410", st)
	}
	if r := decodePush(t, svc.Wait(sub, 2, 5*time.Second)[1]); r.Type != "ended" || r.Reason != protocol.ReasonDeclined || got[0].Topic != svc.Pushes(sub)[1].Topic {
		t.Fatalf("after the decline the phone was pushed %+v", r)
	}

	// 2. Answered on his laptop (online): the laptop is not pushed, the
	// phone is, then told where it was answered.
	laptop := signInAgain(t, ts, phone, "Laptop")
	lapC := dialAccount(t, ts, laptop)
	id, err = momC.Invite(ctx, "grandpa", false)
	if err != nil {
		t.Fatal(err)
	}
	waitType(t, lapC, func(m *protocol.Incoming) bool { return m.CallID == id })
	svc.Wait(sub, 3, 5*time.Second)
	if err := lapC.Accept(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	if r := decodePush(t, svc.Wait(sub, 4, 5*time.Second)[3]); r.Type != "ended" || r.Reason != protocol.ReasonAnsweredElsewhere || r.Device != "Laptop" {
		t.Fatalf("after the answer the phone was pushed %+v", r)
	}
	if err := momC.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	ended(t, lapC, id)
	lapC.Close()

	// 3. Nobody answers: the phone is told it missed the call.
	time.Sleep(100 * time.Millisecond) // the laptop's session has gone
	id, err = momC.Invite(ctx, "grandpa", false)
	if err != nil {
		t.Fatal(err)
	}
	ended(t, momC, id)
	if r := decodePush(t, svc.Wait(sub, 6, 5*time.Second)[5]); r.Type != "ended" || r.Reason != protocol.ReasonNoAnswer || r.CallID != id {
		t.Fatalf("after the ring ran out the phone was pushed %+v", r)
	}
}

// signInAgain signs a's person in on another device with a fresh passkey
// sign-in... through the pairing code, approved by a.
func signInAgain(t *testing.T, ts *testServer, a account, name string) account {
	t.Helper()
	var p struct {
		Code, Secret string
	}
	apiCall(t, "POST", ts.URL()+"/api/v1/account/pair/start", "", map[string]any{}, &p)
	if st := apiCall(t, "POST", ts.URL()+"/api/v1/account/pair/approve", a.Token, map[string]string{"code": p.Code, "device_name": name}, nil); st != http.StatusOK {
		t.Fatalf("approve: %d", st)
	}
	var in account
	if st := apiCall(t, "POST", ts.URL()+"/api/v1/account/pair/finish", "", map[string]string{"code": p.Code, "secret": p.Secret}, &in); st != http.StatusOK {
		t.Fatalf("pair finish: %d", st)
	}
	return in
}

// TestPushFailuresNeverDelayRinging: a push service that hangs or fails
// delays nobody: the callee's other device rings at once, the call goes
// on; a subscription the service says is gone is dropped; a bad
// subscription is refused; a removed device is pushed nothing.
func TestPushFailuresNeverDelayRinging(t *testing.T) {
	ts := pushNode(t)
	svc := pushsvc.Start(t)
	mom, phone := family(t, ts)
	sub := subscribePush(t, ts, svc, phone)
	for _, bad := range []map[string]any{
		{"endpoint": "http://push.example/x", "keys": sub.Subscription.Keys},
		{"endpoint": sub.Subscription.Endpoint, "keys": map[string]string{"p256dh": "AAAA", "auth": "BBBB"}},
		{"endpoint": "https://10.0.0.1/internal", "keys": sub.Subscription.Keys},
	} {
		if st := apiCall(t, "PUT", ts.URL()+"/api/v1/account/push", phone.Token, map[string]any{"subscription": bad}, nil); st != http.StatusBadRequest {
			t.Errorf("subscription %v: %d, want 400", bad, st)
		}
	}
	laptop := signInAgain(t, ts, phone, "Laptop")
	lapC := dialAccount(t, ts, laptop)
	momC := dialAccount(t, ts, mom)
	ctx := testCtx(t, 60*time.Second)

	hang := make(chan struct{})
	svc.Set(sub, 0, hang)
	start := time.Now()
	id, err := momC.Invite(ctx, "grandpa", false)
	if err != nil {
		t.Fatal(err)
	}
	waitType(t, lapC, func(m *protocol.Incoming) bool { return m.CallID == id })
	if d := time.Since(start); d > time.Second {
		t.Fatalf("with the push service hanging, the laptop rang after %v", d)
	}
	if err := lapC.Accept(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	close(hang)
	if err := momC.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	ended(t, lapC, id)

	// The service says the subscription is gone: it is dropped.
	svc.Set(sub, http.StatusGone, nil)
	id, _ = momC.Invite(ctx, "grandpa", false)
	waitType(t, lapC, func(m *protocol.Incoming) bool { return m.CallID == id })
	if err := lapC.Decline(ctx, id); err != nil {
		t.Fatal(err)
	}
	ended(t, momC, id)
	waitMetric(t, ts, `tandem_push_sent_total{result="gone"}`)

	// A removed device is pushed nothing, even with a subscription.
	svc.Set(sub, 0, nil)
	sub2 := subscribePush(t, ts, svc, phone)
	if st := apiCall(t, "DELETE", ts.URL()+"/api/v1/account/devices/"+phone.Device, laptop.Token, nil, nil); st != http.StatusOK {
		t.Fatalf("removing the phone: %d", st)
	}
	id, _ = momC.Invite(ctx, "grandpa", false)
	waitType(t, lapC, func(m *protocol.Incoming) bool { return m.CallID == id })
	time.Sleep(300 * time.Millisecond)
	if n := len(svc.Pushes(sub2)); n != 0 {
		t.Fatalf("the removed phone was pushed %d times", n)
	}
}

// waitMetric waits for the node's metrics to show series with a value
// of at least 1.
func waitMetric(t *testing.T, ts *testServer, series string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(ts.URL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, series+" ") && !strings.HasSuffix(line, " 0") {
				return
			}
		}
		if time.Now().After(deadline) {
			var push []string
			for _, line := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(line, "tandem_push") {
					push = append(push, line)
				}
			}
			t.Fatalf("no %s in the metrics:\n%s", series, strings.Join(push, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPushDeclineAcrossNodes: on a deployment, Decline on a notification
// reaches whichever node holds the call.
func TestPushDeclineAcrossNodes(t *testing.T) {
	cfg := testConfig(t)
	cfg.Dev = false
	cfg.Accounts.Push.AllowLoopback = true
	cfg.Calls.RingTimeout = 20 * time.Second
	ts := startCluster(t, cfg, 3)
	svc := pushsvc.Start(t)
	mom, phone := family(t, ts)
	sub := subscribePush(t, ts, svc, phone)
	momC := dialAccount(t, ts, mom) // on the first node, which holds the call
	ctx := testCtx(t, 30*time.Second)
	id, err := momC.Invite(ctx, "grandpa", false)
	if err != nil {
		t.Fatal(err)
	}
	svc.Wait(sub, 1, 10*time.Second)
	other := ts.others[1].URL()
	if st := apiCall(t, "POST", other+"/api/v1/account/push/decline", "", map[string]string{"credential": phone.Credential, "call_id": id}, nil); st != http.StatusOK {
		t.Fatalf("decline on the third node: %d", st)
	}
	if e := ended(t, momC, id); e.Reason != protocol.ReasonDeclined {
		t.Fatalf("mom heard %s, want declined", e.Reason)
	}
}
