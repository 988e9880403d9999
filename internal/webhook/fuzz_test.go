package webhook

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds Verify arbitrary headers and bodies. It must never
// panic and must fail only with one of its three errors; and whatever Sign
// produces must verify, and stop verifying once the body changes.
func FuzzVerify(f *testing.F) {
	body := []byte(`{"id":"evt_aaaaaaaaaaaaaaaa","type":"call.started","seq":1,"data":{}}`)
	f.Add(testSecret, Sign(testSecret, time.Unix(1700000000, 0), body), body, int64(1700000000), int64(time.Minute))
	f.Add(testSecret, "t=1700000000,v1="+strings.Repeat("0", 64)+",v1="+strings.Repeat("f", 64), body, int64(1700000000), int64(0))
	f.Add([]byte("k"), "t=,v1=", []byte{}, int64(0), int64(-1))
	f.Add([]byte{}, "t=-1,v1=zz", []byte("x"), int64(-1), int64(1))
	f.Add(testSecret, " t = 1 , v1 = ab ", []byte(nil), int64(1<<62), int64(1<<62))
	f.Add(testSecret, ",,,===,t==,v1==", []byte("\x00\xff"), int64(-1<<63), int64(1<<63-1))
	f.Add(testSecret, "t=9223372036854775807,v1="+strings.Repeat("a", 64), body, int64(1<<63-1), int64(time.Hour))

	f.Fuzz(func(t *testing.T, secret []byte, header string, body []byte, unix, tolerance int64) {
		now := time.Unix(unix, 0)
		err := Verify(secret, header, body, now, time.Duration(tolerance))
		if err != nil && !errors.Is(err, ErrSignatureFormat) && !errors.Is(err, ErrSignatureMismatch) && !errors.Is(err, ErrSignatureExpired) {
			t.Fatalf("Verify(%q) = %v, not one of the three errors", header, err)
		}
		if err == nil && len(secret) == 0 {
			t.Fatalf("Verify(%q) accepted an empty secret", header)
		}

		if len(secret) == 0 {
			return
		}
		signed := Sign(secret, now, body)
		if err := Verify(secret, signed, body, now, time.Second); err != nil {
			t.Fatalf("Verify(Sign(...)) = %v for header %q", err, signed)
		}
		// The same header with one more v1 entry still verifies (secret rotation).
		if err := Verify(secret, signed+",v1="+strings.Repeat("0", 64), body, now, time.Second); err != nil {
			t.Fatalf("Verify with an extra v1 = %v", err)
		}
		tampered := append([]byte{}, body...)
		if len(tampered) == 0 {
			tampered = []byte{0}
		} else {
			tampered[len(tampered)/2] ^= 1
		}
		if err := Verify(secret, signed, tampered, now, time.Second); !errors.Is(err, ErrSignatureMismatch) {
			t.Fatalf("Verify of a changed body = %v", err)
		}
	})
}
