package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Errors from Verify. Verify wraps them with detail; test with errors.Is.
var (
	ErrSignatureFormat   = errors.New("webhook: malformed Tandem-Signature header")
	ErrSignatureMismatch = errors.New("webhook: signature does not match")
	ErrSignatureExpired  = errors.New("webhook: signature timestamp outside tolerance")
)

const (
	// maxSignatureHeader bounds the header Verify parses; a few v1 entries
	// during a secret rotation fit many times over.
	maxSignatureHeader = 4096
	// defaultTolerance is what Verify uses when given a tolerance <= 0.
	defaultTolerance = 5 * time.Minute
)

// Sign returns the Tandem-Signature header value for body sent at t:
// "t=<unix seconds>,v1=<lowercase hex HMAC-SHA256(secret, "<unix seconds>." + body)>".
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a Tandem-Signature header against body. The header is a
// comma-separated list of key=value pairs: exactly one t=<unix seconds> and
// one or more v1=<hex HMAC-SHA256>; unknown keys are ignored. Any v1 may
// match, so a receiver rotating its secret can be sent both. The timestamp
// must be within tolerance of now in either direction (tolerance <= 0 means
// five minutes). The signature is checked before the timestamp, so
// ErrSignatureExpired is only returned for an authentic but stale delivery.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(header) > maxSignatureHeader {
		return fmt.Errorf("%w: longer than %d bytes", ErrSignatureFormat, maxSignatureHeader)
	}
	var (
		ts     string
		haveTS bool
		sigs   [][]byte
	)
	i := 0
	for part := range strings.SplitSeq(header, ",") {
		i++
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || k == "" {
			return fmt.Errorf("%w: part %d is not key=value", ErrSignatureFormat, i)
		}
		switch k {
		case "t":
			if haveTS {
				return fmt.Errorf("%w: more than one t=", ErrSignatureFormat)
			}
			ts, haveTS = v, true
		case "v1":
			if len(v) != 2*sha256.Size {
				return fmt.Errorf("%w: v1 is not %d hex digits", ErrSignatureFormat, 2*sha256.Size)
			}
			sig, err := hex.DecodeString(v)
			if err != nil {
				return fmt.Errorf("%w: v1 is not hex", ErrSignatureFormat)
			}
			sigs = append(sigs, sig)
		}
	}
	if !haveTS {
		return fmt.Errorf("%w: no t=", ErrSignatureFormat)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(sec, 10) != ts {
		return fmt.Errorf("%w: t is not a unix time in seconds", ErrSignatureFormat)
	}
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no v1=", ErrSignatureFormat)
	}
	if len(secret) == 0 {
		return fmt.Errorf("%w: empty secret", ErrSignatureMismatch)
	}

	want := mac(secret, ts, body)
	matched := false
	for _, sig := range sigs {
		// Compare every entry so the time taken does not depend on which one matched.
		if hmac.Equal(sig, want) {
			matched = true
		}
	}
	if !matched {
		return fmt.Errorf("%w: no v1 entry matches (%d tried)", ErrSignatureMismatch, len(sigs))
	}

	if tolerance <= 0 {
		tolerance = defaultTolerance
	}
	// Sub saturates instead of overflowing, so comparing against ±tolerance
	// stays correct for absurd timestamps.
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: signed at %d, %s from now, tolerance %s",
			ErrSignatureExpired, sec, age.Round(time.Second), tolerance)
	}
	return nil
}
