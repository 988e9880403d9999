package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
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

func TestMintRejectsBadIDs(t *testing.T) {
	a, _ := New(secret, "")
	for _, u := range []string{"", "a b", strings.Repeat("x", 129), "tab\t"} {
		if _, _, err := a.Mint(u, "d", nil, time.Hour); err == nil {
			t.Errorf("Mint(%q) succeeded", u)
		}
	}
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
	a, _ := New(secret, "")
	good, _, _ := a.Mint("alice", "laptop", nil, time.Hour)
	f.Add(good)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := a.Verify(tok)
		if err == nil && (!ValidID(id.User) || !ValidID(id.Device)) {
			t.Fatalf("accepted token with bad ids: %+v", id)
		}
		if err != nil && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrExpired) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}
