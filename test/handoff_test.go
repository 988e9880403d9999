package test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// arrivals records, at the remote party, when each audio packet and each
// complete video frame arrived and which device's media it was (the tag).
type arrivals struct {
	mu    sync.Mutex
	audio []arrival
	video []arrival
}

type arrival struct {
	at  time.Time
	tag byte
}

func (a *arrivals) onRTP(t client.RemoteTrack, p *rtp.Packet, at time.Time) {
	if len(p.Payload) == 0 {
		return
	}
	tag := p.Payload[len(p.Payload)-1]
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case t.Kind == "audio":
		a.audio = append(a.audio, arrival{at, tag})
	case p.Marker: // the last packet of a frame
		a.video = append(a.video, arrival{at, tag})
	}
}

// maxGap is the longest time between two consecutive arrivals of list in
// [from, to].
func maxGap(list []arrival, from, to time.Time) time.Duration {
	var gap time.Duration
	for i := 1; i < len(list); i++ {
		if list[i].at.Before(from) || list[i-1].at.After(to) {
			continue
		}
		gap = max(gap, list[i].at.Sub(list[i-1].at))
	}
	return gap
}

// firstTagged is the arrival time of the first entry with tag at or after
// from.
func firstTagged(list []arrival, tag byte, from time.Time) (time.Time, bool) {
	for _, a := range list {
		if a.tag == tag && !a.at.Before(from) {
			return a.at, true
		}
	}
	return time.Time{}, false
}

// has reports whether audio and a whole video frame tagged tag arrived at
// or after since.
func (a *arrivals) has(tag byte, since time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, audio := firstTagged(a.audio, tag, since)
	_, video := firstTagged(a.video, tag, since)
	return audio && video
}

// receiving is has as a condition for eventually.
func (a *arrivals) receiving(tag byte, since time.Time) func() bool {
	return func() bool { return a.has(tag, since) }
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// TestHandoffKeepsTheRemoteTrack moves Alice's call with Bob between her
// phone and her laptop 20 times, each time pulled by the device taking it.
// Bob's client must see no renegotiation and no new track: the same two
// SSRCs carry first the phone's media, then the laptop's. At Bob it
// measures the longest silence in the audio and the longest freeze of the
// video around each handoff.
func TestHandoffKeepsTheRemoteTrack(t *testing.T) {
	ts := startServer(t, nil)
	alice := []*client.Client{ts.dial(t, "alice", "phone"), ts.dial(t, "alice", "laptop")}
	bob := ts.dial(t, "bob", "phone")
	ctx := testCtx(t, 180*time.Second)
	tags := []byte{0xa1, 0xa2}

	id := answeredCall(t, alice[0], bob, true)
	if ac := waitType(t, alice[1], func(m *protocol.ActiveCall) bool { return m.CallID == id }); ac.Device != "phone" {
		t.Errorf("the laptop was told the call is on %q, want phone", ac.Device)
	}
	media := make([]*client.Media, 2)
	var err error
	if media[0], err = alice[0].StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, Tag: tags[0]}); err != nil {
		t.Fatal(err)
	}
	var seen arrivals
	bobMedia, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, OnRTP: seen.onRTP})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "Bob receiving the phone's audio and video", func() bool {
		seen.mu.Lock()
		defer seen.mu.Unlock()
		return len(seen.audio) > 10 && len(seen.video) > 5
	})
	before := bobMedia.Stats()

	const handoffs = 20
	var audioGaps, freezes, firstFrames []time.Duration
	for i := range handoffs {
		from, to := i%2, (i+1)%2
		start := time.Now()
		if err := alice[to].Handoff(ctx, id, ""); err != nil {
			t.Fatalf("handoff %d: %v", i, err)
		}
		st := waitType(t, alice[to], func(m *protocol.Handoff) bool { return m.CallID == id })
		if st.State != protocol.HandoffStarted || len(st.Members) != 2 {
			t.Fatalf("handoff %d: got %+v, want started with both members", i, st)
		}
		if media[to], err = alice[to].StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, Tag: tags[to]}); err != nil {
			t.Fatal(err)
		}
		if done := waitType(t, alice[to], func(m *protocol.Handoff) bool { return m.CallID == id }); done.State != protocol.HandoffDone {
			t.Fatalf("handoff %d: got %+v, want done", i, done)
		}
		if e := ended(t, alice[from], id); e.Reason != protocol.ReasonHandedOff {
			t.Fatalf("handoff %d: old device ended with %q, want handed_off", i, e.Reason)
		}
		done := time.Now()
		_ = media[from].Close()
		// Let the new device's media run a little past the switch.
		time.Sleep(300 * time.Millisecond)

		seen.mu.Lock()
		frame, ok := firstTagged(seen.video, tags[to], start)
		audioGap := maxGap(seen.audio, start, done.Add(300*time.Millisecond))
		freeze := maxGap(seen.video, start, done.Add(300*time.Millisecond))
		_, heard := firstTagged(seen.audio, tags[to], start)
		seen.mu.Unlock()
		if !ok {
			t.Fatalf("handoff %d: Bob got no video frame from the %s", i, alice[to].Welcome().Device)
		}
		if !heard {
			t.Fatalf("handoff %d: Bob got no audio from the %s", i, alice[to].Welcome().Device)
		}
		audioGaps = append(audioGaps, audioGap)
		freezes = append(freezes, freeze)
		firstFrames = append(firstFrames, frame.Sub(start))
	}

	after := bobMedia.Stats()
	if after.SubOffers != before.SubOffers {
		t.Errorf("Bob's sub was renegotiated %d times during the handoffs", after.SubOffers-before.SubOffers)
	}
	if len(after.RemoteTracks) != 2 || !slices.Equal(after.RemoteTracks, before.RemoteTracks) {
		t.Errorf("Bob's tracks went from %+v to %+v", before.RemoteTracks, after.RemoteTracks)
	}
	if err := bobMedia.Err(); err != nil {
		t.Errorf("Bob's media: %v", err)
	}
	t.Logf("over %d handoffs: audio gap p50 %v p95 %v; video freeze p50 %v p95 %v; request to first frame from the new device p50 %v p95 %v",
		handoffs, percentile(audioGaps, 0.5), percentile(audioGaps, 0.95), percentile(freezes, 0.5), percentile(freezes, 0.95),
		percentile(firstFrames, 0.5), percentile(firstFrames, 0.95))
	// Generous bounds, far above the targets (60 ms, 300 ms), so that a
	// loaded machine does not fail the test while a broken switch does.
	if g := percentile(audioGaps, 0.95); g > 500*time.Millisecond {
		t.Errorf("audio gap p95 %v", g)
	}
	if f := percentile(freezes, 0.95); f > 2*time.Second {
		t.Errorf("video freeze p95 %v", f)
	}
}

// TestHandoffPushAndFailure: a pull whose new device never connects leaves
// the call on the phone, and Bob keeps hearing the phone; then the phone
// pushes the call to the laptop, which takes it; a push to a device that is
// not online is refused. Every device of Alice's learns where her call is.
func TestHandoffPushAndFailure(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Calls.HandoffTimeout = 2 * time.Second })
	phone, laptop := ts.dial(t, "alice", "phone"), ts.dial(t, "alice", "laptop")
	bob := ts.dial(t, "bob", "phone")
	ctx := testCtx(t, 60*time.Second)

	id := answeredCall(t, phone, bob, true)
	phoneMedia, err := phone.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, Tag: 0xa1})
	if err != nil {
		t.Fatal(err)
	}
	var seen arrivals
	if _, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, OnRTP: seen.onRTP}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "Bob receiving the phone", seen.receiving(0xa1, time.Time{}))

	// A pull that never connects: the laptop asks and then does nothing.
	if err := laptop.Handoff(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	if m := waitType(t, laptop, func(m *protocol.Handoff) bool { return m.CallID == id }); m.State != protocol.HandoffStarted {
		t.Fatalf("laptop got %+v, want started", m)
	}
	if m := waitType(t, laptop, func(m *protocol.Handoff) bool { return m.CallID == id }); m.State != protocol.HandoffFailed {
		t.Fatalf("laptop got %+v, want failed", m)
	}
	if m := waitType(t, phone, func(m *protocol.Handoff) bool { return m.CallID == id }); m.State != protocol.HandoffFailed || m.Device != "laptop" {
		t.Fatalf("phone got %+v, want failed naming the laptop", m)
	}
	failedAt := time.Now()
	testkit.Eventually(t, 5*time.Second, "Bob still receiving the phone after the failed handoff", seen.receiving(0xa1, failedAt))
	if err := phoneMedia.Err(); err != nil {
		t.Fatalf("phone media after the failed handoff: %v", err)
	}

	// A push to a device that is not online is refused.
	if err := phone.Handoff(ctx, id, "tv"); !client.IsCode(err, protocol.CodeUserOffline) {
		t.Errorf("push to an offline device: %v, want %s", err, protocol.CodeUserOffline)
	}
	// The laptop cannot push a call it does not hold.
	if err := laptop.Handoff(ctx, id, "phone"); !client.IsCode(err, protocol.CodeInvalidState) {
		t.Errorf("push from a device not holding the call: %v, want %s", err, protocol.CodeInvalidState)
	}

	// The phone pushes the call to the laptop, which takes it.
	if err := phone.Handoff(ctx, id, "laptop"); err != nil {
		t.Fatal(err)
	}
	offer := waitType(t, laptop, func(m *protocol.Handoff) bool { return m.CallID == id })
	if offer.State != protocol.HandoffOffer || offer.Device != "phone" || len(offer.Members) != 2 {
		t.Fatalf("laptop got %+v, want an offer from the phone", offer)
	}
	pushed := time.Now()
	if err := laptop.Handoff(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	waitType(t, laptop, func(m *protocol.Handoff) bool { return m.CallID == id && m.State == protocol.HandoffStarted })
	if _, err := laptop.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, Tag: 0xa2}); err != nil {
		t.Fatal(err)
	}
	waitType(t, laptop, func(m *protocol.Handoff) bool { return m.CallID == id && m.State == protocol.HandoffDone })
	if e := ended(t, phone, id); e.Reason != protocol.ReasonHandedOff {
		t.Errorf("phone ended with %q, want handed_off", e.Reason)
	}
	_ = phoneMedia.Close()
	testkit.Eventually(t, 5*time.Second, "Bob receiving the laptop", seen.receiving(0xa2, pushed))
	if ac := waitType(t, phone, func(m *protocol.ActiveCall) bool { return m.CallID == id && m.Device == "laptop" }); len(ac.Members) != 2 {
		t.Errorf("phone told %+v", ac)
	}

	// The call goes on from the laptop: Bob hangs up and the laptop hears it.
	if err := bob.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if e := ended(t, laptop, id); e.Reason != protocol.ReasonCompleted {
		t.Errorf("laptop ended with %q, want completed", e.Reason)
	}
	waitType(t, phone, func(m *protocol.ActiveCall) bool { return m.CallID == "" })
}

// TestHandoffInRoom: in a group room, Alice moves from her phone to her
// laptop. Bob and Carol both keep the tracks they had, without
// renegotiating, and receive the laptop's media; the laptop receives both
// of them, and nobody sees Alice leave or join.
func TestHandoffInRoom(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t, 60*time.Second)
	phone, laptop := ts.dial(t, "alice", "phone"), ts.dial(t, "alice", "laptop")
	const room = "family"
	id, err := phone.Join(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := phone.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, Tag: 0xa1}); err != nil {
		t.Fatal(err)
	}
	type member struct {
		c    *client.Client
		m    *client.Media
		seen *arrivals
	}
	var others []member
	for i, user := range []string{"bob", "carol"} {
		c := ts.dial(t, user, "phone")
		if _, err := c.Join(ctx, room); err != nil {
			t.Fatal(err)
		}
		seen := &arrivals{}
		m, err := c.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, Tag: byte(0xb1 + i), OnRTP: seen.onRTP})
		if err != nil {
			t.Fatal(err)
		}
		others = append(others, member{c, m, seen})
	}
	testkit.Eventually(t, 20*time.Second, "Bob and Carol receiving the phone and each other", func() bool {
		return others[0].seen.has(0xa1, time.Time{}) && others[1].seen.has(0xa1, time.Time{}) &&
			len(others[0].m.Stats().RemoteTracks) == 4 && len(others[1].m.Stats().RemoteTracks) == 4
	})
	before := []client.MediaStats{others[0].m.Stats(), others[1].m.Stats()}

	waitType(t, laptop, func(m *protocol.ActiveCall) bool { return m.CallID == id && m.Device == "phone" })
	moved := time.Now()
	if err := laptop.Handoff(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	waitType(t, laptop, func(m *protocol.Handoff) bool { return m.CallID == id && m.State == protocol.HandoffStarted })
	var atLaptop arrivals
	if _, err := laptop.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, Tag: 0xa2, OnRTP: atLaptop.onRTP}); err != nil {
		t.Fatal(err)
	}
	waitType(t, laptop, func(m *protocol.Handoff) bool { return m.CallID == id && m.State == protocol.HandoffDone })
	if e := ended(t, phone, id); e.Reason != protocol.ReasonHandedOff {
		t.Errorf("the phone ended with %q, want handed_off", e.Reason)
	}
	testkit.Eventually(t, 10*time.Second, "Bob and Carol receiving the laptop, the laptop receiving both", func() bool {
		return others[0].seen.has(0xa2, moved) && others[1].seen.has(0xa2, moved) &&
			atLaptop.has(0xb1, moved) && atLaptop.has(0xb2, moved)
	})
	for i, o := range others {
		after := o.m.Stats()
		if after.SubOffers != before[i].SubOffers || !slices.Equal(after.RemoteTracks, before[i].RemoteTracks) {
			t.Errorf("%s renegotiated: sub offers %d → %d, tracks %+v → %+v", o.c.Welcome().User,
				before[i].SubOffers, after.SubOffers, before[i].RemoteTracks, after.RemoteTracks)
		}
	}
	// Nobody saw Alice leave or join: the first member_left Bob hears is
	// Carol's.
	if err := others[1].c.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if left := waitType(t, others[0].c, func(m *protocol.MemberLeft) bool { return m.CallID == id }); left.User != "carol" {
		t.Errorf("Bob saw %s leave first, want carol", left.User)
	}
}
