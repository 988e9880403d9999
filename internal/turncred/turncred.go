// Package turncred implements TURN REST API credentials, the form coturn's
// use-auth-secret uses: username "<unix-expiry>:<user-id>", password
// base64(HMAC-SHA1(secret, username)). Signaling mints them; the TURN
// server verifies them.
package turncred

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // the TURN REST API is defined with HMAC-SHA1
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Errors from ParseUsername.
var (
	ErrMalformed = errors.New("turncred: username is not <unix-expiry>:<user-id>")
)

// MaxUsernameLen bounds what ParseUsername accepts.
const MaxUsernameLen = 256

// Username builds "<unix-expiry>:<user>".
func Username(user string, expiry time.Time) string {
	return strconv.FormatInt(expiry.Unix(), 10) + ":" + user
}

// Password is base64(HMAC-SHA1(secret, username)).
func Password(secret []byte, username string) string {
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Mint returns a credential for user that expires no sooner than now+ttl
// (the username carries whole seconds, so the expiry is rounded up).
func Mint(secret []byte, user string, now time.Time, ttl time.Duration) (username, password string, expiry time.Time) {
	expiry = now.Add(ttl)
	if t := expiry.Truncate(time.Second); !t.Equal(expiry) {
		expiry = t.Add(time.Second)
	}
	username = Username(user, expiry)
	return username, Password(secret, username), expiry
}

// ParseUsername splits a REST username into its expiry and user id.
func ParseUsername(username string) (expiry time.Time, user string, err error) {
	if len(username) > MaxUsernameLen {
		return time.Time{}, "", fmt.Errorf("%w: too long", ErrMalformed)
	}
	ts, user, ok := strings.Cut(username, ":")
	if !ok || ts == "" || user == "" {
		return time.Time{}, "", ErrMalformed
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, "", ErrMalformed
	}
	return time.Unix(sec, 0), user, nil
}
