package callcore

import "testing"

func TestLeaveEnds(t *testing.T) {
	for _, tc := range []struct {
		room   bool
		joined int
		ends   bool
	}{
		{room: false, joined: 2, ends: true},  // one-to-one: the other is alone
		{room: false, joined: 3, ends: false}, // a group goes on with two
		{room: true, joined: 2, ends: false},  // a room goes on with one
		{room: true, joined: 1, ends: true},   // and ends empty
		{room: false, joined: 1, ends: true},
	} {
		if got := LeaveEnds(tc.room, tc.joined); got != tc.ends {
			t.Errorf("room %v, %d joined: ends %v, want %v", tc.room, tc.joined, got, tc.ends)
		}
	}
}

func TestRingEndReason(t *testing.T) {
	if r := RingEndReason(false, "no_answer"); r != "no_answer" {
		t.Errorf("unanswered call: %q", r)
	}
	if r := RingEndReason(true, "completed"); r != "cancelled" {
		t.Errorf("running call ended while ringing someone in: %q", r)
	}
}
