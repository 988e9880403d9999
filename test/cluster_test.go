package test

import (
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/redistest"
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
	eventually(t, 5*time.Second, "alice's call in the history node b serves", func() bool {
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
