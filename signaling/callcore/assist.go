package callcore

import (
	"slices"

	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// Assist is remote assistance in a call between two people (DESIGN.md,
// "Remote assistance"): one helps the other with their screen. The helped
// device alone grants view, annotate and control, each on its own; the
// helper may only ask. A request unanswered in time is denied, one message
// takes everything back, and control lapses when unused.
//
// Its transitions return effects of these kinds: Audit (an entry for both
// users' logs: Type is the event, with Grants and Reason), TellAssist (the
// state goes to both members, with Reason), ApplyAssist (the SFU's grants
// change), and ArmTimer/DisarmTimer for Timer RequestTimer (Gen: which
// request) or IdleTimer (armed only while control is granted).
type Assist struct {
	Helper, Helped string // users
	granted        []string
	requested      []string
	reqGen         uint64
	over           bool
}

// Assist effect kinds and timers.
const (
	// Audit: log event Type (store.Assist*) with Grants and Reason.
	Audit EffectKind = iota + 100
	// TellAssist: send the assistance's state to both members, with
	// Reason (protocol.Assist*).
	TellAssist
	// ApplyAssist: tell the media server what the helper may now do.
	ApplyAssist
)

// Timers of an Assist.
const (
	RequestTimer = "request"
	IdleTimer    = "idle"
)

// grantOrder is the order grants are listed in.
var grantOrder = []string{protocol.AssistView, protocol.AssistAnnotate, protocol.AssistControl, protocol.AssistClipboard}

// grantSet is grants in grantOrder, each once, unknown ones dropped.
func grantSet(grants ...[]string) []string {
	out := []string{}
	for _, g := range grantOrder {
		for _, gs := range grants {
			if slices.Contains(gs, g) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// minus is the grants of a not in b.
func minus(a, b []string) []string {
	return slices.DeleteFunc(slices.Clone(a), func(g string) bool { return slices.Contains(b, g) })
}

// Granted and Requested list the grants given and asked for, in a fixed
// order.
func (a *Assist) Granted() []string   { return slices.Clone(a.granted) }
func (a *Assist) Requested() []string { return slices.Clone(a.requested) }

// Has reports whether grant g is given.
func (a *Assist) Has(g string) bool { return !a.over && slices.Contains(a.granted, g) }

// Over reports whether the assistance has ended.
func (a *Assist) Over() bool { return a.over }

// StartAssist begins assistance, started by user starter in a call with
// other. helped is either other (starter helps, and asks for grants, at
// least to see) or starter (who invites other to help, granting grants at
// once).
func StartAssist[D comparable](starter, other, helped string, grants []string) (*Assist, []Effect[D]) {
	a := &Assist{Helper: other, Helped: starter, granted: grantSet(grants), requested: []string{}}
	if helped != starter {
		a.Helper, a.Helped, a.granted = starter, helped, []string{}
		a.requested = grantSet(grants, []string{protocol.AssistView})
	}
	effs := []Effect[D]{audit[D](store.AssistStart, nil, "")}
	if len(a.granted) > 0 {
		effs = append(effs, audit[D](store.AssistGrant, a.granted, ""))
		effs = append(effs, idle[D](a)...)
	}
	if len(a.requested) > 0 {
		effs = append(effs, audit[D](store.AssistRequest, a.requested, ""))
		effs = append(effs, armRequest[D](a)...)
	}
	return a, append(effs, Effect[D]{Kind: TellAssist, Reason: protocol.AssistStarted}, Effect[D]{Kind: ApplyAssist})
}

// Request is the helper asking for grants: those neither given nor asked
// for already are asked for, and the clock on requests starts again.
func Request[D comparable](a *Assist, grants []string) []Effect[D] {
	asked := minus(grantSet(grants), append(a.Granted(), a.requested...))
	if a.over || len(asked) == 0 {
		return nil
	}
	a.requested = grantSet(a.requested, asked)
	effs := []Effect[D]{audit[D](store.AssistRequest, asked, "")}
	effs = append(effs, armRequest[D](a)...)
	return append(effs, Effect[D]{Kind: TellAssist, Reason: protocol.AssistRequested})
}

// SetGrants makes want the whole granted set, answering every open
// request by it. why is protocol.AssistGranted when the helped device
// chose, or what took grants back (control_idle, device_changed).
func SetGrants[D comparable](a *Assist, want []string, why string) []Effect[D] {
	if a.over {
		return nil
	}
	want = grantSet(want)
	given, taken := minus(want, a.granted), minus(a.granted, want)
	a.granted, a.requested = want, []string{}
	a.reqGen++
	effs := []Effect[D]{{Kind: DisarmTimer, Timer: RequestTimer}}
	if len(given) > 0 {
		effs = append(effs, audit[D](store.AssistGrant, given, ""))
	}
	if len(taken) > 0 {
		revokeWhy := why
		if why == protocol.AssistGranted {
			revokeWhy = "revoked"
		}
		effs = append(effs, audit[D](store.AssistRevoke, taken, revokeWhy))
	}
	effs = append(effs, idle[D](a)...)
	return append(effs, Effect[D]{Kind: TellAssist, Reason: why}, Effect[D]{Kind: ApplyAssist})
}

// RequestTimeout is request timer gen firing: what the helped device did
// not answer is denied. A timer of an earlier request does nothing.
func RequestTimeout[D comparable](a *Assist, gen uint64) []Effect[D] {
	if a.over || gen != a.reqGen || len(a.requested) == 0 {
		return nil
	}
	denied := a.requested
	a.requested = []string{}
	return []Effect[D]{
		audit[D](store.AssistDenied, denied, protocol.AssistRequestTimeout),
		{Kind: TellAssist, Reason: protocol.AssistRequestTimeout},
	}
}

// ControlIdle takes control back after it went unused for the idle time.
func ControlIdle[D comparable](a *Assist) []Effect[D] {
	if !a.Has(protocol.AssistControl) {
		return nil
	}
	return SetGrants[D](a, minus(a.granted, []string{protocol.AssistControl}), protocol.AssistControlIdle)
}

// HelpedDeviceChanged resets the grants when the helped user's call moved
// to another device: that device has granted nothing.
func HelpedDeviceChanged[D comparable](a *Assist) []Effect[D] {
	if a.over || len(a.granted) == 0 {
		return nil
	}
	return SetGrants[D](a, nil, protocol.AssistDeviceChanged)
}

// EndAssist ends the assistance; why goes to the audit log.
func EndAssist[D comparable](a *Assist, why string) []Effect[D] {
	if a.over {
		return nil
	}
	var effs []Effect[D]
	if len(a.granted) > 0 {
		effs = append(effs, audit[D](store.AssistRevoke, a.granted, why))
	}
	a.granted, a.requested, a.over = []string{}, []string{}, true
	return append(effs, audit[D](store.AssistEnd, nil, why),
		Effect[D]{Kind: DisarmTimer, Timer: RequestTimer}, Effect[D]{Kind: DisarmTimer, Timer: IdleTimer},
		Effect[D]{Kind: TellAssist, Reason: protocol.AssistEnded}, Effect[D]{Kind: ApplyAssist})
}

// LostAssist is the assistance a call ran on a node that went away, as
// its snapshot tells, for the node taking the call over to end at once
// (EndAssist): the grants it had are taken back and logged, and both
// members hear it ended, rather than trust a grant that no server tracks.
// The helper asks again, and the helped device grants again.
func LostAssist(helper, helped string, granted []string) *Assist {
	return &Assist{Helper: helper, Helped: helped, granted: grantSet(granted), requested: []string{}}
}

func audit[D comparable](event string, grants []string, reason string) Effect[D] {
	return Effect[D]{Kind: Audit, Type: event, Grants: slices.Clone(grants), Reason: reason}
}

// armRequest starts the clock on the open requests again.
func armRequest[D comparable](a *Assist) []Effect[D] {
	a.reqGen++
	return []Effect[D]{{Kind: ArmTimer, Timer: RequestTimer, Gen: a.reqGen}}
}

// idle arms the idle check while control is granted, and disarms it
// otherwise.
func idle[D comparable](a *Assist) []Effect[D] {
	if slices.Contains(a.granted, protocol.AssistControl) {
		return []Effect[D]{{Kind: ArmTimer, Timer: IdleTimer}}
	}
	return []Effect[D]{{Kind: DisarmTimer, Timer: IdleTimer}}
}
