package callcore

import (
	"fmt"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/store"
)

// TestHistory: each member's entry, from their side, for the ways a call
// ends.
func TestHistory(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	end := at(100)
	// entry summarises the fields a person reads in their history.
	entry := func(e store.CallEntry) string {
		ans := "-"
		if e.AnsweredAt != nil {
			ans = fmt.Sprint(e.AnsweredAt.Sub(t0).Seconds())
		}
		return fmt.Sprintf("%s %s %s missed=%v answered=%s ended=%v dur=%dms with=%v",
			e.Direction, e.Peer, e.Reason, e.Missed, ans, e.EndedAt.Sub(t0).Seconds(), e.DurationMS, e.Participants)
	}
	for _, tc := range []struct {
		name   string
		facts  Facts
		reason string
		want   map[string]string
	}{{
		name:   "answered, then hung up",
		facts:  Facts{Caller: "alice", Callee: "bob", Answered: at(10), Members: []MemberFacts{{User: "alice", Joined: at(0)}, {User: "bob", Inviter: "alice", Joined: at(10)}}},
		reason: "completed",
		want: map[string]string{
			"alice": "outgoing bob completed missed=false answered=10 ended=100 dur=90000ms with=[]",
			"bob":   "incoming alice completed missed=false answered=10 ended=100 dur=90000ms with=[]",
		},
	}, {
		name:   "nobody answered: missed for the callee",
		facts:  Facts{Caller: "alice", Callee: "bob", Members: []MemberFacts{{User: "alice", Joined: at(0)}, {User: "bob", Inviter: "alice"}}},
		reason: "no_answer",
		want: map[string]string{
			"alice": "outgoing bob no_answer missed=false answered=- ended=100 dur=0ms with=[]",
			"bob":   "incoming alice no_answer missed=true answered=- ended=100 dur=0ms with=[]",
		},
	}, {
		name:   "the caller gave up: missed",
		facts:  Facts{Caller: "alice", Callee: "bob", Members: []MemberFacts{{User: "alice", Joined: at(0)}, {User: "bob", Inviter: "alice"}}},
		reason: "cancelled",
		want: map[string]string{
			"alice": "outgoing bob cancelled missed=false answered=- ended=100 dur=0ms with=[]",
			"bob":   "incoming alice cancelled missed=true answered=- ended=100 dur=0ms with=[]",
		},
	}, {
		name:   "declined, or busy: not missed",
		facts:  Facts{Caller: "alice", Callee: "bob", Members: []MemberFacts{{User: "alice", Joined: at(0)}, {User: "bob", Inviter: "alice"}}},
		reason: "busy",
		want: map[string]string{
			"alice": "outgoing bob busy missed=false answered=- ended=100 dur=0ms with=[]",
			"bob":   "incoming alice busy missed=false answered=- ended=100 dur=0ms with=[]",
		},
	}, {
		name: "a group: who rang whom in, who left early, who never answered",
		facts: Facts{Caller: "alice", Callee: "bob", Answered: at(10), Members: []MemberFacts{
			{User: "alice", Joined: at(0)},
			{User: "bob", Inviter: "alice", Joined: at(10), Left: at(50), Reason: "completed"},
			{User: "carol", Inviter: "bob", Joined: at(20)},
			{User: "dave", Inviter: "carol", Left: at(40), Reason: "no_answer"},
		}},
		reason: "completed",
		want: map[string]string{
			"alice": "outgoing bob completed missed=false answered=10 ended=100 dur=90000ms with=[bob carol]",
			"bob":   "incoming alice completed missed=false answered=10 ended=50 dur=40000ms with=[alice carol]",
			"carol": "incoming bob completed missed=false answered=20 ended=100 dur=80000ms with=[alice bob]",
			"dave":  "incoming carol no_answer missed=true answered=- ended=40 dur=0ms with=[alice bob carol]",
		},
	}, {
		name:   "a room keeps no history",
		facts:  Facts{Room: "family", Members: []MemberFacts{{User: "alice", Joined: at(0)}, {User: "bob", Joined: at(5)}}},
		reason: "completed",
		want:   map[string]string{},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tc.facts.ID, tc.facts.Started = "c_1", t0
			got := History(tc.facts, tc.reason, end)
			if len(got) != len(tc.want) {
				t.Fatalf("%d entries, want %d", len(got), len(tc.want))
			}
			for user, want := range tc.want {
				e, ok := got[user]
				if !ok {
					t.Fatalf("no entry for %s", user)
				}
				if e.CallID != "c_1" || !e.StartedAt.Equal(t0) {
					t.Errorf("%s: call %q started %v", user, e.CallID, e.StartedAt)
				}
				if s := entry(e); s != want {
					t.Errorf("%s:\n got %s\nwant %s", user, s, want)
				}
			}
		})
	}
}
