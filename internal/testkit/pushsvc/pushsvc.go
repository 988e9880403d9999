// Package pushsvc is a Web Push service for tests, run on loopback by the
// test: like a browser vendor's, it checks each push's VAPID JWT and
// signature (RFC 8292) against the key the subscription was made for,
// and, like the browser, decrypts the payload with the subscription's own
// private key (RFC 8291); it records what it got. A subscription can be
// made to answer as a failing service would: an error status, or not at
// all until the test lets go.
package pushsvc

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/webpush"
)

var b64 = base64.RawURLEncoding

// Push is one push the service accepted.
type Push struct {
	Sub     string // the subscription's id
	Payload []byte
	Urgency string
	TTL     int
	Topic   string
	At      time.Time
}

// Service is the push service.
type Service struct {
	t   testing.TB
	srv *httptest.Server

	mu     sync.Mutex
	subs   map[string]*Sub
	pushes []Push
	cond   *sync.Cond
}

// Sub is a browser's subscription at the service.
type Sub struct {
	ID string
	// Subscription is what the browser hands the application server.
	Subscription webpush.Subscription
	priv         *ecdh.PrivateKey
	auth         []byte
	serverKey    string // the VAPID public key it was made for
	// Status, when set, is what the service answers for it (404, 410,
	// 429, 500) instead of accepting.
	Status int
	// Hang, when not nil, holds each push's answer until it is closed.
	Hang chan struct{}
}

// Start runs a push service on loopback until the test ends.
func Start(t testing.TB) *Service {
	s := &Service{t: t, subs: map[string]*Sub{}}
	s.cond = sync.NewCond(&s.mu)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// Subscribe makes a subscription for the application server whose VAPID
// public key is serverKey, as a browser's pushManager.subscribe does.
func (s *Service) Subscribe(serverKey string) *Sub {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	id := b64.EncodeToString(auth[:9])
	sub := &Sub{ID: id, priv: priv, auth: auth, serverKey: serverKey}
	sub.Subscription.Endpoint = s.srv.URL + "/push/" + id
	sub.Subscription.Keys.P256dh = b64.EncodeToString(priv.PublicKey().Bytes())
	sub.Subscription.Keys.Auth = b64.EncodeToString(auth)
	s.mu.Lock()
	s.subs[id] = sub
	s.mu.Unlock()
	return sub
}

// Set changes how the service answers for sub.
func (s *Service) Set(sub *Sub, status int, hang chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub.Status, sub.Hang = status, hang
}

// Pushes are the pushes accepted for sub so far, oldest first.
func (s *Service) Pushes(sub *Sub) []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Push
	for _, p := range s.pushes {
		if p.Sub == sub.ID {
			out = append(out, p)
		}
	}
	return out
}

// Wait waits up to d for sub to have had n pushes, and returns them.
func (s *Service) Wait(sub *Sub, n int, d time.Duration) []Push {
	s.t.Helper()
	deadline := time.Now().Add(d)
	for {
		if got := s.Pushes(sub); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("push service: %d pushes for %s in %v, want %d", len(s.Pushes(sub)), sub.ID, d, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/push/")
	s.mu.Lock()
	sub := s.subs[id]
	s.mu.Unlock()
	if !ok || sub == nil || r.Method != http.MethodPost {
		http.Error(w, "no such subscription", http.StatusNotFound)
		return
	}
	if err := s.checkVAPID(r, sub); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if r.Header.Get("Content-Encoding") != "aes128gcm" {
		http.Error(w, "content encoding must be aes128gcm", http.StatusUnsupportedMediaType)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get("TTL"))
	if err != nil || ttl < 0 {
		http.Error(w, "a TTL header is required", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4096+1))
	if err != nil || len(body) > 4096 {
		http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
		return
	}
	pt, err := webpush.Decrypt(sub.priv, sub.auth, body)
	if err != nil {
		http.Error(w, "the payload does not decrypt: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	status, hang := sub.Status, sub.Hang
	s.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
			return
		}
	}
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	s.mu.Lock()
	s.pushes = append(s.pushes, Push{Sub: id, Payload: pt, Urgency: r.Header.Get("Urgency"), TTL: ttl,
		Topic: r.Header.Get("Topic"), At: time.Now()})
	s.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

// checkVAPID checks the Authorization header (RFC 8292): a JWT for this
// service's origin, not expired, signed with the key the subscription was
// made for.
func (s *Service) checkVAPID(r *http.Request, sub *Sub) error {
	h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "vapid ")
	if !ok {
		return errors.New("no vapid authorization")
	}
	var tok, key string
	for _, part := range strings.Split(h, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			tok = v
		case "k":
			key = v
		}
	}
	if key != sub.serverKey {
		return errors.New("not the key the subscription was made for")
	}
	raw, err := b64.DecodeString(key)
	if err != nil || len(raw) != 65 || raw[0] != 4 {
		return errors.New("bad vapid key")
	}
	pub := &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(raw[1:33]), Y: new(big.Int).SetBytes(raw[33:])}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return errors.New("bad vapid token")
	}
	head, _ := b64.DecodeString(parts[0])
	var hd struct{ Alg string }
	if json.Unmarshal(head, &hd) != nil || hd.Alg != "ES256" {
		return errors.New("vapid token not ES256")
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return errors.New("bad vapid signature")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return errors.New("vapid signature does not verify")
	}
	body, _ := b64.DecodeString(parts[1])
	var c struct {
		Aud string `json:"aud"`
		Exp int64  `json:"exp"`
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return errors.New("bad vapid claims")
	}
	if c.Aud != s.srv.URL {
		return fmt.Errorf("vapid audience %q is not this service", c.Aud)
	}
	if now := time.Now().Unix(); c.Exp < now || c.Exp > now+24*3600 {
		return errors.New("vapid token expired or too long")
	}
	if !strings.HasPrefix(c.Sub, "mailto:") && !strings.HasPrefix(c.Sub, "https:") {
		return errors.New("vapid subject must be a mailto: or https: URL")
	}
	return nil
}
