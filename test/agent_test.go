package test

import (
	"context"
	"image"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/tandemcall/tandem/internal/agent"
	"github.com/tandemcall/tandem/internal/agent/vpx"
	"github.com/tandemcall/tandem/internal/agent/x11"
	"github.com/tandemcall/tandem/internal/agent/x11/x11test"
	"github.com/tandemcall/tandem/internal/assistwire"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/sfu"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// scriptedConsent is the person at the helped machine, played by the
// test: it answers every call and allows what allow holds when asked.
type scriptedConsent struct {
	mu    sync.Mutex
	allow []string
	asked chan []string
}

func (c *scriptedConsent) AnswerCall(context.Context, string) bool { return true }

func (c *scriptedConsent) Grant(_ context.Context, _ string, requested []string) []string {
	c.asked <- requested
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.allow)
}

func (c *scriptedConsent) set(allow ...string) {
	c.mu.Lock()
	c.allow = allow
	c.mu.Unlock()
}

// vp8Frames assembles the VP8 frames of the remote track named "screen".
type vp8Frames struct {
	mu     sync.Mutex
	cur    []byte
	frames [][]byte
}

func (f *vp8Frames) onRTP(t client.RemoteTrack, p *rtp.Packet, _ time.Time) {
	if t.TrackID != "screen" {
		return
	}
	var vp codecs.VP8Packet
	payload, err := vp.Unmarshal(p.Payload)
	if err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if vp.S == 1 && vp.PID == 0 {
		f.cur = f.cur[:0]
	}
	f.cur = append(f.cur, payload...)
	if p.Marker {
		f.frames = append(f.frames, slices.Clone(f.cur))
		f.cur = f.cur[:0]
	}
}

func (f *vp8Frames) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.frames)
}

// latest decodes frames with d and returns the last picture.
func (f *vp8Frames) latest(t *testing.T, d *vpx.Decoder) *image.RGBA {
	t.Helper()
	f.mu.Lock()
	frames := slices.Clone(f.frames)
	f.mu.Unlock()
	var img *image.RGBA
	for _, fr := range frames {
		if out, err := d.Decode(fr); err == nil {
			img = out
		}
	}
	if img == nil {
		t.Fatalf("none of %d screen frames decoded", len(frames))
	}
	return img
}

// near reports whether the picture's colour at p is within tol of rgb.
func near(img *image.RGBA, p image.Point, rgb uint32, tol int) bool {
	c := img.RGBAAt(p.X, p.Y)
	d := func(a uint8, b uint32) bool { return abs(int(a)-int(b&0xff)) <= tol }
	return d(c.R, rgb>>16) && d(c.G, rgb>>8) && d(c.B, rgb)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// at normalises a screen position to the assist format's 0–65535.
func at(x, y int) (uint16, uint16) {
	return uint16(x * 65535 / (x11test.Width - 1)), uint16(y * 65535 / (x11test.Height - 1))
}

// TestAgent: Mom's computer runs the agent on an X display (Xvfb) showing
// a window of four known colours; Bob calls her and asks to see and
// control it. She allows only seeing: Bob decodes the colours where the
// window is, and his click and typing reach nothing. She then allows
// control: his click lands on the window where he aimed and his text is
// typed into it; the time from sending a click to the window receiving it
// is measured. While she moves her own mouse, his input waits. When she
// stops the help, nothing more reaches the window.
func TestAgent(t *testing.T) {
	display := x11test.StartXvfb(t)
	win := x11test.NewTestWindow(t, display, 200, 150, 640, 360)
	ts := startServer(t, nil)

	consent := &scriptedConsent{asked: make(chan []string, 4)}
	consent.set(protocol.AssistView)
	a := agent.New(agent.Config{
		URL: ts.wsURL(), Token: ts.token(t, "mom", "desktop"), Display: display,
		FPS: 15, LocalPause: 500 * time.Millisecond, Logger: clientLogger(t),
	}, consent)
	runAgent(t, a)

	ctx := testCtx(t, 90*time.Second)
	bob := ts.dial(t, "bob", "phone")
	id := ringAgent(t, ctx, bob, "mom")
	waitType(t, bob, func(m *protocol.Accepted) bool { return m.CallID == id })
	var screen vp8Frames
	bobMedia, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, Assist: true, OnRTP: screen.onRTP})
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.Assist(ctx, id, "mom", protocol.AssistControl); err != nil {
		t.Fatal(err)
	}
	if asked := <-consent.asked; !slices.Equal(asked, []string{protocol.AssistView, protocol.AssistControl}) {
		t.Errorf("Mom was asked for %v, want view and control", asked)
	}
	waitType(t, bob, func(m *protocol.AssistState) bool { return slices.Equal(m.Granted, []string{protocol.AssistView}) })

	// Bob sees her screen: each of the window's colours where it is.
	testkit.Eventually(t, 20*time.Second, "Bob receiving screen frames", func() bool { return screen.count() > 5 })
	dec, err := vpx.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	img := screen.latest(t, dec)
	if b := img.Bounds(); b.Dx() != x11test.Width || b.Dy() != x11test.Height {
		t.Errorf("Bob's picture is %v, want the whole %dx%d screen", b, x11test.Width, x11test.Height)
	}
	for _, r := range win.Regions() {
		c := image.Pt((r.Rect.Min.X+r.Rect.Max.X)/2, (r.Rect.Min.Y+r.Rect.Max.Y)/2)
		if !near(img, c, r.RGB, 40) {
			t.Errorf("at %v Bob sees %v, want #%06x", c, img.RGBAAt(c.X, c.Y), r.RGB)
		}
	}

	// Without control, nothing he sends reaches the window.
	target := image.Pt(win.Rect().Min.X+100, win.Rect().Min.Y+80)
	x, y := at(target.X, target.Y)
	click := clickEvents(x, y)
	typing := typeEvents("Hello 1!")
	if err := bobMedia.SendAssist(ctx, append(slices.Clone(click), typing...)...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if c, txt := win.Clicks(), win.Text(); len(c) != 0 || txt != "" {
		t.Errorf("without control the window got clicks %v and text %q", c, txt)
	}

	// With control: the click lands where Bob aimed, the text is typed.
	consent.set(protocol.AssistControl)
	if err := bob.AssistRequest(ctx, id, protocol.AssistControl); err != nil {
		t.Fatal(err)
	}
	<-consent.asked
	waitType(t, bob, func(m *protocol.AssistState) bool { return slices.Contains(m.Granted, protocol.AssistControl) })
	if err := bobMedia.SendAssist(ctx, append(slices.Clone(click), typing...)...); err != nil {
		t.Fatal(err)
	}
	got := win.WaitClicks(t, 1)
	if d := image.Pt(got[0].X, got[0].Y).Sub(target); abs(d.X) > 1 || abs(d.Y) > 1 || got[0].Button != 1 {
		t.Errorf("the click landed at %+v, want button 1 at %v", got[0], target)
	}
	win.WaitText(t, "Hello 1!")

	// Latency: from Bob sending a click to the window receiving it.
	const clicks = 40
	lat := make([]time.Duration, 0, clicks)
	for i := range clicks {
		win.Reset()
		px, py := at(target.X+i%20, target.Y+i/20)
		start := time.Now()
		if err := bobMedia.SendAssist(ctx,
			assistwire.Event{Type: assistwire.ButtonDown, Button: 1, X: px, Y: py},
			assistwire.Event{Type: assistwire.ButtonUp, Button: 1, X: px, Y: py}); err != nil {
			t.Fatal(err)
		}
		for len(win.Clicks()) == 0 {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("click %d never arrived", i)
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	t.Logf("helper click to X11 window, over %d clicks: p50 %v, p95 %v", clicks,
		percentile(lat, 0.5).Round(10*time.Microsecond), percentile(lat, 0.95).Round(10*time.Microsecond))

	// Local input wins: while Mom moves her mouse, Bob's clicks wait.
	local, err := x11.Open(display)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	win.Reset()
	pausesBefore := a.Stats().LocalPauses
	stopMoving := make(chan struct{})
	var moving sync.WaitGroup
	moving.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stopMoving:
				return
			case <-time.After(20 * time.Millisecond):
			}
			_ = local.MovePointer(50+i%200, 50)
		}
	})
	time.Sleep(300 * time.Millisecond)
	if err := bobMedia.SendAssist(ctx, click...); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	close(stopMoving)
	moving.Wait()
	if c := win.Clicks(); len(c) != 0 {
		t.Errorf("Bob's click reached the window while Mom moved her mouse: %v", c)
	}
	if a.Stats().LocalPauses == pausesBefore || a.Stats().Paused == 0 {
		t.Errorf("the agent counted %+v, want a local pause and paused events", a.Stats())
	}

	// She stops the help: nothing more arrives.
	time.Sleep(700 * time.Millisecond) // the pause ends
	a.StopHelp()
	waitType(t, bob, func(m *protocol.AssistState) bool { return !m.Active })
	win.Reset()
	_ = bobMedia.SendAssist(ctx, append(slices.Clone(click), typing...)...)
	time.Sleep(time.Second)
	if c, txt := win.Clicks(), win.Text(); len(c) != 0 || txt != "" {
		t.Errorf("after she stopped the help the window got clicks %v and text %q", c, txt)
	}
	if err := bob.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// clickEvents moves the pointer to (x, y), normalised, and clicks the left
// button there.
func clickEvents(x, y uint16) []assistwire.Event {
	return []assistwire.Event{
		{Type: assistwire.PointerMove, X: x, Y: y},
		{Type: assistwire.ButtonDown, Button: 1, X: x, Y: y},
		{Type: assistwire.ButtonUp, Button: 1, X: x, Y: y},
	}
}

// typeEvents presses and releases a key for each character of s.
func typeEvents(s string) []assistwire.Event {
	var out []assistwire.Event
	for _, r := range s {
		k := x11test.Keysym(r)
		out = append(out, assistwire.Event{Type: assistwire.KeyDown, Keysym: k}, assistwire.Event{Type: assistwire.KeyUp, Keysym: k})
	}
	return out
}

// refusingConsent fails the test if anyone is asked: unattended access
// must not ask, and must not be given to anyone not listed.
type refusingConsent struct{ t *testing.T }

func (c refusingConsent) AnswerCall(_ context.Context, from string) bool {
	c.t.Errorf("the person at the machine was asked to answer %s", from)
	return false
}

func (c refusingConsent) Grant(_ context.Context, helper string, _ []string) []string {
	c.t.Errorf("the person at the machine was asked to grant %s", helper)
	return nil
}

// TestAgentUnattended: the machine's owner enabled unattended access for
// Bob, with view and annotate. Nobody is asked: the agent answers Bob's
// call and grants what is configured and no more (not control), and
// shows his pointing on the screen. Carol, not listed, is declined.
func TestAgentUnattended(t *testing.T) {
	display := x11test.StartXvfb(t)
	ts := startServer(t, nil)
	consent := refusingConsent{t}
	a := agent.New(agent.Config{
		URL: ts.wsURL(), Token: ts.token(t, "mom", "desktop"), Display: display, Logger: clientLogger(t),
		Unattended: agent.Unattended{Enabled: true, Helpers: []string{"bob"}, Grants: []string{protocol.AssistView, protocol.AssistAnnotate}},
	}, consentFor(consent, "carol"))
	runAgent(t, a)
	ctx := testCtx(t, 60*time.Second)

	carol := ts.dial(t, "carol", "phone")
	carolCall := ringAgent(t, ctx, carol, "mom")
	if e := ended(t, carol, carolCall); e.Reason != protocol.ReasonDeclined {
		t.Errorf("Carol's unattended call ended with %q, want declined", e.Reason)
	}

	bob := ts.dial(t, "bob", "phone")
	id, err := bob.Invite(ctx, "mom", false)
	if err != nil {
		t.Fatal(err)
	}
	waitType(t, bob, func(m *protocol.Accepted) bool { return m.CallID == id })
	var screen vp8Frames
	bobMedia, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, Assist: true, OnRTP: screen.onRTP})
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.Assist(ctx, id, "mom", protocol.AssistAnnotate, protocol.AssistControl); err != nil {
		t.Fatal(err)
	}
	st := waitType(t, bob, func(m *protocol.AssistState) bool { return m.Reason == protocol.AssistGranted })
	if !slices.Equal(st.Granted, []string{protocol.AssistView, protocol.AssistAnnotate}) {
		t.Errorf("unattended, Bob was granted %v, want view and annotate only", st.Granted)
	}
	testkit.Eventually(t, 20*time.Second, "Bob receiving the screen", func() bool { return screen.count() > 3 })
	x, y := at(640, 360)
	if err := bobMedia.SendAssist(ctx, assistwire.Event{Type: assistwire.StrokePoint, Tool: assistwire.ToolLaser, X: x, Y: y}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, "the agent showing Bob's pointing", func() bool { return a.Stats().Annotations > 0 })

	// A pen stroke is drawn on her screen where Bob drew it.
	x0, y0 := at(300, 300)
	x1, y1 := at(500, 300)
	if err := bobMedia.SendAssist(ctx,
		assistwire.Event{Type: assistwire.StrokePoint, Stroke: 7, Tool: assistwire.ToolPen, X: x0, Y: y0},
		assistwire.Event{Type: assistwire.StrokePoint, Stroke: 7, Tool: assistwire.ToolPen, X: x1, Y: y1},
		assistwire.Event{Type: assistwire.StrokeEnd, Stroke: 7}); err != nil {
		t.Fatal(err)
	}
	local, err := x11.Open(display)
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	grabber, err := local.NewGrabber()
	if err != nil {
		t.Fatal(err)
	}
	defer grabber.Close()
	redAt := func(x, y int) bool {
		f, _, err := grabber.Grab(true)
		if err != nil {
			t.Fatal(err)
		}
		p := f.Pix[y*f.Stride+4*x:]
		return p[2] == 0xff && p[1] == 0 && p[0] == 0
	}
	testkit.Eventually(t, 5*time.Second, "Bob's stroke on her screen", func() bool { return redAt(400, 300) })
	if redAt(400, 320) {
		t.Error("red 20 px off Bob's stroke")
	}
	// An arrow ends in a head: its sides go back from the tip at (500,
	// 400) up-left and down-left; the pen stroke has none.
	x0, y0 = at(300, 400)
	x1, y1 = at(500, 400)
	if err := bobMedia.SendAssist(ctx,
		assistwire.Event{Type: assistwire.StrokePoint, Stroke: 8, Tool: assistwire.ToolArrow, X: x0, Y: y0},
		assistwire.Event{Type: assistwire.StrokePoint, Stroke: 8, Tool: assistwire.ToolArrow, X: x1, Y: y1},
		assistwire.Event{Type: assistwire.StrokeEnd, Stroke: 8}); err != nil {
		t.Fatal(err)
	}
	redNear := func(x, y int) bool { return redAt(x, y) || redAt(x, y-1) || redAt(x, y+1) }
	testkit.Eventually(t, 5*time.Second, "the arrow's head on her screen", func() bool { return redNear(490, 394) && redNear(490, 406) })
	if redNear(490, 294) || redNear(490, 306) {
		t.Error("the pen stroke has a head")
	}
	if n := a.Stats().Unattended; n != 1 {
		t.Errorf("the agent counted %d unattended accesses, want 1", n)
	}
	log := assistLog(t, ts, "mom", "desktop")
	if len(log) < 2 || log[len(log)-1].Event != "start" {
		t.Errorf("Mom's audit log %+v, want the unattended session in it", log)
	}
}

// consentFor answers no, without failing, for the users in quiet (who
// are not allowed unattended access and would be asked), and defers to c
// for everyone else.
func consentFor(c agent.Consent, quiet ...string) agent.Consent {
	return quietConsent{c, quiet}
}

type quietConsent struct {
	agent.Consent
	quiet []string
}

func (q quietConsent) AnswerCall(ctx context.Context, from string) bool {
	if slices.Contains(q.quiet, from) {
		return false
	}
	return q.Consent.AnswerCall(ctx, from)
}

// TestAgentBadInput: with control granted, Bob's client sends what a
// broken or hostile helper could: an out-of-range key, an out-of-range
// button and an event cut short, then a flood of 30,000 pointer moves as
// fast as it can. Each bad event is dropped and counted (by the server,
// which never forwards it, or by the agent), nothing reaches the window
// from the bad messages, and the session goes on: a click right after
// lands where aimed and typing arrives.
func TestAgentBadInput(t *testing.T) {
	display := x11test.StartXvfb(t)
	win := x11test.NewTestWindow(t, display, 200, 150, 640, 360)
	ts := startServer(t, nil)
	a := agent.New(agent.Config{
		URL: ts.wsURL(), Token: ts.token(t, "mom", "desktop"), Display: display, Logger: clientLogger(t),
		Unattended: agent.Unattended{Enabled: true, Helpers: []string{"bob"}, Grants: []string{protocol.AssistView, protocol.AssistControl}},
	}, refusingConsent{t})
	runAgent(t, a)
	ctx := testCtx(t, 60*time.Second)
	bob := ts.dial(t, "bob", "phone")
	id := ringAgent(t, ctx, bob, "mom")
	waitType(t, bob, func(m *protocol.Accepted) bool { return m.CallID == id })
	bobMedia, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, Assist: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.Assist(ctx, id, "mom", protocol.AssistControl); err != nil {
		t.Fatal(err)
	}
	waitType(t, bob, func(m *protocol.AssistState) bool { return slices.Contains(m.Granted, protocol.AssistControl) })
	room := ts.SFU().LookupRoom(sfu.RoomID(id))

	// Out of range: a keysym past X's 29 bits, button 9, a move cut short.
	win.Reset()
	for _, b := range [][]byte{
		{0x01, 0x05, 0x20, 0, 0, 0},
		{0x01, 0x02, 9, 0x10, 0, 0x10, 0},
		{0x01, 0x01, 0x10},
	} {
		if err := bobMedia.SendAssistBytes(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 5*time.Second, "the server counting 3 malformed events", func() bool { return room.AssistStats().Malformed == 3 })

	// A flood.
	moves := make([]assistwire.Event, 30)
	for i := range moves {
		moves[i] = assistwire.Event{Type: assistwire.PointerMove, X: uint16(i * 1000), Y: uint16(i * 1000)}
	}
	flooded := time.Now()
	for range 1000 {
		if err := bobMedia.SendAssist(ctx, moves...); err != nil {
			t.Fatal(err)
		}
	}
	// The flood has passed when the server's counts stop moving (all of
	// it, unless a busy machine keeps some in the data channel longer).
	var last uint64
	testkit.Eventually(t, 20*time.Second, "the flood at the server", func() bool {
		st := room.AssistStats()
		n := st.Forwarded + st.Flooded
		settled := n == last && st.Flooded > 0
		last = n
		if n >= 30000 {
			return true
		}
		time.Sleep(300 * time.Millisecond)
		return settled
	})
	took := time.Since(flooded)
	st := room.AssistStats()
	t.Logf("flood of 30000 moves: at the server within %v, %d forwarded, %d dropped over the rate; the agent applied %d, dropped %d",
		took.Round(time.Millisecond), st.Forwarded, st.Flooded, a.Stats().Applied, a.Stats().Dropped)
	if max := uint64(800 + 400*(took.Seconds()+1)); st.Forwarded > max+3 {
		t.Errorf("the server forwarded %d events of the flood, want at most %d (burst and rate)", st.Forwarded, max)
	}
	if c, txt := win.Clicks(), win.Text(); len(c) != 0 || txt != "" {
		t.Errorf("bad input reached the window: clicks %v, text %q", c, txt)
	}

	// The session goes on.
	time.Sleep(2 * time.Second) // the helper's budget refills
	target := image.Pt(win.Rect().Min.X+100, win.Rect().Min.Y+80)
	x, y := at(target.X, target.Y)
	sent := time.Now()
	if err := bobMedia.SendAssist(ctx, append([]assistwire.Event{
		{Type: assistwire.ButtonDown, Button: 1, X: x, Y: y}, {Type: assistwire.ButtonUp, Button: 1, X: x, Y: y},
	}, typeEvents("ok")...)...); err != nil {
		t.Fatal(err)
	}
	got := win.WaitClicks(t, 1)
	if d := image.Pt(got[0].X, got[0].Y).Sub(target); abs(d.X) > 1 || abs(d.Y) > 1 {
		t.Errorf("after the flood the click landed at %+v, want %v", got[0], target)
	}
	win.WaitText(t, "ok")
	t.Logf("after the flood a click reached the window in %v", time.Since(sent).Round(time.Millisecond))
}

// runAgent runs a until the test ends; an error it ends with fails the
// test, and a failing test logs the agent's counters.
func runAgent(t *testing.T, a *agent.Agent) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the agent's counters: %+v", a.Stats())
		}
	})
	runCtx, stopAgent := context.WithCancel(context.Background())
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(runCtx) }()
	t.Cleanup(func() {
		stopAgent()
		if err := <-agentDone; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
}

// ringAgent calls user's agent from c once it has signed in, and returns
// the call's id.
func ringAgent(t *testing.T, ctx context.Context, c *client.Client, user string) string {
	t.Helper()
	var id string
	testkit.Eventually(t, 10*time.Second, "the agent signed in, ringing", func() bool {
		var err error
		id, err = c.Invite(ctx, user, false)
		return err == nil
	})
	return id
}
