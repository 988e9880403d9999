// Package protocol defines Tandem's signaling wire format: versioned JSON
// messages carried one per WebSocket text frame. It decodes and validates
// untrusted bytes and imports only the standard library.
package protocol

import "encoding/json"

// Version is the protocol version this package speaks.
const Version = 1

// MaxMessageBytes is the default largest message a peer may send.
const MaxMessageBytes = 64 << 10

// Message types sent by clients.
const (
	TypeHello   = "hello"
	TypeInvite  = "invite"
	TypeRinging = "ringing"
	TypeAccept  = "accept"
	TypeDecline = "decline"
	TypeHangup  = "hangup"
	TypeSDP     = "sdp"
	TypeICE     = "ice"
	TypeMedia   = "media"
	TypePing    = "ping"
	// TypeJoin enters a named room: no ringing, members come and go.
	TypeJoin = "join"
	// TypeFloor asks for or gives back the floor of a push-to-talk room;
	// the server sends it to every member when the floor changes.
	TypeFloor = "floor"
	// TypeView tells the server how large the client shows each remote
	// video, so the SFU sends the simulcast layer that fits (and nothing
	// for a hidden tile).
	TypeView = "view"
	// TypeHandoff moves a call between a user's devices. From a client
	// it pulls the call to the sending device, or, with Device, pushes it
	// from the sending device to that one. From the server it reports
	// the handoff's progress (Handoff.State).
	TypeHandoff = "handoff"
	// TypeAssist starts remote assistance in a call: Helped names the
	// member whose screen is shared. Sent by the helper it asks the helped
	// device for Grants (view at least); sent by the helped device it
	// invites the other member to help, with Grants given at once.
	TypeAssist = "assist"
	// TypeAssistRequest is the helper asking for more grants.
	TypeAssistRequest = "assist_request"
	// TypeAssistGrant is the helped device setting what is granted: the
	// whole set, so an empty list revokes everything.
	TypeAssistGrant = "assist_grant"
	// TypeAssistEnd ends the assistance (either side); the call goes on.
	TypeAssistEnd = "assist_end"
	// TypeAssistClipboard carries clipboard text between the helper and
	// the helped device, either way, while the clipboard grant is given.
	// The server passes it to the other side with From set.
	TypeAssistClipboard = "assist_clipboard"
	// TypeAssistScreens is the helped device telling the helper the
	// screens it can share (its monitors, and all of them together) and
	// which it shares now; TypeAssistScreen is the helper choosing one.
	// The server passes each to the other side during an assistance, the
	// choice only while view is granted.
	TypeAssistScreens = "assist_screens"
	TypeAssistScreen  = "assist_screen"
)

// Assistance grants, each given only by the helped device.
const (
	AssistView     = "view"     // the helper sees the helped screen
	AssistAnnotate = "annotate" // the helper's drawings show on it
	AssistControl  = "control"  // the helper's pointer and keys act on it
	// AssistClipboard: text copied on either side may be pasted on the
	// other (each copy is sent on purpose, never read behind anyone's back).
	AssistClipboard = "clipboard"
)

// MaxClipboardBytes bounds the text of one assist_clipboard: a few pages,
// well under the smallest message limit a server may be configured with
// (signaling.max_message_bytes, at least 4096 bytes of JSON escaping more).
const MaxClipboardBytes = 16 << 10

// Why an assist_state was sent.
const (
	AssistStarted        = "started"
	AssistRequested      = "requested"
	AssistGranted        = "granted" // the grants changed (given or taken back)
	AssistRequestTimeout = "request_timeout"
	AssistControlIdle    = "control_idle"
	AssistDeviceChanged  = "device_changed" // the helped user's device changed: grants reset
	AssistEnded          = "ended"
)

// Handoff states, in server messages.
const (
	// HandoffOffer asks the named device to take the call (a push): it
	// answers with a handoff of its own, as for a pull.
	HandoffOffer = "offer"
	// HandoffStarted tells the device taking the call to connect its
	// media for the call now; Members and Video describe the call.
	HandoffStarted = "started"
	// HandoffDone tells the device that took the call that it has it.
	HandoffDone = "done"
	// HandoffFailed tells both devices that the call stays where it was.
	HandoffFailed = "failed"
)

// Room modes.
const (
	ModePTT = "ptt" // push-to-talk: only the floor holder is heard
)

// Floor actions.
const (
	FloorRequest = "request"
	FloorRelease = "release"
)

// Message types sent by the server (TypeRinging, TypeSDP, TypeICE and
// TypeMedia are used in both directions).
const (
	TypeWelcome  = "welcome"
	TypeAck      = "ack"
	TypeError    = "error"
	TypeIncoming = "incoming"
	TypeAccepted = "accepted"
	TypeEnded    = "ended"
	TypePong     = "pong"
	// TypeICEServers refreshes the ICE servers (new TURN credentials)
	// before the ones in welcome expire.
	TypeICEServers = "ice_servers"
	// TypeJoined answers join with the room's call id and members.
	TypeJoined = "joined"
	// TypeMemberJoined and TypeMemberLeft tell the members of a call or
	// room that someone joined or left (or declined an invite into it).
	TypeMemberJoined = "member_joined"
	TypeMemberLeft   = "member_left"
	// TypeSpeakers tells a call's members who is speaking, loudest first.
	TypeSpeakers = "speakers"
	// TypeLayers tells a publisher which of its simulcast layers anyone
	// watches; the client pauses the others.
	TypeLayers = "layers"
	// TypeActiveCall tells each of a user's devices which of them holds
	// the user's call ("on a call with Bob on your phone — move it here"),
	// and again, with an empty CallID, when it ends.
	TypeActiveCall = "active_call"
	// TypeResumed tells a device that signed in again within the grace
	// window that its call went on: the session took over the call's leg.
	TypeResumed = "resumed"
	// TypeAssistState tells both sides of an assistance what is granted
	// and asked for, whenever that changes.
	TypeAssistState = "assist_state"
	// TypeWatchers tells a call's members how many WHEP viewers watch it
	// from outside, whenever that changes and on joining while any do.
	TypeWatchers = "watchers"
	// TypePresence tells a device whether its person's contacts are
	// reachable: all of them once it signs in, then each change.
	TypePresence = "presence"
)

// Presence states.
const (
	PresenceAvailable = "available" // a device is online, and they are in no call
	PresenceInCall    = "in_call"   // in a call or room
	PresenceOffline   = "offline"   // no device online; LastSeen says since when
)

// Peer connection names: every call leg has two PeerConnections with the
// SFU. On "pub" the client offers and sends its media; on "sub" the server
// offers and sends the other members' media.
const (
	PCPub = "pub"
	PCSub = "sub"
)

// SDP kinds.
const (
	SDPOffer  = "offer"
	SDPAnswer = "answer"
)

// End reasons (DESIGN.md, "Call model").
const (
	ReasonCompleted         = "completed"
	ReasonDeclined          = "declined"
	ReasonBusy              = "busy"
	ReasonNoAnswer          = "no_answer"
	ReasonCancelled         = "cancelled"
	ReasonAnsweredElsewhere = "answered_elsewhere"
	ReasonDeclinedElsewhere = "declined_elsewhere"
	ReasonConnectionLost    = "connection_lost"
	ReasonFailed            = "failed"
	ReasonHandedOff         = "handed_off"
	// ReasonRemoved: an operator took this device out of the call.
	ReasonRemoved = "removed"
	// ReasonEndedByOperator: an operator ended the call for everyone.
	ReasonEndedByOperator = "ended_by_operator"
)

// Error codes carried in Error.Code.
const (
	CodeBadMessage         = "bad_message"         // not JSON, or a field has the wrong type or value
	CodeUnknownType        = "unknown_type"        // "type" names no message this server knows
	CodeUnsupportedVersion = "unsupported_version" // "v" is not a version this server speaks
	CodeTooLarge           = "too_large"           // message over the size limit; the socket closes
	CodeUnauthorized       = "unauthorized"        // missing, forged or malformed token; the socket closes
	CodeTokenExpired       = "token_expired"       // token past its expiry; the socket closes
	CodeTokenRevoked       = "token_revoked"       // the user's data was erased after this token was issued; the socket closes
	CodeHelloRequired      = "hello_required"      // first message was not hello, or hello came twice
	CodeForbidden          = "forbidden"           // the token lacks the grant this action needs
	CodeUserUnknown        = "user_unknown"        // the callee has never signed in on this server
	CodeUserOffline        = "user_offline"        // the callee has no device online
	CodeNotAContact        = "not_a_contact"       // the callee takes calls only from their contacts (accounts.calls_from)
	CodeNotFound           = "call_not_found"      // no such call, or it has ended
	CodeNotInCall          = "not_in_call"         // this device is not a member of that call
	CodeInvalidState       = "invalid_state"       // the action does not fit the call's state now
	CodeBusy               = "busy"                // you are already in a call
	CodeCallFull           = "call_full"           // the call or room has as many members as it may
	CodeRateLimited        = "rate_limited"        // too many messages
	CodeMediaFailed        = "media_failed"        // the SFU rejected SDP or a candidate
	CodeReplaced           = "replaced"            // the same device signed in again elsewhere
	CodeShuttingDown       = "shutting_down"       // the server is draining
	CodeInternal           = "internal"            // the server failed; the session carries on
	// CodeUnavailable: the deployment's shared state (Redis) or the node
	// holding the call cannot be reached. Calls in progress keep their
	// media; try again shortly.
	CodeUnavailable = "unavailable"
)

// Header is present in every message.
type Header struct {
	V    int    `json:"v,omitempty"`
	Type string `json:"type"`
	// ID is an optional client-chosen request id, echoed as Re in the
	// server's ack or error for that request.
	ID string `json:"id,omitempty"`
}

// ---- client → server ----

// Hello must be the first message on a socket.
type Hello struct {
	Header
	Token string `json:"token"`
}

// Invite starts a call to another user; every online device of theirs
// rings. With CallID it invites them into that running call instead (a
// group call); the sender must be a member of it.
type Invite struct {
	Header
	To     string `json:"to"`
	Video  bool   `json:"video"`
	CallID string `json:"call_id,omitempty"`
}

// Join enters the named room, creating it if needed. Everyone in a room
// receives everyone else's media; leave with hangup.
type Join struct {
	Header
	Room string `json:"room"`
	// Mode is "" or "ptt"; the first join sets the room's mode.
	Mode string `json:"mode,omitempty"`
}

// Floor requests (queueing behind the holder) or releases the floor of a
// push-to-talk room.
type Floor struct {
	Header
	CallID string `json:"call_id"`
	Action string `json:"action"`
}

// MaxViewTiles bounds the tiles one view message may describe.
const MaxViewTiles = 64

// Tile is how one remote video is shown: the user whose stream it is, the
// track ("video" is the camera, "video-2" and on are further tracks such as
// a screen share), and its size in CSS pixels times devicePixelRatio.
// Width and height 0 mean hidden: nothing is sent for it.
type Tile struct {
	User   string `json:"user"`
	Track  string `json:"track"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// View replaces the sizes the client shows remote videos at. Videos not
// listed get the largest layer their bandwidth allows.
type View struct {
	Header
	CallID string `json:"call_id"`
	Tiles  []Tile `json:"tiles"`
}

// CallRef names a call; used by ringing, decline and hangup.
type CallRef struct {
	Header
	CallID string `json:"call_id"`
}

// Assist starts remote assistance in a call (TypeAssist), asks for more
// grants (TypeAssistRequest, Helped unset) or sets them (TypeAssistGrant,
// Helped unset).
type Assist struct {
	Header
	CallID string   `json:"call_id"`
	Helped string   `json:"helped,omitempty"`
	Grants []string `json:"grants"`
}

// Clipboard is clipboard text sent across an assistance
// (TypeAssistClipboard). From is set by the server: the user who copied it.
type Clipboard struct {
	Header
	CallID string `json:"call_id"`
	Text   string `json:"text"`
	From   string `json:"from,omitempty"`
}

// MaxAssistScreens bounds the screens an assist_screens lists.
const MaxAssistScreens = 16

// AssistScreens lists what the helped device can share (TypeAssistScreens):
// Screens[0] is its whole desktop, the others its monitors, positions in
// the desktop's pixels; Shown indexes the one shared now.
type AssistScreens struct {
	Header
	CallID  string         `json:"call_id"`
	Screens []AssistScreen `json:"screens"`
	Shown   int            `json:"shown"`
}

// AssistScreen is one screen the helped device can share.
type AssistScreen struct {
	Name   string `json:"name"`
	X      int    `json:"x"`
	Y      int    `json:"y"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// AssistPick is the helper choosing what to see (TypeAssistScreen):
// Screen indexes the helped device's last assist_screens.
type AssistPick struct {
	Header
	CallID string `json:"call_id"`
	Screen int    `json:"screen"`
}

// AssistState describes a call's assistance: who helps whom, what the
// helped device granted and what the helper asked for and awaits. Active
// false means it is over.
type AssistState struct {
	Header
	CallID    string   `json:"call_id"`
	Active    bool     `json:"active"`
	Helper    string   `json:"helper"`
	Helped    string   `json:"helped"`
	Granted   []string `json:"granted"`
	Requested []string `json:"requested,omitempty"`
	Reason    string   `json:"reason"`
}

// Accept answers an incoming call on this device. EndCurrent ends the call
// this user is already in (call waiting) before accepting.
type Accept struct {
	Header
	CallID     string `json:"call_id"`
	EndCurrent bool   `json:"end_current,omitempty"`
}

// SDP carries an offer or an answer for one of the leg's PeerConnections.
type SDP struct {
	Header
	CallID string `json:"call_id"`
	PC     string `json:"pc"`
	Kind   string `json:"kind"`
	SDP    string `json:"sdp"`
}

// ICECandidate mirrors the browser's RTCIceCandidateInit. An empty
// Candidate means end of candidates.
type ICECandidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// ICE carries one trickled candidate.
type ICE struct {
	Header
	CallID    string       `json:"call_id"`
	PC        string       `json:"pc"`
	Candidate ICECandidate `json:"candidate"`
}

// Media tells what a leg is sending: false means muted / camera off. From
// the server it carries the User it describes.
type Media struct {
	Header
	CallID string `json:"call_id"`
	User   string `json:"user,omitempty"`
	Audio  bool   `json:"audio"`
	Video  bool   `json:"video"`
}

// Handoff, from a client, pulls the call to this device (Device empty) or
// pushes it from this device to Device. From the server, State says how
// the handoff goes; Device is the other device involved.
type Handoff struct {
	Header
	CallID string `json:"call_id"`
	Device string `json:"device,omitempty"`
	// Listen, from a device, adds it to the call as a second, receive-only
	// leg of its user while the call stays where it is (listen on the TV
	// while the phone stays in); the server's started and done for it
	// carry Listen too.
	Listen bool `json:"listen,omitempty"`
	// Keep, from a device listening along that takes the call, asks to
	// take it on the leg it listens with: it will offer its camera and
	// microphone on the PeerConnections it has, and keeps receiving the
	// others throughout. The server's started carries Keep when it agrees;
	// otherwise the device connects a new leg, as for any handoff.
	Keep    bool    `json:"keep,omitempty"`
	State   string  `json:"state,omitempty"`
	Video   bool    `json:"video,omitempty"`
	Members []Party `json:"members,omitempty"`
	Message string  `json:"message,omitempty"`
}

// ---- server → client ----

// Resumed names a call a device's new session took over from its lost one;
// the media connections of the call carry on (restart ICE if the network
// changed).
type Resumed struct {
	Header
	CallID  string  `json:"call_id"`
	Room    string  `json:"room,omitempty"`
	Video   bool    `json:"video,omitempty"`
	Members []Party `json:"members"`
	// Rejoin says the call's media moved to another node (the one that
	// held it died or left): close the call's PeerConnections and connect
	// new ones, as on joining.
	Rejoin bool `json:"rejoin,omitempty"`
}

// ActiveCall names the device holding the user's call and who is in it;
// an empty CallID means the user is in no call.
type ActiveCall struct {
	Header
	CallID string `json:"call_id"`
	Device string `json:"device,omitempty"`
	// Listening names the user's devices that listen along (Handoff.Listen).
	Listening []string `json:"listening,omitempty"`
	// Online names the user's devices signed in now, the holder too: the
	// ones a push can send the call to.
	Online  []string `json:"online,omitempty"`
	Video   bool     `json:"video,omitempty"`
	Members []Party  `json:"members,omitempty"`
}

// ICEServer mirrors the browser's RTCIceServer.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Welcome answers a valid hello.
type Welcome struct {
	Header
	Protocol      int         `json:"protocol"`
	SessionID     string      `json:"session_id"`
	User          string      `json:"user"`
	Device        string      `json:"device"`
	ICEServers    []ICEServer `json:"ice_servers"`
	RingTimeoutMS int64       `json:"ring_timeout_ms"`
}

// ICEServers replaces the ICE servers a client uses from now on.
type ICEServers struct {
	Header
	ICEServers []ICEServer `json:"ice_servers"`
}

// Ack confirms a request; CallID is set for invite.
type Ack struct {
	Header
	Re     string `json:"re,omitempty"`
	CallID string `json:"call_id,omitempty"`
}

// Error reports a request that failed or a message that could not be read.
type Error struct {
	Header
	Re      string `json:"re,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
	CallID  string `json:"call_id,omitempty"`
	// RetryAfterMS says, with rate_limited from a limit of its own (such
	// as invites'), how long until the same request would be allowed.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

// Party names a user and one of their devices.
type Party struct {
	User   string `json:"user"`
	Device string `json:"device,omitempty"`
}

// Incoming rings a callee device. Waiting is true when the callee is already
// in a call: accepting needs end_current, and declining gives the caller busy.
type Incoming struct {
	Header
	CallID  string `json:"call_id"`
	From    Party  `json:"from"`
	Video   bool   `json:"video"`
	Waiting bool   `json:"waiting,omitempty"`
	// Stranger: the caller is not among the callee's contacts (the
	// callee has a built-in account; docs/protocol.md, "Contacts and
	// presence").
	Stranger bool `json:"stranger,omitempty"`
	// Members are the call's members when this is an invite into a
	// running call (a group call); empty for a new call.
	Members []Party `json:"members,omitempty"`
}

// RingingEvent tells the caller that one of the callee's devices rings.
type RingingEvent struct {
	Header
	CallID string `json:"call_id"`
	Device string `json:"device"`
}

// Accepted tells the caller and the answering device that the call is up.
// For someone who joined a running call, Peer is who invited them and
// Members lists everyone in the call, them included.
type Accepted struct {
	Header
	CallID  string  `json:"call_id"`
	By      Party   `json:"by"`
	Peer    Party   `json:"peer"`
	Members []Party `json:"members,omitempty"`
}

// Joined answers join: the room's call id (for sdp, ice and hangup) and
// its members, this device included.
type Joined struct {
	Header
	CallID  string  `json:"call_id"`
	Room    string  `json:"room"`
	Mode    string  `json:"mode,omitempty"`
	Members []Party `json:"members"`
}

// FloorState tells a push-to-talk room's members who holds the floor
// ("" = nobody), who waits for it, and how long the holder may still talk.
type FloorState struct {
	Header
	CallID    string   `json:"call_id"`
	Holder    string   `json:"holder"`
	Queue     []string `json:"queue"`
	ExpiresMS int64    `json:"expires_ms,omitempty"`
}

// Speaker is one member heard in the last interval; Level is 0 (silence)
// to 100 (loudest).
type Speaker struct {
	User  string `json:"user"`
	Level int    `json:"level"`
}

// Speakers lists who is speaking now, loudest first; an empty list means
// silence.
type Speakers struct {
	Header
	CallID   string    `json:"call_id"`
	Speakers []Speaker `json:"speakers"`
}

// Layers tells a publisher which simulcast layers (by rid) of its track
// anybody receives. The client sets the others' encodings inactive, so
// they cost neither its CPU nor its uplink.
type Layers struct {
	Header
	CallID string          `json:"call_id"`
	Track  string          `json:"track"`
	Active map[string]bool `json:"active"`
}

// MemberJoined tells a call's members that someone joined.
type MemberJoined struct {
	Header
	CallID string `json:"call_id"`
	Member Party  `json:"member"`
}

// MemberLeft tells a call's members that someone left, or declined or
// missed an invite into it; Reason is an end reason.
type MemberLeft struct {
	Header
	CallID string `json:"call_id"`
	User   string `json:"user"`
	Reason string `json:"reason"`
}

// Watchers tells a call's members how many WHEP players watch the call
// now (docs/protocol.md, "WHIP and WHEP"): they see and hear it but are
// not members. WHEP is that count; 0 means nobody watches any more.
type Watchers struct {
	Header
	CallID string `json:"call_id"`
	WHEP   int    `json:"whep"`
}

// Presence is what a person's contacts see of them: only their contacts
// are ever told (docs/protocol.md, "Contacts and presence").
type Presence struct {
	Header
	People []PersonPresence `json:"people"`
}

// PersonPresence is one contact's presence.
type PersonPresence struct {
	User  string `json:"user"`
	State string `json:"state"`
	// LastSeenMS is when an offline contact was last seen, Unix ms; 0
	// if never.
	LastSeenMS int64 `json:"last_seen_ms,omitempty"`
}

// Ended tells a device that the call has ended for it, and why.
type Ended struct {
	Header
	CallID     string `json:"call_id"`
	Reason     string `json:"reason"`
	DurationMS int64  `json:"duration_ms"`
	// Device, with handed_off, names the device that holds the call now.
	Device string `json:"device,omitempty"`
}

// EncodedMessage is any message that can be sent.
type EncodedMessage interface{ header() *Header }

func (h *Header) header() *Header { return h }

// Encode sets the version and type and marshals m.
func Encode(typ string, m EncodedMessage) ([]byte, error) {
	h := m.header()
	h.V = Version
	h.Type = typ
	return json.Marshal(m)
}

// TypeOf returns the type of a message Decode returned ("" for anything
// else).
func TypeOf(m any) string {
	if e, ok := m.(EncodedMessage); ok {
		return e.header().Type
	}
	return ""
}
