package signaling

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/sfu"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// MediaServer is what signaling needs from the SFU: a leg joins the room
// of its call, and a room is closed when its call ends.
type MediaServer interface {
	Join(room sfu.RoomID, leg sfu.LegID, streamID string, ev sfu.Events) (MediaLeg, error)
	// JoinReplacing adds a leg that takes over the tracks of leg old of
	// the same user (a handoff); its Takeover says when it has.
	JoinReplacing(room sfu.RoomID, leg sfu.LegID, streamID string, ev sfu.Events, old sfu.LegID) (MediaLeg, error)
	CloseRoom(room sfu.RoomID)
	// Participants describes room's legs now (none if it has no media).
	Participants(room sfu.RoomID) []sfu.ParticipantInfo
	// SetFloor makes room push-to-talk with leg the only one heard ("" =
	// nobody). A room with no legs yet is left alone.
	SetFloor(room sfu.RoomID, leg sfu.LegID)
	// SetAssist sets the room's remote assistance (nil: none): what the
	// helper may see of the helped user's screen and send to their device.
	SetAssist(room sfu.RoomID, a *sfu.Assist)
	// ControlActivity is when the room's helper last sent a control event
	// that was forwarded (zero: never).
	ControlActivity(room sfu.RoomID) time.Time
}

// MediaLeg is one device's connection to a room.
type MediaLeg interface {
	HandleOffer(sdp string) (string, error)
	HandleAnswer(sdp string) error
	AddICECandidate(pc string, c webrtc.ICECandidateInit) error
	// SetView replaces the sizes the device shows the others' videos at.
	SetView(tiles []sfu.Tile)
	// Takeover waits until a leg made by JoinReplacing carries the media
	// of the leg it replaces, or ctx ends (then everything stays with the
	// old leg and it returns an error).
	Takeover(ctx context.Context) error
	// Replace makes a leg that has published nothing yet (a device
	// listening along) take over from leg old of the same user, as
	// JoinReplacing would, keeping what it receives.
	Replace(old sfu.LegID) error
	// QualitySummary is the leg's network quality over its life, and
	// false if it was never measured.
	QualitySummary() (sfu.LegQuality, bool)
	Close() error
}

// SFUMedia adapts *sfu.SFU to MediaServer.
type SFUMedia struct{ SFU *sfu.SFU }

var _ MediaServer = SFUMedia{}

// Join implements MediaServer.
func (m SFUMedia) Join(room sfu.RoomID, leg sfu.LegID, streamID string, ev sfu.Events) (MediaLeg, error) {
	p, err := m.SFU.Room(room).Join(leg, streamID, ev)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// JoinReplacing implements MediaServer.
func (m SFUMedia) JoinReplacing(room sfu.RoomID, leg sfu.LegID, streamID string, ev sfu.Events, old sfu.LegID) (MediaLeg, error) {
	p, err := m.SFU.Room(room).JoinReplacing(leg, streamID, ev, old)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// CloseRoom implements MediaServer.
func (m SFUMedia) CloseRoom(room sfu.RoomID) { m.SFU.CloseRoom(room) }

func (m SFUMedia) Participants(room sfu.RoomID) []sfu.ParticipantInfo {
	if r := m.SFU.LookupRoom(room); r != nil {
		return r.Participants()
	}
	return nil
}

// SetFloor implements MediaServer.
func (m SFUMedia) SetFloor(room sfu.RoomID, leg sfu.LegID) {
	if r := m.SFU.LookupRoom(room); r != nil {
		r.SetFloor(leg)
	}
}

// SetAssist implements MediaServer.
func (m SFUMedia) SetAssist(room sfu.RoomID, a *sfu.Assist) {
	if r := m.SFU.LookupRoom(room); r != nil {
		r.SetAssist(a)
	}
}

// ControlActivity implements MediaServer.
func (m SFUMedia) ControlActivity(room sfu.RoomID) time.Time {
	if r := m.SFU.LookupRoom(room); r != nil {
		return r.ControlActivity()
	}
	return time.Time{}
}

// legEvents forwards a leg's SFU events to its device. Methods run on pion
// goroutines and never block: sending only enqueues. The SFU may gather pub
// candidates before HandleOffer returns; they are held until the answer
// has been queued, so the client never sees a candidate before the answer.
type legEvents struct {
	sess   atomic.Pointer[Session] // the device's session; a resumed one replaces it
	callID string

	mu      sync.Mutex
	holding bool
	held    []*protocol.ICE
}

var _ sfu.Events = (*legEvents)(nil)

// newLegEvents returns the event sink of s's leg in a call; it holds pub
// candidates until release.
func newLegEvents(s *Session, callID string) *legEvents {
	e := &legEvents{callID: callID, holding: true}
	e.sess.Store(s)
	return e
}

// session is the session the leg's events go to.
func (e *legEvents) session() *Session { return e.sess.Load() }

// hold starts holding pub candidates (before HandleOffer).
func (e *legEvents) hold() {
	e.mu.Lock()
	e.holding = true
	e.mu.Unlock()
}

// release sends the held candidates (after the answer was queued).
func (e *legEvents) release() {
	e.mu.Lock()
	held := e.held
	e.held, e.holding = nil, false
	e.mu.Unlock()
	for _, m := range held {
		e.session().send(protocol.TypeICE, m)
	}
}

func (e *legEvents) SubscriberOffer(sdp string) {
	e.session().send(protocol.TypeSDP, &protocol.SDP{CallID: e.callID, PC: protocol.PCSub, Kind: protocol.SDPOffer, SDP: sdp})
}

func (e *legEvents) ICECandidate(pc string, c *webrtc.ICECandidateInit) {
	m := &protocol.ICE{CallID: e.callID, PC: pc}
	if c != nil {
		m.Candidate = protocol.ICECandidate{
			Candidate: c.Candidate, SDPMid: c.SDPMid, SDPMLineIndex: c.SDPMLineIndex, UsernameFragment: c.UsernameFragment,
		}
	}
	if pc == protocol.PCPub {
		e.mu.Lock()
		if e.holding {
			e.held = append(e.held, m)
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
	}
	e.session().send(protocol.TypeICE, m)
}

func (e *legEvents) Layers(track string, active map[string]bool) {
	e.session().send(protocol.TypeLayers, &protocol.Layers{CallID: e.callID, Track: track, Active: active})
}

func (e *legEvents) Speakers(speakers []sfu.Speaker) {
	m := &protocol.Speakers{CallID: e.callID, Speakers: make([]protocol.Speaker, len(speakers))}
	for i, sp := range speakers {
		m.Speakers[i] = protocol.Speaker{User: sp.StreamID, Level: sp.Level}
	}
	e.session().send(protocol.TypeSpeakers, m)
}

func (e *legEvents) ConnectionState(pc string, st webrtc.PeerConnectionState) {
	e.session().log.Debug("media connection", "call", e.callID, "pc", pc, "state", st.String())
	if st == webrtc.PeerConnectionStateFailed {
		e.session().post(mediaFailed{callID: e.callID, pc: pc})
	}
}

// mediaFailed is posted to the session loop when a leg's PeerConnection
// fails for good.
type mediaFailed struct{ callID, pc string }
