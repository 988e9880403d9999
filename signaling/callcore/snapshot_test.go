package callcore

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// TestSnapshotAndTakeover: a group call is snapshotted on its home node,
// and another node takes it over when the home goes away. Members whose
// device is signed in on the new home hear resumed with rejoin; the
// others wait for the grace window; the call, its members and who invited
// whom come through whole.
func TestSnapshotAndTakeover(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	c := &Call[string]{ID: "c_1", Caller: "ann", Callee: "ben", Video: true, Phase: PhaseActive,
		Started: t0, Answered: t0.Add(5 * time.Second), Party: party}
	ms := []*Member[string]{
		{User: "ann", Dev: "ann/phone", State: MemberJoined, Joined: t0},
		{User: "ben", Dev: "ben/laptop", State: MemberJoined, Inviter: "ann/phone", Joined: t0.Add(5 * time.Second)},
		{User: "cat", Dev: "cat/tablet", State: MemberJoined, Inviter: "ben/laptop", Joined: t0.Add(9 * time.Second)},
		{User: "dan", State: MemberRinging, Inviter: "ann/phone"}, // still ringing: not taken over
		{User: "eve", Dev: "eve/phone", State: MemberGone, Joined: t0, Left: t0.Add(time.Minute)},
	}
	snap := c.Snapshot(ms, "node-a", false)
	if snap.Home != "node-a" || len(snap.Members) != 3 || snap.Members[2].Inviter != "ben" || snap.Members[1].Device != "laptop" {
		t.Fatalf("snapshot: %+v", snap)
	}

	for _, tt := range []struct {
		name    string
		online  []string // devices signed in on the new home
		resumed []string
		away    []string
	}{
		{"everyone online", []string{"ann/phone", "ben/laptop", "cat/tablet"}, []string{"ann/phone", "ben/laptop", "cat/tablet"}, nil},
		{"one device still reconnecting", []string{"ann/phone", "cat/tablet"}, []string{"ann/phone", "cat/tablet"}, []string{"ben"}},
		// Ben signed in on another device: the call is his laptop's, so
		// the laptop's place waits for it.
		{"another device of the member", []string{"ann/phone", "ben/phone", "cat/tablet"}, []string{"ann/phone", "cat/tablet"}, []string{"ben"}},
		{"nobody yet", nil, nil, []string{"ann", "ben", "cat"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var asked []string
			got, members, away, effs := Restore(snap, party, func(user, device string) (string, bool) {
				asked = append(asked, user+"/"+device)
				d := user + "/" + device
				return d, device != "" && slices.Contains(tt.online, d)
			})
			if got.ID != c.ID || got.Caller != "ann" || got.Callee != "ben" || !got.Video || got.Phase != PhaseActive ||
				!got.Answered.Equal(c.Answered) || !got.Started.Equal(t0) {
				t.Fatalf("restored call %+v", got)
			}
			var resumed, awayUsers []string
			for _, e := range effs {
				r, ok := e.Msg.(*protocol.Resumed)
				if e.Kind != Send || !ok || !r.Rejoin || len(r.Members) != 3 || r.CallID != c.ID {
					t.Fatalf("effect %+v", e)
				}
				resumed = append(resumed, e.Device)
			}
			for _, m := range away {
				awayUsers = append(awayUsers, m.User)
			}
			if !slices.Equal(resumed, tt.resumed) || !slices.Equal(awayUsers, tt.away) {
				t.Fatalf("resumed %q, away %q; want %q, %q", resumed, awayUsers, tt.resumed, tt.away)
			}
			var inviters []string
			for _, m := range members {
				if m.State != MemberJoined || !m.Ring.Rings(m.Dev) || m.Ring.Ringing() {
					t.Fatalf("member %s: state %v, ring %v", m.User, m.State, m.Ring.Devices())
				}
				inviters = append(inviters, fmt.Sprint(m.User, "<", m.Inviter))
			}
			if want := []string{"ann<", "ben<ann/", "cat<ben/"}; !slices.Equal(inviters, want) {
				t.Fatalf("inviters %q, want %q", inviters, want)
			}
			// What the new home snapshots is what it took over.
			if again := got.Snapshot(members, "node-b", false); len(again.Members) != 3 || again.Members[0].Joined != snap.Members[0].Joined {
				t.Fatalf("snapshot after takeover: %+v", again)
			}
		})
	}
}

// TestTakeoverEndsWhatIsAside: a member's tablet listens along and her
// laptop is taking the call over from her phone when the home node goes.
// The new home cannot know where their media stood: each that is online
// hears the call ended (failed) for it, and may listen or pull again; the
// phone keeps the call. Before, both were left in a call that no longer
// counted them, never told.
func TestTakeoverEndsWhatIsAside(t *testing.T) {
	t0 := time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC)
	c := &Call[string]{ID: "c_2", Caller: "ann", Callee: "ben", Phase: PhaseActive, Started: t0, Answered: t0, Party: party}
	ms := []*Member[string]{
		{User: "ann", Dev: "ann/phone", State: MemberJoined, Joined: t0, Listeners: []string{"ann/tablet"},
			Move: &Move[string]{From: "ann/phone", To: "ann/laptop"}},
		{User: "ben", Dev: "ben/phone", State: MemberJoined, Joined: t0},
	}
	snap := c.Snapshot(ms, "node-a", false)
	if !slices.Equal(snap.Members[0].Aside, []string{"tablet", "laptop"}) || len(snap.Members[1].Aside) != 0 {
		t.Fatalf("aside in the snapshot: %+v", snap.Members)
	}
	for _, offline := range []string{"", "ann/laptop"} {
		_, members, _, effs := Restore(snap, party, func(user, device string) (string, bool) {
			d := user + "/" + device
			return d, device != "" && d != offline
		})
		var ended []string
		for _, e := range effs {
			if m, ok := e.Msg.(*protocol.Ended); ok {
				if m.Reason != protocol.ReasonFailed || m.CallID != c.ID {
					t.Errorf("%s heard %+v", e.Device, m)
				}
				ended = append(ended, e.Device)
			}
		}
		want := []string{"ann/tablet", "ann/laptop"}
		if offline != "" {
			want = want[:1] // one that is not online hears nothing here
		}
		if !slices.Equal(ended, want) {
			t.Errorf("with %q offline, ended for %q, want %q", offline, ended, want)
		}
		if members[0].Dev != "ann/phone" || len(members[0].Listeners) != 0 || members[0].Move != nil {
			t.Errorf("ann after the takeover: %+v", members[0])
		}
	}
}
