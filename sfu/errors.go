package sfu

import "errors"

// Errors returned by the package. They are wrapped with %w; check them with
// errors.Is.
var (
	// ErrClosed is returned when the SFU, room or participant has been closed.
	ErrClosed = errors.New("sfu: closed")
	// ErrBadSDP is returned when a client's session description is malformed
	// or cannot be applied.
	ErrBadSDP = errors.New("sfu: bad session description")
	// ErrBadCandidate is returned when a client's ICE candidate cannot be used.
	ErrBadCandidate = errors.New("sfu: bad ICE candidate")
	// ErrTooManyCandidates is returned when a client's candidates, with
	// those it sent before in the same ICE session, pass the limit of one
	// PeerConnection. An ICE restart starts a new session.
	ErrTooManyCandidates = errors.New("sfu: too many ICE candidates")
	// ErrUnknownPC is returned when a peer connection name is neither "pub"
	// nor "sub".
	ErrUnknownPC = errors.New("sfu: unknown peer connection")
	// ErrNoOffer is returned by HandleAnswer when no subscriber offer is
	// outstanding.
	ErrNoOffer = errors.New("sfu: no subscriber offer outstanding")
	// ErrDuplicateParticipant is returned by Join when the leg id is taken.
	ErrDuplicateParticipant = errors.New("sfu: participant already in room")
	// ErrBadConfig is returned by New for an invalid Config.
	ErrBadConfig = errors.New("sfu: bad config")
	// ErrNothingPublished is returned by Room.View when the room has no
	// track a WHEP viewer could be given.
	ErrNothingPublished = errors.New("sfu: nothing published in the room")
	// ErrICEMismatch is returned by WHIPSession.Patch for a fragment whose ICE
	// credentials belong to another ICE session and do not restart ICE.
	ErrICEMismatch = errors.New("sfu: ICE credentials do not match the session")
	// ErrNoLeg is returned by JoinReplacing when the leg to replace is not
	// in the room, or belongs to another user.
	ErrNoLeg = errors.New("sfu: no such leg of this user in the room")
	// ErrHandoff is returned by Takeover when the new leg did not take
	// over in time; the old leg carries on.
	ErrHandoff = errors.New("sfu: handoff did not complete")
)

// Names of a participant's two peer connections, as used in Events and
// AddICECandidate.
const (
	PCPub = "pub"
	PCSub = "sub"
)
