package test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// seesEveryone reports whether m receives audio and video from each of
// users and from nobody else.
func seesEveryone(m *client.Media, users ...string) bool {
	got := map[string]map[string]bool{}
	for _, tr := range m.Stats().RemoteTracks {
		if got[tr.StreamID] == nil {
			got[tr.StreamID] = map[string]bool{}
		}
		got[tr.StreamID][tr.Kind] = true
	}
	if len(got) != len(users) {
		return false
	}
	for _, u := range users {
		if !got[u]["audio"] || !got[u]["video"] {
			return false
		}
	}
	return true
}

func others(all []string, me string) []string {
	return slices.DeleteFunc(slices.Clone(all), func(u string) bool { return u == me })
}

// TestOneToOneCallGrowsIntoAGroupCall: Alice and Bob are talking; Alice
// invites Carol into the call; Carol's devices ring, she answers, and all
// three receive each other while Alice and Bob's media never stops. Bob
// leaves and the call goes on for the other two; when Carol leaves, the
// call ends, and everyone's history lists the people they talked with.
func TestOneToOneCallGrowsIntoAGroupCall(t *testing.T) {
	ts := startServer(t, nil)
	alice := ts.dial(t, "alice", "phone")
	bob := ts.dial(t, "bob", "phone")
	carol := ts.dial(t, "carol", "laptop")
	ctx := testCtx(t, 90*time.Second)

	id := answeredCall(t, alice, bob, true)
	am, bm := startMedia(t, ctx, id, alice, bob)
	testkit.Eventually(t, 20*time.Second, "alice and bob see each other", func() bool {
		return seesEveryone(am, "bob") && seesEveryone(bm, "alice")
	})

	if _, err := alice.Request(ctx, protocol.TypeInvite, &protocol.Invite{To: "carol", Video: true, CallID: id}); err != nil {
		t.Fatal(err)
	}
	in := waitType(t, carol, func(m *protocol.Incoming) bool { return m.CallID == id })
	if in.From.User != "alice" || len(in.Members) != 2 {
		t.Fatalf("carol's incoming = %+v; want from alice with two members", in)
	}
	if err := carol.Ringing(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitType(t, alice, func(m *protocol.RingingEvent) bool { return m.CallID == id && m.Device == "laptop" })
	bobVideo := bm.Stats().Video.PacketsReceived
	if err := carol.Accept(ctx, id, false); err != nil {
		t.Fatal(err)
	}
	acc := waitType(t, carol, func(m *protocol.Accepted) bool { return m.CallID == id })
	if acc.Peer.User != "alice" || len(acc.Members) != 3 {
		t.Fatalf("carol's accepted = %+v", acc)
	}
	for _, c := range []*client.Client{alice, bob} {
		if j := waitType(t, c, func(m *protocol.MemberJoined) bool { return m.CallID == id }); j.Member.User != "carol" {
			t.Fatalf("member_joined = %+v", j)
		}
	}
	cm, err := carol.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true})
	if err != nil {
		t.Fatal(err)
	}
	all := []string{"alice", "bob", "carol"}
	testkit.Eventually(t, 30*time.Second, "everyone sees everyone", func() bool {
		return seesEveryone(am, others(all, "alice")...) && seesEveryone(bm, others(all, "bob")...) &&
			seesEveryone(cm, others(all, "carol")...)
	})
	if bm.Stats().Video.PacketsReceived <= bobVideo {
		t.Fatal("bob's video from alice stopped while carol joined")
	}
	if err := bm.Err(); err != nil {
		t.Fatalf("bob's media failed while carol joined: %v", err)
	}

	// Bob leaves; Alice and Carol go on.
	if err := bob.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if r := ended(t, bob, id).Reason; r != protocol.ReasonCompleted {
		t.Fatalf("bob got %q", r)
	}
	for _, c := range []*client.Client{alice, carol} {
		if l := waitType(t, c, func(m *protocol.MemberLeft) bool { return m.CallID == id }); l.User != "bob" || l.Reason != protocol.ReasonCompleted {
			t.Fatalf("member_left = %+v", l)
		}
	}
	fromCarol := am.Stats().Video.PacketsReceived
	testkit.Eventually(t, 10*time.Second, "alice still receives carol", func() bool {
		return am.Stats().Video.PacketsReceived > fromCarol+20
	})

	if err := carol.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{alice, carol} {
		if r := ended(t, c, id).Reason; r != protocol.ReasonCompleted {
			t.Fatalf("%s got %q", c.Welcome().User, r)
		}
	}
	want := map[string]struct {
		peer, dir    string
		participants []string
	}{
		"alice": {"bob", "outgoing", []string{"bob", "carol"}},
		"bob":   {"alice", "incoming", []string{"alice", "carol"}},
		"carol": {"alice", "incoming", []string{"alice", "bob"}},
	}
	for user, w := range want {
		h := ts.history(t, user)
		if len(h) == 0 || h[0].CallID != id || h[0].Peer != w.peer || h[0].Direction != w.dir ||
			h[0].Reason != protocol.ReasonCompleted || !slices.Equal(h[0].Participants, w.participants) || h[0].DurationMS <= 0 {
			t.Errorf("%s's history = %+v; want peer %s, %s, participants %v", user, h, w.peer, w.dir, w.participants)
		}
	}
}

// TestGroupInviteDeclinedAndRefused: a declined or unanswered invite into
// a running call tells the members and leaves the call up; inviting a
// member twice, inviting from outside the call and inviting someone
// offline get clear errors.
func TestGroupInviteDeclinedAndRefused(t *testing.T) {
	ts := startServer(t, nil)
	alice := ts.dial(t, "alice", "phone")
	bob := ts.dial(t, "bob", "phone")
	dave := ts.dial(t, "dave", "phone")
	eve := ts.dial(t, "eve", "phone")
	ctx := testCtx(t, 30*time.Second)
	id := answeredCall(t, alice, bob, false)

	invite := func(from *client.Client, to string) error {
		_, err := from.Request(ctx, protocol.TypeInvite, &protocol.Invite{To: to, CallID: id})
		return err
	}
	if err := invite(bob, "dave"); err != nil {
		t.Fatal(err)
	}
	waitType(t, dave, func(m *protocol.Incoming) bool { return m.CallID == id })
	if err := dave.Decline(ctx, id); err != nil {
		t.Fatal(err)
	}
	if r := ended(t, dave, id).Reason; r != protocol.ReasonDeclined {
		t.Fatalf("dave got %q", r)
	}
	for _, c := range []*client.Client{alice, bob} {
		if l := waitType(t, c, func(m *protocol.MemberLeft) bool { return m.CallID == id }); l.User != "dave" || l.Reason != protocol.ReasonDeclined {
			t.Fatalf("member_left = %+v", l)
		}
	}
	if err := invite(alice, "bob"); !client.IsCode(err, protocol.CodeInvalidState) {
		t.Errorf("inviting a member: %v", err)
	}
	if err := invite(eve, "dave"); !client.IsCode(err, protocol.CodeNotInCall) {
		t.Errorf("inviting from outside the call: %v", err)
	}
	ts.dial(t, "frank", "phone").Close()
	testkit.Eventually(t, 5*time.Second, "frank offline", func() bool { return ts.Hub().Online("frank") == 0 })
	if err := invite(alice, "frank"); !client.IsCode(err, protocol.CodeUserOffline) {
		t.Errorf("inviting someone offline: %v", err)
	}
	// The call is still up: Bob can hang up and Alice hears completed.
	if err := bob.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
	if r := ended(t, alice, id).Reason; r != protocol.ReasonCompleted {
		t.Fatalf("alice got %q", r)
	}
	// Dave's history shows the declined invite, from Bob.
	if h := ts.history(t, "dave"); len(h) == 0 || h[0].Peer != "bob" || h[0].Reason != protocol.ReasonDeclined || h[0].Missed {
		t.Errorf("dave's history = %+v", h)
	}
}

// TestSixPersonRoom: six people join a named room without ringing; each
// receives the other five's audio and video; one leaves and the others
// are told; the room ends when the last one leaves.
func TestSixPersonRoom(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t, 120*time.Second)
	users := []string{"ann", "ben", "cat", "dan", "eli", "fay"}
	clients := make([]*client.Client, len(users))
	medias := make([]*client.Media, len(users))
	var roomID string
	for i, u := range users {
		clients[i] = ts.dial(t, u, "laptop")
		ack, err := clients[i].Request(ctx, protocol.TypeJoin, &protocol.Join{Room: "family"})
		if err != nil {
			t.Fatal(err)
		}
		j := waitType(t, clients[i], func(m *protocol.Joined) bool { return m.Room == "family" })
		if j.CallID != ack.CallID || len(j.Members) != i+1 {
			t.Fatalf("%s joined %+v (ack %q); want %d members", u, j, ack.CallID, i+1)
		}
		if roomID == "" {
			roomID = j.CallID
		} else if j.CallID != roomID {
			t.Fatalf("%s joined call %s, want %s", u, j.CallID, roomID)
		}
		for k := range i {
			if m := waitType(t, clients[k], func(m *protocol.MemberJoined) bool { return m.Member.User == u }); m.CallID != roomID {
				t.Fatalf("member_joined = %+v", m)
			}
		}
		if medias[i], err = clients[i].StartMedia(ctx, roomID, client.MediaOptions{Audio: true, Video: true}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 60*time.Second, "everyone receives the other five", func() bool {
		for i, u := range users {
			if !seesEveryone(medias[i], others(users, u)...) {
				return false
			}
		}
		return true
	})
	// Then media keeps flowing: about a second from each of the five.
	testkit.Eventually(t, 30*time.Second, "a second of media from everyone", func() bool {
		for _, m := range medias {
			if s := m.Stats(); s.Audio.PacketsReceived < 5*50 || s.Video.PacketsReceived < 5*25 {
				return false
			}
		}
		return true
	})

	// A second join from someone in the room is refused.
	if _, err := clients[0].Request(ctx, protocol.TypeJoin, &protocol.Join{Room: "other"}); !client.IsCode(err, protocol.CodeBusy) {
		t.Errorf("joining a second room: %v", err)
	}

	if err := clients[5].Hangup(ctx, roomID); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients[:5] {
		if l := waitType(t, c, func(m *protocol.MemberLeft) bool { return m.CallID == roomID }); l.User != "fay" {
			t.Fatalf("member_left = %+v", l)
		}
	}
	for i := range 5 {
		if err := clients[i].Hangup(ctx, roomID); err != nil {
			t.Fatal(fmt.Errorf("%s: %w", users[i], err))
		}
	}
	if r := ended(t, clients[4], roomID).Reason; r != protocol.ReasonCompleted {
		t.Fatalf("last member got %q", r)
	}
	testkit.Eventually(t, 5*time.Second, "room closed", func() bool { return ts.Hub().ActiveCalls() == 0 })
	// A new join makes a new room.
	ack, err := clients[0].Request(ctx, protocol.TypeJoin, &protocol.Join{Room: "family"})
	if err != nil || ack.CallID == roomID {
		t.Fatalf("rejoin: %v, call %q", err, ack.CallID)
	}
}

// TestJoinAgainIsAnswered: a device that asks to join the room it is in
// already (its first reply lost, as when the room's node went just after
// taking it in) is answered as the first time, with the room and its
// members, and nobody sees it join twice; another room, or another
// device of the same person, is still refused as busy.
func TestJoinAgainIsAnswered(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t, 30*time.Second)
	ann, ben := ts.dial(t, "ann", "laptop"), ts.dial(t, "ben", "phone")
	for _, c := range []*client.Client{ann, ben} {
		if _, err := c.Request(ctx, protocol.TypeJoin, &protocol.Join{Room: "family"}); err != nil {
			t.Fatal(err)
		}
		waitType(t, c, func(m *protocol.Joined) bool { return m.Room == "family" })
	}
	waitType(t, ann, func(m *protocol.MemberJoined) bool { return m.Member.User == "ben" })
	ack, err := ben.Request(ctx, protocol.TypeJoin, &protocol.Join{Room: "family"})
	if err != nil {
		t.Fatalf("joining the room it is in again: %v", err)
	}
	j := waitType(t, ben, func(m *protocol.Joined) bool { return m.Room == "family" })
	if j.CallID != ack.CallID || len(j.Members) != 2 {
		t.Errorf("joined again: %+v (ack %q), want the room with both", j, ack.CallID)
	}
	if _, err := ben.Request(ctx, protocol.TypeJoin, &protocol.Join{Room: "office"}); !client.IsCode(err, protocol.CodeBusy) {
		t.Errorf("joining another room while in one: %v, want busy", err)
	}
	tablet := ts.dial(t, "ben", "tablet")
	if _, err := tablet.Request(ctx, protocol.TypeJoin, &protocol.Join{Room: "family"}); !client.IsCode(err, protocol.CodeBusy) {
		t.Errorf("ben's tablet joining the room his phone is in: %v, want busy", err)
	}
	// Ann saw ben join once: nothing more comes in the next half second.
	qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	for {
		m, err := ann.Next(qctx)
		if err != nil {
			break
		}
		if mj, ok := m.(*protocol.MemberJoined); ok {
			t.Fatalf("ann saw %s join a second time", mj.Member.User)
		}
	}
}
