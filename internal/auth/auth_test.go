package auth

import (
	"bytes"
	"errors"
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
	a, _ := New(secret, "")
	good, _, _ := a.Mint("alice", "laptop", nil, time.Hour)
	f.Add(good)
	withRooms, _, _ := a.Mint("alice", "laptop", []string{GrantSubscribe}, time.Hour, WithRooms("show"))
	f.Add(withRooms)
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
