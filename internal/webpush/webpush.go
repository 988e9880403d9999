// Package webpush sends Web Push messages: RFC 8030 delivery to a
// browser's push service, the payload encrypted for the browser alone
// (RFC 8291, aes128gcm), and the sender identified by VAPID (RFC 8292).
// Standard library only.
package webpush

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

var b64 = base64.RawURLEncoding

// Subscription is where a browser receives pushes: the push service's
// endpoint, the browser's P-256 public key (p256dh) and its auth secret.
type Subscription struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// Errors of a subscription that cannot be used.
var (
	ErrEndpoint = errors.New("webpush: the endpoint is not an https URL (or http on loopback)")
	ErrKeys     = errors.New("webpush: the subscription's keys are not a P-256 public key and a 16-byte secret")
)

// Check reports whether s can be sent to, and allowInsecure lets an http
// endpoint through (tests on loopback).
func (s Subscription) Check(allowInsecure bool) error {
	u, err := url.Parse(s.Endpoint)
	if err != nil || u.Host == "" || len(s.Endpoint) > 2048 || (u.Scheme != "https" && !(allowInsecure && u.Scheme == "http")) {
		return ErrEndpoint
	}
	if _, _, err := s.keys(); err != nil {
		return err
	}
	return nil
}

func (s Subscription) keys() (*ecdh.PublicKey, []byte, error) {
	raw, err := b64.DecodeString(trimPad(s.Keys.P256dh))
	if err != nil {
		return nil, nil, ErrKeys
	}
	pub, err := ecdh.P256().NewPublicKey(raw)
	if err != nil {
		return nil, nil, ErrKeys
	}
	auth, err := b64.DecodeString(trimPad(s.Keys.Auth))
	if err != nil || len(auth) != 16 {
		return nil, nil, ErrKeys
	}
	return pub, auth, nil
}

func trimPad(s string) string {
	for len(s) > 0 && s[len(s)-1] == '=' {
		s = s[:len(s)-1]
	}
	return s
}

// Keys is a server's VAPID key pair.
type Keys struct {
	Private *ecdsa.PrivateKey
}

// NewKeys makes a VAPID key pair.
func NewKeys() (*Keys, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Keys{Private: k}, nil
}

// PublicKey is the application server key browsers subscribe with: the
// uncompressed P-256 point, base64url.
func (k *Keys) PublicKey() string {
	pub, err := k.Private.PublicKey.ECDH()
	if err != nil {
		return ""
	}
	return b64.EncodeToString(pub.Bytes())
}

// Marshal is the private key, to keep (PKCS#8-free: the scalar, base64url).
func (k *Keys) Marshal() string { return b64.EncodeToString(k.Private.D.FillBytes(make([]byte, 32))) }

// ParseKeys reads what Marshal wrote.
func ParseKeys(s string) (*Keys, error) {
	d, err := b64.DecodeString(s)
	if err != nil || len(d) != 32 {
		return nil, errors.New("webpush: not a VAPID private key")
	}
	priv, err := ecdh.P256().NewPrivateKey(d)
	if err != nil {
		return nil, fmt.Errorf("webpush: %w", err)
	}
	pub := priv.PublicKey().Bytes()
	k := &ecdsa.PrivateKey{D: new(big.Int).SetBytes(d)}
	k.Curve = elliptic.P256()
	k.X, k.Y = new(big.Int).SetBytes(pub[1:33]), new(big.Int).SetBytes(pub[33:])
	return &Keys{Private: k}, nil
}

// Message is one push.
type Message struct {
	Payload []byte
	// TTL is how long the push service keeps it for a device that is
	// offline; 0 means deliver now or never.
	TTL time.Duration
	// Urgency is "very-low", "low", "normal" or "high".
	Urgency string
	// Topic names it: a newer push with the same topic replaces an older
	// one the service still holds (at most 32 base64url characters).
	Topic string
}

// Sender sends pushes with one VAPID identity.
type Sender struct {
	Keys *Keys
	// Subject is the VAPID contact: a mailto: or https: URL.
	Subject string
	Client  *http.Client
}

// Result is what the push service answered.
type Result struct {
	Status int
	// Gone: the subscription no longer exists (404 or 410): forget it.
	Gone bool
}

// Send encrypts m for s and posts it to s's push service.
func (p *Sender) Send(ctx context.Context, s Subscription, m Message) (Result, error) {
	if err := s.Check(true); err != nil {
		return Result{}, err
	}
	body, err := Encrypt(s, m.Payload)
	if err != nil {
		return Result{}, err
	}
	u, _ := url.Parse(s.Endpoint)
	jwt, err := p.vapid(u.Scheme + "://" + u.Host)
	if err != nil {
		return Result{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Endpoint, bytes.NewReader(body))
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Encoding", "aes128gcm")
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("TTL", strconv.Itoa(int(m.TTL/time.Second)))
	if m.Urgency != "" {
		req.Header.Set("Urgency", m.Urgency)
	}
	if m.Topic != "" {
		req.Header.Set("Topic", m.Topic)
	}
	req.Header.Set("Authorization", "vapid t="+jwt+", k="+p.Keys.PublicKey())
	client := p.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return Result{}, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	r := Result{Status: resp.StatusCode, Gone: resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone}
	if resp.StatusCode/100 != 2 {
		return r, fmt.Errorf("webpush: the push service answered %d", resp.StatusCode)
	}
	return r, nil
}

// vapid is the VAPID JWT for the push service at aud (RFC 8292), valid
// for 12 hours.
func (p *Sender) vapid(aud string) (string, error) {
	head := b64.EncodeToString([]byte(`{"typ":"JWT","alg":"ES256"}`))
	claims, _ := json.Marshal(map[string]any{"aud": aud, "exp": time.Now().Add(12 * time.Hour).Unix(), "sub": p.Subject})
	signing := head + "." + b64.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, p.Keys.Private, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + b64.EncodeToString(sig), nil
}

// recordSize is the one record's size announced in the header.
const recordSize = 4096

// Encrypt is the aes128gcm body of payload for s (RFC 8291): one record,
// from a fresh ephemeral key and salt.
func Encrypt(s Subscription, payload []byte) ([]byte, error) {
	ua, auth, err := s.keys()
	if err != nil {
		return nil, err
	}
	if len(payload) > recordSize-16-1-86 {
		return nil, errors.New("webpush: payload too large")
	}
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	shared, err := as.ECDH(ua)
	if err != nil {
		return nil, ErrKeys
	}
	cek, nonce, err := derive(shared, auth, salt, ua.Bytes(), as.PublicKey().Bytes())
	if err != nil {
		return nil, err
	}
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	ct := gcm.Seal(nil, nonce, append(append([]byte{}, payload...), 0x02), nil) // 0x02: the last record
	out := make([]byte, 0, 16+4+1+65+len(ct))
	out = append(out, salt...)
	out = binary.BigEndian.AppendUint32(out, recordSize)
	out = append(out, byte(len(as.PublicKey().Bytes())))
	out = append(out, as.PublicKey().Bytes()...)
	return append(out, ct...), nil
}

// derive is RFC 8291's key and nonce from the ECDH secret, the auth
// secret, the salt and both public keys (the browser's, then the
// sender's).
func derive(shared, auth, salt, uaPub, asPub []byte) (cek, nonce []byte, err error) {
	info := append(append([]byte("WebPush: info\x00"), uaPub...), asPub...)
	prkKey, err := hkdf.Extract(sha256.New, shared, auth)
	if err != nil {
		return nil, nil, err
	}
	ikm, err := hkdf.Expand(sha256.New, prkKey, string(info), 32)
	if err != nil {
		return nil, nil, err
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, nil, err
	}
	if cek, err = hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16); err != nil {
		return nil, nil, err
	}
	nonce, err = hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	return cek, nonce, err
}

// Decrypt is the browser's side of Encrypt, with its private key: for
// tests and push services that check what they carry.
func Decrypt(priv *ecdh.PrivateKey, auth, body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("webpush: body too short")
	}
	salt, idlen := body[:16], int(body[20])
	if len(body) < 21+idlen+17 {
		return nil, errors.New("webpush: body too short")
	}
	asPubRaw := body[21 : 21+idlen]
	asPub, err := ecdh.P256().NewPublicKey(asPubRaw)
	if err != nil {
		return nil, errors.New("webpush: bad sender key")
	}
	shared, err := priv.ECDH(asPub)
	if err != nil {
		return nil, err
	}
	cek, nonce, err := derive(shared, auth, salt, priv.PublicKey().Bytes(), asPubRaw)
	if err != nil {
		return nil, err
	}
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	pt, err := gcm.Open(nil, nonce, body[21+idlen:], nil)
	if err != nil {
		return nil, errors.New("webpush: the body does not decrypt")
	}
	// Padding: zeros after the delimiter, read from the end.
	i := len(pt) - 1
	for i >= 0 && pt[i] == 0 {
		i--
	}
	if i < 0 || pt[i] != 0x02 {
		return nil, errors.New("webpush: no last-record delimiter")
	}
	return pt[:i], nil
}
