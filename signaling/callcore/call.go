package callcore

import "github.com/tandemcall/tandem/signaling/protocol"

// LeaveEnds reports whether a member leaving ends the call they leave,
// joined counting the members in it before they go: a call needs two
// people, a room one.
func LeaveEnds(room bool, joined int) bool {
	left := joined - 1
	return left < 1 || !room && left < 2
}

// RingEndReason is what a user still being rung hears when the call ends
// for reason: a call that ends before anyone answered ends for them as it
// ends (cancelled, no answer, failed); a running call that ends while they
// were rung into it was, for them, cancelled.
func RingEndReason(answered bool, reason string) string {
	if answered {
		return protocol.ReasonCancelled
	}
	return reason
}
