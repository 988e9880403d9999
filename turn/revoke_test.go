package turn

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/testkit"
)

// revokedSet is a Config.Revoked backed by a set of users.
type revokedSet struct {
	mu    sync.Mutex
	users map[string]bool
	asked int
}

func (r *revokedSet) revoked(user string, _ time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked++
	return r.users[user]
}

func (r *revokedSet) revoke(user string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.users[user] = true
}

// TestRevokedUserLosesTURN: once a user's credentials are revoked,
// CloseUser ends the allocation they hold (its relay goes quiet and its
// refresh is refused), their credentials open no new one, and another
// user's allocation and the source's failure budget are untouched.
func TestRevokedUserLosesTURN(t *testing.T) {
	clk := newFakeClock()
	set := &revokedSet{users: map[string]bool{}}
	s := newTestServer(t, clk, func(c *Config) { c.Revoked = set.revoked })
	peer := echoPeer(t)

	aUser, aPass := mint(secretA, "alice", clk, 10*time.Minute)
	alice := newUDPClient(t, s, aUser, aPass)
	aRelay, err := alice.Allocate()
	if err != nil {
		t.Fatalf("alice's Allocate: %v", err)
	}
	defer aRelay.Close()
	bUser, bPass := mint(secretA, "bob", clk, 10*time.Minute)
	bob := newUDPClient(t, s, bUser, bPass)
	bRelay, err := bob.Allocate()
	if err != nil {
		t.Fatalf("bob's Allocate: %v", err)
	}
	defer bRelay.Close()
	roundTrips(t, aRelay, peer, 3)
	roundTrips(t, bRelay, peer, 3)
	if s.Allocations("alice") != 1 || s.Allocations("bob") != 1 {
		t.Fatalf("allocations: alice %d, bob %d", s.Allocations("alice"), s.Allocations("bob"))
	}

	set.revoke("alice")
	if n := s.CloseUser("alice", nil); n != 1 {
		t.Fatalf("CloseUser(alice) = %d, want 1", n)
	}
	testkit.Eventually(t, 5*time.Second, "alice's allocation to end", func() bool { return s.Allocations("alice") == 0 })
	if s.CloseUser("alice", nil) != 0 {
		t.Error("CloseUser found an allocation left")
	}

	// Her relay carries nothing more.
	_, _ = aRelay.WriteTo([]byte("after"), peer)
	_ = aRelay.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, _, err := aRelay.ReadFrom(make([]byte, 1500)); err == nil {
		t.Error("alice's relay still echoes after she was revoked")
	}
	if err := refresh(alice, aUser, aPass); turnCode(err) != 401 {
		t.Errorf("alice's Refresh after revocation: %v, want 401", err)
	}
	again := newUDPClient(t, s, aUser, aPass)
	if _, err := again.Allocate(); turnCode(err) != 401 {
		t.Errorf("a new Allocate with alice's revoked credential: %v, want 401", err)
	}
	if st := s.Stats(); st.Auth["revoked"] < 2 {
		t.Errorf("auth results %v, want revoked counted", st.Auth)
	}
	if s.limiter.blocked(addrIP(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}), clk.Now()) {
		t.Error("revoked credentials counted against the source's failure budget")
	}

	// Bob's allocation goes on.
	roundTrips(t, bRelay, peer, 3)
	if err := refresh(bob, bUser, bPass); err != nil {
		t.Errorf("bob's Refresh: %v", err)
	}
}
