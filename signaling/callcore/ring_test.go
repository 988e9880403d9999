package callcore

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

var timeouts = Timeouts{Ring: 30 * time.Second, Waiting: 45 * time.Second}

// show writes effects the way the tables below expect them.
func show(effs []Effect[string]) []string {
	var out []string
	for _, e := range effs {
		switch e.Kind {
		case SendIncoming:
			out = append(out, "incoming "+e.Device)
		case SendEnded:
			out = append(out, "ended "+e.Device+" "+e.Reason)
		case ArmTimer:
			out = append(out, fmt.Sprint("arm ", e.After))
		case DisarmTimer:
			out = append(out, "disarm")
		}
	}
	return out
}

// step is one event for a ring, and what it must lead to.
type step struct {
	do      string // answer, decline, cancel, timeout, add, drop
	device  string
	effects []string
	err     error
	ringing bool // after the step
}

// TestRing walks a user's ring through the ways it ends, one table row a
// story, checking every message a device gets and every timer.
func TestRing(t *testing.T) {
	for _, tc := range []struct {
		name    string
		devices []string
		waiting bool
		start   []string
		steps   []step
	}{{
		name:    "answered on one device, the others stop ringing",
		devices: []string{"phone", "tablet", "laptop"},
		start:   []string{"incoming phone", "incoming tablet", "incoming laptop", "arm 30s"},
		steps: []step{
			{do: "answer", device: "tablet", effects: []string{"disarm", "ended phone answered_elsewhere", "ended laptop answered_elsewhere"}},
			{do: "answer", device: "phone", err: ErrNotRung},
			{do: "answer", device: "tablet", err: ErrAnswered},
			{do: "timeout"},
			{do: "decline", device: "tablet"},
		},
	}, {
		name:    "declined on one device, the others hear it was declined elsewhere",
		devices: []string{"phone", "tablet"},
		start:   []string{"incoming phone", "incoming tablet", "arm 30s"},
		steps: []step{
			{do: "decline", device: "phone", effects: []string{"disarm", "ended phone declined", "ended tablet declined_elsewhere"}},
			{do: "answer", device: "tablet", err: ErrNotRung},
			{do: "timeout"},
		},
	}, {
		name:    "nobody answers",
		devices: []string{"phone"},
		start:   []string{"incoming phone", "arm 30s"},
		steps: []step{
			{do: "timeout", effects: []string{"disarm", "ended phone no_answer"}},
			{do: "answer", device: "phone", err: ErrNotRung},
		},
	}, {
		name:    "in another call: rings longer, and not answering is busy",
		devices: []string{"phone"},
		waiting: true,
		start:   []string{"incoming phone", "arm 45s"},
		steps: []step{
			{do: "timeout", effects: []string{"disarm", "ended phone busy"}},
		},
	}, {
		name:    "in another call and declining is busy to the caller, declined to the device",
		devices: []string{"phone", "tablet"},
		waiting: true,
		start:   []string{"incoming phone", "incoming tablet", "arm 45s"},
		steps: []step{
			{do: "decline", device: "tablet", effects: []string{"disarm", "ended phone declined_elsewhere", "ended tablet declined"}},
		},
	}, {
		name:    "the caller hangs up while it rings",
		devices: []string{"phone", "tablet"},
		start:   []string{"incoming phone", "incoming tablet", "arm 30s"},
		steps: []step{
			{do: "cancel", effects: []string{"disarm", "ended phone cancelled", "ended tablet cancelled"}},
			{do: "cancel"},
		},
	}, {
		name:    "a device that comes online rings too; one that goes offline hears nothing more",
		devices: []string{"phone"},
		start:   []string{"incoming phone", "arm 30s"},
		steps: []step{
			{do: "add", device: "laptop", effects: []string{"incoming laptop"}, ringing: true},
			{do: "add", device: "laptop", ringing: true},
			{do: "drop", device: "phone", ringing: true},
			{do: "answer", device: "phone", err: ErrNotRung, ringing: true},
			{do: "answer", device: "laptop", effects: []string{"disarm"}},
			{do: "add", device: "tablet"},
		},
	}, {
		name:    "every device offline: it rings on until it times out",
		devices: []string{"phone"},
		start:   []string{"incoming phone", "arm 30s"},
		steps: []step{
			{do: "drop", device: "phone", ringing: true},
			{do: "timeout", effects: []string{"disarm"}},
		},
	}, {
		name:    "the same device twice rings once",
		devices: []string{"phone", "phone"},
		start:   []string{"incoming phone", "arm 30s"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r, effs := NewRing(tc.devices, tc.waiting, timeouts)
			if got := show(effs); !slices.Equal(got, tc.start) {
				t.Fatalf("ringing %v: %q, want %q", tc.devices, got, tc.start)
			}
			for i, s := range tc.steps {
				var effs []Effect[string]
				var err error
				switch s.do {
				case "answer":
					effs, err = r.Answer(s.device)
				case "decline":
					if r.Rings(s.device) {
						effs = r.End(r.Refusal("declined"), s.device)
					}
				case "cancel":
					effs = r.End("cancelled", "")
				case "timeout":
					if r.Timeout() {
						effs = r.End(r.Refusal("no_answer"), "")
					}
				case "add":
					effs = r.Add(s.device)
				case "drop":
					r.Drop(s.device)
				}
				if !errors.Is(err, s.err) {
					t.Fatalf("step %d (%s %s): error %v, want %v", i+1, s.do, s.device, err, s.err)
				}
				if got := show(effs); !slices.Equal(got, s.effects) {
					t.Fatalf("step %d (%s %s): %q, want %q", i+1, s.do, s.device, got, s.effects)
				}
				if r.Ringing() != s.ringing {
					t.Fatalf("step %d (%s %s): ringing %v, want %v", i+1, s.do, s.device, r.Ringing(), s.ringing)
				}
			}
		})
	}
}

// TestAnsweredOn: the ring of a member who holds the call without having
// been rung there (moved, resumed, taken over) names that device and
// cannot be answered, declined or timed out again.
func TestAnsweredOn(t *testing.T) {
	r := AnsweredOn("laptop")
	if !r.Rings("laptop") || r.Rings("phone") || r.Ringing() || r.Timeout() {
		t.Fatalf("ring of a held call: rings laptop %v, phone %v, ringing %v", r.Rings("laptop"), r.Rings("phone"), r.Ringing())
	}
	if _, err := r.Answer("laptop"); !errors.Is(err, ErrAnswered) {
		t.Fatalf("answering a held call: %v, want %v", err, ErrAnswered)
	}
	if effs := r.End("declined", "laptop"); effs != nil {
		t.Fatalf("declining a held call: %q", show(effs))
	}
	var none *Ring[string]
	none.Drop("x")
	if _, err := none.Answer("x"); none.Rings("x") || none.Ringing() || none.Waiting() || none.End("cancelled", "") != nil ||
		none.Add("x") != nil || none.Refusal("declined") != "declined" || !errors.Is(err, ErrNotRung) {
		t.Fatal("a member with no ring (the caller) rings")
	}
}
