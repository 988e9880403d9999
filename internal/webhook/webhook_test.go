package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tandemcall/tandem/internal/testkit"
)

// hit is one request the test receiver got.
type hit struct {
	header http.Header
	body   []byte
	ev     Event
	at     time.Time
}

// receiver is a webhook endpoint on loopback that records every request
// and answers with respond (200 if respond is nil). n counts requests, from 1.
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	respond func(w http.ResponseWriter, r *http.Request, n int, ev Event)

	mu   sync.Mutex
	hits []hit
}

func newReceiver(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, n int, ev Event)) *receiver {
	t.Helper()
	rc := &receiver{t: t, respond: respond}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	h := hit{header: r.Header.Clone(), body: body, at: time.Now()}
	if err := json.Unmarshal(body, &h.ev); err != nil {
		rc.t.Errorf("body does not parse as an Event: %v: %s", err, body)
	}
	rc.mu.Lock()
	rc.hits = append(rc.hits, h)
	n := len(rc.hits)
	rc.mu.Unlock()
	if rc.respond != nil {
		rc.respond(w, r, n, h.ev)
	}
}

func (rc *receiver) got() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hit(nil), rc.hits...)
}

// wait polls until the receiver has had n requests.
func (rc *receiver) wait(n int) []hit {
	rc.t.Helper()
	testkit.Eventually(rc.t, 5*time.Second, fmt.Sprintf("%d requests", n), func() bool { return len(rc.got()) >= n })
	return rc.got()
}

// syncBuffer collects log output from the delivery goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newTestSender starts a Sender for url with fast retries, logging at
// debug into the returned buffer. It is closed at the end of the test.
func newTestSender(t *testing.T, url string, cfg Config) (*Sender, *syncBuffer) {
	t.Helper()
	cfg.URL = url
	if cfg.Secret == nil {
		cfg.Secret = testSecret
	}
	if cfg.InitialBackoff == 0 {
		cfg.InitialBackoff = 10 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 50 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	logs := &syncBuffer{}
	s, err := New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, logs
}

// value reads a counter or gauge. (prometheus/testutil would need a
// module this repository's go.mod does not list.)
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	switch {
	case pb.Counter != nil:
		return pb.Counter.GetValue()
	case pb.Gauge != nil:
		return pb.Gauge.GetValue()
	}
	t.Fatalf("%v is neither counter nor gauge", m.Desc())
	return 0
}

func count(t *testing.T, s *Sender, result string) int {
	return int(value(t, s.metrics.events.WithLabelValues(result)))
}

func attempts(t *testing.T, s *Sender, outcome string) int {
	return int(value(t, s.metrics.attempts.WithLabelValues(outcome)))
}

// gather returns every series in reg by "name{label=value,...}"; a
// histogram's value is its sample count.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

var idPattern = regexp.MustCompile(`^evt_[a-z2-7]{16}$`)

func TestDeliveryOrderHeadersAndSignature(t *testing.T) {
	rc := newReceiver(t, nil)
	s, logs := newTestSender(t, rc.srv.URL+"/hooks/tandem?k=v", Config{Node: "node-a"})

	types := []string{CallStarted, ParticipantJoined, CallAnswered, AssistGranted, AssistRevoked, ParticipantLeft, CallEnded}
	start := time.Now()
	for i := range 30 {
		s.Send(types[i%len(types)], map[string]any{"call_id": "c1", "i": i})
	}
	hits := rc.wait(30)
	end := time.Now()

	ids := map[string]bool{}
	for i, h := range hits {
		ev := h.ev
		if ev.Seq != uint64(i+1) {
			t.Fatalf("request %d has seq %d: events out of order", i, ev.Seq)
		}
		if want := types[i%len(types)]; ev.Type != want {
			t.Errorf("event %d type %q, want %q", i, ev.Type, want)
		}
		data, ok := ev.Data.(map[string]any)
		if !ok || data["i"] != float64(i) || data["call_id"] != "c1" {
			t.Errorf("event %d data = %#v", i, ev.Data)
		}
		if ev.Node != "node-a" {
			t.Errorf("event %d node %q", i, ev.Node)
		}
		if ev.At.Before(start.Add(-time.Second)) || ev.At.After(end) || ev.At.Location() != time.UTC {
			t.Errorf("event %d at %v, want UTC between %v and %v", i, ev.At, start, end)
		}
		if !idPattern.MatchString(ev.ID) || ids[ev.ID] {
			t.Errorf("event %d id %q: malformed or repeated", i, ev.ID)
		}
		ids[ev.ID] = true

		for k, want := range map[string]string{
			"Content-Type":    "application/json",
			"User-Agent":      "Tandem-Webhook/1",
			"Tandem-Event":    ev.Type,
			"Tandem-Delivery": ev.ID,
			"Tandem-Attempt":  "1",
		} {
			if got := h.header.Get(k); got != want {
				t.Errorf("event %d header %s = %q, want %q", i, k, got, want)
			}
		}
		sig := h.header.Get("Tandem-Signature")
		if err := Verify(testSecret, sig, h.body, time.Now(), time.Minute); err != nil {
			t.Errorf("event %d: Verify with the right secret: %v", i, err)
		}
		if err := Verify([]byte("a_different_secret_xx"), sig, h.body, time.Now(), time.Minute); !errors.Is(err, ErrSignatureMismatch) {
			t.Errorf("event %d: Verify with a wrong secret = %v", i, err)
		}
		tampered := bytes.Replace(h.body, []byte(`"c1"`), []byte(`"c2"`), 1)
		if err := Verify(testSecret, sig, tampered, time.Now(), time.Minute); !errors.Is(err, ErrSignatureMismatch) {
			t.Errorf("event %d: Verify of a tampered body = %v", i, err)
		}
		if err := Verify(testSecret, sig, h.body, time.Now().Add(10*time.Minute), 5*time.Minute); !errors.Is(err, ErrSignatureExpired) {
			t.Errorf("event %d: Verify 10 minutes later = %v", i, err)
		}
		if err := Verify(testSecret, strings.Replace(sig, "v1=", "v1:", 1), h.body, time.Now(), time.Minute); !errors.Is(err, ErrSignatureFormat) {
			t.Errorf("event %d: Verify of a malformed header = %v", i, err)
		}
	}
	testkit.Eventually(t, 5*time.Second, "30 delivered", func() bool { return count(t, s, resultDelivered) == 30 })
	if got := attempts(t, s, outcomeOK); got != 30 {
		t.Errorf("attempts{ok} = %d, want 30", got)
	}
	var h dto.Metric
	if err := s.metrics.latency.Write(&h); err != nil || h.Histogram.GetSampleCount() != 30 {
		t.Errorf("delivery histogram has %d samples (%v), want 30", h.Histogram.GetSampleCount(), err)
	}
	if strings.Contains(logs.String(), string(testSecret)) {
		t.Errorf("logs contain the secret:\n%s", logs)
	}
}

// TestSendSnapshotsData: the caller may reuse what it passed to Send.
func TestSendSnapshotsData(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int, ev Event) {
		if n == 1 {
			<-release
		}
	})
	s, _ := newTestSender(t, rc.srv.URL, Config{})
	s.Send(CallStarted, nil)
	rc.wait(1) // the next event waits in the queue
	data := map[string]any{"call_id": "before"}
	s.Send(CallEnded, data)
	data["call_id"] = "after"
	s.Send(CallEnded, make(chan int)) // cannot be encoded: not sent, no seq used
	close(release)
	hits := rc.wait(2)
	if got := hits[1].ev.Data.(map[string]any)["call_id"]; got != "before" {
		t.Fatalf("call_id = %v, want the value at Send time", got)
	}
	s.Send(CallAnswered, nil)
	hits = rc.wait(3)
	if hits[0].ev.Data != nil || hits[2].ev.Seq != 3 {
		t.Fatalf("got data %v and seq %d, want null and 3", hits[0].ev.Data, hits[2].ev.Seq)
	}
}

func TestRetryThenNext(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int, ev Event) {
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	s, logs := newTestSender(t, rc.srv.URL, Config{InitialBackoff: 10 * time.Millisecond})
	s.Send(CallStarted, map[string]string{"call_id": "c1"})
	s.Send(CallAnswered, map[string]string{"call_id": "c1"})
	hits := rc.wait(4)
	time.Sleep(30 * time.Millisecond) // nothing more may arrive
	if got := rc.got(); len(got) != 4 {
		t.Fatalf("%d requests, want 4", len(got))
	}

	for i, want := range []struct {
		seq     uint64
		attempt string
	}{{1, "1"}, {1, "2"}, {1, "3"}, {2, "1"}} {
		h := hits[i]
		if h.ev.Seq != want.seq || h.header.Get("Tandem-Attempt") != want.attempt {
			t.Errorf("request %d: seq %d attempt %s, want seq %d attempt %s",
				i, h.ev.Seq, h.header.Get("Tandem-Attempt"), want.seq, want.attempt)
		}
		if err := Verify(testSecret, h.header.Get("Tandem-Signature"), h.body, time.Now(), time.Minute); err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	first := hits[0].ev.ID
	for i := 1; i < 3; i++ {
		if hits[i].ev.ID != first || hits[i].header.Get("Tandem-Delivery") != first {
			t.Errorf("retry %d has id %q, want %q", i, hits[i].ev.ID, first)
		}
		if !bytes.Equal(hits[i].body, hits[0].body) {
			t.Errorf("retry %d body differs:\n%s\n%s", i, hits[i].body, hits[0].body)
		}
		// The first retry waits 8-10ms, the second 16-20ms.
		if gap, min := hits[i].at.Sub(hits[i-1].at), time.Duration(i)*8*time.Millisecond; gap < min {
			t.Errorf("retry %d came %v after the previous attempt, want >= %v", i, gap, min)
		}
	}
	if hits[3].ev.ID == first {
		t.Error("second event reused the first one's id")
	}
	testkit.Eventually(t, 5*time.Second, "2 delivered", func() bool { return count(t, s, resultDelivered) == 2 })
	if r, o := attempts(t, s, outcomeRetry), attempts(t, s, outcomeOK); r != 2 || o != 2 {
		t.Errorf("attempts retry=%d ok=%d, want 2 and 2", r, o)
	}
	for _, h := range hits {
		if sig := h.header.Get("Tandem-Signature"); strings.Contains(logs.String(), sig[strings.Index(sig, "v1=")+3:]) {
			t.Errorf("logs contain a signature:\n%s", logs)
		}
	}
}

// TestRetryAfterCapped: Retry-After: 1 is honoured but capped at MaxBackoff.
func TestRetryAfterCapped(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int, ev Event) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	const maxBackoff = 150 * time.Millisecond
	s, _ := newTestSender(t, rc.srv.URL, Config{InitialBackoff: time.Millisecond, MaxBackoff: maxBackoff})
	s.Send(CallStarted, nil)
	hits := rc.wait(2)
	gap := hits[1].at.Sub(hits[0].at)
	// Without Retry-After the wait would be about 1ms; with it uncapped, 1s.
	if gap < maxBackoff || gap > 800*time.Millisecond {
		t.Fatalf("second attempt %v after the first, want about %v", gap, maxBackoff)
	}
	if hits[1].header.Get("Tandem-Attempt") != "2" {
		t.Fatalf("second request is attempt %q", hits[1].header.Get("Tandem-Attempt"))
	}
}

// TestStatusHandling drives each kind of answer through real HTTP: the
// first event always gets status, the second 200.
func TestStatusHandling(t *testing.T) {
	const maxAttempts = 3
	tests := []struct {
		status   int
		attempts int    // for the first event
		result   string // for the first event
	}{
		{http.StatusBadRequest, 1, resultRejected},
		{http.StatusUnauthorized, 1, resultRejected},
		{http.StatusNotFound, 1, resultRejected},
		{http.StatusFound, 1, resultRejected}, // redirects are not followed
		{http.StatusConflict, 1, resultRejected},
		{http.StatusRequestTimeout, maxAttempts, resultFailed},
		{http.StatusTooEarly, maxAttempts, resultFailed},
		{http.StatusTooManyRequests, maxAttempts, resultFailed},
		{http.StatusInternalServerError, maxAttempts, resultFailed},
		{http.StatusBadGateway, maxAttempts, resultFailed},
		{http.StatusServiceUnavailable, maxAttempts, resultFailed},
		{http.StatusAccepted, 1, resultDelivered},
		{http.StatusNoContent, 1, resultDelivered},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.status), func(t *testing.T) {
			var redirected bool
			var mu sync.Mutex
			rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int, ev Event) {
				if r.URL.Path == "/elsewhere" {
					mu.Lock()
					redirected = true
					mu.Unlock()
					return
				}
				if ev.Seq == 1 {
					if tc.status == http.StatusFound {
						http.Redirect(w, r, "/elsewhere", tc.status)
						return
					}
					w.WriteHeader(tc.status)
					io.WriteString(w, "bad event "+r.Header.Get("Tandem-Signature"))
				}
			})
			s, logs := newTestSender(t, rc.srv.URL+"/hook", Config{MaxAttempts: maxAttempts, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
			s.Send(CallStarted, nil)
			s.Send(CallEnded, nil)
			// The second event is always delivered; so is the first when
			// its status is a success. Its count moves after the answer.
			delivered := map[bool]int{true: 2, false: 1}[tc.result == resultDelivered]
			testkit.Eventually(t, 5*time.Second, "second event delivered", func() bool { return count(t, s, resultDelivered) >= delivered && len(rc.got()) == tc.attempts+1 })

			hits := rc.got()
			for i, h := range hits[:tc.attempts] {
				if h.ev.Seq != 1 || h.header.Get("Tandem-Attempt") != strconv.Itoa(i+1) {
					t.Errorf("request %d: seq %d attempt %s", i, h.ev.Seq, h.header.Get("Tandem-Attempt"))
				}
			}
			if last := hits[len(hits)-1]; last.ev.Seq != 2 || last.header.Get("Tandem-Attempt") != "1" {
				t.Errorf("last request: seq %d attempt %s, want the second event's first attempt", last.ev.Seq, last.header.Get("Tandem-Attempt"))
			}
			if got := count(t, s, tc.result); got != map[bool]int{true: 2, false: 1}[tc.result == resultDelivered] {
				t.Errorf("events{%s} = %d", tc.result, got)
			}
			wantErrs := 0
			if tc.result != resultDelivered {
				wantErrs = 1
				if !strings.Contains(logs.String(), "level=WARN") {
					t.Errorf("no warning logged:\n%s", logs)
				}
			}
			if got := attempts(t, s, outcomeError); got != wantErrs {
				t.Errorf("attempts{error} = %d, want %d", got, wantErrs)
			}
			if got := attempts(t, s, outcomeRetry); got != tc.attempts-1 {
				t.Errorf("attempts{retry} = %d, want %d", got, tc.attempts-1)
			}
			mu.Lock()
			defer mu.Unlock()
			if redirected {
				t.Error("redirect was followed")
			}
			for _, h := range hits {
				sig := h.header.Get("Tandem-Signature")
				if strings.Contains(logs.String(), sig[strings.Index(sig, "v1=")+3:]) {
					t.Errorf("logs contain a signature (the receiver echoed it):\n%s", logs)
				}
			}
		})
	}
}

func TestNetworkErrorsAndTimeouts(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		url := dead.URL
		dead.Close()
		s, logs := newTestSender(t, url+"/hook?token=hunter2", Config{MaxAttempts: 3, InitialBackoff: time.Millisecond})
		s.Send(CallStarted, nil)
		testkit.Eventually(t, 5*time.Second, "event failed", func() bool { return count(t, s, resultFailed) == 1 })
		if r, e := attempts(t, s, outcomeRetry), attempts(t, s, outcomeError); r != 2 || e != 1 {
			t.Errorf("attempts retry=%d error=%d, want 2 and 1", r, e)
		}
		if strings.Contains(logs.String(), "hunter2") {
			t.Errorf("logs contain the URL's query:\n%s", logs)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int, ev Event) {
			if n == 1 {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			}
		})
		s, _ := newTestSender(t, rc.srv.URL, Config{Timeout: 100 * time.Millisecond})
		s.Send(CallStarted, nil)
		hits := rc.wait(2)
		testkit.Eventually(t, 5*time.Second, "delivered", func() bool { return count(t, s, resultDelivered) == 1 })
		if hits[0].ev.ID != hits[1].ev.ID || hits[1].header.Get("Tandem-Attempt") != "2" {
			t.Fatalf("second request is not the retry of the first")
		}
	})
}

func TestQueueOverflowDropsOldest(t *testing.T) {
	release := make(chan struct{})
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int, ev Event) {
		if n == 1 {
			<-release
		}
	})
	s, logs := newTestSender(t, rc.srv.URL, Config{QueueSize: 3})
	reg := prometheus.NewRegistry()
	s.Register(reg)

	s.Send(CallStarted, nil)
	rc.wait(1) // seq 1 is in flight; the queue is empty
	for range 5 {
		s.Send(ParticipantJoined, nil) // seq 2..6; 2 and 3 are pushed out
	}
	if got := count(t, s, resultDropped); got != 2 {
		t.Errorf("events{dropped} = %d, want 2", got)
	}
	if got := value(t, s.metrics.queue); got != 3 {
		t.Errorf("queue gauge = %v, want 3", got)
	}
	close(release)
	hits := rc.wait(4)
	var seqs []uint64
	for _, h := range hits {
		seqs = append(seqs, h.ev.Seq)
	}
	if want := []uint64{1, 4, 5, 6}; !equal(seqs, want) {
		t.Errorf("delivered seqs %v, want %v", seqs, want)
	}
	testkit.Eventually(t, 5*time.Second, "queue gauge 0", func() bool { return value(t, s.metrics.queue) == 0 })
	if !strings.Contains(logs.String(), "queue full") {
		t.Errorf("drop not logged:\n%s", logs)
	}
	if strings.Count(logs.String(), "queue full") != 1 {
		t.Errorf("drop warning not rate-limited:\n%s", logs)
	}

	testkit.Eventually(t, 5*time.Second, "4 delivered", func() bool { return count(t, s, resultDelivered) == 4 })
	want := map[string]float64{
		"tandem_webhook_events_total{result=delivered}": 4,
		"tandem_webhook_events_total{result=dropped}":   2,
		"tandem_webhook_events_total{result=failed}":    0,
		"tandem_webhook_events_total{result=rejected}":  0,
		"tandem_webhook_attempts_total{outcome=ok}":     4,
		"tandem_webhook_attempts_total{outcome=retry}":  0,
		"tandem_webhook_attempts_total{outcome=error}":  0,
		"tandem_webhook_queue{}":                        0,
		"tandem_webhook_delivery_seconds{}":             4, // samples
	}
	got := gather(t, reg)
	if len(got) != len(want) {
		t.Errorf("registry has %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCloseDrainsQueue(t *testing.T) {
	rc := newReceiver(t, func(w http.ResponseWriter, r *http.Request, n int, ev Event) {
		time.Sleep(2 * time.Millisecond)
	})
	s, _ := newTestSender(t, rc.srv.URL, Config{})
	for range 20 {
		s.Send(ParticipantJoined, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := len(rc.got()); got != 20 {
		t.Fatalf("%d delivered before Close returned, want 20", got)
	}
	s.Send(CallEnded, nil) // after Close: dropped
	if got := count(t, s, resultDropped); got != 1 {
		t.Errorf("events{dropped} = %d, want 1", got)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCloseDeadline: with a receiver that hangs, or one that keeps failing
// with long backoffs, Close returns when its ctx ends, counts what it
// dropped, and leaves no goroutine behind.
func TestCloseDeadline(t *testing.T) {
	for _, tc := range []struct {
		name    string
		respond func(w http.ResponseWriter, r *http.Request, n int, ev Event)
		cfg     Config
	}{
		{"in flight", func(w http.ResponseWriter, r *http.Request, n int, ev Event) {
			// The server notices a client hanging up only once the body is read.
			io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}, Config{Timeout: time.Minute}},
		{"in backoff", func(w http.ResponseWriter, r *http.Request, n int, ev Event) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}, Config{InitialBackoff: time.Hour, MaxBackoff: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaks := testkit.LeakCheck(t, 0)

			rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tc.respond(w, r, 0, Event{})
			}))
			cfg := tc.cfg
			cfg.URL, cfg.Secret = rc.URL, testSecret
			s, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			for range 5 {
				s.Send(CallStarted, nil)
			}
			testkit.Eventually(t, 5*time.Second, "first attempt under way", func() bool { return attempts(t, s, outcomeRetry) > 0 || s.queued() == 4 })

			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			err = s.Close(ctx)
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("Close took %v", took)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Close = %v, want DeadlineExceeded", err)
			}
			if got := count(t, s, resultDropped); got != 5 {
				t.Errorf("events{dropped} = %d, want 5", got)
			}
			if got := value(t, s.metrics.queue); got != 0 {
				t.Errorf("queue gauge = %v after Close", got)
			}
			if err := s.Close(context.Background()); err != nil {
				t.Errorf("second Close: %v", err)
			}
			rc.Close()

			leaks()
		})
	}
}

func TestNilSender(t *testing.T) {
	s, err := New(Config{}, nil)
	if err != nil || s != nil {
		t.Fatalf("New with no URL = %v, %v; want nil, nil", s, err)
	}
	s.Send(CallStarted, map[string]string{"call_id": "x"})
	reg := prometheus.NewRegistry()
	s.Register(reg)
	if got := gather(t, reg); len(got) != 0 {
		t.Errorf("nil Sender registered %v", got)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("Close = %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	long := []byte("0123456789abcdef")
	tests := []struct {
		name string
		cfg  Config
		want string // in the error; "" means New succeeds
	}{
		{"ok http", Config{URL: "http://127.0.0.1:9/hook", Secret: long}, ""},
		{"ok https", Config{URL: "https://hooks.example.com/tandem", Secret: long}, ""},
		{"ftp", Config{URL: "ftp://example.com/", Secret: long}, "webhook.url"},
		{"no scheme", Config{URL: "example.com/hook", Secret: long}, "webhook.url"},
		{"host:port only", Config{URL: "localhost:8080", Secret: long}, "webhook.url"},
		{"no host", Config{URL: "http:///hook", Secret: long}, "webhook.url"},
		{"port only", Config{URL: "http://:8080/hook", Secret: long}, "webhook.url"},
		{"unparsable", Config{URL: "http://user:hunter2@[::1/hook", Secret: long}, "webhook.url"},
		{"no secret", Config{URL: "http://127.0.0.1:9/"}, "webhook.secret"},
		{"short secret", Config{URL: "http://127.0.0.1:9/", Secret: long[:15]}, "webhook.secret"},
		{"negative timeout", Config{URL: "http://127.0.0.1:9/", Secret: long, Timeout: -1}, "webhook.timeout"},
		{"negative attempts", Config{URL: "http://127.0.0.1:9/", Secret: long, MaxAttempts: -1}, "webhook.max_attempts"},
		{"negative queue", Config{URL: "http://127.0.0.1:9/", Secret: long, QueueSize: -1}, "QueueSize"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg, nil)
			if tc.want == "" {
				if err != nil || s == nil {
					t.Fatalf("New = %v, %v", s, err)
				}
				if s.cfg.MaxAttempts != defaultMaxAttempts || s.cfg.Timeout != defaultTimeout || s.cfg.QueueSize != defaultQueueSize ||
					s.cfg.InitialBackoff != defaultInitialBackoff || s.cfg.MaxBackoff != defaultMaxBackoff {
					t.Errorf("defaults not applied: %+v", s.cfg)
				}
				if err := s.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || s != nil {
				s.Close(context.Background())
				t.Fatalf("New succeeded, want an error about %s", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("New = %v, want an error naming %s without credentials", err, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	s := &Sender{cfg: Config{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}}
	for _, tc := range []struct {
		attempt    int
		retryAfter time.Duration
		lo, hi     time.Duration
	}{
		{1, -1, 80 * time.Millisecond, 100 * time.Millisecond},
		{2, -1, 160 * time.Millisecond, 200 * time.Millisecond},
		{3, -1, 320 * time.Millisecond, 400 * time.Millisecond},
		{4, -1, 640 * time.Millisecond, 800 * time.Millisecond},
		{5, -1, 800 * time.Millisecond, time.Second},
		{100, -1, 800 * time.Millisecond, time.Second},
		{1, 0, 0, 0},
		{1, 700 * time.Millisecond, 700 * time.Millisecond, 700 * time.Millisecond},
		{1, time.Hour, time.Second, time.Second},
	} {
		for range 50 {
			if d := s.backoff(tc.attempt, tc.retryAfter); d < tc.lo || d > tc.hi {
				t.Fatalf("backoff(%d, %v) = %v, want in [%v, %v]", tc.attempt, tc.retryAfter, d, tc.lo, tc.hi)
			}
		}
	}
	huge := &Sender{cfg: Config{InitialBackoff: time.Nanosecond, MaxBackoff: 1<<63 - 1}}
	if d := huge.backoff(200, -1); d <= 0 {
		t.Fatalf("backoff overflowed: %v", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", -1},
		{"0", 0},
		{"1", time.Second},
		{" 120 ", 2 * time.Minute},
		{"-1", -1},
		{"1.5", -1},
		{"soon", -1},
		{"99999999999999999999", -1},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{now.Add(-30 * time.Second).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
