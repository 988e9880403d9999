package protocol

import (
	"encoding/json"
	"fmt"
)

// DecodeServer parses one server message, for Go clients (tests, loadtest).
// It returns *Welcome, *Ack, *Error, *Incoming, *RingingEvent, *Accepted,
// *Ended, *SDP, *ICE, *Media, *ICEServers, *Joined, *MemberJoined, *MemberLeft, *FloorState,
// *Speakers, *Layers, *Handoff, *ActiveCall, *AssistState, *Resumed,
// *Watchers, *Presence or *Header (pong).
func DecodeServer(b []byte) (any, error) {
	var h Header
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("protocol: server message: %w", err)
	}
	var m any
	switch h.Type {
	case TypeWelcome:
		m = &Welcome{}
	case TypeAck:
		m = &Ack{}
	case TypeError:
		m = &Error{}
	case TypeIncoming:
		m = &Incoming{}
	case TypeRinging:
		m = &RingingEvent{}
	case TypeAccepted:
		m = &Accepted{}
	case TypeEnded:
		m = &Ended{}
	case TypeSDP:
		m = &SDP{}
	case TypeICE:
		m = &ICE{}
	case TypeMedia:
		m = &Media{}
	case TypePong:
		m = &Header{}
	case TypeICEServers:
		m = &ICEServers{}
	case TypeJoined:
		m = &Joined{}
	case TypeMemberJoined:
		m = &MemberJoined{}
	case TypeMemberLeft:
		m = &MemberLeft{}
	case TypeFloor:
		m = &FloorState{}
	case TypeSpeakers:
		m = &Speakers{}
	case TypeLayers:
		m = &Layers{}
	case TypeHandoff:
		m = &Handoff{}
	case TypeActiveCall:
		m = &ActiveCall{}
	case TypeAssistState:
		m = &AssistState{}
	case TypeAssistClipboard:
		m = &Clipboard{}
	case TypeAssistScreens:
		m = &AssistScreens{}
	case TypeAssistScreen:
		m = &AssistPick{}
	case TypeResumed:
		m = &Resumed{}
	case TypeWatchers:
		m = &Watchers{}
	case TypePresence:
		m = &Presence{}
	default:
		return nil, fmt.Errorf("protocol: unknown server message type %q", truncate(h.Type, 40))
	}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("protocol: %s: %w", h.Type, err)
	}
	return m, nil
}
