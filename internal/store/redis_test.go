package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tandemcall/tandem/internal/redistest"
	"github.com/tandemcall/tandem/internal/testkit"
)

func openTestRedis(t *testing.T, addrs ...string) *Redis {
	t.Helper()
	r, err := OpenRedis(RedisConfig{Addrs: addrs, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func entryJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestRedisEraseLeavesNoTrace: appends, including appendCallTo's batched
// ones, index their users; after erasure no key, member or field names
// the user.
func TestRedisEraseLeavesNoTrace(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := openTestRedis(t, redistest.Start(t).Addr)
	rdb := r.rdb
	must(t, r.AppendCall(ctx, "alice", CallEntry{CallID: "a1", Peer: "bob"}))
	must(t, r.AppendAssist(ctx, "alice", AssistEntry{CallID: "a1", Helper: "bob", Helped: "alice"}))
	must(t, r.TouchUser(ctx, "alice"))
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		r.appendCallTo(ctx, p, "bob", CallEntry{CallID: "a1", Peer: "alice"})
		r.appendCallTo(ctx, p, "alice", CallEntry{CallID: "a2", Peer: "bob"})
		return nil
	})
	must(t, err)
	for _, c := range []struct{ set, user string }{{"users:calls", "alice"}, {"users:calls", "bob"}, {"users:assist", "alice"}} {
		if in, err := rdb.SIsMember(ctx, "tandem:"+c.set, c.user).Result(); !in || err != nil {
			t.Errorf("%s not in %s (%v)", c.user, c.set, err)
		}
	}
	if calls, _ := r.Calls(ctx, "alice", 0); fmt.Sprint(callIDs(calls)) != "[a2 a1]" {
		t.Errorf("alice's history: %v, want [a2 a1]", callIDs(calls))
	}

	must(t, r.EraseUser(ctx, "alice"))
	keys, err := rdb.Keys(ctx, "*").Result()
	must(t, err)
	for _, k := range keys {
		if strings.Contains(k, "alice") {
			t.Errorf("key %s left after erasing alice", k)
		}
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "set":
			for _, m := range rdb.SMembers(ctx, k).Val() {
				if m == "alice" {
					t.Errorf("%s still holds alice", k)
				}
			}
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				if strings.Contains(f+v, "alice") {
					t.Errorf("%s still names alice: %s=%s", k, f, v)
				}
			}
		}
	}
	if calls, _ := r.Calls(ctx, "bob", 0); len(calls) != 1 || calls[0].Peer != "alice" {
		t.Errorf("bob's history: %+v, want his call with alice kept", calls)
	}
}

// TestRedisPruneFindsUnindexedLists: lists written before the index was
// kept are found once by scanning, and lists written with appendCallTo
// after that through the index.
func TestRedisPruneFindsUnindexedLists(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := openTestRedis(t, redistest.Start(t).Addr)
	rdb := r.rdb
	cut := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	must(t, rdb.LPush(ctx, "tandem:calls:legacy", entryJSON(t, CallEntry{CallID: "l1", EndedAt: cut.Add(-time.Hour)})).Err())
	must(t, rdb.LPush(ctx, "tandem:assist:legacy", entryJSON(t, AssistEntry{CallID: "l1", At: cut.Add(-time.Hour)})).Err())
	// Keys of other parts of a node that look a little like lists.
	must(t, rdb.Set(ctx, "tandem:call:x", "1", 0).Err())
	must(t, rdb.Set(ctx, "tandem:nodecalls:y", "1", 0).Err())

	if n, err := r.PruneCalls(ctx, cut); n != 1 || err != nil {
		t.Errorf("PruneCalls of a list written before the index: %d, %v; want 1", n, err)
	}
	if n, err := r.PruneAssist(ctx, cut); n != 1 || err != nil {
		t.Errorf("PruneAssist of a list written before the index: %d, %v; want 1", n, err)
	}
	if n := rdb.Exists(ctx, "tandem:calls:legacy", "tandem:assist:legacy").Val(); n != 0 {
		t.Errorf("%d emptied lists left", n)
	}
	if in := rdb.SIsMember(ctx, "tandem:users:calls", "legacy").Val(); in {
		t.Error("a user whose list is gone is still indexed")
	}
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		r.appendCallTo(ctx, p, "late", CallEntry{CallID: "x1", EndedAt: cut.Add(-time.Hour)})
		r.appendCallTo(ctx, p, "late", CallEntry{CallID: "x2", EndedAt: cut.Add(time.Hour)})
		return nil
	})
	must(t, err)
	if n, err := r.PruneCalls(ctx, cut); n != 1 || err != nil {
		t.Errorf("PruneCalls of a list written by appendCallTo: %d, %v; want 1", n, err)
	}
	if calls, _ := r.Calls(ctx, "late", 0); fmt.Sprint(callIDs(calls)) != "[x2]" {
		t.Errorf("late's history: %v, want [x2]", callIDs(calls))
	}
}

// TestRedisOddData: an entry that does not parse is left where it is by
// pruning; a damaged revocation mark is an error, never "not revoked",
// and is replaced by the next revocation.
func TestRedisOddData(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := openTestRedis(t, redistest.Start(t).Addr)
	rdb := r.rdb
	cut := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	must(t, r.AppendCall(ctx, "alice", CallEntry{CallID: "a1", EndedAt: cut.Add(-time.Hour)}))
	must(t, rdb.LPush(ctx, "tandem:calls:alice", "not json").Err())
	must(t, r.AppendCall(ctx, "alice", CallEntry{CallID: "a2", EndedAt: cut.Add(time.Hour)}))
	if n, err := r.PruneCalls(ctx, cut); n != 1 || err != nil {
		t.Errorf("PruneCalls: %d, %v; want 1", n, err)
	}
	if raw := rdb.LRange(ctx, "tandem:calls:alice", 0, -1).Val(); len(raw) != 2 || raw[1] != "not json" {
		t.Errorf("alice's list after pruning: %q, want a2 and the damaged entry", raw)
	}
	if calls, err := r.Calls(ctx, "alice", 0); err != nil || fmt.Sprint(callIDs(calls)) != "[a2]" {
		t.Errorf("alice's history: %v, %v; want [a2]", callIDs(calls), err)
	}

	must(t, rdb.HSet(ctx, "tandem:revoked", revocationID("mallory"), "yesterday").Err())
	if m, err := r.TokensRevoked(ctx, "mallory"); err == nil || errors.Is(err, ErrUnavailable) {
		t.Errorf("damaged mark read as %v, %v; want an error other than ErrUnavailable", m, err)
	}
	at := time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC)
	must(t, r.RevokeTokens(ctx, "mallory", at))
	if m, err := r.TokensRevoked(ctx, "mallory"); err != nil || !m.Equal(at) {
		t.Errorf("mark after revoking over a damaged one: %v, %v; want %v", m, err, at)
	}
}

// TestRedisRevocationKeys: a revoked token id is a key that expires with
// its tokens, named by a digest; a damaged device mark is an error, not
// "not revoked".
func TestRedisRevocationKeys(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := openTestRedis(t, redistest.Start(t).Addr)
	rdb := r.rdb
	must(t, r.RevokeTokenID(ctx, "stream-key-1", time.Now().Add(time.Hour)))
	keys := rdb.Keys(ctx, "tandem:revoked:id:*").Val()
	if len(keys) != 1 || strings.Contains(keys[0], "stream-key-1") {
		t.Fatalf("revoked id keys %q, want one named by a digest", keys)
	}
	if ttl := rdb.PTTL(ctx, keys[0]).Val(); ttl < 59*time.Minute || ttl > time.Hour+time.Second {
		t.Errorf("revoked id key expires in %v, want about an hour", ttl)
	}
	must(t, rdb.HSet(ctx, "tandem:revoked", deviceRevocationID("mallory", "obs"), "soon").Err())
	if m, err := r.Revoked(ctx, "mallory", "obs", ""); err == nil || errors.Is(err, ErrUnavailable) {
		t.Errorf("damaged device mark read as %+v, %v; want an error other than ErrUnavailable", m, err)
	}
}

// TestRedisClusterOwner: erasing, pruning (including the scan for lists
// written before the index) and revoking work on a Redis Cluster whose
// users' keys are in different slots on different masters.
func TestRedisClusterOwner(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := openTestRedis(t, startCluster(ctx, t, 3)...)
	rdb := r.rdb
	cut := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	users := []string{"alice", "bob", "carol", "dave", "erin", "frank"}
	for _, u := range users {
		must(t, r.AppendCall(ctx, u, CallEntry{CallID: u + "-old", Peer: "alice", EndedAt: cut.Add(-time.Hour)}))
		must(t, r.AppendCall(ctx, u, CallEntry{CallID: u + "-new", Peer: "alice", EndedAt: cut.Add(time.Hour)}))
		must(t, r.AppendAssist(ctx, u, AssistEntry{CallID: u + "-old", At: cut.Add(-time.Hour)}))
		must(t, r.TouchUser(ctx, u))
	}
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, u := range users {
			r.appendCallTo(ctx, p, u, CallEntry{CallID: u + "-batched", EndedAt: cut.Add(-time.Minute)})
		}
		return nil
	})
	must(t, err)
	// A list written before the index was kept, found by scanning each master.
	must(t, rdb.LPush(ctx, "tandem:calls:legacy", entryJSON(t, CallEntry{CallID: "l1", EndedAt: cut.Add(-time.Hour)})).Err())

	must(t, r.EraseUser(ctx, "alice"))
	if calls, _ := r.Calls(ctx, "alice", 0); len(calls) != 0 {
		t.Errorf("alice's history after erasure: %v", callIDs(calls))
	}
	if known, _ := r.KnownUser(ctx, "alice"); known {
		t.Error("alice still known after erasure")
	}
	if m, err := r.TokensRevoked(ctx, "alice"); err != nil || m.IsZero() {
		t.Errorf("alice's mark: %v, %v", m, err)
	}
	// 5 users × (old + batched) + legacy.
	if n, err := r.PruneCalls(ctx, cut); n != 11 || err != nil {
		t.Errorf("PruneCalls on the cluster: %d, %v; want 11", n, err)
	}
	if n, err := r.PruneAssist(ctx, cut); n != 5 || err != nil {
		t.Errorf("PruneAssist on the cluster: %d, %v; want 5", n, err)
	}
	for _, u := range users[1:] {
		if calls, _ := r.Calls(ctx, u, 0); fmt.Sprint(callIDs(calls)) != "["+u+"-new]" {
			t.Errorf("%s's history after pruning: %v", u, callIDs(calls))
		}
	}
	if n := rdb.SCard(ctx, "tandem:users:assist").Val(); n != 0 {
		t.Errorf("%d users indexed with an audit log after every entry went", n)
	}
	t2 := cut.Add(time.Hour)
	must(t, r.RevokeTokens(ctx, "bob", t2))
	must(t, r.RevokeTokens(ctx, "bob", cut))
	if m, _ := r.TokensRevoked(ctx, "bob"); !m.Equal(t2) {
		t.Errorf("bob's mark on the cluster: %v, want %v", m, t2)
	}
	// The hash and a token id's key are in different slots: one pipeline
	// reads both.
	must(t, r.RevokeDevice(ctx, "bob", "obs", cut))
	must(t, r.RevokeTokenID(ctx, "k1", time.Now().Add(time.Hour)))
	if m, err := r.Revoked(ctx, "bob", "obs", "k1"); err != nil || !m.User.Equal(t2) || !m.Device.Equal(cut) || !m.ID {
		t.Errorf("bob/obs/k1's marks on the cluster: %+v, %v", m, err)
	}
}

// startCluster starts n redis-server masters on 127.0.0.1 as a cluster,
// each with a share of the slots, and returns their addresses once every
// one sees the cluster as ok.
func startCluster(ctx context.Context, t *testing.T, n int) []string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not found: install the Debian package redis-server")
	}
	var addrs []string
	var clients []*redis.Client
	for range n {
		port, bus := freePort(t), freePort(t)
		dir := t.TempDir()
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", dir+"/nodes.conf", "--save", "", "--appendonly", "no",
			"--dir", dir, "--protected-mode", "yes", "--loglevel", "warning")
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		addr := "127.0.0.1:" + strconv.Itoa(port)
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { c.Close() })
		testkit.Eventually(t, 10*time.Second, addr+" answering", func() bool { return c.Ping(ctx).Err() == nil })
		if len(clients) > 0 {
			must(t, clients[0].Do(ctx, "cluster", "meet", "127.0.0.1", port, bus).Err())
		}
		addrs = append(addrs, addr)
		clients = append(clients, c)
	}
	const slots = 16384
	for i, c := range clients {
		must(t, c.ClusterAddSlotsRange(ctx, i*slots/n, (i+1)*slots/n-1).Err())
	}
	for i, c := range clients {
		testkit.Eventually(t, 10*time.Second, addrs[i]+" seeing the cluster ok", func() bool {
			info, err := c.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n))
		})
	}
	return addrs
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestRedisHistorySentTwice: a node sends a batch again that Redis had in
// part applied before its connection failed; the history entry it wrote
// twice is listed once, and the entries around it stay.
func TestRedisHistorySentTwice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := openTestRedis(t, redistest.Start(t).Addr)
	batch := []BusItem{{History: []HistoryWrite{{User: "alice", Entry: CallEntry{CallID: "c2", Peer: "bob"}}}}}
	must(t, r.AppendCall(ctx, "alice", CallEntry{CallID: "c1", Peer: "bob"}))
	must(t, r.Send(ctx, batch))
	must(t, r.Send(ctx, batch))
	calls, err := r.Calls(ctx, "alice", 3)
	must(t, err)
	var ids []string
	for _, c := range calls {
		ids = append(ids, c.CallID)
	}
	if strings.Join(ids, ",") != "c2,c1" {
		t.Errorf("alice's history lists %v, want c2 once, then c1", ids)
	}
}
