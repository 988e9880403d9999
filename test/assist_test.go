package test

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/assistwire"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/sfu"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// received collects the assistance events a helped device gets.
type received struct {
	mu     sync.Mutex
	events []assistwire.Event
}

func (r *received) on(events []assistwire.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, events...)
}

func (r *received) list() []assistwire.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// assistLog reads user's assistance audit log over HTTP.
func assistLog(t *testing.T, ts *testServer, user, device string) []store.AssistEntry {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ts.URL()+"/api/v1/assist/log", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ts.token(t, user, device))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Entries []store.AssistEntry `json:"entries"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("assist log: status %d, %v", resp.StatusCode, err)
	}
	return body.Entries
}

// TestAssistGrantsEnforced: Bob helps his mother Alice. Her device shares
// a screen and has the assist data channel open; Bob asks to see and
// control it. The server enforces every grant: Bob gets no screen and none
// of his clicks reach Alice before she grants; after she grants view and
// control, he sees her screen and his pointer and key events arrive, but
// not his drawings (no annotate grant); after she revokes everything with
// one message, the screen is gone for him and nothing more arrives. Only
// her device can grant. Her audit log shows it all.
func TestAssistGrantsEnforced(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t, 60*time.Second)
	alice, bob := ts.dial(t, "alice", "laptop"), ts.dial(t, "bob", "phone")
	id := answeredCall(t, bob, alice, false)

	var atAlice received
	if _, err := alice.StartMedia(ctx, id, client.MediaOptions{
		Audio: true, Screen: true, ScreenTag: 0x5c, Assist: true, OnAssist: atAlice.on,
	}); err != nil {
		t.Fatal(err)
	}
	var seen arrivals
	bobMedia, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, Assist: true, OnRTP: seen.onRTP})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "Bob hearing Alice", func() bool {
		seen.mu.Lock()
		defer seen.mu.Unlock()
		return len(seen.audio) > 10
	})
	screenFrames := func(since time.Time) int {
		seen.mu.Lock()
		defer seen.mu.Unlock()
		n := 0
		for _, a := range seen.video {
			if a.tag == 0x5c && !a.at.Before(since) {
				n++
			}
		}
		return n
	}
	click := []assistwire.Event{
		{Type: assistwire.PointerMove, X: 30000, Y: 20000},
		{Type: assistwire.ButtonDown, Button: 1, X: 30000, Y: 20000},
		{Type: assistwire.ButtonUp, Button: 1, X: 30000, Y: 20000},
	}
	stroke := []assistwire.Event{{Type: assistwire.StrokePoint, Stroke: 1, Tool: assistwire.ToolPen, Color: 2, X: 100, Y: 200}}

	// Bob asks to see and control Alice's screen. (Before that her screen
	// share was an ordinary one.)
	if err := bob.Assist(ctx, id, "alice", protocol.AssistControl); err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(100 * time.Millisecond)
	st := waitType(t, alice, func(m *protocol.AssistState) bool { return m.CallID == id })
	if !st.Active || st.Helper != "bob" || st.Helped != "alice" || len(st.Granted) != 0 ||
		!slices.Equal(st.Requested, []string{protocol.AssistView, protocol.AssistControl}) {
		t.Fatalf("Alice was told %+v, want Bob asking for view and control", st)
	}
	// Before any grant: no screen, and nothing Bob sends arrives.
	if err := bobMedia.SendAssist(ctx, click...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if n := screenFrames(started); n != 0 {
		t.Errorf("Bob received %d frames of Alice's screen before she granted view", n)
	}
	if got := atAlice.list(); len(got) != 0 {
		t.Errorf("Alice received %d events before granting control", len(got))
	}
	// Only her device grants.
	if err := bob.AssistGrant(ctx, id, protocol.AssistControl); !client.IsCode(err, protocol.CodeForbidden) {
		t.Errorf("Bob granting himself control: %v, want %s", err, protocol.CodeForbidden)
	}

	// Alice grants view and control.
	if err := alice.AssistGrant(ctx, id, protocol.AssistView, protocol.AssistControl); err != nil {
		t.Fatal(err)
	}
	st = waitType(t, bob, func(m *protocol.AssistState) bool { return m.Reason == protocol.AssistGranted })
	if !slices.Equal(st.Granted, []string{protocol.AssistView, protocol.AssistControl}) || len(st.Requested) != 0 {
		t.Fatalf("Bob was told %+v, want view and control granted", st)
	}
	granted := time.Now()
	testkit.Eventually(t, 10*time.Second, "Bob receiving Alice's screen", func() bool { return screenFrames(granted) > 10 })
	if err := bobMedia.SendAssist(ctx, append(slices.Clone(click), stroke...)...); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "Bob's click reaching Alice", func() bool { return len(atAlice.list()) >= len(click) })
	// Malformed input is dropped and counted, never forwarded: a wrong
	// version, an out-of-range button (the move before it goes through),
	// an event cut short.
	for _, b := range [][]byte{
		{0x02, 0x01, 0, 1, 0, 1},
		{0x01, 0x01, 0x10, 0, 0x10, 0, 0x02, 9, 0, 1, 0, 1},
		{0x01, 0x05, 0, 0},
	} {
		if err := bobMedia.SendAssistBytes(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	wantEvents := append(slices.Clone(click), assistwire.Event{Type: assistwire.PointerMove, X: 0x1000, Y: 0x1000})
	if got := atAlice.list(); !slices.Equal(got, wantEvents) {
		t.Errorf("Alice received %+v, want only the click and the well-formed move (no annotate grant)", got)
	}
	if st := ts.SFU().LookupRoom(sfu.RoomID(id)).AssistStats(); st.Malformed != 3 {
		t.Errorf("the SFU counted %d malformed, want 3", st.Malformed)
	}

	// One message revokes everything.
	if err := alice.AssistGrant(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitType(t, bob, func(m *protocol.AssistState) bool { return m.Reason == protocol.AssistGranted && len(m.Granted) == 0 })
	revoked := time.Now()
	if err := bobMedia.SendAssist(ctx, click...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if got := atAlice.list(); len(got) != len(click)+1 {
		t.Errorf("Alice received %d events in all, %d after revoking", len(got), len(got)-len(click)-1)
	}
	if n := screenFrames(revoked.Add(500 * time.Millisecond)); n != 0 {
		t.Errorf("Bob received %d frames of Alice's screen after she revoked view", n)
	}
	if st := ts.SFU().LookupRoom(sfu.RoomID(id)).AssistStats(); st.Forwarded != 4 || st.Denied < 7 {
		t.Errorf("the SFU counted %+v, want 4 forwarded and at least 7 denied", st)
	}

	if err := bob.AssistEnd(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st := waitType(t, alice, func(m *protocol.AssistState) bool { return !m.Active }); st.Reason != protocol.AssistEnded {
		t.Errorf("Alice was told %+v, want ended", st)
	}

	var events []string
	for _, e := range slices.Backward(assistLog(t, ts, "alice", "laptop")) {
		events = append(events, e.Event+" "+joinGrants(e.Grants)+" "+e.Reason)
	}
	want := []string{"start  ", "request view,control ", "grant view,control ", "revoke view,control revoked", "end  ended"}
	if !slices.Equal(events, want) {
		t.Errorf("Alice's audit log:\n%q\nwant\n%q", events, want)
	}
	if bobLog := assistLog(t, ts, "bob", "phone"); len(bobLog) != len(want) {
		t.Errorf("Bob's audit log has %d entries, want %d", len(bobLog), len(want))
	}
}

func joinGrants(g []string) string {
	out := ""
	for i, s := range g {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}

// TestAssistTimeouts: a request the helped device does not answer is
// denied when its time is up, and a control grant the helper does not use
// lapses; both sides are told, and the log says so.
func TestAssistTimeouts(t *testing.T) {
	ts := startServer(t, func(c *config.Config) {
		c.Assist.RequestTimeout = 500 * time.Millisecond
		c.Assist.ControlIdle = time.Second
	})
	ctx := testCtx(t, 30*time.Second)
	alice, bob := ts.dial(t, "alice", "laptop"), ts.dial(t, "bob", "phone")
	id := answeredCall(t, bob, alice, false)

	// Alice invites Bob to help, granting view and control at once.
	if err := alice.Assist(ctx, id, "alice", protocol.AssistView, protocol.AssistControl); err != nil {
		t.Fatal(err)
	}
	st := waitType(t, bob, func(m *protocol.AssistState) bool { return m.CallID == id })
	if st.Helper != "bob" || !slices.Equal(st.Granted, []string{protocol.AssistView, protocol.AssistControl}) {
		t.Fatalf("Bob was told %+v, want view and control granted to him", st)
	}
	// Bob asks to draw too; nobody answers.
	asked := time.Now()
	if err := bob.AssistRequest(ctx, id, protocol.AssistAnnotate); err != nil {
		t.Fatal(err)
	}
	st = waitType(t, bob, func(m *protocol.AssistState) bool { return m.Reason == protocol.AssistRequestTimeout })
	if waited := time.Since(asked); waited < 400*time.Millisecond || len(st.Requested) != 0 ||
		slices.Contains(st.Granted, protocol.AssistAnnotate) {
		t.Errorf("after %v Bob was told %+v, want the request denied after 500 ms", waited, st)
	}
	// Bob never uses control: it lapses, view stays.
	st = waitType(t, alice, func(m *protocol.AssistState) bool { return m.Reason == protocol.AssistControlIdle })
	if !slices.Equal(st.Granted, []string{protocol.AssistView}) {
		t.Errorf("after control idled Alice was told %+v, want only view left", st)
	}
	// Hanging up ends the assistance in the log.
	if err := bob.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	ended(t, alice, id)
	testkit.Eventually(t, 5*time.Second, "the log to show the end", func() bool {
		l := assistLog(t, ts, "alice", "laptop")
		return len(l) > 0 && l[0].Event == store.AssistEnd && l[0].Reason == "call_ended"
	})
	var events []string
	for _, e := range slices.Backward(assistLog(t, ts, "alice", "laptop")) {
		events = append(events, e.Event+" "+joinGrants(e.Grants)+" "+e.Reason)
	}
	want := []string{"start  ", "grant view,control ", "request annotate ", "denied annotate request_timeout",
		"revoke control control_idle", "revoke view call_ended", "end  call_ended"}
	if !slices.Equal(events, want) {
		t.Errorf("Alice's audit log:\n%q\nwant\n%q", events, want)
	}
}
