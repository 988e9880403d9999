package webhook

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testSecret = []byte("whsec_0123456789abcdef")

// TestSignKnownAnswer pins the signature to a value computed outside Go
// (Python's hmac module), the way docs/webhooks.md tells receivers to.
func TestSignKnownAnswer(t *testing.T) {
	got := Sign(testSecret, time.Unix(1700000000, 0), []byte(`{"id":"evt_test"}`))
	want := "t=1700000000,v1=3a48b1fe979c953bbdf4765d68cb5380a3d97c7f1ffde8c0ad2f43e2fa3e8c9e"
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1700000000, 0)
	body := []byte(`{"id":"evt_x","type":"call.ended"}`)
	good := Sign(testSecret, now, body)
	goodMAC := strings.TrimPrefix(good, "t=1700000000,v1=")
	other := Sign([]byte("another_secret_0123456"), now, body)
	otherMAC := strings.TrimPrefix(other, "t=1700000000,v1=")

	tests := []struct {
		name    string
		secret  []byte
		header  string
		body    []byte
		now     time.Time
		tol     time.Duration
		wantErr error
	}{
		{"valid", testSecret, good, body, now, time.Minute, nil},
		{"spaces around parts", testSecret, "t=1700000000, v1=" + goodMAC, body, now, time.Minute, nil},
		{"rotation, second v1 matches", testSecret, "t=1700000000,v1=" + otherMAC + ",v1=" + goodMAC, body, now, time.Minute, nil},
		{"unknown key ignored", testSecret, "t=1700000000,v0=whatever,v1=" + goodMAC, body, now, time.Minute, nil},
		{"within tolerance, late", testSecret, good, body, now.Add(59 * time.Second), time.Minute, nil},
		{"within tolerance, early", testSecret, good, body, now.Add(-59 * time.Second), time.Minute, nil},
		{"zero tolerance means 5m", testSecret, good, body, now.Add(4 * time.Minute), 0, nil},

		{"wrong secret", []byte("not_the_secret_at_all"), good, body, now, time.Minute, ErrSignatureMismatch},
		{"empty secret", nil, good, body, now, time.Minute, ErrSignatureMismatch},
		{"tampered body", testSecret, good, []byte(`{"id":"evt_x","type":"call.endeD"}`), now, time.Minute, ErrSignatureMismatch},
		{"tampered timestamp", testSecret, "t=1700000001,v1=" + goodMAC, body, now, time.Minute, ErrSignatureMismatch},
		{"only other secret's v1", testSecret, other, body, now, time.Minute, ErrSignatureMismatch},
		{"old", testSecret, good, body, now.Add(10 * time.Minute), 5 * time.Minute, ErrSignatureExpired},
		{"future", testSecret, good, body, now.Add(-10 * time.Minute), 5 * time.Minute, ErrSignatureExpired},
		{"zero tolerance means 5m, old", testSecret, good, body, now.Add(6 * time.Minute), 0, ErrSignatureExpired},
		{"far future now", testSecret, good, body, time.Unix(1<<62, 0), time.Minute, ErrSignatureExpired},

		{"empty", testSecret, "", body, now, time.Minute, ErrSignatureFormat},
		{"garbage", testSecret, "sha256=abc", body, now, time.Minute, ErrSignatureFormat},
		{"no t", testSecret, "v1=" + goodMAC, body, now, time.Minute, ErrSignatureFormat},
		{"no v1", testSecret, "t=1700000000", body, now, time.Minute, ErrSignatureFormat},
		{"two t", testSecret, "t=1700000000,t=1700000000,v1=" + goodMAC, body, now, time.Minute, ErrSignatureFormat},
		{"t not a number", testSecret, "t=soon,v1=" + goodMAC, body, now, time.Minute, ErrSignatureFormat},
		{"t with plus", testSecret, "t=+1700000000,v1=" + goodMAC, body, now, time.Minute, ErrSignatureFormat},
		{"t with leading zero", testSecret, "t=01700000000,v1=" + goodMAC, body, now, time.Minute, ErrSignatureFormat},
		{"t in milliseconds overflows", testSecret, "t=99999999999999999999,v1=" + goodMAC, body, now, time.Minute, ErrSignatureFormat},
		{"v1 short", testSecret, "t=1700000000,v1=" + goodMAC[:62], body, now, time.Minute, ErrSignatureFormat},
		{"v1 not hex", testSecret, "t=1700000000,v1=" + strings.Repeat("zz", 32), body, now, time.Minute, ErrSignatureFormat},
		{"v1 uppercase is still hex", testSecret, "t=1700000000,v1=" + strings.ToUpper(goodMAC), body, now, time.Minute, nil},
		{"part without =", testSecret, good + ",junk", body, now, time.Minute, ErrSignatureFormat},
		{"trailing comma", testSecret, good + ",", body, now, time.Minute, ErrSignatureFormat},
		{"too long", testSecret, good + ",x=" + strings.Repeat("a", maxSignatureHeader), body, now, time.Minute, ErrSignatureFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.secret, tc.header, tc.body, tc.now, tc.tol)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestVerifyErrorsDoNotEchoMAC: a receiver may log Verify's error; it must
// not hand an attacker the expected signature.
func TestVerifyErrorsDoNotEchoMAC(t *testing.T) {
	now := time.Unix(1700000000, 0)
	body := []byte("{}")
	want := strings.TrimPrefix(Sign(testSecret, now, body), "t="+strconv.FormatInt(now.Unix(), 10)+",v1=")
	for _, h := range []string{"t=1700000000,v1=" + strings.Repeat("00", 32), "t=1,v1=" + strings.Repeat("ab", 32), "nonsense"} {
		err := Verify(testSecret, h, body, now, time.Minute)
		if err == nil || strings.Contains(err.Error(), want) {
			t.Fatalf("Verify(%q) = %v", h, err)
		}
	}
}
