package test

import (
	"context"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// history fetches a user's call history over the HTTP API.
func (ts *testServer) history(t *testing.T, user string) []historyEntry {
	t.Helper()
	var out struct {
		Calls []historyEntry `json:"calls"`
	}
	getJSON(t, ts.URL()+"/api/v1/calls", ts.token(t, user, "api"), 200, &out)
	return out.Calls
}

type historyEntry struct {
	CallID     string `json:"call_id"`
	Peer       string `json:"peer"`
	Direction  string `json:"direction"`
	Reason     string `json:"reason"`
	Missed     bool   `json:"missed"`
	DurationMS int64  `json:"duration_ms"`
	// Participants are the other users of a group call.
	Participants []string `json:"participants"`
	// Count is how many unanswered calls the entry stands for (0: one).
	Count int `json:"count"`
}

func TestDeclineOnOneDeviceDeclinesForAll(t *testing.T) {
	ts := startServer(t, nil)
	bobPhone := ts.dial(t, "bob", "phone")
	bobLaptop := ts.dial(t, "bob", "laptop")
	alice := ts.dial(t, "alice", "phone")
	ctx := testCtx(t, 20*time.Second)

	id, err := alice.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatal(err)
	}
	waitType(t, bobPhone, func(m *protocol.Incoming) bool { return m.CallID == id })
	waitType(t, bobLaptop, func(m *protocol.Incoming) bool { return m.CallID == id })
	if err := bobLaptop.Decline(ctx, id); err != nil {
		t.Fatal(err)
	}
	if r := ended(t, alice, id).Reason; r != protocol.ReasonDeclined {
		t.Errorf("caller got %q, want declined", r)
	}
	if r := ended(t, bobLaptop, id).Reason; r != protocol.ReasonDeclined {
		t.Errorf("declining device got %q", r)
	}
	if r := ended(t, bobPhone, id).Reason; r != protocol.ReasonDeclinedElsewhere {
		t.Errorf("other device got %q, want declined_elsewhere", r)
	}
	// Accepting the declined call now is an error, and changes nothing.
	if err := bobPhone.Accept(ctx, id, false); !client.IsCode(err, protocol.CodeNotFound) {
		t.Errorf("accept after decline: %v, want call_not_found", err)
	}
	h := ts.history(t, "bob")
	if len(h) != 1 || h[0].Reason != "declined" || h[0].Missed || h[0].Direction != "incoming" || h[0].Peer != "alice" {
		t.Errorf("bob's history = %+v", h)
	}
}

func TestRingTimeoutIsAMissedCall(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Calls.RingTimeout = 700 * time.Millisecond })
	bob := ts.dial(t, "bob", "phone")
	alice := ts.dial(t, "alice", "laptop")
	ctx := testCtx(t, 20*time.Second)
	id, err := alice.Invite(ctx, "bob", true)
	if err != nil {
		t.Fatal(err)
	}
	waitType(t, bob, func(m *protocol.Incoming) bool { return m.CallID == id })
	if err := bob.Ringing(ctx, id); err != nil {
		t.Fatal(err)
	}
	if r := waitType(t, alice, func(m *protocol.RingingEvent) bool { return m.CallID == id }); r.Device != "phone" {
		t.Errorf("ringing device = %q", r.Device)
	}
	if r := ended(t, alice, id).Reason; r != protocol.ReasonNoAnswer {
		t.Errorf("caller got %q", r)
	}
	if r := ended(t, bob, id).Reason; r != protocol.ReasonNoAnswer {
		t.Errorf("callee got %q", r)
	}
	hb := ts.history(t, "bob")
	if len(hb) != 1 || !hb[0].Missed || hb[0].Reason != "no_answer" {
		t.Fatalf("bob's history = %+v, want one missed call", hb)
	}
	ha := ts.history(t, "alice")
	if len(ha) != 1 || ha[0].Missed || ha[0].Direction != "outgoing" {
		t.Fatalf("alice's history = %+v", ha)
	}
}

func TestCancelBeforeAnswer(t *testing.T) {
	ts := startServer(t, nil)
	bob := ts.dial(t, "bob", "phone")
	alice := ts.dial(t, "alice", "laptop")
	ctx := testCtx(t, 20*time.Second)
	id, err := alice.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatal(err)
	}
	waitType(t, bob, func(m *protocol.Incoming) bool { return m.CallID == id })
	if err := alice.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if r := ended(t, bob, id).Reason; r != protocol.ReasonCancelled {
		t.Errorf("callee got %q, want cancelled", r)
	}
	if h := ts.history(t, "bob"); len(h) != 1 || !h[0].Missed {
		t.Errorf("bob's history = %+v, want a missed call", h)
	}
}

func TestBusyAndCallWaiting(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Calls.WaitingTimeout = 800 * time.Millisecond })
	alice := ts.dial(t, "alice", "phone")
	bob := ts.dial(t, "bob", "phone")
	carol := ts.dial(t, "carol", "phone")
	ctx := testCtx(t, 30*time.Second)

	first, err := alice.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatal(err)
	}
	waitType(t, bob, func(m *protocol.Incoming) bool { return m.CallID == first })
	if err := bob.Accept(ctx, first, false); err != nil {
		t.Fatal(err)
	}
	waitType(t, alice, func(m *protocol.Accepted) bool { return m.CallID == first })

	// Alice is in a call: she cannot place another.
	if _, err := alice.Invite(ctx, "carol", false); !client.IsCode(err, protocol.CodeBusy) {
		t.Errorf("second invite from a busy caller: %v, want busy", err)
	}

	// Carol calls Bob, who is busy: Bob sees a waiting call; unanswered, Carol hears busy.
	second, err := carol.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatal(err)
	}
	in := waitType(t, bob, func(m *protocol.Incoming) bool { return m.CallID == second })
	if !in.Waiting {
		t.Error("incoming call to a busy callee is not marked waiting")
	}
	if err := bob.Accept(ctx, second, false); !client.IsCode(err, protocol.CodeInvalidState) {
		t.Errorf("accept waiting call without end_current: %v, want invalid_state", err)
	}
	if r := ended(t, carol, second).Reason; r != protocol.ReasonBusy {
		t.Errorf("carol got %q, want busy", r)
	}

	// Carol tries again; this time Bob ends his call and takes hers.
	third, err := carol.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatal(err)
	}
	waitType(t, bob, func(m *protocol.Incoming) bool { return m.CallID == third && m.Waiting })
	if err := bob.Accept(ctx, third, true); err != nil {
		t.Fatal(err)
	}
	if r := ended(t, alice, first).Reason; r != protocol.ReasonCompleted {
		t.Errorf("alice's call ended with %q, want completed", r)
	}
	waitType(t, carol, func(m *protocol.Accepted) bool { return m.CallID == third })
	if err := carol.Hangup(ctx, third); err != nil {
		t.Fatal(err)
	}
	if r := ended(t, bob, third).Reason; r != protocol.ReasonCompleted {
		t.Errorf("bob got %q", r)
	}
}

func TestUnknownAndOfflineCallee(t *testing.T) {
	ts := startServer(t, nil)
	alice := ts.dial(t, "alice", "phone")
	ctx := testCtx(t, 20*time.Second)
	if _, err := alice.Invite(ctx, "nobody", false); !client.IsCode(err, protocol.CodeUserUnknown) {
		t.Errorf("call to unknown user: %v, want user_unknown", err)
	}
	bob := ts.dial(t, "bob", "phone")
	bob.Close()
	testkit.Eventually(t, 5*time.Second, "bob offline", func() bool {
		id, err := alice.Invite(ctx, "bob", false)
		if err == nil { // bob's socket was not yet gone: cancel and retry
			_ = alice.Hangup(ctx, id)
			ended(t, alice, id)
		}
		return client.IsCode(err, protocol.CodeUserOffline)
	})
	if h := ts.history(t, "bob"); len(h) == 0 || !h[0].Missed {
		t.Errorf("bob's history = %+v, want a missed call for the attempt", h)
	}
	if _, err := alice.Invite(ctx, "alice", false); !client.IsCode(err, protocol.CodeBadMessage) {
		t.Errorf("calling yourself: %v, want bad_message", err)
	}
}

func TestOutOfOrderActions(t *testing.T) {
	ts := startServer(t, nil)
	alice := ts.dial(t, "alice", "phone")
	bob := ts.dial(t, "bob", "phone")
	mallory := ts.dial(t, "mallory", "laptop")
	ctx := testCtx(t, 20*time.Second)
	if err := bob.Hangup(ctx, "c_doesnotexist"); !client.IsCode(err, protocol.CodeNotFound) {
		t.Errorf("hangup unknown call: %v", err)
	}
	id, err := alice.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatal(err)
	}
	waitType(t, bob, func(m *protocol.Incoming) bool { return m.CallID == id })
	if err := mallory.Hangup(ctx, id); !client.IsCode(err, protocol.CodeNotInCall) {
		t.Errorf("stranger hangs up: %v, want not_in_call", err)
	}
	if err := mallory.Accept(ctx, id, false); !client.IsCode(err, protocol.CodeNotInCall) {
		t.Errorf("stranger accepts: %v, want not_in_call", err)
	}
	if err := alice.Accept(ctx, id, false); !client.IsCode(err, protocol.CodeInvalidState) {
		t.Errorf("caller accepts own call: %v, want invalid_state", err)
	}
	// The call is unharmed: Bob can still take it.
	if err := bob.Accept(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	waitType(t, alice, func(m *protocol.Accepted) bool { return m.CallID == id })
	if err := bob.Accept(ctx, id, false); !client.IsCode(err, protocol.CodeInvalidState) {
		t.Errorf("second accept: %v, want invalid_state", err)
	}
}

func TestHangupDuringCallIsCompletedAndHistorySurvivesRestart(t *testing.T) {
	ts := startServer(t, nil)
	alice := ts.dial(t, "alice", "phone")
	bob := ts.dial(t, "bob", "phone")
	ctx := testCtx(t, 20*time.Second)
	id := answeredCall(t, alice, bob, true)
	time.Sleep(50 * time.Millisecond) // a call of non-zero length
	if err := bob.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	e := ended(t, alice, id)
	if e.Reason != protocol.ReasonCompleted || e.DurationMS <= 0 {
		t.Errorf("alice got %+v, want completed with a duration", e)
	}
	alice.Close()
	bob.Close()

	cfg := ts.cfg
	ts.stop(t)
	ts2 := startWith(t, cfg)
	for _, u := range []string{"alice", "bob"} {
		h := ts2.history(t, u)
		if len(h) != 1 || h[0].CallID != id || h[0].Reason != "completed" || h[0].DurationMS <= 0 {
			t.Errorf("%s's history after restart = %+v", u, h)
		}
	}
}

func TestLateDeviceRingsAndCallerDropCancels(t *testing.T) {
	ts := startServer(t, nil)
	alice := ts.dial(t, "alice", "phone")
	ts.dial(t, "bob", "phone")
	ctx := testCtx(t, 20*time.Second)
	id, err := alice.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatal(err)
	}
	// A device that signs in while the call rings rings too.
	late := ts.dial(t, "bob", "tablet")
	waitType(t, late, func(m *protocol.Incoming) bool { return m.CallID == id })
	alice.Close()
	if r := ended(t, late, id).Reason; r != protocol.ReasonCancelled {
		t.Errorf("callee got %q after caller dropped, want cancelled", r)
	}
}

var _ = context.Background
