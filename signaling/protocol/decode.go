package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on fields of client messages.
const (
	MaxIDLen        = 128 // user, device, call and request ids
	MaxTokenLen     = 4096
	MaxCandidateLen = 1024
)

// DecodeError is a message that could not be accepted; Code is one of the
// Code* constants and goes back to the client in an Error.
type DecodeError struct {
	Code string
	Msg  string
	// ID is the request id, when the header could be read.
	ID string
}

func (e *DecodeError) Error() string { return e.Code + ": " + e.Msg }

func decodeErr(id, code, format string, args ...any) *DecodeError {
	return &DecodeError{Code: code, Msg: fmt.Sprintf(format, args...), ID: id}
}

// RequestID returns the request id of a client message, or "" when the
// message has none or its header cannot be read. It reads the header
// only: for answering a message that is refused before it is decoded
// (rate_limited) with the id the client will match.
func RequestID(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return ""
	}
	var h Header
	if json.Unmarshal(b, &h) != nil || checkID("id", h.ID, false) != nil {
		return ""
	}
	return h.ID
}

// ErrEmpty is returned for an empty message.
var ErrEmpty = errors.New("protocol: empty message")

// Decode parses and validates one client message. It returns one of *Hello,
// *Invite, *Join, *Floor, *View, *CallRef (ringing, decline, hangup), *Accept, *SDP, *ICE, *Media
// or *Header (ping). Every failure is a *DecodeError.
func Decode(b []byte) (any, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, decodeErr("", CodeBadMessage, "empty message")
	}
	if b[0] != '{' {
		return nil, decodeErr("", CodeBadMessage, "message must be a JSON object")
	}
	var h Header
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, decodeErr("", CodeBadMessage, "invalid JSON: %v", jsonErrText(err))
	}
	if err := checkID("id", h.ID, false); err != nil {
		return nil, decodeErr("", CodeBadMessage, "%v", err)
	}
	if h.V != 0 && h.V != Version {
		return nil, decodeErr(h.ID, CodeUnsupportedVersion, "protocol version %d is not supported; this server speaks %d", h.V, Version)
	}
	var m interface{ validate() error }
	switch h.Type {
	case TypeHello:
		m = &Hello{}
	case TypeInvite:
		m = &Invite{}
	case TypeRinging, TypeDecline, TypeHangup:
		m = &CallRef{}
	case TypeAccept:
		m = &Accept{}
	case TypeSDP:
		m = &SDP{}
	case TypeICE:
		m = &ICE{}
	case TypeMedia:
		m = &Media{}
	case TypeJoin:
		m = &Join{}
	case TypeFloor:
		m = &Floor{}
	case TypeView:
		m = &View{}
	case TypeHandoff:
		m = &Handoff{}
	case TypeAssist, TypeAssistRequest, TypeAssistGrant:
		m = &Assist{}
	case TypeAssistEnd:
		m = &CallRef{}
	case TypeAssistClipboard:
		m = &Clipboard{}
	case TypeAssistScreens:
		m = &AssistScreens{}
	case TypeAssistScreen:
		m = &AssistPick{}
	case TypePing:
		m = &Header{}
	case "":
		return nil, decodeErr(h.ID, CodeBadMessage, "missing \"type\"")
	default:
		return nil, decodeErr(h.ID, CodeUnknownType, "unknown message type %q", truncate(h.Type, 40))
	}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, decodeErr(h.ID, CodeBadMessage, "%s: %v", h.Type, jsonErrText(err))
	}
	if err := m.validate(); err != nil {
		return nil, decodeErr(h.ID, CodeBadMessage, "%s: %v", h.Type, err)
	}
	return m, nil
}

func jsonErrText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type.String())
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "malformed"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// checkID accepts printable UTF-8 without spaces, up to MaxIDLen bytes.
func checkID(field, s string, required bool) error {
	if s == "" {
		if required {
			return fmt.Errorf("%q is required", field)
		}
		return nil
	}
	if len(s) > MaxIDLen {
		return fmt.Errorf("%q is longer than %d bytes", field, MaxIDLen)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%q is not valid UTF-8", field)
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("%q may not contain spaces or control characters", field)
		}
	}
	return nil
}

// ValidID reports whether s is acceptable as a user, device or call id.
func ValidID(s string) bool { return s != "" && checkID("id", s, true) == nil }

func (h *Header) validate() error { return nil }

func (m *Hello) validate() error {
	if m.Token == "" {
		return errors.New(`"token" is required`)
	}
	if len(m.Token) > MaxTokenLen {
		return fmt.Errorf(`"token" is longer than %d bytes`, MaxTokenLen)
	}
	return nil
}

func (m *Invite) validate() error {
	if err := checkID("to", m.To, true); err != nil {
		return err
	}
	return checkID("call_id", m.CallID, false)
}

// MaxRoomLen is the longest room name.
const MaxRoomLen = 64

// CheckRoom reports whether name is a valid room name: 1–64 bytes of a-z,
// 0-9, '-', '_' and '.'. Room names are shared by join and by the WHIP and
// WHEP endpoints.
func CheckRoom(name string) error {
	if len(name) > MaxRoomLen {
		return fmt.Errorf("%q is longer than %d bytes", "room", MaxRoomLen)
	}
	if name == "" {
		return fmt.Errorf("%q is required", "room")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%q may hold only a-z, 0-9, '-', '_' and '.'", "room")
		}
	}
	return nil
}

func (m *Join) validate() error {
	if err := CheckRoom(m.Room); err != nil {
		return err
	}
	if m.Mode != "" && m.Mode != ModePTT {
		return fmt.Errorf("%q must be empty or %q", "mode", ModePTT)
	}
	return nil
}

func (m *Floor) validate() error {
	if err := checkID("call_id", m.CallID, true); err != nil {
		return err
	}
	if m.Action != FloorRequest && m.Action != FloorRelease {
		return fmt.Errorf("%q must be %q or %q", "action", FloorRequest, FloorRelease)
	}
	return nil
}

// maxTileSide bounds a tile's width and height in pixels.
const maxTileSide = 16384

func (m *View) validate() error {
	if err := checkID("call_id", m.CallID, true); err != nil {
		return err
	}
	if len(m.Tiles) > MaxViewTiles {
		return fmt.Errorf("%q has more than %d entries", "tiles", MaxViewTiles)
	}
	for i, t := range m.Tiles {
		if err := checkID(fmt.Sprintf("tiles[%d].user", i), t.User, true); err != nil {
			return err
		}
		if err := checkID(fmt.Sprintf("tiles[%d].track", i), t.Track, true); err != nil {
			return err
		}
		if t.Width < 0 || t.Height < 0 || t.Width > maxTileSide || t.Height > maxTileSide {
			return fmt.Errorf("tiles[%d]: width and height must be 0 to %d", i, maxTileSide)
		}
	}
	return nil
}

func (m *CallRef) validate() error { return checkID("call_id", m.CallID, true) }

func (m *Accept) validate() error { return checkID("call_id", m.CallID, true) }

func checkPC(pc string) error {
	if pc != PCPub && pc != PCSub {
		return fmt.Errorf(`"pc" must be %q or %q`, PCPub, PCSub)
	}
	return nil
}

func (m *SDP) validate() error {
	if err := checkID("call_id", m.CallID, true); err != nil {
		return err
	}
	if err := checkPC(m.PC); err != nil {
		return err
	}
	// The client offers on pub and answers on sub.
	switch {
	case m.PC == PCPub && m.Kind != SDPOffer:
		return errors.New(`on "pub" the client sends "offer"`)
	case m.PC == PCSub && m.Kind != SDPAnswer:
		return errors.New(`on "sub" the client sends "answer"`)
	}
	if m.SDP == "" {
		return errors.New(`"sdp" is required`)
	}
	if !utf8.ValidString(m.SDP) {
		return errors.New(`"sdp" is not valid UTF-8`)
	}
	return nil
}

func (m *ICE) validate() error {
	if err := checkID("call_id", m.CallID, true); err != nil {
		return err
	}
	if err := checkPC(m.PC); err != nil {
		return err
	}
	c := m.Candidate
	if len(c.Candidate) > MaxCandidateLen {
		return fmt.Errorf(`"candidate" is longer than %d bytes`, MaxCandidateLen)
	}
	if c.SDPMid != nil && len(*c.SDPMid) > MaxIDLen {
		return errors.New(`"sdpMid" is too long`)
	}
	if c.UsernameFragment != nil && len(*c.UsernameFragment) > 256 {
		return errors.New(`"usernameFragment" is too long`)
	}
	return nil
}

func (m *Media) validate() error { return checkID("call_id", m.CallID, true) }

// MaxAssistGrants bounds an assist message's grant list.
const MaxAssistGrants = 4

func (m *Assist) validate() error {
	if err := checkID("call_id", m.CallID, true); err != nil {
		return err
	}
	if err := checkID("helped", m.Helped, false); err != nil {
		return err
	}
	switch {
	case m.Type == TypeAssist && m.Helped == "":
		return errors.New(`"helped" is required: the user whose screen is shared`)
	case m.Type != TypeAssist && m.Helped != "":
		return errors.New(`"helped" is set only when assistance starts`)
	case m.Type == TypeAssistRequest && len(m.Grants) == 0:
		return errors.New(`"grants" names what to ask for`)
	}
	if len(m.Grants) > MaxAssistGrants {
		return fmt.Errorf(`"grants" lists more than %d`, MaxAssistGrants)
	}
	for _, g := range m.Grants {
		switch g {
		case AssistView, AssistAnnotate, AssistControl, AssistClipboard:
		default:
			return fmt.Errorf(`unknown grant %q (want view, annotate, control or clipboard)`, truncate(g, 40))
		}
	}
	return nil
}

func (m *Clipboard) validate() error {
	if err := checkID("call_id", m.CallID, true); err != nil {
		return err
	}
	switch {
	case m.From != "":
		return errors.New(`"from" is set only by the server`)
	case m.Text == "":
		return errors.New(`"text" is empty: nothing to paste`)
	case len(m.Text) > MaxClipboardBytes:
		return fmt.Errorf(`"text" is %d bytes, over the %d a clipboard message carries`, len(m.Text), MaxClipboardBytes)
	case !utf8.ValidString(m.Text) || strings.ContainsRune(m.Text, 0):
		return errors.New(`"text" must be UTF-8 text without NUL characters`)
	}
	return nil
}

// maxScreenSide bounds a desktop's size and positions in pixels: X11's
// own limit.
const maxScreenSide = 1<<15 - 1

func (m *AssistScreens) validate() error {
	if err := checkID("call_id", m.CallID, true); err != nil {
		return err
	}
	if len(m.Screens) == 0 || len(m.Screens) > MaxAssistScreens {
		return fmt.Errorf(`"screens" lists 1 to %d screens`, MaxAssistScreens)
	}
	for i, sc := range m.Screens {
		switch {
		case len(sc.Name) > 64 || !utf8.ValidString(sc.Name):
			return fmt.Errorf(`screen %d: "name" is UTF-8 of at most 64 bytes`, i)
		case sc.Width < 1 || sc.Height < 1 || sc.Width > maxScreenSide || sc.Height > maxScreenSide ||
			sc.X < 0 || sc.Y < 0 || sc.X > maxScreenSide || sc.Y > maxScreenSide:
			return fmt.Errorf("screen %d: position or size out of range", i)
		}
	}
	if m.Shown < 0 || m.Shown >= len(m.Screens) {
		return errors.New(`"shown" is not one of "screens"`)
	}
	return nil
}

func (m *AssistPick) validate() error {
	if err := checkID("call_id", m.CallID, true); err != nil {
		return err
	}
	if m.Screen < 0 || m.Screen >= MaxAssistScreens {
		return fmt.Errorf(`"screen" must be 0 to %d`, MaxAssistScreens-1)
	}
	return nil
}

func (m *Handoff) validate() error {
	if err := checkID("call_id", m.CallID, true); err != nil {
		return err
	}
	if m.State != "" {
		return errors.New(`"state" is set only by the server`)
	}
	if m.Listen && m.Device != "" {
		return errors.New(`"listen" adds the sending device; it takes no "device"`)
	}
	return checkID("device", m.Device, false)
}
