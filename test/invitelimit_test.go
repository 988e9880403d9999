package test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/redistest"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// The invite limits these tests run with: a minute between invites once
// a burst is spent, so that a test finishing within the minute sees
// exactly the bursts; each bound also allows what a slower run earns.
const (
	testCallerBurst = 6
	testPairBurst   = 3
	testCalleeBurst = 5
)

func withInviteLimits(c *config.Config) {
	c.Calls.CallerInvitesPerMinute, c.Calls.CallerInviteBurst = 1, testCallerBurst
	c.Calls.PairInvitesPerMinute, c.Calls.PairInviteBurst = 1, testPairBurst
	c.Calls.CalleeInvitesPerMinute, c.Calls.CalleeInviteBurst = 1, testCalleeBurst
}

// earned is how many invites a limit of one a minute allows beyond its
// burst in the time since start.
func earned(start time.Time) int { return int(time.Since(start) / time.Minute) }

// urls are the signaling URLs of every node of ts.
func (ts *testServer) urls() []string {
	out := []string{ts.wsURL()}
	for _, o := range ts.others {
		out = append(out, "ws"+strings.TrimPrefix(o.URL(), "http")+"/ws")
	}
	return out
}

// dialToken signs a device in at url with a given token (a device that
// reconnects keeps its token); the caller closes it.
func dialToken(t *testing.T, url, token string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: url, Token: token, Logger: clientLogger(t), LoopbackOnly: true})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return c
}

// flood has the caller's devices (their tokens) send one invite each to
// callee, each from a new connection, round the devices and the nodes,
// and hang up what rang. It returns how many rang (were acknowledged);
// every other invite must be refused with rate_limited, naming its
// request id and when to try again.
func flood(t *testing.T, ctx context.Context, urls, tokens []string, callee string, n int, tag string) (rang int) {
	t.Helper()
	for i := range n {
		c := dialToken(t, urls[i%len(urls)], tokens[i%len(tokens)])
		id := fmt.Sprintf("%s-%d", tag, i)
		ack, err := c.Request(ctx, protocol.TypeInvite, &protocol.Invite{Header: protocol.Header{ID: id}, To: callee})
		var se *client.ServerError
		switch {
		case err == nil:
			rang++
			if err := c.Hangup(ctx, ack.CallID); err != nil {
				t.Errorf("%s: hangup: %v", id, err)
			}
		case errors.As(err, &se) && se.Code == protocol.CodeUserOffline:
			rang++ // the callee gets a missed call
		case !errors.As(err, &se) || se.Code != protocol.CodeRateLimited:
			t.Fatalf("%s: %v, want an ack or rate_limited", id, err)
		case se.Re != id:
			t.Errorf("%s: rate_limited answers %q, want its request id", id, se.Re)
		case se.RetryAfter <= 0 || se.RetryAfter > time.Minute || !strings.Contains(se.Message, "try again in"):
			t.Errorf("%s: rate_limited %q, retry after %v: want when to try again, within the minute", id, se.Message, se.RetryAfter)
		}
		c.Close()
	}
	return rang
}

// ringsFrom counts the calls from caller that rang c, taking every
// incoming up to the first from sentinel.
func ringsFrom(t *testing.T, ctx context.Context, c *client.Client, caller, sentinel string) (n int, sentinelCall string) {
	t.Helper()
	for {
		in, err := client.WaitForType[*protocol.Incoming](ctx, c, nil)
		if err != nil {
			t.Fatalf("waiting for %s's call: %v", sentinel, err)
		}
		switch in.From.User {
		case caller:
			n++
		case sentinel:
			return n, in.CallID
		}
	}
}

// TestInviteFloodIsLimited: a caller who rings someone in a loop (invite,
// hang up, reconnect, from two devices, each keeping its token) rings
// them no more often than the pair limit allows, and others no more than
// the caller limit; every refusal is rate_limited with its request id and
// when to try again. Meanwhile the callee's devices stay signed in, and
// someone else's call to them, and calls between other users, ring and
// are answered as usual.
func TestInviteFloodIsLimited(t *testing.T) {
	ts := startServer(t, withInviteLimits)
	ctx := testCtx(t, 2*time.Minute)
	bobPhone, bobLaptop := ts.dial(t, "bob", "phone"), ts.dial(t, "bob", "laptop")
	alice, carol, dave := ts.dial(t, "alice", "phone"), ts.dial(t, "carol", "phone"), ts.dial(t, "dave", "phone")
	for _, u := range []string{"erin", "frank"} {
		ts.dial(t, u, "phone")
	}
	tokens := []string{ts.token(t, "mallory", "m1"), ts.token(t, "mallory", "m2")}
	start := time.Now()

	const attempts = 12
	rang := flood(t, ctx, ts.urls(), tokens, "bob", attempts, "flood")
	others := 0
	for _, u := range []string{"carol", "dave", "erin", "frank"} {
		others += flood(t, ctx, ts.urls(), tokens, u, 1, "other-"+u)
	}
	k := earned(start)
	if rang < 1 || rang > testPairBurst+k {
		t.Errorf("mallory rang bob %d times in %d tries, want %d (the pair's burst) at most", rang, attempts, testPairBurst+k)
	}
	if rang+others > testCallerBurst+k {
		t.Errorf("mallory rang people %d times, want %d (the caller's burst) at most", rang+others, testCallerBurst+k)
	}

	// Both of bob's devices rang exactly as often as mallory's invites
	// were acknowledged; alice's call comes through after them.
	id, err := alice.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatalf("alice's call to bob during mallory's flood: %v", err)
	}
	for name, dev := range map[string]*client.Client{"phone": bobPhone, "laptop": bobLaptop} {
		n, got := ringsFrom(t, ctx, dev, "mallory", "alice")
		if n != rang || got != id {
			t.Errorf("bob's %s rang %d times for mallory (want %d) and then for call %s (want alice's %s)", name, n, rang, got, id)
		}
	}
	if err := bobLaptop.Accept(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	waitType(t, alice, func(m *protocol.Accepted) bool { return m.CallID == id })
	if e := ended(t, bobPhone, id); e.Reason != protocol.ReasonAnsweredElsewhere {
		t.Errorf("bob's phone: %s, want answered_elsewhere", e.Reason)
	}
	if err := alice.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}

	// Calls between other users are their own.
	answeredCall(t, carol, dave, false)

	// Mallory's history holds the calls that rang, grouped: one entry
	// per person.
	var toBob int
	for _, e := range ts.history(t, "mallory") {
		if e.Peer == "bob" {
			toBob += max(e.Count, 1)
		}
	}
	if toBob != rang {
		t.Errorf("mallory's history counts %d calls to bob, want %d", toBob, rang)
	}
}

// TestInviteFloodToAnOfflineUser: invites to someone with no device
// online ring nothing but leave missed calls: a flood of them is limited
// like any other, and leaves one history entry with the count, above the
// callee's real calls.
func TestInviteFloodToAnOfflineUser(t *testing.T) {
	ts := startServer(t, withInviteLimits)
	ctx := testCtx(t, 2*time.Minute)
	bob, alice := ts.dial(t, "bob", "phone"), ts.dial(t, "alice", "phone")
	id := answeredCall(t, alice, bob, false)
	if err := alice.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	ended(t, bob, id)
	bob.Close()
	testkit.Eventually(t, 5*time.Second, "bob offline", func() bool { return ts.Hub().Online("bob") == 0 })
	start := time.Now()
	missed := flood(t, ctx, ts.urls(), []string{ts.token(t, "mallory", "m1")}, "bob", 20, "offline")
	if k := earned(start); missed < 1 || missed > testPairBurst+k {
		t.Errorf("%d invites to offline bob went through, want %d at most", missed, testPairBurst+k)
	}
	h := ts.history(t, "bob")
	if len(h) != 2 || h[0].Peer != "mallory" || !h[0].Missed || max(h[0].Count, 1) != missed || h[1].CallID != id {
		t.Errorf("bob's history %+v, want one missed-call entry for mallory's %d calls and then alice's call", h, missed)
	}
}

// TestInviteLimitsAcrossNodes: on two nodes sharing Redis, a caller whose
// devices reconnect to one node and then the other rings the callee no
// more than the pair limit allows, callers together ring them no more
// than the callee limit allows, and calls between others go on.
func TestInviteLimitsAcrossNodes(t *testing.T) {
	cfg := testConfig(t)
	withInviteLimits(&cfg)
	ts := startClusterOn(t, cfg, 2, redistest.Start(t))
	ctx := testCtx(t, 2*time.Minute)
	urls := ts.urls()
	bobPhone, bobLaptop := dialToken(t, urls[0], ts.token(t, "bob", "phone")), dialToken(t, urls[1], ts.token(t, "bob", "laptop"))
	defer bobPhone.Close()
	defer bobLaptop.Close()
	carol, dave := ts.dial(t, "carol", "phone"), ts.dial(t, "dave", "phone") // on different nodes
	alice := ts.dial(t, "alice", "phone")
	start := time.Now()

	rang := flood(t, ctx, urls, []string{ts.token(t, "mallory", "m1"), ts.token(t, "mallory", "m2")}, "bob", 10, "flood")
	if k := earned(start); rang < 1 || rang > testPairBurst+k {
		t.Errorf("mallory rang bob %d times across the nodes, want %d (the pair's burst) at most", rang, testPairBurst+k)
	}
	// bob's devices, one on each node, rang for exactly those; alice's
	// call comes through after them.
	id, err := alice.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatalf("alice's call to bob after mallory's flood: %v", err)
	}
	for name, dev := range map[string]*client.Client{"phone": bobPhone, "laptop": bobLaptop} {
		if n, got := ringsFrom(t, ctx, dev, "mallory", "alice"); n != rang || got != id {
			t.Errorf("bob's %s rang %d times for mallory (want %d) and then for call %s (want alice's %s)", name, n, rang, got, id)
		}
	}
	if err := bobPhone.Decline(ctx, id); err != nil {
		t.Fatal(err)
	}
	ended(t, alice, id)

	// Others, each within their own pair limit, share what bob may
	// receive.
	all := rang + 1
	for _, u := range []string{"trudy", "victor", "walter"} {
		all += flood(t, ctx, urls, []string{ts.token(t, u, "phone")}, "bob", 2, u)
	}
	k := earned(start)
	if all > testCalleeBurst+k {
		t.Errorf("bob was rung %d times, want %d (the callee's burst) at most", all, testCalleeBurst+k)
	}
	if k == 0 {
		if all != testCalleeBurst {
			t.Errorf("bob was rung %d times, want his whole burst of %d used", all, testCalleeBurst)
		}
		if _, err := alice.Invite(ctx, "bob", false); !client.IsCode(err, protocol.CodeRateLimited) {
			t.Errorf("alice's call to bob once his budget was spent: %v, want rate_limited", err)
		}
	}

	// Calls between others go on.
	id = answeredCall(t, carol, dave, false)
	if err := carol.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	ended(t, dave, id)

	// Bob's history, written by whichever node each call was on, has
	// mallory's calls as one entry.
	var fromMallory []historyEntry
	for _, e := range ts.history(t, "bob") {
		if e.Peer == "mallory" {
			fromMallory = append(fromMallory, e)
		}
	}
	if len(fromMallory) != 1 || max(fromMallory[0].Count, 1) != rang || !fromMallory[0].Missed {
		t.Errorf("bob's history of mallory's calls: %+v, want one missed-call entry counting %d", fromMallory, rang)
	}
}
