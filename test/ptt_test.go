package test

import (
	"slices"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// heardFrom returns the users whose audio has reached m.
func heardFrom(m *client.Media) []string {
	var out []string
	for _, tr := range m.Stats().RemoteTracks {
		if tr.Kind == "audio" && !slices.Contains(out, tr.StreamID) {
			out = append(out, tr.StreamID)
		}
	}
	slices.Sort(out)
	return out
}

func floorState(t *testing.T, c *client.Client, callID string, match func(*protocol.FloorState) bool) *protocol.FloorState {
	t.Helper()
	return waitType(t, c, func(m *protocol.FloorState) bool { return m.CallID == callID && match(m) })
}

// TestPushToTalkRoom: three people in a walkie-talkie room all publish
// their microphones, but only the floor holder is heard. Requests queue
// behind the holder, a release passes the floor on, and a holder who
// talks past the longest talk time loses the floor. Carol publishes
// audio the whole time and never holds the floor: nobody ever hears her.
func TestPushToTalkRoom(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Calls.PTTMaxTalk = 3 * time.Second })
	ctx := testCtx(t, 60*time.Second)
	names := []string{"alice", "bob", "carol"}
	cl := map[string]*client.Client{}
	md := map[string]*client.Media{}
	var room string
	for _, u := range names {
		c := ts.dial(t, u, "radio")
		cl[u] = c
		ack, err := c.Request(ctx, protocol.TypeJoin, &protocol.Join{Room: "walkie", Mode: protocol.ModePTT})
		if err != nil {
			t.Fatal(err)
		}
		room = ack.CallID
		if j := waitType(t, c, func(m *protocol.Joined) bool { return m.CallID == room }); j.Mode != protocol.ModePTT {
			t.Fatalf("joined = %+v", j)
		}
		floorState(t, c, room, func(m *protocol.FloorState) bool { return m.Holder == "" })
		if md[u], err = c.StartMedia(ctx, room, client.MediaOptions{Audio: true}); err != nil {
			t.Fatal(err)
		}
	}
	floor := func(u, action string) {
		t.Helper()
		if _, err := cl[u].Request(ctx, protocol.TypeFloor, &protocol.Floor{CallID: room, Action: action}); err != nil {
			t.Fatalf("%s %s: %v", u, action, err)
		}
	}
	// Everyone publishes; nobody holds the floor; nobody is heard.
	testkit.Eventually(t, 20*time.Second, "everyone publishing", func() bool {
		for _, m := range md {
			if m.Stats().Audio.PacketsSent < 25 {
				return false
			}
		}
		return true
	})
	for u, m := range md {
		if h := heardFrom(m); len(h) != 0 {
			t.Fatalf("%s hears %v with the floor free", u, h)
		}
	}

	floor("alice", protocol.FloorRequest)
	for _, u := range names {
		if st := floorState(t, cl[u], room, func(m *protocol.FloorState) bool { return m.Holder != "" }); st.Holder != "alice" || st.ExpiresMS <= 0 {
			t.Fatalf("%s sees floor %+v", u, st)
		}
	}
	testkit.Eventually(t, 10*time.Second, "bob and carol hear alice", func() bool {
		return md["bob"].Stats().Audio.PacketsReceived > 20 && md["carol"].Stats().Audio.PacketsReceived > 20
	})
	// Bob asks while Alice talks: he waits in the queue.
	floor("bob", protocol.FloorRequest)
	if st := floorState(t, cl["carol"], room, func(m *protocol.FloorState) bool { return len(m.Queue) > 0 }); st.Holder != "alice" || !slices.Equal(st.Queue, []string{"bob"}) {
		t.Fatalf("floor = %+v; want alice holding, bob queued", st)
	}
	for _, u := range []string{"bob", "carol"} {
		if h := heardFrom(md[u]); !slices.Equal(h, []string{"alice"}) {
			t.Fatalf("%s hears %v; want only alice", u, h)
		}
	}
	if h := heardFrom(md["alice"]); len(h) != 0 {
		t.Fatalf("alice, holding the floor, hears %v", h)
	}

	// Alice lets go: the floor passes to Bob, and Alice now hears him.
	floor("alice", protocol.FloorRelease)
	if st := floorState(t, cl["alice"], room, func(m *protocol.FloorState) bool { return m.Holder == "bob" }); len(st.Queue) != 0 {
		t.Fatalf("floor = %+v", st)
	}
	bobHeard := md["carol"].Stats().Audio.PacketsReceived
	testkit.Eventually(t, 10*time.Second, "alice hears bob", func() bool {
		return slices.Equal(heardFrom(md["alice"]), []string{"bob"}) && md["carol"].Stats().Audio.PacketsReceived > bobHeard+20
	})

	// Bob talks past the longest talk time: the floor comes free.
	st := floorState(t, cl["carol"], room, func(m *protocol.FloorState) bool { return m.Holder == "" })
	if len(st.Queue) != 0 {
		t.Fatalf("floor after the talk time = %+v", st)
	}
	time.Sleep(300 * time.Millisecond) // packets already in flight
	silent := md["carol"].Stats().Audio.PacketsReceived
	time.Sleep(time.Second)
	if n := md["carol"].Stats().Audio.PacketsReceived; n > silent+2 {
		t.Fatalf("carol heard %d packets with the floor free", n-silent)
	}
	for u, m := range md {
		if slices.Contains(heardFrom(m), "carol") {
			t.Fatalf("%s heard carol, who never held the floor", u)
		}
	}

	// The holder leaving frees the floor for the next in the queue.
	floor("carol", protocol.FloorRequest)
	floor("alice", protocol.FloorRequest)
	floorState(t, cl["bob"], room, func(m *protocol.FloorState) bool {
		return m.Holder == "carol" && slices.Equal(m.Queue, []string{"alice"})
	})
	if err := cl["carol"].Hangup(ctx, room); err != nil {
		t.Fatal(err)
	}
	floorState(t, cl["bob"], room, func(m *protocol.FloorState) bool { return m.Holder == "alice" })

	// Mistakes get clear errors.
	if _, err := cl["bob"].Request(ctx, protocol.TypeJoin, &protocol.Join{Room: "walkie"}); !client.IsCode(err, protocol.CodeBusy) {
		t.Errorf("second join: %v", err)
	}
	dan := ts.dial(t, "dan", "phone")
	if _, err := dan.Request(ctx, protocol.TypeJoin, &protocol.Join{Room: "walkie"}); !client.IsCode(err, protocol.CodeInvalidState) {
		t.Errorf("joining a ptt room without mode: %v", err)
	}
	if _, err := dan.Request(ctx, protocol.TypeFloor, &protocol.Floor{CallID: room, Action: protocol.FloorRequest}); !client.IsCode(err, protocol.CodeNotInCall) {
		t.Errorf("floor from outside the room: %v", err)
	}
	if _, err := dan.Request(ctx, protocol.TypeJoin, &protocol.Join{Room: "plain"}); err != nil {
		t.Fatal(err)
	}
	plain := waitType(t, dan, func(m *protocol.Joined) bool { return m.Room == "plain" }).CallID
	if _, err := dan.Request(ctx, protocol.TypeFloor, &protocol.Floor{CallID: plain, Action: protocol.FloorRequest}); !client.IsCode(err, protocol.CodeInvalidState) {
		t.Errorf("floor in a plain room: %v", err)
	}
}
