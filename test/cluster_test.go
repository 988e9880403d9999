package test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtp"
	"github.com/redis/go-redis/v9"

	"github.com/tandemcall/tandem/internal/adminapi"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/redistest"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/internal/testkit/testnode"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// clusterSecret signs and checks tokens on every node of a test cluster.
const clusterSecret = "a-test-cluster-secret-of-32-bytes-or-more"

// startNode starts a node of a deployment sharing the Redis at addr.
func startNode(t *testing.T, addr string) *testServer {
	t.Helper()
	return startServer(t, func(c *config.Config) {
		c.Redis.Addrs = []string{addr}
		c.Auth.Secret = clusterSecret
	})
}

// startCluster starts n nodes configured as cfg, sharing a new
// redis-server; the first is the returned server, the others in others.
func startCluster(t *testing.T, cfg config.Config, n int) *testServer {
	t.Helper()
	return startClusterOn(t, cfg, n, redistest.Start(t))
}

// startClusterOn is startCluster on a given redis-server.
func startClusterOn(t *testing.T, cfg config.Config, n int, rdb *redistest.Server) *testServer {
	t.Helper()
	cfg.Redis.Addrs = []string{rdb.Addr}
	cfg.Auth.Secret = clusterSecret
	ts := &testServer{cfg: cfg}
	for i := range n {
		c := cfg
		c.DataDir = t.TempDir()
		srv, stop := testnode.Start(t, c, testLogger(t))
		if i == 0 {
			ts.Server = srv
		} else {
			ts.others = append(ts.others, srv)
		}
		ts.stops = append(ts.stops, stop)
	}
	return ts
}

// TestSuiteAcrossNodes runs the tests that prove one-to-one calls against
// three nodes sharing Redis, with every device on another node than the
// one before it: ringing all of a user's devices, answering, media both
// ways, declines, busy and call waiting, timeouts, and resuming after a
// lost socket all work across nodes.
func TestSuiteAcrossNodes(t *testing.T) {
	acrossNodes = true
	defer func() { acrossNodes = false }()
	for _, tc := range []struct {
		name string
		run  func(*testing.T)
	}{
		{"CallRingsEveryDeviceAndCarriesMedia", TestCallRingsEveryDeviceAndCarriesMedia},
		{"DeclineOnOneDeviceDeclinesForAll", TestDeclineOnOneDeviceDeclinesForAll},
		{"RingTimeoutIsAMissedCall", TestRingTimeoutIsAMissedCall},
		{"CancelBeforeAnswer", TestCancelBeforeAnswer},
		{"BusyAndCallWaiting", TestBusyAndCallWaiting},
		{"UnknownAndOfflineCallee", TestUnknownAndOfflineCallee},
		{"OutOfOrderActions", TestOutOfOrderActions},
		{"LateDeviceRingsAndCallerDropCancels", TestLateDeviceRingsAndCallerDropCancels},
		{"SignalingResume", TestSignalingResume},
	} {
		t.Run(tc.name, tc.run)
	}
}

// TestNodesShareTheStore: two nodes on one Redis. A call on the first
// node is in the history the second serves; a user who has only ever
// signed in on the second is known to the first (not user_unknown); the
// same token works on both.
func TestNodesShareTheStore(t *testing.T) {
	rdb := redistest.Start(t)
	a, b := startNode(t, rdb.Addr), startNode(t, rdb.Addr)

	alice, bob := a.dial(t, "alice", "phone"), a.dial(t, "bob", "phone")
	ctx := testCtx(t, 30*time.Second)
	id := answeredCall(t, alice, bob, false)
	if err := alice.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	ended(t, bob, id)
	testkit.Eventually(t, 5*time.Second, "alice's call in the history node b serves", func() bool {
		h := b.history(t, "alice")
		return len(h) == 1 && h[0].CallID == id && h[0].Reason == protocol.ReasonCompleted
	})

	b.dial(t, "carol", "tablet")
	if _, err := alice.Invite(ctx, "dave", false); !client.IsCode(err, protocol.CodeUserUnknown) {
		t.Errorf("inviting a user nobody has seen: %v, want %s", err, protocol.CodeUserUnknown)
	}
	if _, err := alice.Invite(ctx, "carol", false); client.IsCode(err, protocol.CodeUserUnknown) {
		t.Errorf("carol signed in on node b, but node a says: %v", err)
	}
}

// gapMeter records the longest pause between audio packets from one user.
type gapMeter struct {
	mu     sync.Mutex
	from   string
	last   time.Time
	maxGap time.Duration
}

func (g *gapMeter) onRTP(tr client.RemoteTrack, _ *rtp.Packet, at time.Time) {
	if tr.Kind != "audio" || tr.StreamID != g.from {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.last.IsZero() {
		g.maxGap = max(g.maxGap, at.Sub(g.last))
	}
	g.last = at
}

// read returns the longest gap so far, and clears it.
func (g *gapMeter) read() (last time.Time, maxGap time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	last, maxGap = g.last, g.maxGap
	g.maxGap = 0
	return last, maxGap
}

func status(t *testing.T, url string) int {
	t.Helper()
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRedisOutage: Redis stops for 30 s while alice (on one node) and bob
// (on another) talk. Their media never stops; the nodes stay alive but
// report not ready; a call tried meanwhile fails at once with
// unavailable. Redis comes back empty: without any restart the nodes
// register again and write back who is online, a new call across nodes
// rings and is answered, and the old call still hangs up cleanly.
func TestRedisOutage(t *testing.T) {
	outage := 30 * time.Second
	if testing.Short() {
		outage = 5 * time.Second
	}
	rdb := redistest.Start(t)
	ts := startClusterOn(t, testConfig(t), 2, rdb)
	alice, bob := ts.dial(t, "alice", "phone"), ts.dial(t, "bob", "phone") // on nodes 1 and 2
	carol, dave := ts.dial(t, "carol", "phone"), ts.dial(t, "dave", "phone")
	ctx := testCtx(t, outage+90*time.Second)
	id := answeredCall(t, alice, bob, false)
	atBob, atAlice := &gapMeter{from: "alice"}, &gapMeter{from: "bob"}
	if _, err := alice.StartMedia(ctx, id, client.MediaOptions{Audio: true, OnRTP: atAlice.onRTP}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, OnRTP: atBob.onRTP}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "audio both ways", func() bool {
		a, _ := atBob.read()
		b, _ := atAlice.read()
		return !a.IsZero() && !b.IsZero()
	})

	rdb.Stop()
	down := time.Now()
	testkit.Eventually(t, 5*time.Second, "both nodes to report not ready", func() bool {
		return status(t, ts.URL()+"/readyz") == 503 && status(t, ts.others[0].URL()+"/readyz") == 503
	})
	if c := status(t, ts.URL()+"/healthz"); c != 200 {
		t.Errorf("/healthz during the outage = %d, want 200 (alive)", c)
	}
	start := time.Now()
	_, err := carol.Invite(ctx, "dave", false)
	if !client.IsCode(err, protocol.CodeUnavailable) {
		t.Errorf("a call during the outage: %v, want %s", err, protocol.CodeUnavailable)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the refusal took %v, want a prompt one", took)
	}
	// A device signing in now is told to come back, not that its token is
	// bad (which would sign it out).
	r := ts.raw(t)
	r.send(`{"v":1,"type":"hello","token":"` + ts.token(t, "erin", "phone") + `"}`)
	if m := r.next(); m["type"] != "error" || m["code"] != protocol.CodeUnavailable {
		t.Errorf("a sign-in during the outage: %v, want error %s", m, protocol.CodeUnavailable)
	}
	if code := r.closed(); code != websocket.CloseTryAgainLater {
		t.Errorf("a sign-in during the outage closed with %d, want %d (try again later)", code, websocket.CloseTryAgainLater)
	}
	for time.Since(down) < outage {
		time.Sleep(time.Second)
		for who, g := range map[string]*gapMeter{"bob": atBob, "alice": atAlice} {
			if last, gap := g.read(); gap > time.Second || time.Since(last) > time.Second {
				t.Fatalf("%s's audio stopped during the Redis outage: gap %v, last packet %v ago", who, gap, time.Since(last))
			}
		}
	}
	rdb.Restart()
	t.Logf("Redis was down for %v; media flowed throughout", time.Since(down).Round(time.Second))

	testkit.Eventually(t, 10*time.Second, "both nodes ready again", func() bool {
		return status(t, ts.URL()+"/readyz") == 200 && status(t, ts.others[0].URL()+"/readyz") == 200
	})
	var second string
	testkit.Eventually(t, 10*time.Second, "a new call to be accepted", func() bool {
		second, err = carol.Invite(ctx, "dave", false)
		return err == nil
	})
	waitType(t, dave, func(m *protocol.Incoming) bool { return m.CallID == second })
	if err := dave.Accept(ctx, second, false); err != nil {
		t.Fatal(err)
	}
	waitType(t, carol, func(m *protocol.Accepted) bool { return m.CallID == second })

	if err := bob.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if e := ended(t, alice, id); e.Reason != protocol.ReasonCompleted {
		t.Errorf("alice's call ended with %q, want completed", e.Reason)
	}
}

// TestCallStateLeavesRedis: while a call across nodes is up, Redis names
// its node for both users and holds its snapshot; once it ends, nothing of
// it is left there, so the next call of either user is placed by load,
// and a dead node's ended calls are not taken over.
func TestCallStateLeavesRedis(t *testing.T) {
	rdb := redistest.Start(t)
	ts := startClusterOn(t, testConfig(t), 2, rdb)
	alice, bob := ts.dial(t, "alice", "phone"), ts.dial(t, "bob", "phone")
	ctx := testCtx(t, 30*time.Second)
	id := answeredCall(t, alice, bob, false)
	r := redis.NewClient(&redis.Options{Addr: rdb.Addr})
	defer r.Close()
	keys := []string{"tandem:usercall:alice", "tandem:usercall:bob", "tandem:call:" + id}
	if n, err := r.Exists(ctx, keys...).Result(); err != nil || n != 3 {
		t.Fatalf("during the call %d of %v exist (%v), want all", n, keys, err)
	}
	if err := bob.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	ended(t, alice, id)
	testkit.Eventually(t, 5*time.Second, "the call's keys to leave Redis", func() bool {
		n, err := r.Exists(ctx, keys...).Result()
		return err == nil && n == 0
	})
	members, err := r.SMembers(ctx, "tandem:nodecalls:"+ts.Node().ID()).Result()
	if err != nil || len(members) != 0 {
		t.Errorf("the node still lists calls %v (%v)", members, err)
	}
}

// TestEraseAcrossNodes: Alice's laptop, Bob and Alice's phone are on three
// different nodes, and Bob's call with her phone is homed on his node.
// She erases her data through the first node: both her devices are
// signed out, Bob's call with her ends, and no node has anything of hers
// left, not even the history entry of the call that just ended.
func TestEraseAcrossNodes(t *testing.T) {
	ts := startCluster(t, testConfig(t), 3)
	ctx := testCtx(t, 30*time.Second)
	laptop := ts.dial(t, "alice", "laptop") // node 1
	bob := ts.dial(t, "bob", "phone")       // node 2
	phone := ts.dial(t, "alice", "phone")   // node 3
	id := answeredCall(t, bob, phone, false)

	if st := api(t, "DELETE", ts.URL()+"/api/v1/me", ts.token(t, "alice", "laptop"), nil); st != http.StatusNoContent {
		t.Fatalf("erase: %d", st)
	}
	for _, c := range []*client.Client{laptop, phone} {
		waitType(t, c, func(m *protocol.Error) bool { return m.Code == protocol.CodeTokenRevoked })
	}
	ended(t, bob, id)
	admin := ts.adminToken(t)
	for i, url := range []string{ts.URL(), ts.others[0].URL(), ts.others[1].URL()} {
		testkit.Eventually(t, 10*time.Second, "nothing of Alice's on a node", func() bool {
			var x adminapi.Export
			if st := api(t, "GET", url+"/api/v1/admin/users/alice/export", admin, &x); st != http.StatusOK {
				t.Fatalf("node %d: export %d", i+1, st)
			}
			return len(x.Calls) == 0 && len(x.AssistLog) == 0 && !x.Known && len(x.Devices) == 0
		})
	}
	if _, err := bob.Invite(ctx, "alice", false); !client.IsCode(err, protocol.CodeUserUnknown) {
		t.Errorf("calling the erased Alice: %v, want %s", err, protocol.CodeUserUnknown)
	}
	if h := ts.history(t, "bob"); len(h) != 1 || h[0].CallID != id {
		t.Errorf("Bob's history %+v, want his call with her", h)
	}
}
