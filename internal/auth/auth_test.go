package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tandemcall/tandem/signaling/protocol"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestMintVerify(t *testing.T) {
	a, err := New(secret, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := a.Mint("alice", "laptop", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.User != "alice" || id.Device != "laptop" || !id.Has(GrantCall) {
		t.Fatalf("identity = %+v", id)
	}
}

func TestVerifyRejects(t *testing.T) {
	a, _ := New(secret, "tandem")
	other, _ := New([]byte("ffffffffffffffffffffffffffffffff"), "tandem")
	good, _, _ := a.Mint("alice", "laptop", nil, time.Hour)
	forged, _, _ := other.Mint("alice", "laptop", nil, time.Hour)
	past := *a
	past.now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	expired, _, _ := past.Mint("alice", "laptop", nil, time.Hour)
	none := jwt.NewWithClaims(jwt.SigningMethodNone, Claims{Device: "d", RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}})
	noneTok, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Device: "d", RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", Issuer: "tandem"}}).SignedString(secret)
	noDev, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", Issuer: "tandem", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString(secret)
	wrongIss, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, Claims{Device: "d", RegisteredClaims: jwt.RegisteredClaims{Subject: "alice", Issuer: "evil", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}).SignedString(secret)

	tests := []struct {
		name, tok string
		want      error
	}{
		{"forged", forged, ErrInvalid},
		{"expired", expired, ErrExpired},
		{"alg none", noneTok, ErrInvalid},
		{"no exp", noExp, ErrInvalid},
		{"no device", noDev, ErrInvalid},
		{"wrong issuer", wrongIss, ErrInvalid},
		{"garbage", "not.a.token", ErrInvalid},
		{"truncated", good[:len(good)-3], ErrInvalid},
		{"empty", "", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := a.Verify(tt.tok); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// signRaw signs payload, a JSON object written out as it is, with key:
// tokens the JWT library would not write.
func signRaw(key []byte, payload string) string {
	enc := base64.RawURLEncoding
	msg := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(m.Sum(nil))
}

// TestVerifyClaimsStrictly: the times must be JSON numbers, the lifetime
// at most the maximum, iat not in the future, jti a valid id.
func TestVerifyClaimsStrictly(t *testing.T) {
	a, _ := New(secret, "", WithMaxTTL(24*time.Hour))
	now := time.Now().Unix()
	tests := []struct {
		name, payload string
		want          error // nil: accepted
	}{
		{"numbers", fmt.Sprintf(`{"sub":"alice","dev":"d","iat":%d,"exp":%d}`, now, now+3600), nil},
		{"fractional exp", fmt.Sprintf(`{"sub":"alice","dev":"d","exp":%d.5}`, now+3600), nil},
		{"exactly the maximum", fmt.Sprintf(`{"sub":"alice","dev":"d","iat":%d,"exp":%d}`, now, now+24*3600), nil},
		{"with a jti", fmt.Sprintf(`{"sub":"alice","dev":"d","jti":"k1","iat":%d,"exp":%d}`, now, now+60), nil},
		{"a jti without iat", fmt.Sprintf(`{"sub":"alice","dev":"d","jti":"k1","exp":%d}`, now+60), ErrInvalid},
		{"exp a string", fmt.Sprintf(`{"sub":"alice","dev":"d","exp":"%d"}`, now+3600), ErrInvalid},
		{"iat a string", fmt.Sprintf(`{"sub":"alice","dev":"d","iat":"%d","exp":%d}`, now, now+3600), ErrInvalid},
		{"nbf a string", fmt.Sprintf(`{"sub":"alice","dev":"d","nbf":"%d","exp":%d}`, now, now+3600), ErrInvalid},
		{"iat null", fmt.Sprintf(`{"sub":"alice","dev":"d","iat":null,"exp":%d}`, now+3600), ErrInvalid},
		{"exp 1e12", `{"sub":"alice","dev":"d","exp":1e12}`, ErrInvalid},
		{"exp 1e12 with iat", fmt.Sprintf(`{"sub":"alice","dev":"d","iat":%d,"exp":1000000000000}`, now), ErrInvalid},
		{"exp 1e400", `{"sub":"alice","dev":"d","exp":1e400}`, ErrInvalid},
		{"lifetime over the maximum", fmt.Sprintf(`{"sub":"alice","dev":"d","iat":%d,"exp":%d}`, now-3600, now+24*3600), ErrInvalid},
		{"no iat, far exp", fmt.Sprintf(`{"sub":"alice","dev":"d","exp":%d}`, now+25*3600), ErrInvalid},
		{"iat in the future", fmt.Sprintf(`{"sub":"alice","dev":"d","iat":%d,"exp":%d}`, now+600, now+3600), ErrInvalid},
		{"exp missing", fmt.Sprintf(`{"sub":"alice","dev":"d","iat":%d}`, now), ErrInvalid},
		{"exp past", fmt.Sprintf(`{"sub":"alice","dev":"d","exp":%d}`, now-60), ErrExpired},
		{"jti with a space", fmt.Sprintf(`{"sub":"alice","dev":"d","jti":"a b","iat":%d,"exp":%d}`, now, now+60), ErrInvalid},
		{"jti not a string", fmt.Sprintf(`{"sub":"alice","dev":"d","jti":7,"iat":%d,"exp":%d}`, now, now+60), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Verify(signRaw(secret, tt.payload))
			if tt.want == nil && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestMintTokenIDAndLifetime: every minted token carries its own id; a
// lifetime over the maximum is refused with ErrTTL.
func TestMintTokenIDAndLifetime(t *testing.T) {
	a, _ := New(secret, "", WithMaxTTL(48*time.Hour))
	seen := map[string]bool{}
	for range 20 {
		tok, _, err := a.Mint("alice", "obs", nil, 48*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		id, err := a.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if !ValidID(id.ID) || len(id.ID) < 20 || seen[id.ID] {
			t.Fatalf("token id %q: want a fresh random id", id.ID)
		}
		seen[id.ID] = true
	}
	_, _, err := a.Mint("alice", "obs", nil, 49*time.Hour)
	if !errors.Is(err, ErrTTL) || !strings.Contains(err.Error(), "auth.max_token_ttl") {
		t.Fatalf("Mint over the maximum: %v, want ErrTTL naming auth.max_token_ttl", err)
	}
	if d, _ := New(secret, ""); d.MaxTTL() != DefaultMaxTTL {
		t.Fatalf("default maximum %v", d.MaxTTL())
	}
}

func TestMintRejectsBadIDs(t *testing.T) {
	a, _ := New(secret, "")
	for _, u := range []string{"", "a b", strings.Repeat("x", 129), "tab\t"} {
		if _, _, err := a.Mint(u, "d", nil, time.Hour); err == nil {
			t.Errorf("Mint(%q) succeeded", u)
		}
	}
}

// TestMintRooms: a token minted with rooms names exactly those rooms
// (duplicates once), one minted without names none, and bad room names or
// too many are refused at minting.
func TestMintRooms(t *testing.T) {
	a, _ := New(secret, "")
	tok, _, err := a.Mint("studio", "obs", []string{GrantPublish}, time.Hour, WithRooms("show", "show.b", "show"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(id.Rooms, ",") != "show,show.b" || !id.NamesRoom("show") || id.NamesRoom("other") || id.NamesRoom("") {
		t.Errorf("rooms = %q", id.Rooms)
	}
	plain, _, _ := a.Mint("studio", "obs", []string{GrantPublish}, time.Hour)
	if id, _ := a.Verify(plain); id.Rooms != nil || id.NamesRoom("show") {
		t.Errorf("a token minted without rooms names %q", id.Rooms)
	}
	if strings.Contains(string(mustPayload(t, plain)), "rooms") {
		t.Error("a token without rooms carries a rooms claim")
	}
	for _, bad := range [][]string{{""}, {"Show"}, {"a b"}, {"*"}, {strings.Repeat("x", 65)}, make([]string, MaxRooms+1)} {
		if _, _, err := a.Mint("studio", "obs", nil, time.Hour, WithRooms(bad...)); err == nil {
			t.Errorf("Mint with rooms %q succeeded", bad)
		}
	}
}

// mustPayload returns a token's decoded payload.
func mustPayload(t *testing.T, tok string) []byte {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q", tok)
	}
	b, err := jwt.NewParser().DecodeSegment(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzValidRoom: auth's room rule is signaling's, so that a token names
// exactly the rooms /whip/{room} and join accept.
func FuzzValidRoom(f *testing.F) {
	for _, s := range []string{"show", "a.b-c_d", "", "Show", "a b", "*", strings.Repeat("x", 64), strings.Repeat("x", 65), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidRoom(s), protocol.CheckRoom(s) == nil; got != want {
			t.Fatalf("ValidRoom(%q) = %v, protocol.CheckRoom says %v", s, got, want)
		}
	})
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != 32 || !bytes.Equal(k1, k2) {
		t.Fatal("key not kept across loads")
	}
}

func FuzzVerify(f *testing.F) {
	const maxTTL = 24 * time.Hour
	a, _ := New(secret, "", WithMaxTTL(maxTTL))
	good, _, _ := a.Mint("alice", "laptop", nil, time.Hour)
	f.Add(good)
	withRooms, _, _ := a.Mint("alice", "laptop", []string{GrantSubscribe}, time.Hour, WithRooms("show"))
	f.Add(withRooms)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	now := time.Now().Unix()
	for _, p := range []string{
		fmt.Sprintf(`{"sub":"alice","dev":"d","exp":"%d"}`, now+3600),
		fmt.Sprintf(`{"sub":"alice","dev":"d","iat":"%d","exp":%d}`, now, now+3600),
		`{"sub":"alice","dev":"d","exp":1e12}`,
		fmt.Sprintf(`{"sub":"alice","dev":"d","jti":"x","iat":%d,"exp":%d}`, now, now+60),
	} {
		f.Add(signRaw(secret, p))
	}
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := a.Verify(tok)
		if err == nil && (!ValidID(id.User) || !ValidID(id.Device) || (id.ID != "" && !ValidID(id.ID))) {
			t.Fatalf("accepted token with bad ids: %+v", id)
		}
		if err == nil && time.Until(id.ExpiresAt) > maxTTL+Leeway {
			t.Fatalf("accepted a token valid for %v, longer than the maximum", time.Until(id.ExpiresAt))
		}
		if err == nil && strings.Contains(tok, ".") {
			if numericTimes(tok) != nil {
				t.Fatalf("accepted a token whose times are not numbers")
			}
		}
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrExpired) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}

func TestRevocationCovers(t *testing.T) {
	mark := time.Unix(1_800_000_000, 500_000_000)
	id := func(user, dev, jti string, iat time.Time) Identity {
		return Identity{User: user, Device: dev, ID: jti, IssuedAt: iat}
	}
	tests := []struct {
		name string
		r    Revocation
		id   Identity
		want bool
	}{
		{"user, issued before", Revocation{User: "alice", Before: mark}, id("alice", "obs", "k", mark.Add(-time.Hour)), true},
		{"user, same second", Revocation{User: "alice", Before: mark}, id("alice", "obs", "k", mark.Add(400*time.Millisecond)), true},
		{"user, next second", Revocation{User: "alice", Before: mark}, id("alice", "obs", "k", mark.Add(time.Second)), false},
		{"user, no iat", Revocation{User: "alice", Before: mark}, id("alice", "obs", "k", time.Time{}), true},
		{"another user", Revocation{User: "alice", Before: mark}, id("bob", "obs", "k", mark.Add(-time.Hour)), false},
		{"device", Revocation{User: "alice", Device: "obs", Before: mark}, id("alice", "obs", "k", mark.Add(-time.Hour)), true},
		{"another device", Revocation{User: "alice", Device: "obs", Before: mark}, id("alice", "phone", "k", mark.Add(-time.Hour)), false},
		{"same device of another user", Revocation{User: "alice", Device: "obs", Before: mark}, id("bob", "obs", "k", mark.Add(-time.Hour)), false},
		{"token id", Revocation{ID: "k"}, id("bob", "obs", "k", mark.Add(time.Hour)), true},
		{"another token id", Revocation{ID: "k"}, id("bob", "obs", "j", mark.Add(-time.Hour)), false},
		{"token id, token without one", Revocation{ID: "k"}, id("bob", "obs", "", mark.Add(-time.Hour)), false},
		{"zero mark", Revocation{User: "alice"}, id("alice", "obs", "k", time.Time{}), false},
	}
	for _, tt := range tests {
		if got := tt.r.Covers(tt.id); got != tt.want {
			t.Errorf("%s: Covers = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRecentRevocations(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	alice := Identity{User: "alice", Device: "obs", ID: "k1", IssuedAt: t0.Add(-time.Hour)}
	var r Recent
	if r.Covers(alice) {
		t.Fatal("nothing noted, yet covered")
	}
	r.Note(Revocation{User: "bob", Before: t0}, t0)
	if r.Covers(alice) {
		t.Fatal("bob's revocation covers alice")
	}
	r.Note(Revocation{User: "alice", Device: "obs", Before: t0}, t0.Add(time.Second))
	if !r.Covers(alice) {
		t.Fatal("alice's device revocation does not cover her token")
	}
	// A minute later both are forgotten when the next one is noted.
	r.Note(Revocation{ID: "other"}, t0.Add(RecentFor+time.Second))
	if r.Covers(alice) {
		t.Fatal("a revocation older than RecentFor is still remembered")
	}
	// Never more than MaxRecent.
	for i := range MaxRecent + 10 {
		r.Note(Revocation{ID: "x"}, t0.Add(RecentFor+time.Duration(i)*time.Millisecond))
	}
	if n := len(r.list); n > MaxRecent {
		t.Fatalf("%d remembered, at most %d", n, MaxRecent)
	}
}
