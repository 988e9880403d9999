package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/redistest"
)

// conformant is what every store offers.
type conformant interface {
	History
	Users
	AssistLog
	Owner
	RateLimiter
	CallGrouping
	Revocations
}

// stores are the implementations every behaviour is checked against,
// each fresh and keeping 3 entries per user.
func stores(t *testing.T) map[string]conformant {
	t.Helper()
	local, err := OpenLocal(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	memory, err := OpenLocal("", 3)
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t)
	r, err := OpenRedis(RedisConfig{Addrs: []string{srv.Addr}, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	db, err := OpenSQLite(t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dbMem, err := OpenSQLite("", 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dbMem.Close() })
	return map[string]conformant{"local": local, "memory": memory, "redis": r, "sqlite": db, "sqlite-memory": dbMem}
}

// TestStoresAgree: both stores keep each user's newest entries, newest
// first, bounded, and tell known users from unknown ones.
func TestStoresAgree(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for i := range 5 {
				if err := s.AppendCall(ctx, "alice", CallEntry{CallID: fmt.Sprint("c", i), Reason: "completed"}); err != nil {
					t.Fatal(err)
				}
				if err := s.AppendAssist(ctx, "alice", AssistEntry{CallID: fmt.Sprint("c", i), Event: AssistStart}); err != nil {
					t.Fatal(err)
				}
			}
			calls, err := s.Calls(ctx, "alice", 10)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(callIDs(calls)); got != "[c4 c3 c2]" {
				t.Errorf("calls %s, want the newest 3, newest first", got)
			}
			if two, _ := s.Calls(ctx, "alice", 2); len(two) != 2 || two[0].CallID != "c4" {
				t.Errorf("limit 2 gave %+v", two)
			}
			entries, err := s.AssistEntries(ctx, "alice", 0)
			if err != nil || len(entries) != 3 || entries[0].CallID != "c4" {
				t.Errorf("assist log %+v, %v", entries, err)
			}
			if none, err := s.Calls(ctx, "bob", 10); err != nil || len(none) != 0 {
				t.Errorf("bob's history %+v, %v", none, err)
			}
			if known, _ := s.KnownUser(ctx, "alice"); known {
				t.Error("alice known before she signed in")
			}
			if err := s.TouchUser(ctx, "alice"); err != nil {
				t.Fatal(err)
			}
			if known, err := s.KnownUser(ctx, "alice"); !known || err != nil {
				t.Errorf("alice not known after signing in: %v", err)
			}
		})
	}
}

// TestRedisUnavailable: with Redis gone, calls fail quickly with
// ErrUnavailable, and work again when it is back, with no reconnect step.
func TestRedisUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	r, err := OpenRedis(RedisConfig{Addrs: []string{srv.Addr}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.TouchUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	_, err = r.KnownUser(ctx, "alice")
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("with Redis down: %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("failing took %v, want well under 2 s", took)
	}
	srv.Restart()
	deadline := time.Now().Add(5 * time.Second)
	for r.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the store did not reach Redis again after it came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := r.AppendCall(ctx, "alice", CallEntry{CallID: "after"}); err != nil {
		t.Errorf("after Redis came back: %v", err)
	}
}

func callIDs(list []CallEntry) []string {
	var out []string
	for _, e := range list {
		out = append(out, e.CallID)
	}
	return out
}

// TestEraseUser: erasing a user takes their history, audit log and
// signed-in record, revokes their tokens issued up to then, and leaves
// other users' entries that name them alone.
func TestEraseUser(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			must(t, s.AppendCall(ctx, "alice", CallEntry{CallID: "a1", Peer: "zebediah", EndedAt: at}))
			must(t, s.AppendAssist(ctx, "alice", AssistEntry{At: at, CallID: "a1", Helper: "zebediah", Helped: "alice", Event: AssistStart}))
			must(t, s.TouchUser(ctx, "alice"))
			must(t, s.AppendCall(ctx, "bob", CallEntry{CallID: "b1", Peer: "alice", EndedAt: at}))
			must(t, s.AppendAssist(ctx, "bob", AssistEntry{At: at, CallID: "b1", Helper: "bob", Helped: "alice", Event: AssistStart}))
			must(t, s.TouchUser(ctx, "bob"))

			before := time.Now()
			must(t, s.EraseUser(ctx, "alice"))
			after := time.Now()

			if calls, err := s.Calls(ctx, "alice", 0); err != nil || len(calls) != 0 {
				t.Errorf("alice's history after erasure: %+v, %v", calls, err)
			}
			if entries, err := s.AssistEntries(ctx, "alice", 0); err != nil || len(entries) != 0 {
				t.Errorf("alice's assistance log after erasure: %+v, %v", entries, err)
			}
			if known, err := s.KnownUser(ctx, "alice"); known || err != nil {
				t.Errorf("alice still known after erasure (%v)", err)
			}
			mark, err := s.TokensRevoked(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if mark.Before(before) || mark.After(after.Add(time.Microsecond)) {
				t.Errorf("alice's tokens revoked up to %v, want the time of erasure (%v to %v)", mark, before, after)
			}

			if calls, _ := s.Calls(ctx, "bob", 0); len(calls) != 1 || calls[0].Peer != "alice" {
				t.Errorf("bob's history naming alice: %+v, want it kept", calls)
			}
			if entries, _ := s.AssistEntries(ctx, "bob", 0); len(entries) != 1 || entries[0].Helped != "alice" {
				t.Errorf("bob's assistance log naming alice: %+v, want it kept", entries)
			}
			if known, _ := s.KnownUser(ctx, "bob"); !known {
				t.Error("bob forgotten when alice was erased")
			}
			if mark, _ := s.TokensRevoked(ctx, "bob"); !mark.IsZero() {
				t.Errorf("bob's tokens revoked up to %v, want not at all", mark)
			}

			// Erasing a user with nothing kept is no error, and an erased
			// user starts afresh.
			must(t, s.EraseUser(ctx, "nobody"))
			must(t, s.AppendCall(ctx, "alice", CallEntry{CallID: "a2", Peer: "bob", EndedAt: at}))
			if calls, _ := s.Calls(ctx, "alice", 0); fmt.Sprint(callIDs(calls)) != "[a2]" {
				t.Errorf("alice's history after a new call: %v, want [a2]", callIDs(calls))
			}
		})
	}
}

// TestRevokeTokensNeverMovesBack: a revocation mark only moves forward,
// and covers a token issued at exactly the time given.
func TestRevokeTokensNeverMovesBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	t1 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t2, t3 := t1.Add(time.Hour), t1.Add(2*time.Hour)
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			mark := func(user string) time.Time {
				t.Helper()
				m, err := s.TokensRevoked(ctx, user)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			if m := mark("carol"); !m.IsZero() {
				t.Errorf("carol's mark before any revocation: %v, want zero", m)
			}
			steps := []struct {
				revoke, want time.Time
			}{
				{t2, t2},
				{t1, t2}, // earlier: stays
				{t3, t3},
				{time.Time{}, t3}, // zero revokes nothing
				{t3, t3},
			}
			for i, st := range steps {
				must(t, s.RevokeTokens(ctx, "carol", st.revoke))
				if m := mark("carol"); !m.Equal(st.want) {
					t.Errorf("step %d: after revoking up to %v the mark is %v, want %v", i, st.revoke, m, st.want)
				}
			}
			if m := mark("dave"); !m.IsZero() {
				t.Errorf("dave's mark: %v, want zero", m)
			}
			odd := t1.Add(500 * time.Nanosecond)
			must(t, s.RevokeTokens(ctx, "erin", odd))
			if m := mark("erin"); m.Before(odd) || m.After(odd.Add(time.Microsecond)) {
				t.Errorf("erin revoked up to %v, the mark is %v: want it at or just after", odd, m)
			}
		})
	}
}

// TestRevokeDeviceAndTokenID: a device's mark covers that device of that
// user only and never moves back; a token id is revoked for whoever holds
// it until the time given, and then forgotten; Revoked reads every mark
// that applies at once.
func TestRevokeDeviceAndTokenID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t1 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			marks := func(user, device, id string) Marks {
				t.Helper()
				m, err := s.Revoked(ctx, user, device, id)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			if m := marks("alice", "obs", "k1"); m != (Marks{}) {
				t.Fatalf("marks before any revocation: %+v", m)
			}
			must(t, s.RevokeDevice(ctx, "alice", "obs", t2))
			must(t, s.RevokeDevice(ctx, "alice", "obs", t1)) // earlier: stays
			must(t, s.RevokeDevice(ctx, "alice", "phone", time.Time{}))
			if m := marks("alice", "obs", ""); !m.Device.Equal(t2) || !m.User.IsZero() || m.ID {
				t.Errorf("alice/obs after revoking the device: %+v, want the device mark %v only", m, t2)
			}
			for _, other := range [][2]string{{"alice", "phone"}, {"bob", "obs"}, {"alice\x00obs", ""}} {
				if m := marks(other[0], other[1], ""); m != (Marks{}) {
					t.Errorf("%q/%q caught by alice/obs's revocation: %+v", other[0], other[1], m)
				}
			}
			if m, _ := s.TokensRevoked(ctx, "alice"); !m.IsZero() {
				t.Errorf("revoking a device revoked the user up to %v", m)
			}
			must(t, s.RevokeTokens(ctx, "alice", t1))
			if m := marks("alice", "obs", ""); !m.User.Equal(t1) || !m.Device.Equal(t2) {
				t.Errorf("alice/obs with both marks: %+v", m)
			}

			// A token id: revoked for any holder until the time given.
			must(t, s.RevokeTokenID(ctx, "k1", time.Now().Add(time.Hour)))
			if m := marks("bob", "laptop", "k1"); !m.ID {
				t.Errorf("token k1 not revoked: %+v", m)
			}
			if m := marks("bob", "laptop", "k2"); m.ID {
				t.Error("token k2 revoked with k1")
			}
			if m := marks("bob", "laptop", ""); m.ID {
				t.Error("a token without an id counts as revoked")
			}
			if err := s.RevokeTokenID(ctx, "", time.Now().Add(time.Hour)); err == nil {
				t.Error("revoking the empty token id succeeded")
			}
			// Already expired: nothing to keep.
			must(t, s.RevokeTokenID(ctx, "k3", time.Now().Add(-time.Second)))
			if m := marks("bob", "laptop", "k3"); m.ID {
				t.Error("a token id revoked until a past time is revoked")
			}
			// Forgotten once every token with that id has expired; a
			// shorter revocation does not cut a longer one short.
			must(t, s.RevokeTokenID(ctx, "k4", time.Now().Add(300*time.Millisecond)))
			must(t, s.RevokeTokenID(ctx, "k1", time.Now().Add(300*time.Millisecond)))
			if m := marks("bob", "laptop", "k4"); !m.ID {
				t.Error("token k4 not revoked")
			}
			deadline := time.Now().Add(5 * time.Second)
			for marks("bob", "laptop", "k4").ID {
				if time.Now().After(deadline) {
					t.Fatal("token id k4 still revoked long after its tokens expired")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if m := marks("bob", "laptop", "k1"); !m.ID {
				t.Error("a shorter revocation of k1 cut the longer one short")
			}
		})
	}
}

// TestPruneCalls: entries that ended before the cut go, across users,
// whatever their order in the list; those at or after it stay, in order.
func TestPruneCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cut := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	history := map[string][]CallEntry{
		"alice": {{CallID: "a1", EndedAt: cut.Add(-2 * time.Hour)}, {CallID: "a2", EndedAt: cut.Add(time.Hour)}, {CallID: "a3", EndedAt: cut.Add(-time.Second)}},
		"bob":   {{CallID: "b1", EndedAt: cut.Add(2 * time.Hour)}, {CallID: "b2", EndedAt: cut.Add(-time.Hour)}, {CallID: "b3", EndedAt: cut}},
		"carol": {{CallID: "c1", EndedAt: cut.Add(-5 * time.Hour)}},
		"dave":  {{CallID: "d1", EndedAt: cut.Add(time.Hour)}},
	}
	want := map[string]string{"alice": "[a2]", "bob": "[b3 b1]", "carol": "[]", "dave": "[d1]"}
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for user, list := range history {
				for _, e := range list {
					must(t, s.AppendCall(ctx, user, e))
				}
			}
			n, err := s.PruneCalls(ctx, cut)
			if err != nil {
				t.Fatal(err)
			}
			if n != 4 {
				t.Errorf("pruned %d entries, want 4", n)
			}
			for user, w := range want {
				calls, err := s.Calls(ctx, user, 0)
				if err != nil {
					t.Fatal(err)
				}
				if got := fmt.Sprint(callIDs(calls)); got != w {
					t.Errorf("%s's history after pruning: %s, want %s", user, got, w)
				}
			}
			if n, err := s.PruneCalls(ctx, cut); n != 0 || err != nil {
				t.Errorf("pruning again removed %d (%v), want 0", n, err)
			}
			// The lists are still bounded after pruning.
			for i := range 4 {
				must(t, s.AppendCall(ctx, "carol", CallEntry{CallID: fmt.Sprint("n", i), EndedAt: cut.Add(time.Hour)}))
			}
			if calls, _ := s.Calls(ctx, "carol", 0); fmt.Sprint(callIDs(calls)) != "[n3 n2 n1]" {
				t.Errorf("carol's history after 4 new calls: %v, want [n3 n2 n1]", callIDs(calls))
			}
		})
	}
}

// TestPruneAssist: audit entries from before the cut go, across users.
func TestPruneAssist(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cut := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	log := map[string][]AssistEntry{
		"alice": {{CallID: "a1", At: cut.Add(-time.Hour)}, {CallID: "a2", At: cut}, {CallID: "a3", At: cut.Add(-time.Minute)}},
		"bob":   {{CallID: "b1", At: cut.Add(-time.Hour)}, {CallID: "b2", At: cut.Add(-time.Minute)}},
		"carol": {{CallID: "c1", At: cut.Add(time.Hour)}},
	}
	want := map[string]string{"alice": "[a2]", "bob": "[]", "carol": "[c1]"}
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for user, list := range log {
				for _, e := range list {
					must(t, s.AppendAssist(ctx, user, e))
				}
			}
			if calls, _ := s.PruneCalls(ctx, cut.Add(time.Hour)); calls != 0 {
				t.Errorf("pruning calls removed %d audit entries", calls)
			}
			n, err := s.PruneAssist(ctx, cut)
			if err != nil {
				t.Fatal(err)
			}
			if n != 4 {
				t.Errorf("pruned %d entries, want 4", n)
			}
			for user, w := range want {
				entries, err := s.AssistEntries(ctx, user, 0)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, e := range entries {
					ids = append(ids, e.CallID)
				}
				if got := fmt.Sprint(ids); got != w {
					t.Errorf("%s's log after pruning: %s, want %s", user, got, w)
				}
			}
		})
	}
}

// TestOwnerHonoursContext: with its context done, each call fails and
// changes nothing.
func TestOwnerHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done, stop := context.WithCancel(ctx)
	stop()
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			must(t, s.AppendCall(ctx, "alice", CallEntry{CallID: "a1", EndedAt: old}))
			must(t, s.AppendAssist(ctx, "alice", AssistEntry{CallID: "a1", At: old}))
			if err := s.EraseUser(done, "alice"); !errors.Is(err, context.Canceled) {
				t.Errorf("EraseUser: %v, want context.Canceled", err)
			}
			if _, err := s.PruneCalls(done, time.Now()); !errors.Is(err, context.Canceled) {
				t.Errorf("PruneCalls: %v, want context.Canceled", err)
			}
			if _, err := s.PruneAssist(done, time.Now()); !errors.Is(err, context.Canceled) {
				t.Errorf("PruneAssist: %v, want context.Canceled", err)
			}
			if err := s.RevokeTokens(done, "alice", time.Now()); !errors.Is(err, context.Canceled) {
				t.Errorf("RevokeTokens: %v, want context.Canceled", err)
			}
			if _, err := s.TokensRevoked(done, "alice"); !errors.Is(err, context.Canceled) {
				t.Errorf("TokensRevoked: %v, want context.Canceled", err)
			}
			if err := s.RevokeDevice(done, "alice", "obs", time.Now()); !errors.Is(err, context.Canceled) {
				t.Errorf("RevokeDevice: %v, want context.Canceled", err)
			}
			if err := s.RevokeTokenID(done, "k1", time.Now().Add(time.Hour)); !errors.Is(err, context.Canceled) {
				t.Errorf("RevokeTokenID: %v, want context.Canceled", err)
			}
			if _, err := s.Revoked(done, "alice", "obs", "k1"); !errors.Is(err, context.Canceled) {
				t.Errorf("Revoked: %v, want context.Canceled", err)
			}
			if calls, _ := s.Calls(ctx, "alice", 0); len(calls) != 1 {
				t.Errorf("alice's history after cancelled calls: %+v, want it untouched", calls)
			}
			if entries, _ := s.AssistEntries(ctx, "alice", 0); len(entries) != 1 {
				t.Errorf("alice's log after cancelled calls: %+v, want it untouched", entries)
			}
			if mark, _ := s.TokensRevoked(ctx, "alice"); !mark.IsZero() {
				t.Errorf("alice's tokens revoked up to %v by cancelled calls", mark)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestPruneManyUsers: pruning reaches every user, however many there are
// (Redis reads them in batches, from a set too big to come in one).
func TestPruneManyUsers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cut := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	const users = 300
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for i := range users {
				u := fmt.Sprint("user", i)
				must(t, s.AppendCall(ctx, u, CallEntry{CallID: u + "-old", EndedAt: cut.Add(-time.Hour)}))
				must(t, s.AppendCall(ctx, u, CallEntry{CallID: u + "-new", EndedAt: cut.Add(time.Hour)}))
			}
			n, err := s.PruneCalls(ctx, cut)
			if err != nil || n != users {
				t.Fatalf("pruned %d (%v), want %d", n, err, users)
			}
			for i := range users {
				u := fmt.Sprint("user", i)
				if calls, _ := s.Calls(ctx, u, 0); fmt.Sprint(callIDs(calls)) != "["+u+"-new]" {
					t.Fatalf("%s's history after pruning: %v", u, callIDs(calls))
				}
			}
		})
	}
}
