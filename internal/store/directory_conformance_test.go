package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/redistest"
)

// directories are the CallDirectory implementations, each fresh.
func directories(t *testing.T) map[string]CallDirectory {
	t.Helper()
	srv := redistest.Start(t)
	r, err := OpenRedis(RedisConfig{Addrs: []string{srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return map[string]CallDirectory{"memory": NewMemoryDirectory(nil), "redis": r}
}

func dirCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDirectoryHomes: a node's writes say where each user's call and each
// room live; a clear removes only what still names that node's call, so a
// node that took a user's call over is not undone by the old home's late
// write.
func TestDirectoryHomes(t *testing.T) {
	for name, d := range directories(t) {
		t.Run(name, func(t *testing.T) {
			ctx := dirCtx(t)
			mustOK(t, d.WriteCalls(ctx, "n1", CallChanges{
				Users: []HomeChange{{Key: "alice", Call: "c1"}, {Key: "bob", Call: "c1"}},
				Rooms: []HomeChange{{Key: "choir", Call: "r1"}},
			}))
			homes, err := d.UserHomes(ctx, "bob", "carol", "alice")
			mustOK(t, err)
			if want := []Home{{"n1", "c1"}, {}, {"n1", "c1"}}; !slices.Equal(homes, want) {
				t.Errorf("homes %v, want %v", homes, want)
			}
			if h, err := d.RoomHome(ctx, "choir"); err != nil || h != (Home{"n1", "r1"}) {
				t.Errorf("room home %v, %v", h, err)
			}
			// n2 took bob's call over; n1's late clear leaves it.
			mustOK(t, d.WriteCalls(ctx, "n2", CallChanges{Users: []HomeChange{{Key: "bob", Call: "c1"}}}))
			mustOK(t, d.WriteCalls(ctx, "n1", CallChanges{
				Users: []HomeChange{{Key: "alice", Call: "c1", Clear: true}, {Key: "bob", Call: "c1", Clear: true}},
				Rooms: []HomeChange{{Key: "choir", Call: "other", Clear: true}},
			}))
			homes, err = d.UserHomes(ctx, "alice", "bob")
			mustOK(t, err)
			if want := []Home{{}, {"n2", "c1"}}; !slices.Equal(homes, want) {
				t.Errorf("after the clears: homes %v, want %v", homes, want)
			}
			if h, _ := d.RoomHome(ctx, "choir"); h != (Home{"n1", "r1"}) {
				t.Errorf("a clear naming another call removed the room: %v", h)
			}
			mustOK(t, d.WriteCalls(ctx, "n1", CallChanges{Rooms: []HomeChange{{Key: "choir", Call: "r1", Clear: true}}}))
			if h, _ := d.RoomHome(ctx, "choir"); h != (Home{}) {
				t.Errorf("room still at %v after its clear", h)
			}
			if homes, err := d.UserHomes(ctx); err != nil || len(homes) != 0 {
				t.Errorf("no users: %v, %v", homes, err)
			}
		})
	}
}

// TestDirectorySnapshots: a call's snapshot comes back as written; an
// answered call or a room is on its node's list for a takeover, a call
// still ringing is not; an ended call is gone from both.
func TestDirectorySnapshots(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	answered := CallSnapshot{ID: "c1", Home: "n1", Caller: "alice", Callee: "bob", Video: true, Started: t0, Answered: t0.Add(time.Second),
		Members: []MemberSnapshot{{User: "alice", Device: "laptop", Joined: t0}, {User: "bob", Device: "phone", Joined: t0.Add(time.Second), Inviter: "alice"}}}
	ringing := CallSnapshot{ID: "c2", Home: "n1", Caller: "carol", Callee: "dave", Started: t0,
		Members: []MemberSnapshot{{User: "carol", Device: "tablet", Joined: t0}}}
	room := CallSnapshot{ID: "r1", Home: "n1", Room: "choir", PTT: true, Started: t0}
	for name, d := range directories(t) {
		t.Run(name, func(t *testing.T) {
			ctx := dirCtx(t)
			mustOK(t, d.WriteCalls(ctx, "n1", CallChanges{Snapshots: []CallSnapshot{answered, ringing, room}}))
			got, ok, err := d.CallSnapshot(ctx, "c1")
			mustOK(t, err)
			if !ok || got.ID != "c1" || got.Home != "n1" || !got.Video || !got.Answered.Equal(answered.Answered) || len(got.Members) != 2 {
				t.Fatalf("snapshot %+v, %v", got, ok)
			}
			if m := got.Members[1]; m.User != "bob" || m.Device != "phone" || m.Inviter != "alice" || !m.Joined.Equal(answered.Members[1].Joined) {
				t.Errorf("bob in the snapshot: %+v", m)
			}
			if _, ok, _ := d.CallSnapshot(ctx, "nope"); ok {
				t.Error("a snapshot of a call never written")
			}
			ids, err := d.NodeCalls(ctx, "n1")
			mustOK(t, err)
			slices.Sort(ids)
			if want := []string{"c1", "r1"}; !slices.Equal(ids, want) {
				t.Errorf("n1's calls %v, want %v (not the ringing c2)", ids, want)
			}
			// Written again: still listed once.
			mustOK(t, d.WriteCalls(ctx, "n1", CallChanges{Snapshots: []CallSnapshot{answered}}))
			mustOK(t, d.WriteCalls(ctx, "n1", CallChanges{Ended: []string{"c1", "c2"}}))
			if _, ok, _ := d.CallSnapshot(ctx, "c1"); ok {
				t.Error("an ended call's snapshot is still there")
			}
			if ids, _ := d.NodeCalls(ctx, "n1"); !slices.Equal(ids, []string{"r1"}) {
				t.Errorf("n1's calls after c1 ended: %v", ids)
			}
			mustOK(t, d.ForgetNodeCall(ctx, "n1", "r1"))
			if ids, _ := d.NodeCalls(ctx, "n1"); len(ids) != 0 {
				t.Errorf("n1's calls after forgetting r1: %v", ids)
			}
			if ids, err := d.NodeCalls(ctx, "n9"); err != nil || len(ids) != 0 {
				t.Errorf("an unknown node's calls: %v, %v", ids, err)
			}
		})
	}
}

// TestDirectoryClaims: of nodes racing to create a room or to take a dead
// node's call over, one wins; a claim over a room's stale entry needs
// replace; a claim expires.
func TestDirectoryClaims(t *testing.T) {
	for name, d := range directories(t) {
		t.Run(name, func(t *testing.T) {
			ctx := dirCtx(t)
			if ok, err := d.ClaimRoom(ctx, "choir", "n1", time.Minute, true); err != nil || ok {
				t.Errorf("replace claimed a room nobody had: %v, %v", ok, err)
			}
			if ok, err := d.ClaimRoom(ctx, "choir", "n1", time.Minute, false); err != nil || !ok {
				t.Fatalf("first claim: %v, %v", ok, err)
			}
			if ok, _ := d.ClaimRoom(ctx, "choir", "n2", time.Minute, false); ok {
				t.Error("a second claim won")
			}
			if h, _ := d.RoomHome(ctx, "choir"); h != (Home{Node: "n1"}) {
				t.Errorf("room being created: %v, want n1 with no call yet", h)
			}
			if ok, _ := d.ClaimRoom(ctx, "choir", "n2", time.Minute, true); !ok {
				t.Error("replacing a stale entry failed")
			}
			if h, _ := d.RoomHome(ctx, "choir"); h.Node != "n2" {
				t.Errorf("room at %v after n2 replaced it", h)
			}

			if ok, err := d.ClaimCall(ctx, "c1", "n2", 100*time.Millisecond); err != nil || !ok {
				t.Fatalf("first call claim: %v, %v", ok, err)
			}
			if ok, _ := d.ClaimCall(ctx, "c1", "n3", time.Minute); ok {
				t.Error("a second call claim won")
			}
			if ok, _ := d.ClaimRoom(ctx, "short", "n1", 100*time.Millisecond, false); !ok {
				t.Fatal("claim of a new room failed")
			}
			time.Sleep(300 * time.Millisecond)
			if ok, _ := d.ClaimCall(ctx, "c1", "n3", time.Minute); !ok {
				t.Error("a call claim did not expire")
			}
			if h, _ := d.RoomHome(ctx, "short"); h != (Home{}) {
				t.Errorf("a room claim did not expire: %v", h)
			}
		})
	}
}

// TestDirectoryHonoursContext: a call after its context ended fails and
// changes nothing.
func TestDirectoryHonoursContext(t *testing.T) {
	for name, d := range directories(t) {
		t.Run(name, func(t *testing.T) {
			done, cancel := context.WithCancel(context.Background())
			cancel()
			if err := d.WriteCalls(done, "n1", CallChanges{Users: []HomeChange{{Key: "alice", Call: "c1"}}}); err == nil {
				t.Error("WriteCalls with an ended context succeeded")
			}
			if _, err := d.UserHomes(done, "alice"); err == nil {
				t.Error("UserHomes with an ended context succeeded")
			}
			if ok, err := d.ClaimCall(done, "c1", "n1", time.Minute); err == nil || ok {
				t.Errorf("ClaimCall with an ended context: %v, %v", ok, err)
			}
			homes, err := d.UserHomes(dirCtx(t), "alice")
			if err != nil || homes[0] != (Home{}) {
				t.Errorf("alice's home %v, %v after a failed write", homes, err)
			}
		})
	}
}
