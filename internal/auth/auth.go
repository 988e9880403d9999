// Package auth mints and verifies Tandem access tokens: HS256 JWTs that carry
// a user id, a device id, grants, the rooms WHIP and WHEP may use, and an
// expiry (docs/protocol.md).
package auth

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"
)

// Grants a token may carry.
const (
	GrantCall      = "call"
	GrantPublish   = "publish"
	GrantSubscribe = "subscribe"
	GrantAssist    = "assist"
	GrantAdmin     = "admin"
)

// DefaultGrants are what `tandem token` and the dev sign-in give.
var defaultGrants = []string{GrantCall, GrantAssist}

// DefaultGrants returns the grants a token gets when none are named.
func DefaultGrants() []string { return slices.Clone(defaultGrants) }

// Errors returned by Verify.
var (
	ErrExpired = errors.New("auth: token expired")
	ErrInvalid = errors.New("auth: invalid token")
)

// ErrTTL is returned by Mint for a lifetime longer than the Authority's
// maximum.
var ErrTTL = errors.New("auth: token lifetime too long")

// DefaultMaxTTL is the longest token lifetime an Authority accepts unless
// told otherwise (auth.max_token_ttl).
const DefaultMaxTTL = 90 * 24 * time.Hour

// Leeway is the clock skew allowed between the minting backend and the
// server, on exp, nbf, iat and the lifetime.
const Leeway = 5 * time.Second

// MaxIDLen bounds user and device ids.
const MaxIDLen = 128

// MaxTokenLen bounds the tokens Verify reads; real ones are a few hundred
// bytes.
const MaxTokenLen = 4096

// MaxRooms bounds the rooms one minted token names.
const MaxRooms = 32

// Claims are the token's payload.
type Claims struct {
	Device string   `json:"dev"`
	Grants []string `json:"grants"`
	// Rooms names the rooms the publish and subscribe grants hold for
	// (WHIP and WHEP); without it they hold for none.
	Rooms []string `json:"rooms,omitempty"`
	jwt.RegisteredClaims
}

// Identity is what a verified token says.
type Identity struct {
	User   string
	Device string
	// ID is the token's id (jti), by which this one token can be revoked;
	// empty for tokens minted without one.
	ID        string
	Grants    []string
	ExpiresAt time.Time
	// IssuedAt is when the token was minted (zero if it does not say):
	// tokens from before a user's erasure are refused.
	IssuedAt time.Time
	// Rooms are the rooms the token's publish and subscribe grants hold
	// for, as the token names them; nil if it names none.
	Rooms []string
}

// Has reports whether the identity holds grant g.
func (id Identity) Has(g string) bool { return slices.Contains(id.Grants, g) }

// NamesRoom reports whether the token names room, so that its publish and
// subscribe grants hold there. Names compare exactly; there is no
// wildcard.
func (id Identity) NamesRoom(room string) bool { return slices.Contains(id.Rooms, room) }

// Authority mints and verifies tokens with one secret.
type Authority struct {
	secret []byte
	issuer string
	maxTTL time.Duration
	now    func() time.Time
}

// Option adjusts an Authority.
type Option func(*Authority)

// WithMaxTTL sets the longest lifetime a token may have (DefaultMaxTTL
// when not given): Mint refuses a longer ttl, and Verify refuses a token
// whose exp is further than d from its iat, or from now when it has none.
func WithMaxTTL(d time.Duration) Option {
	return func(a *Authority) {
		if d > 0 {
			a.maxTTL = d
		}
	}
}

// New returns an Authority for secret; issuer, when set, is required in
// every token and written into minted ones.
func New(secret []byte, issuer string, opts ...Option) (*Authority, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("auth: secret must be at least 32 bytes, got %d", len(secret))
	}
	a := &Authority{secret: slices.Clone(secret), issuer: issuer, maxTTL: DefaultMaxTTL, now: time.Now}
	for _, o := range opts {
		o(a)
	}
	return a, nil
}

// MaxTTL is the longest lifetime a token may have.
func (a *Authority) MaxTTL() time.Duration { return a.maxTTL }

// newTokenID returns a random token id: 128 bits, base64url.
func newTokenID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: token id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ValidID reports whether s is usable as a user or device id: 1–128 bytes
// of printable characters without spaces.
func ValidID(s string) bool {
	if s == "" || len(s) > MaxIDLen {
		return false
	}
	for _, r := range s {
		if r == unicode.ReplacementChar || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// ValidRoom reports whether s is a room name: 1–64 bytes of a-z, 0-9, '-',
// '_' and '.', the rule of signaling's join and of /whip/{room}.
func ValidRoom(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// MintOption adds to the claims of a token being minted.
type MintOption func(*Claims) error

// WithRooms names the rooms the token's publish and subscribe grants hold
// for (the "rooms" claim): at most MaxRooms room names.
func WithRooms(rooms ...string) MintOption {
	return func(c *Claims) error {
		if len(rooms) > MaxRooms {
			return fmt.Errorf("auth: %d rooms, at most %d", len(rooms), MaxRooms)
		}
		for _, r := range rooms {
			if !ValidRoom(r) {
				return fmt.Errorf("auth: invalid room name %q (1–64 bytes of a-z, 0-9, '-', '_', '.')", r)
			}
			if !slices.Contains(c.Rooms, r) {
				c.Rooms = append(c.Rooms, r)
			}
		}
		return nil
	}
}

// Mint signs a token for user on device, valid for ttl (at most MaxTTL),
// with what opts add. Every token gets a random id (jti), which Verify
// returns as Identity.ID.
func (a *Authority) Mint(user, device string, grants []string, ttl time.Duration, opts ...MintOption) (string, time.Time, error) {
	if !ValidID(user) {
		return "", time.Time{}, fmt.Errorf("auth: invalid user id %q", user)
	}
	if !ValidID(device) {
		return "", time.Time{}, fmt.Errorf("auth: invalid device id %q", device)
	}
	if ttl <= 0 {
		return "", time.Time{}, errors.New("auth: ttl must be positive")
	}
	if ttl > a.maxTTL {
		return "", time.Time{}, fmt.Errorf("%w: %v is longer than the longest token lifetime, %v (auth.max_token_ttl)", ErrTTL, ttl, a.maxTTL)
	}
	if grants == nil {
		grants = DefaultGrants()
	}
	jti, err := newTokenID()
	if err != nil {
		return "", time.Time{}, err
	}
	now := a.now()
	exp := now.Add(ttl).Truncate(time.Second)
	c := Claims{
		Device: device,
		Grants: grants,
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        jti,
			Subject:   user,
			Issuer:    a.issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return "", time.Time{}, err
		}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(a.secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign: %w", err)
	}
	return s, exp, nil
}

// Verify checks a token's signature, algorithm, expiry, lifetime and ids.
// It returns an error wrapping ErrExpired or ErrInvalid. It does not know
// of revocations: signaling's Hub.Verify does.
func (a *Authority) Verify(token string) (Identity, error) {
	if len(token) > MaxTokenLen {
		return Identity{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxTokenLen)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(a.now),
		jwt.WithLeeway(Leeway),
	}
	if a.issuer != "" {
		opts = append(opts, jwt.WithIssuer(a.issuer))
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return a.secret, nil }, opts...)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Identity{}, fmt.Errorf("%w", ErrExpired)
	case err != nil:
		return Identity{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := numericTimes(token); err != nil {
		return Identity{}, err
	}
	from := a.now()
	if c.IssuedAt != nil {
		from = c.IssuedAt.Time
	}
	if life := c.ExpiresAt.Sub(from); life > a.maxTTL+Leeway {
		return Identity{}, fmt.Errorf("%w: lifetime %v is longer than %v", ErrInvalid, life.Round(time.Second), a.maxTTL)
	}
	if c.ID != "" && !ValidID(c.ID) {
		return Identity{}, fmt.Errorf("%w: jti must be 1-%d printable bytes", ErrInvalid, MaxIDLen)
	}
	if c.ID != "" && c.IssuedAt == nil {
		// A revoked id is remembered until every token with it has
		// expired, counted from the revocation; without iat, a token
		// whose exp lay beyond the longest lifetime would become good
		// after the id was forgotten.
		return Identity{}, fmt.Errorf("%w: a token with a jti must say when it was issued (iat)", ErrInvalid)
	}
	if !ValidID(c.Subject) {
		return Identity{}, fmt.Errorf("%w: sub must be a user id", ErrInvalid)
	}
	if !ValidID(c.Device) {
		return Identity{}, fmt.Errorf("%w: dev must be a device id", ErrInvalid)
	}
	id := Identity{User: c.Subject, Device: c.Device, ID: c.ID, Grants: c.Grants, ExpiresAt: c.ExpiresAt.Time}
	id.Rooms = c.Rooms
	if c.IssuedAt != nil {
		id.IssuedAt = c.IssuedAt.Time
	}
	return id, nil
}

// numericTimes checks that exp, iat and nbf, where present, are JSON
// numbers: the JWT library also takes numbers written as strings
// ("exp":"1800000000"), which RFC 7519 does not allow. token has passed
// the signature check.
func numericTimes(token string) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Errorf("%w: not three parts", ErrInvalid)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("%w: payload: %v", ErrInvalid, err)
	}
	var times struct {
		Exp json.RawMessage `json:"exp"`
		Iat json.RawMessage `json:"iat"`
		Nbf json.RawMessage `json:"nbf"`
	}
	if err := json.Unmarshal(payload, &times); err != nil {
		return fmt.Errorf("%w: payload: %v", ErrInvalid, err)
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"exp", times.Exp}, {"iat", times.Iat}, {"nbf", times.Nbf}} {
		if f.raw == nil {
			continue
		}
		if c := f.raw[0]; c != '-' && (c < '0' || c > '9') {
			return fmt.Errorf("%w: %s must be a number of seconds, not %s", ErrInvalid, f.name, truncate(string(f.raw), 32))
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// BearerToken extracts the token from an "Authorization: Bearer …" value.
func BearerToken(header string) (string, bool) {
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// LoadOrCreateKey returns the signing key kept in dir/signing.key,
// creating a random 32-byte key (mode 0600) the first time.
func LoadOrCreateKey(dir string) ([]byte, error) {
	p := filepath.Join(dir, "signing.key")
	if b, err := os.ReadFile(p); err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) < 32 {
			return nil, fmt.Errorf("auth: %s is damaged; remove it to make a new key", p)
		}
		return key, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	// Write a temporary file, then link it into place: the key appears
	// whole or not at all, and a process that loses the race reads the
	// winner's key.
	f, err := os.CreateTemp(dir, ".signing.key.*")
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
	if werr == nil {
		werr = f.Chmod(0o600)
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("auth: %w", werr)
	}
	if err := os.Link(tmp, p); errors.Is(err, os.ErrExist) {
		return LoadOrCreateKey(dir)
	} else if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return key, nil
}
