package test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v4"
	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/internal/whiptest"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// allGrants is every grant, so that a revoked token is refused for being
// revoked, not for lacking one.
var allGrants = []string{auth.GrantCall, auth.GrantAssist, auth.GrantPublish, auth.GrantSubscribe, auth.GrantAdmin}

// revokeRooms are the rooms these tests stream in: their tokens name them
// all, so that publish and subscribe hold there.
var revokeRooms = []string{"rv", "cam", "key",
	"room-erasure", "room-erasure-2", "room-user", "room-user-2",
	"room-device", "room-device-2", "room-token-id", "room-token-id-2"}

// mintFor mints a token for user on device with grants (all if none),
// for the rooms these tests stream in.
func (ts *testServer) mintFor(t *testing.T, user, device string, grants ...string) (tok, id string) {
	t.Helper()
	if len(grants) == 0 {
		grants = allGrants
	}
	tok, _, err := ts.Authority().Mint(user, device, grants, time.Hour, auth.WithRooms(revokeRooms...))
	if err != nil {
		t.Fatal(err)
	}
	ident, err := ts.Authority().Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	return tok, ident.ID
}

// apiError makes a request and returns its status and the code and
// message of a JSON error answer.
func apiError(t *testing.T, method, url, token string) (status int, code, msg string) {
	t.Helper()
	status, b := apiRequest(t, method, url, token)
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return status, e.Error.Code, e.Error.Message
}

// revocation is one way to take tokens back, through the API of the node
// at base; it returns the token that was revoked.
type revocation struct {
	name string
	// revoke takes back tok (of user on device, with id); admin is an
	// admin token of another user.
	revoke func(t *testing.T, base, admin, user, device, tok, id string)
	// sameUserOK: another token of the same user (another device, a later
	// second) still works.
	sameUserOK bool
}

var revocations = []revocation{
	{"erasure", func(t *testing.T, base, _, _, _, tok, _ string) {
		if st, code, msg := apiError(t, http.MethodDelete, base+"/api/v1/me", tok); st != http.StatusNoContent {
			t.Fatalf("DELETE /api/v1/me: %d %s %s", st, code, msg)
		}
	}, false},
	{"user", func(t *testing.T, base, admin, user, _, _, _ string) {
		if st, code, msg := apiError(t, http.MethodPost, base+"/api/v1/admin/users/"+user+"/revoke", admin); st != http.StatusOK {
			t.Fatalf("revoke user %s: %d %s %s", user, st, code, msg)
		}
	}, false},
	{"device", func(t *testing.T, base, admin, user, device, _, _ string) {
		if st, code, msg := apiError(t, http.MethodPost, base+"/api/v1/admin/users/"+user+"/devices/"+device+"/revoke", admin); st != http.StatusOK {
			t.Fatalf("revoke device %s/%s: %d %s %s", user, device, st, code, msg)
		}
	}, true},
	{"token id", func(t *testing.T, base, admin, _, _, _, id string) {
		if st, code, msg := apiError(t, http.MethodPost, base+"/api/v1/admin/tokens/"+url.PathEscape(id)+"/revoke", admin); st != http.StatusOK {
			t.Fatalf("revoke token %s: %d %s %s", id, st, code, msg)
		}
	}, true},
}

// TestEveryEndpointRefusesARevokedToken: for each way of revoking, the
// revoked token is refused by every endpoint that takes a token, with a
// message that says it was revoked: the signaling socket, the HTTP API
// (the caller's own, and the admin API), WHIP and WHEP POST, and PATCH and
// DELETE of the WHIP session it opened before. The user's other tokens
// are not (for a device's or a token id's revocation).
func TestEveryEndpointRefusesARevokedToken(t *testing.T) {
	ts := startServer(t, nil)
	admin := ts.adminToken(t)
	u := ts.URL()
	for _, rv := range revocations {
		t.Run(rv.name, func(t *testing.T) {
			user := "u-" + strings.ReplaceAll(rv.name, " ", "-")
			tok, id := ts.mintFor(t, user, "obs")
			other, _ := ts.mintFor(t, user, "phone")
			pub := newWHIPSender(t)
			resp, body := whipReq(t, http.MethodPost, u+"/whip/rv", tok, "application/sdp", whiptest.Offer(t, pub.PC, nil))
			wantStatus(t, "WHIP POST before the revocation", resp, body, http.StatusCreated)
			loc := u + resp.Header.Get("Location")

			rv.revoke(t, u, admin, user, "obs", tok, id)

			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if c, err := client.Dial(dctx, client.Options{URL: ts.wsURL(), Token: tok, LoopbackOnly: true}); err == nil {
				c.Close()
				t.Error("/ws: the revoked token opened a session")
			} else if !client.IsCode(err, protocol.CodeTokenRevoked) {
				t.Errorf("/ws: %v, want %s", err, protocol.CodeTokenRevoked)
			}
			for _, ep := range []struct{ method, path string }{
				{http.MethodGet, "/api/v1/calls"},
				{http.MethodGet, "/api/v1/assist/log"},
				{http.MethodGet, "/api/v1/me/export"},
				{http.MethodDelete, "/api/v1/me"},
				{http.MethodGet, "/api/v1/admin/rooms"},
				{http.MethodGet, "/api/v1/admin/users/" + user + "/sessions"},
			} {
				st, code, msg := apiError(t, ep.method, u+ep.path, tok)
				if st != http.StatusUnauthorized || code != protocol.CodeTokenRevoked || !strings.Contains(msg, "revoked") {
					t.Errorf("%s %s: %d %s %q, want 401 %s saying it was revoked", ep.method, ep.path, st, code, msg, protocol.CodeTokenRevoked)
				}
			}
			offer := whiptest.Offer(t, newWHIPSender(t).PC, nil)
			for _, ep := range []struct{ method, url, ctype, body string }{
				{http.MethodPost, u + "/whip/rv", "application/sdp", offer},
				{http.MethodPost, u + "/whep/rv", "application/sdp", offer},
				{http.MethodPatch, loc, "application/trickle-ice-sdpfrag", "a=end-of-candidates\r\n"},
				{http.MethodDelete, loc, "", ""},
			} {
				resp, body := whipReq(t, ep.method, ep.url, tok, ep.ctype, ep.body, "If-Match", "*")
				if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "revoked") ||
					!strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Errorf("%s %s: %d %.120q (WWW-Authenticate %q), want 401 invalid_token saying it was revoked",
						ep.method, ep.url, resp.StatusCode, strings.TrimSpace(body), resp.Header.Get("WWW-Authenticate"))
				}
			}
			testkit.Eventually(t, 5*time.Second, "the revoked token's WHIP session to end", func() bool {
				return ts.whipSessions(t, "whip") == "0"
			})

			if !rv.sameUserOK {
				// A token minted in a later second than the revocation works.
				time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
				other, _ = ts.mintFor(t, user, "phone")
			}
			if st, code, msg := apiError(t, http.MethodGet, u+"/api/v1/calls", other); st != http.StatusOK {
				t.Errorf("another token of %s: %d %s %s, want 200", user, st, code, msg)
			}
		})
	}
}

// TestRevocationEndsRunningSessions: a revocation ends what the token
// opened while it runs: its signaling session hears token_revoked and is
// closed; its WHIP publisher is cut off, so a viewer stops receiving
// media, and its session is gone, as is its WHEP player's (DELETE with a
// valid token finds nothing); a WHEP player of another device of the same
// user, and a publisher with another token, go on.
func TestRevocationEndsRunningSessions(t *testing.T) {
	ts := startServer(t, nil)
	admin := ts.adminToken(t)
	u := ts.URL()
	for _, rv := range revocations {
		t.Run(rv.name, func(t *testing.T) {
			user := "s-" + strings.ReplaceAll(rv.name, " ", "-")
			room := "room-" + strings.ReplaceAll(rv.name, " ", "-")
			tok, id := ts.mintFor(t, user, "obs")
			ctx := testCtx(t, 10*time.Second)
			ws, err := client.Dial(ctx, client.Options{URL: ts.wsURL(), Token: tok, LoopbackOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ws.Close() })

			pub := newWHIPSender(t)
			pubURL, _ := ts.whipPublish(t, pub, room, tok)
			selfURL, _ := ts.whepPlay(t, newWHEPReceiver(t), room, tok) // a player with the same token
			fan := newWHEPReceiver(t)
			fanTok, _ := ts.mintFor(t, "fan-"+user, "tv", auth.GrantSubscribe)
			ts.whepPlay(t, fan, room, fanTok)
			// The player gets whatever the publisher had published when it
			// came: audio, video or both.
			received := func() int64 { return fan.audio.Load() + fan.video.Load() }
			testkit.Eventually(t, 15*time.Second, "the viewer to receive media", func() bool { return received() > 25 })

			// What the revocation must leave alone, where it can: a
			// player on another device, and a publisher with another
			// token of the same device.
			var keepURLs []string
			var keepToks []string
			if rv.sameUserOK {
				monTok, _ := ts.mintFor(t, user, "monitor", auth.GrantSubscribe)
				monURL, _ := ts.whepPlay(t, newWHEPReceiver(t), room, monTok)
				keepURLs, keepToks = append(keepURLs, monURL), append(keepToks, monTok)
				if rv.name == "token id" {
					tok2, _ := ts.mintFor(t, user, "obs")
					p2URL, _ := ts.whipPublish(t, newWHIPSender(t), room+"-2", tok2)
					keepURLs, keepToks = append(keepURLs, p2URL), append(keepToks, tok2)
				}
			}

			rv.revoke(t, u, admin, user, "obs", tok, id)

			e := waitType(t, ws, func(m *protocol.Error) bool { return m.Code == protocol.CodeTokenRevoked })
			if e.Re != "" {
				t.Errorf("sign-out error %+v", e)
			}
			var stopped int64
			testkit.Eventually(t, 10*time.Second, "the viewer's media to stop", func() bool {
				n := received()
				quiet := n == stopped
				stopped = n
				if quiet {
					return true
				}
				time.Sleep(300 * time.Millisecond)
				return false
			})
			testkit.Eventually(t, 10*time.Second, "the publisher's PeerConnection to be closed by the server", func() bool {
				s := pub.PC.ConnectionState()
				return s == webrtc.PeerConnectionStateClosed || s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateDisconnected
			})
			// A valid token of the same user finds neither of the revoked
			// token's sessions: they have ended.
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
			later, _ := ts.mintFor(t, user, "obs-new")
			for _, l := range []string{pubURL, selfURL} {
				resp, body := whipReq(t, http.MethodDelete, l, later, "", "")
				wantStatus(t, "DELETE of the revoked token's session with a valid token", resp, body, http.StatusNotFound)
			}
			for i, l := range keepURLs {
				resp, body := whipReq(t, http.MethodDelete, l, keepToks[i], "", "")
				wantStatus(t, "DELETE of a session the revocation does not cover", resp, body, http.StatusOK)
			}
		})
	}
}

// turnCreds returns the TURN server URL's host:port and the credentials
// in a welcome's ICE servers.
func turnCreds(t *testing.T, w *protocol.Welcome) (addr, user, pass string) {
	t.Helper()
	for _, s := range w.ICEServers {
		for _, u := range s.URLs {
			if strings.HasPrefix(u, "turn:") && strings.HasSuffix(u, "?transport=udp") {
				return strings.TrimSuffix(strings.TrimPrefix(u, "turn:"), "?transport=udp"), s.Username, s.Credential
			}
		}
	}
	t.Fatalf("no TURN over UDP in %+v", w.ICEServers)
	return "", "", ""
}

// turnAllocate allocates a relay on the TURN server at addr with pion's
// client.
func turnAllocate(t *testing.T, addr, user, pass string) (*pionturn.Client, error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: user, Password: pass, Realm: "tandem", RTO: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); _ = conn.Close() })
	relay, err := c.Allocate()
	if err == nil {
		t.Cleanup(func() { _ = relay.Close() })
	}
	return c, err
}

// TestRevocationAcrossNodes: two nodes on one Redis; Alice's devices,
// her WHIP publisher and her TURN allocations are on both. Revocations
// made through the first node reach the second within seconds: her
// device's revocation closes that device's socket and WHIP session there
// (her TURN allocations, named by user only, stay); a token id's, the
// WHIP session it opened there; her erasure ends her TURN allocations on
// both nodes, and her TURN credentials then open none on either.
func TestRevocationAcrossNodes(t *testing.T) {
	ts := startCluster(t, testConfig(t), 2)
	a, b := ts, &testServer{Server: ts.others[0], cfg: ts.cfg}
	admin := a.adminToken(t)
	ctx := testCtx(t, 60*time.Second)

	laptopTok, _ := b.mintFor(t, "alice", "laptop")
	obsTok, _ := b.mintFor(t, "alice", "obs")
	keyTok, keyID := b.mintFor(t, "alice", "studio")
	laptop, err := client.Dial(ctx, client.Options{URL: b.wsURL(), Token: laptopTok, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { laptop.Close() })
	obs, err := client.Dial(ctx, client.Options{URL: b.wsURL(), Token: obsTok, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { obs.Close() })
	b.whipPublish(t, newWHIPSender(t), "cam", obsTok)
	keyURL, _ := b.whipPublish(t, newWHIPSender(t), "key", keyTok)

	// Alice's TURN allocations, one on each node.
	addrB, tu, tp := turnCreds(t, laptop.Welcome())
	addrA := a.TURN().UDPAddr().String()
	for _, addr := range []string{addrA, addrB} {
		if _, err := turnAllocate(t, addr, tu, tp); err != nil {
			t.Fatalf("allocate on %s: %v", addr, err)
		}
	}
	if a.TURN().Allocations("alice") != 1 || b.TURN().Allocations("alice") != 1 {
		t.Fatalf("alice's allocations: %d and %d, want one on each node", a.TURN().Allocations("alice"), b.TURN().Allocations("alice"))
	}

	// Her obs device, revoked through node A: closed on node B.
	if st, code, msg := apiError(t, http.MethodPost, a.URL()+"/api/v1/admin/users/alice/devices/obs/revoke", admin); st != http.StatusOK {
		t.Fatalf("revoke device: %d %s %s", st, code, msg)
	}
	waitType(t, obs, func(m *protocol.Error) bool { return m.Code == protocol.CodeTokenRevoked })
	testkit.Eventually(t, 5*time.Second, "obs's WHIP session on node B to end", func() bool { return b.whipSessions(t, "whip") == "1" })
	if b.TURN().Allocations("alice") != 1 {
		t.Error("a device's revocation ended the user's TURN allocation")
	}

	// A stream key, revoked by its id through node A: its session on B ends.
	if st, code, msg := apiError(t, http.MethodPost, a.URL()+"/api/v1/admin/tokens/"+keyID+"/revoke", admin); st != http.StatusOK {
		t.Fatalf("revoke token id: %d %s %s", st, code, msg)
	}
	testkit.Eventually(t, 5*time.Second, "the stream key's WHIP session on node B to end", func() bool { return b.whipSessions(t, "whip") == "0" })
	if resp, body := whipReq(t, http.MethodDelete, keyURL, keyTok, "", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("DELETE with the revoked stream key on node B: %d %s", resp.StatusCode, body)
	}

	// Her erasure, through node A: her TURN allocations end on both nodes,
	// and her credentials open no new one.
	if st, code, msg := apiError(t, http.MethodDelete, a.URL()+"/api/v1/me", laptopTok); st != http.StatusNoContent {
		t.Fatalf("erase: %d %s %s", st, code, msg)
	}
	waitType(t, laptop, func(m *protocol.Error) bool { return m.Code == protocol.CodeTokenRevoked })
	testkit.Eventually(t, 5*time.Second, "alice's TURN allocations to end on both nodes", func() bool {
		return a.TURN().Allocations("alice") == 0 && b.TURN().Allocations("alice") == 0
	})
	for _, addr := range []string{addrA, addrB} {
		if _, err := turnAllocate(t, addr, tu, tp); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("allocate on %s with the erased user's credentials: %v, want 401", addr, err)
		}
	}
	for _, n := range []*testServer{a, b} {
		if got := n.TURN().Stats().Auth["revoked"]; got == 0 {
			t.Errorf("node %s counted no revoked TURN credential", n.URL())
		}
	}
}

// TestRevocationSweepCatchesAMissedBroadcast: a revocation whose
// broadcast a node never heard (it was cut off from Redis for a moment;
// here the marks are written straight into Redis, as a node would whose
// broadcast got lost) still ends, within one sweep, that node's
// signaling session and WHIP stream of the revoked tokens, and nothing
// else.
func TestRevocationSweepCatchesAMissedBroadcast(t *testing.T) {
	cfg := testConfig(t)
	cfg.Cluster.RevocationSweep = 200 * time.Millisecond
	ts := startCluster(t, cfg, 2)
	b := &testServer{Server: ts.others[0], cfg: ts.cfg}
	ctx := testCtx(t, 30*time.Second)

	phoneTok, _ := b.mintFor(t, "alice", "phone")
	obsTok, _ := b.mintFor(t, "alice", "obs")
	keyTok, keyID := b.mintFor(t, "bob", "studio")
	phone, err := client.Dial(ctx, client.Options{URL: b.wsURL(), Token: phoneTok, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { phone.Close() })
	obs, err := client.Dial(ctx, client.Options{URL: b.wsURL(), Token: obsTok, LoopbackOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { obs.Close() })
	b.whipPublish(t, newWHIPSender(t), "cam", obsTok)
	b.whipPublish(t, newWHIPSender(t), "key", keyTok)

	// The marks, as the node that revoked would write them; no broadcast.
	rs, err := store.OpenRedis(store.RedisConfig{Addrs: ts.cfg.Redis.Addrs, KeyPrefix: ts.cfg.Redis.KeyPrefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	time.Sleep(1100 * time.Millisecond) // marks compare whole seconds
	if err := rs.RevokeDevice(ctx, "alice", "obs", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := rs.RevokeTokenID(ctx, keyID, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	waitType(t, obs, func(m *protocol.Error) bool { return m.Code == protocol.CodeTokenRevoked })
	testkit.Eventually(t, 10*time.Second, "both WHIP streams on node B to end", func() bool { return b.whipSessions(t, "whip") == "0" })
	// Alice's phone was not revoked: it is still signed in.
	if err := phone.Send(ctx, protocol.TypePing, &protocol.Header{}); err != nil {
		t.Fatalf("alice's phone, not revoked, lost its session: %v", err)
	}
	waitType(t, phone, func(*protocol.Header) bool { return true })
}

// TestRevokedLostDeviceLeavesAtOnce: a device whose socket was lost keeps
// its place in a call for the reconnect grace, media and all; revoking it
// meanwhile ends its leg at once, not when the grace is over.
func TestRevokedLostDeviceLeavesAtOnce(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Calls.ReconnectGrace = time.Minute })
	admin := ts.adminToken(t)
	alice, bob := ts.dial(t, "alice", "phone"), ts.dial(t, "bob", "phone")
	id := answeredCall(t, alice, bob, false)
	bob.Drop()
	time.Sleep(500 * time.Millisecond) // the server notices and holds his place
	revoked := time.Now()
	if st, code, msg := apiError(t, http.MethodPost, ts.URL()+"/api/v1/admin/users/bob/devices/phone/revoke", admin); st != http.StatusOK {
		t.Fatalf("revoke bob's phone: %d %s %s", st, code, msg)
	}
	if e := ended(t, alice, id); e.Reason != protocol.ReasonConnectionLost {
		t.Errorf("Alice's call ended with %q, want connection_lost", e.Reason)
	}
	if waited := time.Since(revoked); waited > 20*time.Second {
		t.Errorf("the revoked device kept its place %v, as long as the grace window", waited)
	}
}
