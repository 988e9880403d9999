package accounts

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"time"

	"github.com/tandemcall/tandem/internal/store"
)

// Adding a device by QR code: the new device starts a pairing and shows a
// QR code of a link (and the same short code, to type instead); a device
// already signed in opens the link, or types the code, and approves,
// naming the new device; the new device, which alone holds the pairing's
// secret, then finishes it and is signed in. The code is short-lived,
// approving is rate-limited per person, and the secret never leaves the
// new device, so guessing codes gains nothing but approving a stranger's
// device into one's own account.

// codeAlphabet leaves out letters read as others (0/O, 1/I/L, U/V).
const codeAlphabet = "ABCDEFGHJKMNPQRSTWXYZ23456789"

// codeLen is the short code's length: 29^8, about 5·10^11 codes.
const codeLen = 8

// newCode returns a short code.
func newCode() string {
	b := make([]byte, codeLen)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = codeAlphabet[int(b[i])%len(codeAlphabet)]
	}
	return string(b)
}

// normalCode is a code as typed: upper case, without spaces or dashes.
func normalCode(s string) string {
	s = strings.ToUpper(s)
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, s)
}

// Pairing is a pairing begun, for the new device.
type Pairing struct {
	Code      string    `json:"code"`
	Secret    string    `json:"secret"`
	Link      string    `json:"link"`
	ExpiresAt time.Time `json:"expires_at"`
}

// StartPairing begins adding a device; base is the server's address
// when no PublicURL is set.
func (s *Service) StartPairing(ctx context.Context, base string) (Pairing, error) {
	sec := secret(32)
	exp := s.now().Add(s.cfg.PairingTTL)
	for range 5 {
		code := newCode()
		err := s.store.CreatePairing(ctx, store.Pairing{ID: code, SecretHash: hash(sec), Expires: exp})
		if errors.Is(err, store.ErrExists) {
			continue
		}
		if err != nil {
			return Pairing{}, err
		}
		return Pairing{Code: code, Secret: sec, Link: s.link(base, "pair", code), ExpiresAt: exp}, nil
	}
	return Pairing{}, errors.New("accounts: no free pairing code")
}

// ApprovePairing is user, signed in, approving the device waiting with
// code, naming it deviceName.
func (s *Service) ApprovePairing(ctx context.Context, user, code, deviceName string) error {
	if _, err := s.active(ctx, user); err != nil {
		return err
	}
	name, err := cleanName(deviceName)
	if err != nil {
		return err
	}
	// Rate-limited per approver: codes cannot be tried by the thousand.
	d, err := s.store.Allow(ctx, "pair-approve:"+user, store.Rate{Every: 6 * time.Second, Burst: 10}, s.now())
	if err != nil {
		return err
	}
	if !d.Allowed {
		s.metrics.signIn("pairing", "rate_limited")
		return &RetryError{After: d.RetryAfter}
	}
	err = s.store.ApprovePairing(ctx, normalCode(code), user, name, s.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.metrics.signIn("pairing", "unknown_code")
		return ErrPairingUnknown
	case errors.Is(err, store.ErrUsedUp):
		return errors.New("that device was already approved")
	}
	return err
}

// ErrPairingPending says the pairing waits for approval.
var ErrPairingPending = errors.New("waiting for a signed-in device to approve the code")

// FinishPairing is the new device, holding the secret, collecting its
// sign-in once approved: ErrPairingPending until then.
func (s *Service) FinishPairing(ctx context.Context, code, sec string) (SignedIn, error) {
	code = normalCode(code)
	p, err := s.store.Pairing(ctx, code, s.now())
	if err != nil || p.SecretHash != hash(sec) {
		return SignedIn{}, ErrPairingUnknown
	}
	if !p.Approved() {
		return SignedIn{}, ErrPairingPending
	}
	if p, err = s.store.FinishPairing(ctx, code, s.now()); err != nil {
		return SignedIn{}, ErrPairingUnknown
	}
	person, err := s.active(ctx, p.User)
	if err != nil {
		return SignedIn{}, err
	}
	s.metrics.signIn("pairing", "ok")
	return s.newDevice(ctx, person, p.DeviceName)
}

// RetryError is a request refused for now: try again after After.
type RetryError struct{ After time.Duration }

func (e *RetryError) Error() string { return "too many attempts: wait a little and try again" }
