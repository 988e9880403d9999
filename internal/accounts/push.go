package accounts

import (
	"context"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/internal/webpush"
)

// Ringing a device that has no connection (a phone in a pocket, its app
// closed) by Web Push: each device with an account may keep one push
// subscription. An invite pushes to every device of the callee without a
// live connection: Urgency high, TTL the ring timeout, Topic the call, so
// that a later push about the call replaces this one where the service
// still holds it; when the call stops ringing (answered elsewhere,
// cancelled, missed) a second push with the same topic tells the device,
// whose service worker replaces the ringing notification. Payloads carry
// the caller, the kind of call and the call id, nothing more.
//
// Pushes go out from a bounded queue on workers of their own: a push
// service that fails, hangs or answers 429 never delays the ringing of
// other devices or the call itself.

// PushConfig sets Web Push up.
type PushConfig struct {
	// Secret derives the VAPID key, so that every node of a deployment,
	// which shares the token signing secret, signs pushes as the same
	// server.
	Secret []byte
	// Subject is the VAPID contact (mailto: or https:); default the
	// public URL or mailto:tandem@localhost.
	Subject string
	// Client sends the pushes; nil: a client with a 10 s timeout.
	Client *http.Client
	// AllowInsecure accepts http:// endpoints on loopback (tests).
	AllowInsecure bool
}

// RingPush is what a ringing push says, and its follow-up.
type RingPush struct {
	Type   string `json:"type"` // "ring" or "ended"
	CallID string `json:"call_id"`
	From   string `json:"from"`      // the caller's user id
	Name   string `json:"from_name"` // their name as their callee knows it
	Video  bool   `json:"video,omitempty"`
	// Reason, of an ended ring: answered_elsewhere, cancelled, no_answer,
	// declined, declined_elsewhere.
	Reason string `json:"reason,omitempty"`
	// Device names the device that answered (answered_elsewhere).
	Device string `json:"device,omitempty"`
}

// pushJob is one push to one user's devices without a connection.
type pushJob struct {
	user    string
	online  map[string]bool // devices with a live connection: not pushed
	msg     RingPush
	ttl     time.Duration
	urgency string
}

// pusher sends the queued pushes.
type pusher struct {
	sender  *webpush.Sender
	queue   chan pushJob
	wg      sync.WaitGroup
	stop    chan struct{}
	once    sync.Once
	insec   bool
	sent    *prometheus.CounterVec
	latency prometheus.Histogram
}

// pushWorkers send pushes at once; pushQueue bounds what waits.
const (
	pushWorkers = 8
	pushQueue   = 1024
)

// vapidKeys derives the server's VAPID key from secret.
func vapidKeys(secret []byte) (*webpush.Keys, error) {
	for i := range 8 {
		d, err := hkdf.Key(sha256.New, secret, []byte{byte(i)}, "tandem vapid key", 32)
		if err != nil {
			return nil, err
		}
		if _, err := ecdh.P256().NewPrivateKey(d); err != nil {
			continue // out of range for P-256: the next one (1 in 2^32)
		}
		return webpush.ParseKeys(base64.RawURLEncoding.EncodeToString(d))
	}
	return nil, errors.New("accounts: no VAPID key from this secret")
}

// EnablePush turns Web Push on; Close stops its workers.
func (s *Service) EnablePush(cfg PushConfig) error {
	keys, err := vapidKeys(cfg.Secret)
	if err != nil {
		return err
	}
	subject := cfg.Subject
	if subject == "" {
		subject = "mailto:tandem@localhost"
		if u, err := url.Parse(s.cfg.PublicURL); err == nil && u.Scheme == "https" {
			subject = s.cfg.PublicURL
		}
	}
	client := cfg.Client
	if client == nil {
		client = pushClient(cfg.AllowInsecure)
	}
	p := &pusher{
		sender: &webpush.Sender{Keys: keys, Subject: subject, Client: client},
		queue:  make(chan pushJob, pushQueue), stop: make(chan struct{}), insec: cfg.AllowInsecure,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tandem_push_sent_total",
			Help: "Web Push messages by result: ok, gone (the subscription was dropped), refused, rate_limited, failed (no answer), dropped (the queue was full).",
		}, []string{"result"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tandem_push_duration_seconds", Help: "How long push services take to answer a push.",
			Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}),
	}
	s.push = p
	for range pushWorkers {
		p.wg.Go(func() { s.pushWorker(p) })
	}
	return nil
}

// PushKey is the server's VAPID public key for subscriptions; "" when
// push is off.
func (s *Service) PushKey() string {
	if s.push == nil {
		return ""
	}
	return s.push.sender.Keys.PublicKey()
}

// Close stops the push workers, dropping what waits.
func (s *Service) Close() {
	if p := s.push; p != nil {
		p.once.Do(func() { close(p.stop) })
		p.wg.Wait()
	}
}

// SetPush keeps (or, for nil, removes) the push subscription of a device.
func (s *Service) SetPush(ctx context.Context, user, device string, sub *webpush.Subscription) error {
	if s.push == nil {
		return ErrNoPush
	}
	if sub == nil {
		return s.store.SetPush(ctx, user, device, nil)
	}
	if err := sub.Check(s.push.insec && loopbackEndpoint(sub.Endpoint)); err != nil {
		return ErrBadSubscription
	}
	if u, err := url.Parse(sub.Endpoint); err == nil {
		// An address here or on its networks is no push service (and the
		// dialer refuses it anyway, also when a name resolves to one).
		if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !pushable(ip, s.push.insec) {
			return ErrBadSubscription
		}
	}
	b, _ := json.Marshal(sub)
	if err := s.store.SetPush(ctx, user, device, b); errors.Is(err, store.ErrNotFound) {
		return ErrNotSignedIn // a device of an app's token, not of an account
	} else if err != nil {
		return err
	}
	return nil
}

// Errors of push subscriptions.
var (
	// ErrCallGone: the call a notification was about no longer rings.
	ErrCallGone        = errors.New("that call no longer rings")
	ErrNoPush          = errors.New("this server does not ring closed apps")
	ErrBadSubscription = errors.New("that push subscription cannot be used: its endpoint must be https and its keys a P-256 key and a 16-byte secret")
)

func loopbackEndpoint(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	ip := net.ParseIP(u.Hostname())
	return u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
}

// PushRing queues the ringing push of call callID from from to user's
// devices that have no live connection (online, by device id). It never
// waits: signaling calls it as it rings.
func (s *Service) PushRing(user string, online []string, callID, from string, video bool, ttl time.Duration) {
	s.queuePush(user, online, RingPush{Type: "ring", CallID: callID, From: from, Video: video}, ttl, "high")
}

// PushEnded queues the push that tells user's devices without a
// connection that callID stopped ringing, and why (device: the one that
// answered).
func (s *Service) PushEnded(user string, online []string, callID, from, reason, device string, ttl time.Duration) {
	s.queuePush(user, online, RingPush{Type: "ended", CallID: callID, From: from, Reason: reason, Device: device}, ttl, "high")
}

func (s *Service) queuePush(user string, online []string, msg RingPush, ttl time.Duration, urgency string) {
	p := s.push
	if p == nil {
		return
	}
	on := make(map[string]bool, len(online))
	for _, d := range online {
		on[d] = true
	}
	select {
	case p.queue <- pushJob{user: user, online: on, msg: msg, ttl: ttl, urgency: urgency}:
	default:
		p.sent.WithLabelValues("dropped").Inc()
	}
}

// pushWorker sends queued pushes until Close.
func (s *Service) pushWorker(p *pusher) {
	for {
		select {
		case <-p.stop:
			return
		case j := <-p.queue:
			s.sendPush(p, j)
		}
	}
}

// sendPush sends j to each device of its user with a subscription and
// without a connection, dropping subscriptions the service says are gone.
func (s *Service) sendPush(p *pusher, j pushJob) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	subs, err := s.store.Pushes(ctx, j.user)
	if err != nil {
		s.log.Warn("push subscriptions unreadable", "user", j.user, "err", err)
		return
	}
	if j.msg.Name == "" {
		// The caller's name if they have an account; their id otherwise.
		j.msg.Name = j.msg.From
		if p, err := s.store.Person(ctx, j.msg.From); err == nil {
			j.msg.Name = p.Name
		}
	}
	if j.msg.Device != "" {
		// The device that answered, as its person named it.
		if ds, err := s.store.Devices(ctx, j.user); err == nil {
			for _, d := range ds {
				if d.ID == j.msg.Device {
					j.msg.Device = d.Name
				}
			}
		}
	}
	payload, _ := json.Marshal(j.msg)
	for device, raw := range subs {
		if j.online[device] {
			continue
		}
		var sub webpush.Subscription
		if json.Unmarshal(raw, &sub) != nil {
			continue
		}
		start := time.Now()
		r, err := p.sender.Send(ctx, sub, webpush.Message{Payload: payload, TTL: j.ttl, Urgency: j.urgency, Topic: pushTopic(j.msg.CallID)})
		p.latency.Observe(time.Since(start).Seconds())
		switch {
		case r.Gone:
			p.sent.WithLabelValues("gone").Inc()
			if err := s.store.SetPush(ctx, j.user, device, nil); err != nil && !errors.Is(err, store.ErrNotFound) {
				s.log.Warn("a gone push subscription not dropped", "err", err)
			}
		case r.Status == http.StatusTooManyRequests:
			p.sent.WithLabelValues("rate_limited").Inc()
		case err != nil && r.Status == 0:
			p.sent.WithLabelValues("failed").Inc()
			s.log.Info("push not delivered", "user", j.user, "device", device, "err", err)
		case err != nil:
			p.sent.WithLabelValues("refused").Inc()
		default:
			p.sent.WithLabelValues("ok").Inc()
		}
	}
}

// pushClient is the HTTP client pushes go out with. Push services are on
// the public internet: a subscription naming an address on this host or
// its networks (loopback, private, link-local) is not connected to, so
// that nobody can make the server post to what only it can reach. Tests
// allow loopback.
func pushClient(allowLoopback bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, Control: func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return err
		}
		if !pushable(ip, allowLoopback) {
			return fmt.Errorf("accounts: push endpoint %s is not a public address", ip)
		}
		return nil
	}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	if os.Getenv("HTTPS_PROXY") == "" && os.Getenv("https_proxy") == "" {
		// Behind a proxy (HTTPS_PROXY) the connection is to the proxy,
		// which decides where pushes may go.
		tr.DialContext = d.DialContext
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

// pushable reports whether a push may go to ip: a public address, or
// loopback when allowed (tests).
func pushable(ip netip.Addr, allowLoopback bool) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return allowLoopback
	}
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast()
}

// pushTopic is a call's push topic: at most 32 URL-safe characters.
func pushTopic(callID string) string {
	sum := sha256.Sum256([]byte(callID))
	return "call-" + base64.RawURLEncoding.EncodeToString(sum[:18])
}

// Reachable reports whether user has a device a push can ring.
func (s *Service) Reachable(ctx context.Context, user string) bool {
	if s.push == nil {
		return false
	}
	subs, err := s.store.Pushes(ctx, user)
	return err == nil && len(subs) > 0
}
