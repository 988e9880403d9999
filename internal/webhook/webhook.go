// Package webhook delivers call events to the operator's application
// backend: each event is a JSON body POSTed to one URL, signed with
// HMAC-SHA256 (see Sign and Verify), retried with backoff on failure, and
// delivered strictly in the order Send was called. Delivery is
// at-least-once; receivers dedupe by Event.ID.
//
// A Sender owns one bounded queue and one delivery goroutine. Send never
// blocks: when the queue is full the oldest waiting event is dropped and
// counted. A nil *Sender (webhooks not configured) accepts every call and
// does nothing.
package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Event types Tandem sends.
const (
	CallStarted       = "call.started" // an invite went out (or a room opened)
	CallAnswered      = "call.answered"
	CallEnded         = "call.ended" // data has reason and duration_ms
	ParticipantJoined = "participant.joined"
	ParticipantLeft   = "participant.left"
	AssistGranted     = "assist.granted"
	AssistRevoked     = "assist.revoked"
)

// Defaults for the zero values of Config.
const (
	defaultTimeout        = 5 * time.Second
	defaultMaxAttempts    = 8
	defaultInitialBackoff = 500 * time.Millisecond
	defaultMaxBackoff     = 30 * time.Second
	defaultQueueSize      = 10000
	minSecretLen          = 16
)

// Config configures a Sender. Zero durations and sizes take the defaults
// noted on each field.
type Config struct {
	URL            string        // where events are POSTed; empty disables webhooks (New returns nil, and a nil *Sender's methods are no-ops)
	Secret         []byte        // HMAC-SHA256 key; required (>= 16 bytes) when URL is set
	Timeout        time.Duration // per attempt; default 5s
	MaxAttempts    int           // default 8
	InitialBackoff time.Duration // default 500ms; doubles each retry, with up to 20% random jitter
	MaxBackoff     time.Duration // default 30s
	QueueSize      int           // default 10000; when full, the oldest queued event is dropped and counted
	Node           string        // node id, copied into each event
}

// Event is what the receiver gets as the JSON body.
type Event struct {
	ID   string    `json:"id"`   // "evt_" + 16 random base32 characters; the same on every retry
	Type string    `json:"type"` // one of the event type constants
	At   time.Time `json:"at"`   // when it happened (UTC)
	Seq  uint64    `json:"seq"`  // 1, 2, 3... per Sender, in the order Send was called
	Node string    `json:"node,omitempty"`
	Data any       `json:"data"`
}

// Sender queues events and delivers them from one goroutine.
type Sender struct {
	cfg     Config
	secret  []byte
	log     *slog.Logger
	client  *http.Client
	metrics *metrics

	wake    chan struct{}      // capacity 1: the queue may have grown
	closing chan struct{}      // closed by Close: deliver what is queued, then stop
	done    chan struct{}      // closed when the delivery goroutine has returned
	abort   context.CancelFunc // cancels in-flight delivery when Close's ctx ends

	mu          sync.Mutex
	queue       *ring
	seq         uint64
	closed      bool
	drops       int       // queue-full drops since lastDropLog
	lastDropLog time.Time // rate-limits the queue-full warning
}

// dropLogEvery rate-limits the warning about a full queue: a receiver that
// is down for a while would otherwise produce one line per event.
const dropLogEvery = 10 * time.Second

// New validates cfg and starts the delivery goroutine. With cfg.URL empty
// it returns a nil *Sender and no error: webhooks are off. Call Close to
// stop it.
func New(cfg Config, log *slog.Logger) (*Sender, error) {
	if cfg.URL == "" {
		return nil, nil //nolint:nilnil // a nil Sender is the disabled Sender
	}
	u, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	transport := &http.Transport{
		Proxy:                  nil, // never a proxy from the environment
		DialContext:            (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConnsPerHost:    1, // one request at a time
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: maxResponseBody,
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sender{
		cfg:    cfg,
		secret: bytes.Clone(cfg.Secret),
		log:    log,
		client: &http.Client{
			Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		metrics: newMetrics(),
		wake:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		abort:   cancel,
		queue:   newRing(cfg.QueueSize),
	}
	s.cfg.Secret = nil // only s.secret, which nobody else holds
	log.Info("webhooks enabled", "host", u.Host, "max_attempts", cfg.MaxAttempts, "timeout", cfg.Timeout)
	go s.run(ctx)
	return s, nil
}

// normalize fills in defaults and checks cfg, naming the offending key.
func (cfg *Config) normalize() (*url.URL, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Error repeats the URL, which may carry credentials.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("webhook.url: not a valid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, errors.New("webhook.url: scheme must be http or https")
	}
	if u.Hostname() == "" {
		return nil, errors.New("webhook.url: no host")
	}
	if len(cfg.Secret) < minSecretLen {
		return nil, fmt.Errorf("webhook.secret: must be at least %d bytes when webhook.url is set", minSecretLen)
	}
	for _, c := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"webhook.timeout", &cfg.Timeout, defaultTimeout},
		{"webhook: InitialBackoff", &cfg.InitialBackoff, defaultInitialBackoff},
		{"webhook: MaxBackoff", &cfg.MaxBackoff, defaultMaxBackoff},
	} {
		if *c.v < 0 {
			return nil, fmt.Errorf("%s: must not be negative", c.name)
		}
		if *c.v == 0 {
			*c.v = c.def
		}
	}
	for _, c := range []struct {
		name string
		v    *int
		def  int
	}{
		{"webhook.max_attempts", &cfg.MaxAttempts, defaultMaxAttempts},
		{"webhook: QueueSize", &cfg.QueueSize, defaultQueueSize},
	} {
		if *c.v < 0 {
			return nil, fmt.Errorf("%s: must not be negative", c.name)
		}
		if *c.v == 0 {
			*c.v = c.def
		}
	}
	return u, nil
}

// Send queues an event of type typ whose data is data encoded as JSON. It
// never blocks and is safe on a nil Sender. data is encoded before Send
// returns, so the caller may reuse it.
func (s *Sender) Send(typ string, data any) {
	if s == nil {
		return
	}
	now := time.Now()
	raw, err := json.Marshal(data)
	if err != nil {
		s.log.Error("webhook event data cannot be encoded as JSON; event not sent", "type", typ, "err", err)
		return
	}
	p := &pending{
		ev:       Event{ID: newID(), Type: typ, At: now.UTC(), Node: s.cfg.Node, Data: json.RawMessage(raw)},
		enqueued: now,
	}

	var (
		dropped *pending
		logDrop int
	)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.metrics.event(resultDropped, 1)
		s.log.Warn("webhook event sent after Close; dropped", "type", typ)
		return
	}
	s.seq++
	p.ev.Seq = s.seq
	if s.queue.full() {
		dropped = s.queue.pop()
		s.drops++
		if now.Sub(s.lastDropLog) >= dropLogEvery {
			logDrop, s.drops, s.lastDropLog = s.drops, 0, now
		}
	}
	s.queue.push(p)
	s.metrics.queue.Set(float64(s.queue.len()))
	s.mu.Unlock()

	if dropped != nil {
		s.metrics.event(resultDropped, 1)
		if logDrop > 0 {
			s.log.Warn("webhook queue full; dropping the oldest events",
				"dropped", logDrop, "event", dropped.ev.ID, "type", dropped.ev.Type, "seq", dropped.ev.Seq,
				"queue_size", s.cfg.QueueSize)
		}
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close stops accepting events and delivers what is queued until ctx
// ends; then whatever is left is dropped (and counted) and the delivery
// goroutine stops. It returns ctx's error if events were cut off. Close is
// safe on a nil Sender and may be called more than once.
func (s *Sender) Close(ctx context.Context) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.closing)
	}
	s.mu.Unlock()

	defer s.abort() // releases the delivery context in any case
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
	}
	select {
	case <-s.done: // finished just as ctx ended
		return nil
	default:
	}
	s.abort()
	<-s.done
	return fmt.Errorf("webhook: close: %w", ctx.Err())
}

// Register adds the Sender's metrics to reg. It does nothing on a nil
// Sender or a nil reg.
func (s *Sender) Register(reg prometheus.Registerer) {
	if s == nil || reg == nil {
		return
	}
	if err := reg.Register(s.metrics); err != nil {
		s.log.Warn("webhook metrics not registered", "err", err)
	}
}

// idEncoding is lowercase base32 without padding: 10 random bytes make 16
// characters.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "evt_" + idEncoding.EncodeToString(b[:])
}
