package signaling

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/clock"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// The call timers of a real hub, over real WebSockets, on a clock the test
// moves: a ring timeout, call waiting, a lost connection's grace window
// and push-to-talk's longest talk run in milliseconds instead of being
// waited out. The hub has no media here; these are signaling's rules.

const (
	tRing    = 30 * time.Second
	tWaiting = 45 * time.Second
	tGrace   = 20 * time.Second
	tTalk    = 60 * time.Second
)

// nameVerifier signs in the token "user/device" with every grant.
type nameVerifier struct{}

func (nameVerifier) Verify(token string) (auth.Identity, error) {
	user, device, ok := strings.Cut(token, "/")
	if !ok {
		return auth.Identity{}, auth.ErrInvalid
	}
	return auth.Identity{User: user, Device: device,
		Grants: []string{auth.GrantCall, auth.GrantPublish, auth.GrantSubscribe}}, nil
}

// clockHub starts a hub on a manual clock behind an HTTP server.
func clockHub(t *testing.T) (*clock.Manual, string) {
	t.Helper()
	leaks := testkit.LeakCheck(t, 2)
	clk := clock.NewManual(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC))
	st, err := store.OpenLocal("", 10)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHub(Config{
		RingTimeout: tRing, WaitingTimeout: tWaiting, ReconnectGrace: tGrace, MaxTalk: tTalk,
		MaxMessageBytes: 64 << 10, PingInterval: time.Minute, PongTimeout: 2 * time.Minute,
		HelloTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, SendQueue: 64, RateLimit: 100,
		Clock: clk,
	}, nameVerifier{}, nil, st, nil)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		_ = h.Close(context.Background())
		leaks()
	})
	return clk, "ws" + strings.TrimPrefix(srv.URL, "http")
}

// wsDevice is one signed-in device of the test; a reader hands its
// messages to in.
type wsDevice struct {
	t    *testing.T
	name string
	conn *websocket.Conn
	in   chan map[string]any
}

func dial(t *testing.T, url, token string) *wsDevice {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	d := &wsDevice{t: t, name: token, conn: conn, in: make(chan map[string]any, 64)}
	go func() {
		defer close(d.in)
		for {
			var m map[string]any
			if err := conn.ReadJSON(&m); err != nil {
				return
			}
			d.in <- m
		}
	}()
	d.send(map[string]any{"type": protocol.TypeHello, "token": token})
	d.next(protocol.TypeWelcome)
	return d
}

func (d *wsDevice) send(m map[string]any) {
	d.t.Helper()
	if err := d.conn.WriteJSON(m); err != nil {
		d.t.Fatalf("%s: %v", d.name, err)
	}
}

// next waits for a message of typ and returns it; others are skipped.
func (d *wsDevice) next(typ string) map[string]any {
	d.t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case m, ok := <-d.in:
			if !ok {
				d.t.Fatalf("%s: connection closed waiting for %s", d.name, typ)
			}
			if m["type"] == typ {
				return m
			}
		case <-timeout:
			d.t.Fatalf("%s: no %s in 5 s", d.name, typ)
		}
	}
}

// armed waits until n call timers are armed: a device hears of a change
// (its writer runs on its own) a moment before the hub has finished
// carrying the change out, timers included, and the clock must not move
// before then.
func armed(t *testing.T, clk *clock.Manual, n int) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, fmt.Sprintf("%d call timers armed", n), func() bool { return clk.Pending() == n })
}

// quiet fails if a message of typ arrives within a short real wait.
func (d *wsDevice) quiet(typ string) {
	d.t.Helper()
	timeout := time.After(150 * time.Millisecond)
	for {
		select {
		case m, ok := <-d.in:
			if !ok {
				return
			}
			if m["type"] == typ {
				d.t.Fatalf("%s: unexpected %s: %v", d.name, typ, m)
			}
		case <-timeout:
			return
		}
	}
}

func wantReason(t *testing.T, who string, m map[string]any, reason string) {
	t.Helper()
	if m["reason"] != reason {
		t.Fatalf("%s: ended with %v, want %s", who, m["reason"], reason)
	}
}

// TestRingOutOnTheClock: a call nobody answers rings every device of the
// callee for the ring timeout and not a moment less, then stops on all of
// them and the caller hears no answer.
func TestRingOutOnTheClock(t *testing.T) {
	clk, url := clockHub(t)
	alice := dial(t, url, "alice/phone")
	phone, laptop := dial(t, url, "bob/phone"), dial(t, url, "bob/laptop")
	alice.send(map[string]any{"type": protocol.TypeInvite, "to": "bob", "id": "1"})
	id := phone.next(protocol.TypeIncoming)["call_id"]
	laptop.next(protocol.TypeIncoming)
	armed(t, clk, 1)

	clk.Advance(tRing - time.Second)
	phone.quiet(protocol.TypeEnded)

	clk.Advance(time.Second)
	wantReason(t, "alice", alice.next(protocol.TypeEnded), protocol.ReasonNoAnswer)
	wantReason(t, "bob's phone", phone.next(protocol.TypeEnded), protocol.ReasonNoAnswer)
	bobLaptop := laptop.next(protocol.TypeEnded)
	wantReason(t, "bob's laptop", bobLaptop, protocol.ReasonNoAnswer)
	if bobLaptop["call_id"] != id {
		t.Fatalf("bob's laptop stopped ringing for %v, want %v", bobLaptop["call_id"], id)
	}
	if n := clk.Pending(); n != 0 {
		t.Fatalf("%d call timers left armed after the call ended", n)
	}
}

// answered places a call from caller to callee's device and returns its id.
func answered(t *testing.T, caller, callee *wsDevice, to string) any {
	t.Helper()
	caller.send(map[string]any{"type": protocol.TypeInvite, "to": to, "id": "inv"})
	id := callee.next(protocol.TypeIncoming)["call_id"]
	callee.send(map[string]any{"type": protocol.TypeAccept, "call_id": id, "id": "acc"})
	caller.next(protocol.TypeAccepted)
	return id
}

// TestCallWaitingOnTheClock: a user already in a call is rung for the
// longer waiting timeout; when it runs out the caller hears busy, and the
// call they were in goes on.
func TestCallWaitingOnTheClock(t *testing.T) {
	clk, url := clockHub(t)
	alice, bob, carol := dial(t, url, "alice/phone"), dial(t, url, "bob/phone"), dial(t, url, "carol/phone")
	answered(t, carol, bob, "bob")

	alice.send(map[string]any{"type": protocol.TypeInvite, "to": "bob", "id": "1"})
	waiting := bob.next(protocol.TypeIncoming)["call_id"]
	armed(t, clk, 1)
	clk.Advance(tRing)
	alice.quiet(protocol.TypeEnded)

	clk.Advance(tWaiting - tRing)
	wantReason(t, "alice", alice.next(protocol.TypeEnded), protocol.ReasonBusy)
	if m := bob.next(protocol.TypeEnded); m["call_id"] != waiting {
		t.Fatalf("bob heard the end of %v, want the waiting call %v", m["call_id"], waiting)
	}
	carol.quiet(protocol.TypeEnded)
}

// TestGraceWindowOnTheClock: a device whose connection drops keeps its
// place for the grace window: back within it, the call resumes; gone past
// it, the other side hears connection_lost.
func TestGraceWindowOnTheClock(t *testing.T) {
	clk, url := clockHub(t)
	alice, bob := dial(t, url, "alice/phone"), dial(t, url, "bob/phone")
	id := answered(t, alice, bob, "bob")

	// The network goes: the socket dies with no close frame.
	_ = bob.conn.UnderlyingConn().Close()
	testkit.Eventually(t, 5*time.Second, "the hub to hold bob's place", func() bool { return clk.Pending() == 1 })
	clk.Advance(tGrace - time.Second)
	alice.quiet(protocol.TypeEnded)
	back := dial(t, url, "bob/phone")
	if m := back.next(protocol.TypeResumed); m["call_id"] != id {
		t.Fatalf("bob resumed %v, want %v", m["call_id"], id)
	}
	clk.Advance(time.Hour)
	alice.quiet(protocol.TypeEnded)

	_ = back.conn.UnderlyingConn().Close()
	testkit.Eventually(t, 5*time.Second, "the hub to hold bob's place again", func() bool { return clk.Pending() == 1 })
	clk.Advance(tGrace)
	wantReason(t, "alice", alice.next(protocol.TypeEnded), protocol.ReasonConnectionLost)
}

// TestTalkTimeOnTheClock: in a push-to-talk room the floor passes to the
// next in the queue when its holder has talked for the longest talk time.
func TestTalkTimeOnTheClock(t *testing.T) {
	clk, url := clockHub(t)
	alice, bob := dial(t, url, "alice/radio"), dial(t, url, "bob/radio")
	alice.send(map[string]any{"type": protocol.TypeJoin, "room": "crew", "mode": "ptt", "id": "j"})
	id := alice.next(protocol.TypeJoined)["call_id"]
	bob.send(map[string]any{"type": protocol.TypeJoin, "room": "crew", "mode": "ptt", "id": "j"})
	bob.next(protocol.TypeJoined)

	holder := func(d *wsDevice, want string) {
		t.Helper()
		for {
			m := d.next(protocol.TypeFloor)
			if m["holder"] == want {
				return
			}
		}
	}
	alice.send(map[string]any{"type": protocol.TypeFloor, "call_id": id, "action": protocol.FloorRequest, "id": "f1"})
	holder(bob, "alice")
	bob.send(map[string]any{"type": protocol.TypeFloor, "call_id": id, "action": protocol.FloorRequest, "id": "f2"})
	alice.next(protocol.TypeFloor) // bob queues: both hear it
	bob.next(protocol.TypeFloor)
	armed(t, clk, 1)
	clk.Advance(tTalk - time.Second)
	bob.quiet(protocol.TypeFloor)
	clk.Advance(time.Second)
	holder(alice, "bob")
	holder(bob, "bob")
}
