package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	// maxResponseBody is how much of a response is read (and response
	// headers accepted); the rest is discarded with the connection.
	maxResponseBody = 64 << 10
	// maxLoggedBody is how much of a rejecting response is logged.
	maxLoggedBody = 256
	userAgent     = "Tandem-Webhook/1"
)

// run is the delivery goroutine: it takes events off the queue in order
// and delivers each before the next. It returns when Close has been called
// and the queue is empty, or when ctx is cancelled (Close's deadline).
func (s *Sender) run(ctx context.Context) {
	defer close(s.done)
	defer s.client.CloseIdleConnections()
	for {
		p := s.pop()
		if p == nil {
			select {
			case <-s.wake:
			case <-s.closing:
				// Send enqueues nothing once closing is closed, so an
				// empty queue now stays empty.
				if s.queued() == 0 {
					return
				}
			case <-ctx.Done():
				s.dropAll(nil)
				return
			}
			continue
		}
		if !s.deliver(ctx, p) {
			s.dropAll(p)
			return
		}
	}
}

func (s *Sender) pop() *pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.queue.pop()
	if p != nil {
		s.metrics.queue.Set(float64(s.queue.len()))
	}
	return p
}

func (s *Sender) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue.len()
}

// dropAll drops the queue, and inflight if not nil, when Close's deadline
// has passed.
func (s *Sender) dropAll(inflight *pending) {
	s.mu.Lock()
	var first *pending
	n := 0
	if inflight != nil {
		first, n = inflight, 1
	}
	for p := s.queue.pop(); p != nil; p = s.queue.pop() {
		if first == nil {
			first = p
		}
		n++
	}
	s.metrics.queue.Set(0)
	s.mu.Unlock()
	if n == 0 {
		return
	}
	s.metrics.event(resultDropped, n)
	s.log.Warn("webhook shutdown deadline passed; undelivered events dropped",
		"dropped", n, "first_event", first.ev.ID, "first_seq", first.ev.Seq)
}

// deliver makes up to MaxAttempts attempts to deliver p. It returns false
// only if ctx was cancelled before p was delivered or given up on.
func (s *Sender) deliver(ctx context.Context, p *pending) bool {
	log := s.log.With("event", p.ev.ID, "type", p.ev.Type, "seq", p.ev.Seq)
	body, err := json.Marshal(p.ev)
	if err != nil {
		// Data is JSON that Send produced, so this does not happen.
		log.Error("webhook event cannot be encoded; dropped", "err", err)
		s.metrics.event(resultDropped, 1)
		return true
	}
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return false
		}
		r := s.attempt(ctx, p.ev, body, attempt)
		switch {
		case r.ok():
			s.metrics.attempt(outcomeOK)
			s.metrics.event(resultDelivered, 1)
			s.metrics.latency.Observe(time.Since(p.enqueued).Seconds())
			log.Debug("webhook delivered", "attempt", attempt, "status", r.status)
			return true
		case ctx.Err() != nil:
			s.metrics.attempt(outcomeError)
			return false
		case !r.retryable():
			s.metrics.attempt(outcomeError)
			s.metrics.event(resultRejected, 1)
			log.Warn("webhook rejected by receiver; not retried",
				"attempt", attempt, "status", r.status, "response", r.snippet)
			return true
		case attempt >= s.cfg.MaxAttempts:
			s.metrics.attempt(outcomeError)
			s.metrics.event(resultFailed, 1)
			log.Warn("webhook failed; giving up", append(r.attrs(), "attempts", attempt)...)
			return true
		}
		s.metrics.attempt(outcomeRetry)
		wait := s.backoff(attempt, r.retryAfter)
		log.Debug("webhook attempt failed; retrying", append(r.attrs(), "attempt", attempt, "wait", wait)...)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// result is the outcome of one attempt.
type result struct {
	status     int           // HTTP status, 0 if there was no response
	err        error         // transport error or timeout, without the URL
	retryAfter time.Duration // from Retry-After; negative if absent
	snippet    string        // start of a rejecting response body, for the log
}

func (r result) ok() bool { return r.err == nil && r.status >= 200 && r.status < 300 }

func (r result) retryable() bool {
	if r.err != nil {
		return true
	}
	switch r.status {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return r.status >= 500 && r.status < 600
}

func (r result) attrs() []any {
	if r.err != nil {
		return []any{"err", r.err}
	}
	return []any{"status", r.status}
}

// attempt POSTs body once. The signature is made with this attempt's time.
func (s *Sender) attempt(ctx context.Context, ev Event, body []byte, n int) result {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return result{err: stripURL(err), retryAfter: -1}
	}
	sig := Sign(s.secret, time.Now(), body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Tandem-Event", ev.Type)
	req.Header.Set("Tandem-Delivery", ev.ID)
	req.Header.Set("Tandem-Attempt", strconv.Itoa(n))
	req.Header.Set("Tandem-Signature", sig)

	resp, err := s.client.Do(req)
	if err != nil {
		return result{err: stripURL(err), retryAfter: -1}
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, rerr := io.Copy(&buf, io.LimitReader(resp.Body, maxResponseBody))
	r := result{status: resp.StatusCode, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	if !r.ok() && !r.retryable() {
		r.snippet = redact(buf.Bytes(), sig)
	}
	if rerr != nil && r.ok() {
		// The receiver said 2xx; a body cut short does not change that.
		s.log.Debug("webhook response body not fully read", "event", ev.ID, "err", stripURL(rerr))
	}
	return r
}

// backoff is the wait after failed attempt n (1-based): InitialBackoff
// doubled for each earlier retry, at most MaxBackoff, less up to 20% at
// random so that several nodes do not retry in step. A Retry-After from
// the receiver replaces it, capped at MaxBackoff.
func (s *Sender) backoff(n int, retryAfter time.Duration) time.Duration {
	if retryAfter >= 0 {
		return min(retryAfter, s.cfg.MaxBackoff)
	}
	d := s.cfg.InitialBackoff
	for i := 1; i < n && d < s.cfg.MaxBackoff; i++ {
		if d > s.cfg.MaxBackoff/2 {
			d = s.cfg.MaxBackoff
			break
		}
		d *= 2
	}
	d = min(d, s.cfg.MaxBackoff)
	if j := int64(d / 5); j > 0 {
		d -= time.Duration(rand.Int64N(j + 1))
	}
	return d
}

// parseRetryAfter reads a Retry-After value: delay seconds, or an HTTP
// date. It returns -1 if v is empty or malformed.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return -1
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return -1
}

// stripURL removes the request URL that net/http puts in its errors: it
// may carry a token the operator put in the query string.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if errors.Is(ue.Err, context.DeadlineExceeded) {
			return fmt.Errorf("%s: timeout: %w", ue.Op, ue.Err)
		}
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// redact returns the start of a response body for the log, with the
// request's signature removed in case the receiver echoed it back.
func redact(body []byte, sig string) string {
	s := string(body)
	if _, mac, ok := strings.Cut(sig, "v1="); ok {
		s = strings.ReplaceAll(s, mac, "[signature]")
	}
	if len(s) > maxLoggedBody {
		s = s[:maxLoggedBody] + "…"
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
