package callcore

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// assistSays writes an Assist's effects the way the tables expect them.
func assistSays(effs []Effect[string]) []string {
	var out []string
	for _, e := range effs {
		switch e.Kind {
		case Audit:
			s := "audit " + e.Type
			if len(e.Grants) > 0 {
				s += " " + strings.Join(e.Grants, "+")
			}
			if e.Reason != "" {
				s += " (" + e.Reason + ")"
			}
			out = append(out, s)
		case TellAssist:
			out = append(out, "tell "+e.Reason)
		case ApplyAssist:
			out = append(out, "apply")
		case ArmTimer:
			if e.Timer == RequestTimer {
				out = append(out, fmt.Sprintf("arm request %d", e.Gen))
			} else {
				out = append(out, "arm "+e.Timer)
			}
		case DisarmTimer:
			out = append(out, "disarm "+e.Timer)
		}
	}
	return out
}

func checkAssist(t *testing.T, what string, effs []Effect[string], want ...string) {
	t.Helper()
	if got := assistSays(effs); !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

const (
	view, annotate, control = protocol.AssistView, protocol.AssistAnnotate, protocol.AssistControl
)

// TestHelperAsks: the helper (bob) starts and asks; the helped (mom)
// answers, takes back, lets a request lapse, and control goes idle.
func TestHelperAsks(t *testing.T) {
	a, effs := StartAssist[string]("bob", "mom", "mom", []string{annotate, "root"})
	checkAssist(t, "bob starts helping", effs, "audit start", "audit request view+annotate", "arm request 1", "tell started", "apply")
	if a.Helper != "bob" || a.Helped != "mom" || len(a.Granted()) != 0 {
		t.Fatalf("started %+v", a)
	}
	checkAssist(t, "asking again for what is asked", Request[string](a, []string{view}))
	checkAssist(t, "asking for control too", Request[string](a, []string{control, view}),
		"audit request control", "arm request 2", "tell requested")
	if got := a.Requested(); !slices.Equal(got, []string{view, annotate, control}) {
		t.Errorf("requested %v", got)
	}
	// Mom grants view and control: annotate is refused by leaving it out.
	checkAssist(t, "mom answers", SetGrants[string](a, []string{control, view}, protocol.AssistGranted),
		"disarm request", "audit grant view+control", "arm idle", "tell granted", "apply")
	if !a.Has(control) || a.Has(annotate) || len(a.Requested()) != 0 {
		t.Errorf("after the answer: granted %v, requested %v", a.Granted(), a.Requested())
	}
	checkAssist(t, "a request timer from before the answer", RequestTimeout[string](a, 2))
	// Bob asks to annotate; nobody answers.
	checkAssist(t, "asking to annotate", Request[string](a, []string{annotate}), "audit request annotate", "arm request 4", "tell requested")
	checkAssist(t, "an older request's timer", RequestTimeout[string](a, 3))
	checkAssist(t, "no answer in time", RequestTimeout[string](a, 4), "audit denied annotate (request_timeout)", "tell request_timeout")
	// Control unused: it lapses, view stays.
	checkAssist(t, "control idle", ControlIdle[string](a),
		"disarm request", "audit revoke control (control_idle)", "disarm idle", "tell control_idle", "apply")
	checkAssist(t, "control idle again", ControlIdle[string](a))
	// Mom takes view back herself.
	checkAssist(t, "mom revokes", SetGrants[string](a, nil, protocol.AssistGranted),
		"disarm request", "audit revoke view (revoked)", "disarm idle", "tell granted", "apply")
}

// TestHelpedInvites: mom starts, granting at once; her call moves to her
// tablet (grants reset), and the assistance ends.
func TestHelpedInvites(t *testing.T) {
	a, effs := StartAssist[string]("mom", "bob", "mom", []string{view, control})
	checkAssist(t, "mom invites bob to help", effs, "audit start", "audit grant view+control", "arm idle", "tell started", "apply")
	if a.Helper != "bob" || a.Helped != "mom" {
		t.Fatalf("started %+v", a)
	}
	checkAssist(t, "mom's call moves to her tablet", HelpedDeviceChanged[string](a),
		"disarm request", "audit revoke view+control (device_changed)", "disarm idle", "tell device_changed", "apply")
	checkAssist(t, "nothing left to reset", HelpedDeviceChanged[string](a))
	SetGrants[string](a, []string{view}, protocol.AssistGranted)
	checkAssist(t, "the end", EndAssist[string](a, "member_left"),
		"audit revoke view (member_left)", "audit end (member_left)", "disarm request", "disarm idle", "tell ended", "apply")
	if !a.Over() || a.Has(view) {
		t.Errorf("after the end: over %v, granted %v", a.Over(), a.Granted())
	}
	for name, effs := range map[string][]Effect[string]{
		"end":     EndAssist[string](a, "ended"),
		"request": Request[string](a, []string{view}),
		"grant":   SetGrants[string](a, []string{view}, protocol.AssistGranted),
	} {
		checkAssist(t, name+" after the end", effs)
	}
}
