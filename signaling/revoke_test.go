package signaling

import (
	"errors"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/store"
)

// TestSessionRegisteringAfterARevocationIsRefused: a session whose token
// was verified before a revocation, and that registers once the
// revocation has closed the sessions it covers, is refused; one of
// another device, or with a token issued after, is not.
func TestSessionRegisteringAfterARevocationIsRefused(t *testing.T) {
	st, err := store.OpenLocal("", 10)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHub(Config{}, nil, nil, st, nil)
	mark := time.Now()
	if n := h.endRevoked(auth.Revocation{User: "alice", Device: "obs", Before: mark}); n != 0 {
		t.Fatalf("closed %d sessions, want none", n)
	}
	session := func(device string, iat time.Time) *Session {
		return &Session{user: "alice", device: device, ident: auth.Identity{User: "alice", Device: device, IssuedAt: iat}}
	}
	if _, err := h.register(session("obs", mark.Add(-time.Minute))); !errors.Is(err, ErrRevoked) {
		t.Errorf("alice/obs with a token from before: %v, want ErrRevoked", err)
	}
	if _, err := h.register(session("phone", mark.Add(-time.Minute))); err != nil {
		t.Errorf("alice/phone: %v", err)
	}
	if _, err := h.register(session("obs", mark.Add(2*time.Second))); err != nil {
		t.Errorf("alice/obs with a token issued after: %v", err)
	}
}
