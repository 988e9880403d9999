package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/turncred"
)

// TestCredentialRevoked: a TURN credential minted in or before the second
// of a revocation is refused, one minted in a later second is not.
func TestCredentialRevoked(t *testing.T) {
	const ttl = 10 * time.Minute
	mark := time.Unix(1_800_000_000, 600_000_000)
	expiryAt := func(minted time.Time) time.Time {
		_, _, exp := turncred.Mint([]byte("s"), "alice", minted, ttl)
		return exp
	}
	tests := []struct {
		name   string
		minted time.Time
		want   bool
	}{
		{"minted long before", mark.Add(-9 * time.Minute), true},
		{"minted just before", mark.Add(-time.Millisecond), true},
		{"minted in the same second, after", mark.Add(300 * time.Millisecond), true},
		{"minted in the next second", mark.Add(700 * time.Millisecond), false},
		{"minted later", mark.Add(time.Minute), false},
	}
	for _, tt := range tests {
		if got := credentialRevoked(expiryAt(tt.minted), mark, ttl); got != tt.want {
			t.Errorf("%s: revoked = %v, want %v", tt.name, got, tt.want)
		}
	}
	if credentialRevoked(expiryAt(mark.Add(-time.Minute)), time.Time{}, ttl) {
		t.Error("no mark revoked a credential")
	}
}

// TestTURNMarksReadTheStoreRarely: a user not heard of is read from the
// store once per turnMarkFresh, however many requests ask; a revocation
// heard is used without a read; a store that fails leaves what is known.
func TestTURNMarksReadTheStoreRarely(t *testing.T) {
	const ttl = 10 * time.Minute
	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	reads := map[string]int{}
	stored := map[string]time.Time{"carol": now.Add(-time.Minute)}
	var fail error
	tm := newTURNMarks(ttl, func(_ context.Context, user string) (time.Time, error) {
		mu.Lock()
		defer mu.Unlock()
		reads[user]++
		return stored[user], fail
	}, slog.New(slog.DiscardHandler))
	tm.now = func() time.Time { return now }
	tm.wait = time.Minute // the store here answers at once; the test is not about a slow one
	_, _, fresh := turncred.Mint([]byte("s"), "x", now, ttl)
	_, _, old := turncred.Mint([]byte("s"), "x", now.Add(-2*time.Minute), ttl)

	for range 100 {
		if tm.revoked("alice", fresh) {
			t.Fatal("alice, never revoked, refused")
		}
	}
	if !tm.revoked("carol", old) || tm.revoked("carol", fresh) {
		t.Error("carol's mark from the store: want her old credential refused, her fresh one not")
	}
	if reads["alice"] != 1 || reads["carol"] != 1 {
		t.Errorf("store reads %v, want one per user", reads)
	}
	now = now.Add(turnMarkFresh + time.Second)
	tm.revoked("alice", fresh)
	if reads["alice"] != 2 {
		t.Errorf("alice read %d times after the cache went stale, want 2", reads["alice"])
	}

	// Heard from a revocation: no read needed, and it holds while the
	// store fails.
	tm.heard("bob", now)
	fail = errors.New("redis away")
	if !tm.revoked("bob", old) {
		t.Error("bob's credential from before his revocation accepted")
	}
	if reads["bob"] != 0 {
		t.Errorf("bob read %d times, want none: his revocation was heard", reads["bob"])
	}
	now = now.Add(ttl + time.Minute) // long after; reads fail
	if !tm.revoked("bob", old) {
		t.Error("a failing store made bob's known revocation be forgotten")
	}
}

// TestTURNMarksDoNotWaitForASlowStore: a TURN request whose user's mark
// is being read waits turnMarkWait at most and goes by what is known; the
// read goes on, and a revocation it finds (one this node did not hear of)
// ends the relays it covers.
func TestTURNMarksDoNotWaitForASlowStore(t *testing.T) {
	const ttl = 10 * time.Minute
	now := time.Now()
	release := make(chan struct{})
	tm := newTURNMarks(ttl, func(ctx context.Context, user string) (time.Time, error) {
		<-release
		return now, nil
	}, slog.New(slog.DiscardHandler))
	closed := make(chan time.Time, 1)
	tm.closeRevoked = func(user string, mark time.Time) { closed <- mark }
	_, _, old := turncred.Mint([]byte("s"), "x", now.Add(-time.Minute), ttl)

	answered := make(chan bool)
	go func() { answered <- tm.revoked("mallory", old) }()
	select {
	case got := <-answered:
		if got {
			t.Error("refused before the mark was read")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a TURN request waited for a store that does not answer")
	}
	close(release)
	select {
	case mark := <-closed:
		if !mark.Equal(now) {
			t.Errorf("relays closed for mark %v, want %v", mark, now)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the revocation read from the store did not close the relays it covers")
	}
	tm.close()
	if !tm.revoked("mallory", old) {
		t.Error("once read, the mark does not refuse the old credential")
	}
}

// TestWHIPRegistryRefusesLateSessions: a session whose token was checked
// before a revocation and that registers after it is refused; the
// revocation returns the registered sessions it covers, and no others.
func TestWHIPRegistryRefusesLateSessions(t *testing.T) {
	g := newWHIPRegistry()
	issued := time.Now().Add(-time.Minute)
	obs := &whipResource{id: "a", user: "studio", ident: auth.Identity{User: "studio", Device: "obs", ID: "k1", IssuedAt: issued}}
	cam := &whipResource{id: "b", user: "studio", ident: auth.Identity{User: "studio", Device: "cam", ID: "k2", IssuedAt: issued}}
	g.byID[cam.id] = cam

	got := g.revoke(auth.Revocation{User: "studio", Device: "obs", Before: time.Now()})
	if len(got) != 0 {
		t.Errorf("revoking studio/obs returned %d sessions, want none registered", len(got))
	}
	if err := g.add(obs, func(*whipResource) {}); !errors.Is(err, errWHIPRevoked) {
		t.Errorf("adding studio/obs's session after its revocation: %v, want errWHIPRevoked", err)
	}
	if got := g.revoke(auth.Revocation{ID: "k2"}); len(got) != 1 || got[0] != cam {
		t.Errorf("revoking token k2 returned %v, want the cam session", got)
	}
}
