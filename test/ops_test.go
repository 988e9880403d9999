package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/adminapi"
	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/internal/webhook"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// scrape reads /metrics into "name{labels}" → value.
func scrape(t *testing.T, ts *testServer) map[string]float64 {
	t.Helper()
	resp, err := http.Get(ts.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// adminToken mints a token with the admin grant.
func (ts *testServer) adminToken(t *testing.T) string {
	t.Helper()
	tok, _, err := ts.Authority().Mint("ops", "console", []string{auth.GrantAdmin}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// apiRequest makes a request with a bearer token (none if empty) and
// returns the status and the body.
func apiRequest(t *testing.T, method, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// api makes an authenticated request and decodes a JSON answer into out
// (if not nil); it returns the status.
func api(t *testing.T, method, url, token string, out any) int {
	t.Helper()
	status, body := apiRequest(t, method, url, token)
	if out != nil && status/100 == 2 {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, body)
		}
	}
	return status
}

// TestMetricsAndAdminDuringACall: during a real call with media, /metrics
// shows the sessions, the room and its legs, and packets forwarded
// growing; the admin API lists the call with both members' tracks and
// their live quality; after the hang-up the invite's outcome and the
// call's length are counted, and the history entry says how the call
// went. Every series the Grafana dashboard draws exists.
func TestMetricsAndAdminDuringACall(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t, 60*time.Second)
	alice, bob := ts.dial(t, "alice", "laptop"), ts.dial(t, "bob", "phone")
	id := answeredCall(t, alice, bob, true)
	_, bm := startMedia(t, ctx, id, alice, bob)
	testkit.Eventually(t, 20*time.Second, "video at Bob", func() bool { return bm.Stats().Video.PacketsReceived > 30 })

	m1 := scrape(t, ts)
	for k, want := range map[string]float64{
		"tandem_signaling_sessions": 2, "tandem_signaling_calls": 1,
		"tandem_sfu_rooms": 1, "tandem_sfu_participants": 2, "tandem_sfu_tracks": 4,
	} {
		if m1[k] != want {
			t.Errorf("%s = %v during the call, want %v", k, m1[k], want)
		}
	}
	if m1[`tandem_signaling_messages_total{direction="in",type="invite"}`] < 1 ||
		m1[`tandem_signaling_messages_total{direction="out",type="incoming"}`] < 1 {
		t.Errorf("the invite and the incoming are not counted: %v", grep(m1, "tandem_signaling_messages_total"))
	}
	testkit.Eventually(t, 10*time.Second, "forwarded packets to grow", func() bool {
		m2 := scrape(t, ts)
		k := `tandem_sfu_packets_forwarded_total{kind="video"}`
		a := `tandem_sfu_packets_forwarded_total{kind="audio"}`
		return m2[k] > m1[k] && m2[a] > m1[a] && m2[`tandem_sfu_bytes_forwarded_total{kind="video"}`] > 0 &&
			m2[`tandem_sfu_packets_received_total{kind="audio"}`] > 0
	})
	for _, k := range []string{`tandem_sfu_keyframe_requests_total`, `tandem_sfu_layer_switches_total`, "go_goroutines",
		"process_resident_memory_bytes", `tandem_sfu_packets_dropped_total{kind="video",reason="keyframe_wait"}`} {
		if _, ok := m1[k]; !ok {
			t.Errorf("%s is not exported", k)
		}
	}
	if m1[`tandem_sfu_layer_switches_total`] < 2 {
		t.Errorf("layer switches = %v, want each subscriber's video start counted", m1[`tandem_sfu_layer_switches_total`])
	}

	// The admin API: the call, both members, their tracks, live quality.
	admin := ts.adminToken(t)
	var rooms struct{ Rooms []adminapi.RoomView }
	testkit.Eventually(t, 10*time.Second, "live quality of both legs", func() bool {
		if st := api(t, "GET", ts.URL()+"/api/v1/admin/rooms", admin, &rooms); st != http.StatusOK {
			t.Fatalf("GET rooms: %d", st)
		}
		if len(rooms.Rooms) != 1 || len(rooms.Rooms[0].Members) != 2 {
			return false
		}
		for _, m := range rooms.Rooms[0].Members {
			if m.Quality == nil || m.Quality.RTTMs <= 0 || m.Quality.SendKbps <= 0 {
				return false
			}
		}
		return true
	})
	r := rooms.Rooms[0]
	if r.ID != id || r.Kind != "call" || r.State != "active" {
		t.Errorf("room %+v, want the active call %s", r, id)
	}
	for _, m := range r.Members {
		kinds := []string{}
		for _, tr := range m.Tracks {
			kinds = append(kinds, tr.Kind)
		}
		slices.Sort(kinds)
		if !slices.Equal(kinds, []string{"audio", "video"}) || m.State != "joined" || m.Session == "" {
			t.Errorf("member %+v: want joined with an audio and a video track", m)
		}
		if q := m.Quality; q.Level != "good" || q.LossUpPct != 0 || q.RTTMs > 50 || q.PacketsForwarded == 0 {
			t.Errorf("%s's quality on loopback: %+v", m.User, *q)
		}
	}
	var sessions struct{ Devices []adminapi.DeviceInfo }
	api(t, "GET", ts.URL()+"/api/v1/admin/users/bob/sessions", admin, &sessions)
	if len(sessions.Devices) != 1 || sessions.Devices[0].Device != "phone" || sessions.Devices[0].Call != id {
		t.Errorf("Bob's sessions: %+v, want his phone in the call", sessions.Devices)
	}
	if st := api(t, "GET", ts.URL()+"/api/v1/admin/rooms", ts.token(t, "alice", "laptop"), nil); st != http.StatusForbidden {
		t.Errorf("a token without the admin grant got %d, want 403", st)
	}

	time.Sleep(1500 * time.Millisecond) // a call of some length
	if err := alice.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	ended(t, bob, id)
	m3 := scrape(t, ts)
	if m3[`tandem_signaling_invites_total{outcome="answered"}`] != 1 || m3["tandem_signaling_call_duration_seconds_count"] != 1 ||
		m3["tandem_signaling_call_duration_seconds_sum"] < 1.5 {
		t.Errorf("after the hang-up: %v %v", grep(m3, "invites_total"), grep(m3, "call_duration_seconds_(sum|count)"))
	}
	testkit.Eventually(t, 5*time.Second, "the room to go", func() bool { return scrape(t, ts)["tandem_sfu_rooms"] == 0 })

	// The history entry says how the call went, per leg.
	var hist struct{ Calls []store.CallEntry }
	api(t, "GET", ts.URL()+"/api/v1/calls", ts.token(t, "bob", "phone"), &hist)
	if len(hist.Calls) != 1 || hist.Calls[0].Quality == nil {
		t.Fatalf("Bob's history %+v, want the call with its quality", hist.Calls)
	}
	q := hist.Calls[0].Quality
	legs := map[string]store.LegQuality{}
	for _, l := range q.Legs {
		legs[l.User+"/"+l.Device] = l
	}
	if q.Level != store.QualityGood || len(q.Legs) != 2 || legs["alice/laptop"].SendKbps <= 0 || legs["bob/phone"].RecvKbps <= 0 ||
		legs["bob/phone"].RTTMs <= 0 || legs["alice/laptop"].Seconds < 1 {
		t.Errorf("the call's quality in Bob's history: %+v", q)
	}

	// Every series the dashboard draws is exported.
	dash, err := os.ReadFile("../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for k := range m3 {
		n := k
		if i := strings.IndexByte(k, '{'); i >= 0 {
			n = k[:i]
		}
		names[n] = true
	}
	for _, n := range regexp.MustCompile(`\b(?:tandem|go|process)_[a-z_]+`).FindAllString(string(dash), -1) {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count"), "_sum")
		if !names[n] && !names[base+"_bucket"] && !names[base+"_count"] && !strings.HasPrefix(n, "tandem_webhook_") {
			t.Errorf("the dashboard draws %s, which /metrics does not export", n)
		}
	}
}

// grep returns the metrics whose key matches re, for messages.
func grep(m map[string]float64, re string) map[string]float64 {
	out := map[string]float64{}
	r := regexp.MustCompile(re)
	for k, v := range m {
		if r.MatchString(k) {
			out[k] = v
		}
	}
	return out
}

// TestAdminEndsAndRemoves: an operator takes one member out of a group
// call (their device hears removed, the others go on), then ends the call
// for everyone (ended_by_operator).
func TestAdminEndsAndRemoves(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t, 30*time.Second)
	alice, bob, carol := ts.dial(t, "alice", "laptop"), ts.dial(t, "bob", "phone"), ts.dial(t, "carol", "tablet")
	id := answeredCall(t, alice, bob, false)
	if _, err := alice.Request(ctx, protocol.TypeInvite, &protocol.Invite{To: "carol", CallID: id}); err != nil {
		t.Fatal(err)
	}
	waitType(t, carol, func(m *protocol.Incoming) bool { return m.CallID == id })
	if err := carol.Accept(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	waitType(t, alice, func(m *protocol.MemberJoined) bool { return m.Member.User == "carol" })

	admin := ts.adminToken(t)
	if st := api(t, "DELETE", ts.URL()+"/api/v1/admin/rooms/"+id+"/participants/bob", admin, nil); st != http.StatusNoContent {
		t.Fatalf("removing Bob: %d", st)
	}
	if e := ended(t, bob, id); e.Reason != protocol.ReasonRemoved {
		t.Errorf("Bob's call ended with %q, want removed", e.Reason)
	}
	waitType(t, alice, func(m *protocol.MemberLeft) bool { return m.User == "bob" && m.Reason == protocol.ReasonRemoved })
	if st := api(t, "DELETE", ts.URL()+"/api/v1/admin/rooms/"+id+"/participants/bob", admin, nil); st != http.StatusNotFound {
		t.Errorf("removing Bob twice: %d, want 404", st)
	}
	if st := api(t, "DELETE", ts.URL()+"/api/v1/admin/rooms/"+id, admin, nil); st != http.StatusNoContent {
		t.Fatalf("ending the call: %d", st)
	}
	for _, c := range []*client.Client{alice, carol} {
		if e := ended(t, c, id); e.Reason != protocol.ReasonEndedByOperator {
			t.Errorf("%s's call ended with %q, want ended_by_operator", c.Welcome().User, e.Reason)
		}
	}
	if st := api(t, "DELETE", ts.URL()+"/api/v1/admin/rooms/"+id, admin, nil); st != http.StatusNotFound {
		t.Errorf("ending an ended call: %d, want 404", st)
	}
}

// TestExportAndErase: after a few calls and an assistance, Alice's export
// holds exactly those calls and that assistance's audit entries; she
// erases everything; her devices are signed out, her export (as an
// operator reads it) is empty, and her old tokens open nothing. Bob's own
// history of their calls stays his.
func TestExportAndErase(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t, 60*time.Second)
	alice, bob := ts.dial(t, "alice", "laptop"), ts.dial(t, "bob", "phone")
	aliceTok := ts.token(t, "alice", "laptop")

	// An answered call with an assistance in it.
	first := answeredCall(t, alice, bob, false)
	if err := alice.Assist(ctx, first, "alice", protocol.AssistView); err != nil {
		t.Fatal(err)
	}
	waitType(t, bob, func(m *protocol.AssistState) bool { return m.CallID == first && len(m.Granted) == 1 })
	if err := alice.Hangup(ctx, first); err != nil {
		t.Fatal(err)
	}
	ended(t, bob, first)
	// A declined one.
	second, err := alice.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatal(err)
	}
	waitType(t, bob, func(m *protocol.Incoming) bool { return m.CallID == second })
	if err := bob.Decline(ctx, second); err != nil {
		t.Fatal(err)
	}
	ended(t, alice, second)

	var x adminapi.Export
	if st := api(t, "GET", ts.URL()+"/api/v1/me/export", aliceTok, &x); st != http.StatusOK {
		t.Fatalf("export: %d", st)
	}
	var ids []string
	for _, c := range x.Calls {
		ids = append(ids, c.CallID)
	}
	if !slices.Equal(ids, []string{second, first}) || x.User != "alice" || !x.Known || x.Format != adminapi.ExportFormat {
		t.Errorf("Alice's export has calls %v (known %v, user %q), want exactly %s and %s", ids, x.Known, x.User, second, first)
	}
	var events []string
	for _, e := range slices.Backward(x.AssistLog) {
		if e.CallID != first {
			t.Errorf("assist entry of another call: %+v", e)
		}
		events = append(events, e.Event)
	}
	if !slices.Equal(events, []string{store.AssistStart, store.AssistGrant, store.AssistRevoke, store.AssistEnd}) {
		t.Errorf("Alice's exported assist log: %v", events)
	}
	if len(x.Devices) != 1 || x.Devices[0].Device != "laptop" {
		t.Errorf("Alice's exported devices: %+v", x.Devices)
	}

	// She erases everything.
	if st := api(t, "DELETE", ts.URL()+"/api/v1/me", aliceTok, nil); st != http.StatusNoContent {
		t.Fatalf("erase: %d", st)
	}
	e := waitType(t, alice, func(m *protocol.Error) bool { return m.Code == protocol.CodeTokenRevoked })
	if e.Re != "" {
		t.Errorf("sign-out error %+v", e)
	}
	var after adminapi.Export
	if st := api(t, "GET", ts.URL()+"/api/v1/admin/users/alice/export", ts.adminToken(t), &after); st != http.StatusOK {
		t.Fatalf("admin export: %d", st)
	}
	if len(after.Calls) != 0 || len(after.AssistLog) != 0 || after.Known || len(after.Devices) != 0 {
		t.Errorf("after the erasure Alice's export holds %+v", after)
	}
	if st := api(t, "GET", ts.URL()+"/api/v1/calls", aliceTok, nil); st != http.StatusUnauthorized {
		t.Errorf("Alice's old token read history: %d, want 401", st)
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if c, err := client.Dial(dctx, client.Options{URL: ts.wsURL(), Token: aliceTok, LoopbackOnly: true}); err == nil {
		c.Close()
		t.Error("Alice's old token opened a session")
	} else if !strings.Contains(err.Error(), protocol.CodeTokenRevoked) {
		t.Errorf("Alice's old token: %v, want %s", err, protocol.CodeTokenRevoked)
	}
	// Calling her now finds nobody who ever signed in.
	if _, err := bob.Invite(ctx, "alice", false); err == nil || !strings.Contains(err.Error(), protocol.CodeUserUnknown) {
		t.Errorf("calling the erased Alice: %v, want %s", err, protocol.CodeUserUnknown)
	}
	var bobs adminapi.Export
	api(t, "GET", ts.URL()+"/api/v1/me/export", ts.token(t, "bob", "phone"), &bobs)
	if len(bobs.Calls) != 2 || len(bobs.AssistLog) != 4 {
		t.Errorf("Bob's export after Alice's erasure: %d calls, %d assist entries; want his 2 and 4", len(bobs.Calls), len(bobs.AssistLog))
	}
	// Nothing of hers is left on disk either: her own history entries,
	// the only ones whose peer is Bob, are gone from the database file and
	// its write-ahead log, not only unlinked.
	for _, f := range []string{"tandem.db", "tandem.db-wal"} {
		b, err := os.ReadFile(ts.cfg.DataDir + "/" + f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(`"peer":"bob"`)) {
			t.Errorf("%s still holds Alice's history", f)
		}
	}
}

// TestHistoryRetention: entries older than calls.history_retention are
// deleted without a restart.
func TestHistoryRetention(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Calls.HistoryRetention = 2 * time.Second
		c.Assist.LogRetention = 2 * time.Second
	})
	ctx := testCtx(t, 30*time.Second)
	alice, bob := ts.dial(t, "alice", "laptop"), ts.dial(t, "bob", "phone")
	id := answeredCall(t, alice, bob, false)
	if err := alice.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	ended(t, bob, id)
	tok := ts.token(t, "bob", "phone")
	count := func() int {
		var h struct{ Calls []store.CallEntry }
		api(t, "GET", ts.URL()+"/api/v1/calls", tok, &h)
		return len(h.Calls)
	}
	if n := count(); n != 1 {
		t.Fatalf("history right after the call: %d entries", n)
	}
	start := time.Now()
	testkit.Eventually(t, 10*time.Second, "the entry to expire", func() bool { return count() == 0 })
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("the entry went after %v, before its 2 s retention", waited)
	}
}

// hookReceiver is an app backend receiving Tandem's webhooks on loopback:
// it refuses the first fail attempts, then keeps every event it accepts.
type hookReceiver struct {
	mu       sync.Mutex
	fail     int
	attempts []string // delivery id/attempt, as they came
	events   []webhook.Event
	badSigs  int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attempts = append(h.attempts, r.Header.Get("Tandem-Delivery")+"/"+r.Header.Get("Tandem-Attempt"))
	if err := webhook.Verify([]byte(hookSecret), r.Header.Get("Tandem-Signature"), body, time.Now(), 5*time.Minute); err != nil {
		h.badSigs++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if h.fail > 0 {
		h.fail--
		http.Error(w, "not now", http.StatusServiceUnavailable)
		return
	}
	var ev webhook.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.Type != r.Header.Get("Tandem-Event") {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	h.events = append(h.events, ev)
}

const hookSecret = "a-webhook-secret-for-tests"

// TestWebhooksOfACall: the app backend hears a real call's events in
// order (started, joined, answered, joined, assist granted and revoked,
// left, left, ended with reason and duration), each signed; it refuses the
// first two deliveries and gets them again.
func TestWebhooksOfACall(t *testing.T) {
	rcv := &hookReceiver{fail: 2}
	hs := httptest.NewServer(rcv)
	t.Cleanup(hs.Close)
	ts := startServer(t, func(c *config.Config) {
		c.Webhook.URL = hs.URL + "/tandem"
		c.Webhook.Secret = hookSecret
	})
	ctx := testCtx(t, 30*time.Second)
	alice, bob := ts.dial(t, "alice", "laptop"), ts.dial(t, "bob", "phone")
	id := answeredCall(t, alice, bob, false)
	if err := alice.Assist(ctx, id, "alice", protocol.AssistView); err != nil {
		t.Fatal(err)
	}
	waitType(t, bob, func(m *protocol.AssistState) bool { return m.CallID == id && len(m.Granted) == 1 })
	time.Sleep(200 * time.Millisecond)
	if err := bob.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	ended(t, alice, id)

	want := []string{
		"call.started", "participant.joined alice/laptop", "call.answered bob/phone", "participant.joined bob/phone",
		"assist.granted view", "assist.revoked view", "participant.left alice/laptop", "participant.left bob/phone", "call.ended completed",
	}
	var got []string
	testkit.Eventually(t, 15*time.Second, "every event", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		got = got[:0]
		for _, ev := range rcv.events {
			var d struct {
				CallID       string `json:"call_id"`
				User, Device string
				Reason       string
				By           struct{ User, Device string }
				Grants       []string
				DurationMS   int64 `json:"duration_ms"`
				Answered     bool
			}
			b, _ := json.Marshal(ev.Data)
			_ = json.Unmarshal(b, &d)
			if d.CallID != id {
				t.Errorf("event %s of call %q, want %s", ev.Type, d.CallID, id)
			}
			s := ev.Type
			switch ev.Type {
			case "participant.joined", "participant.left":
				s += " " + d.User + "/" + d.Device
			case "call.answered":
				s += " " + d.By.User + "/" + d.By.Device
			case "assist.granted", "assist.revoked":
				s += " " + strings.Join(d.Grants, ",")
			case "call.ended":
				s += " " + d.Reason
				if d.DurationMS < 200 || !d.Answered {
					t.Errorf("call.ended says %+v, want the answered call's length", d)
				}
			}
			got = append(got, s)
		}
		return len(got) >= len(want)
	})
	slices.Sort(got[6:8]) // who left first at the end is not ordered
	if !slices.Equal(got, want) {
		t.Errorf("events:\n%q\nwant\n%q", got, want)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	first := strings.Split(rcv.attempts[0], "/")[0]
	if len(rcv.attempts) < 3 || rcv.attempts[0] != first+"/1" || rcv.attempts[1] != first+"/2" || rcv.attempts[2] != first+"/3" {
		t.Errorf("deliveries %q: want the first event tried three times", rcv.attempts[:min(4, len(rcv.attempts))])
	}
	if rcv.badSigs != 0 {
		t.Errorf("%d deliveries had a bad signature", rcv.badSigs)
	}
	for i, ev := range rcv.events {
		if ev.Seq != rcv.events[0].Seq+uint64(i) {
			t.Errorf("event %d has seq %d", i, ev.Seq)
		}
	}
}

// syncBuffer is a log destination several goroutines write to.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsNameTheCallAndKeepSecrets: with JSON logs at debug, a call with
// an erasure and webhooks logs the call and who in it on each call event,
// and never a token, a webhook secret or a signature.
func TestLogsNameTheCallAndKeepSecrets(t *testing.T) {
	rcv := &hookReceiver{}
	hs := httptest.NewServer(rcv)
	t.Cleanup(hs.Close)
	cfg := testConfig(t)
	cfg.Webhook.URL, cfg.Webhook.Secret = hs.URL, hookSecret
	cfg.Log.Format = "json"
	var logs syncBuffer
	ts := startLogged(t, cfg, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	ctx := testCtx(t, 30*time.Second)
	alice, bob := ts.dial(t, "alice", "laptop"), ts.dial(t, "bob", "phone")
	id := answeredCall(t, alice, bob, false)
	if err := bob.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	ended(t, alice, id)
	aliceTok := ts.token(t, "alice", "laptop")
	if st := api(t, "DELETE", ts.URL()+"/api/v1/me", aliceTok, nil); st != http.StatusNoContent {
		t.Fatalf("erase: %d", st)
	}
	testkit.Eventually(t, 10*time.Second, "the webhooks", func() bool {
		rcv.mu.Lock()
		defer rcv.mu.Unlock()
		return len(rcv.events) >= 6
	})
	ts.stop(t)

	out := logs.String()
	secrets := []string{hookSecret, aliceTok, ts.token(t, "bob", "phone")}
	for _, tok := range []string{aliceTok} {
		secrets = append(secrets, strings.Split(tok, ".")[2]) // the token's signature alone
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the log holds a secret or token: …%s…", s[:8])
		}
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("a log line is not JSON: %q", line)
		}
		msg, _ := l["msg"].(string)
		switch msg {
		case "call invite", "call accepted", "member left", "call ended", "user data erased":
			seen[msg] = true
			who := l["user"] != nil || l["session"] != nil || l["users"] != nil
			if (msg != "user data erased" && l["call"] != id) || !who {
				t.Errorf("log line %q lacks the call or who: %s", msg, line)
			}
		}
	}
	for _, m := range []string{"call invite", "call accepted", "call ended", "user data erased"} {
		if !seen[m] {
			t.Errorf("no %q line in the log", m)
		}
	}
}
