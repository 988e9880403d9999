package sfu

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// RoomID names a room: for a call or a named room, its call id.
type RoomID string

// LegID names a participant of a room: one device's leg of a call, or a
// WHIP publisher or WHEP viewer. It is unique in its room.
type LegID string

// Room is a set of participants whose tracks are forwarded to each other.
type Room struct {
	id  RoomID
	sfu *SFU
	log *slog.Logger

	// mu guards the fields below. Lock order: Room.mu, then Participant.mu,
	// then forwardTrack.mu.
	mu           sync.Mutex
	closed       bool
	participants map[LegID]*Participant
	tracks       []*forwardTrack

	// floor, once set, makes the room push-to-talk: only the audio of the
	// participant it names is forwarded ("" = nobody's).
	floor atomic.Pointer[LegID]

	speakerMu    sync.Mutex
	lastSpeakers []Speaker

	assist assistState // remote assistance (assist.go)
}

// SetFloor makes the room push-to-talk, if it was not, and leg the one
// participant whose audio is forwarded; "" silences everyone. It may name
// a leg that has not joined yet. Video is not affected.
func (r *Room) SetFloor(leg LegID) {
	r.floor.Store(&leg)
	r.log.Debug("floor", "leg", leg)
}

// audioAllowed reports whether audio from participant id is forwarded.
func (r *Room) audioAllowed(id LegID) bool {
	f := r.floor.Load()
	return f == nil || *f == id
}

func newRoom(s *SFU, id RoomID) *Room {
	return &Room{
		id:           id,
		sfu:          s,
		log:          s.log.With("room", id),
		participants: make(map[LegID]*Participant),
	}
}

// ID returns the room id.
func (r *Room) ID() RoomID { return r.id }

// Join adds a participant (one call leg) to the room. id must be unique in
// the room; streamID is the MediaStream id subscribers see on every track
// this participant publishes. The participant's sub PeerConnection is offered
// (via ev.SubscriberOffer) as soon as there are tracks to forward to it.
func (r *Room) Join(id LegID, streamID string, ev Events) (*Participant, error) {
	return r.join(id, streamID, ev, nil)
}

// join is Join, for a leg that takes over from replaces if that is not nil.
func (r *Room) join(id LegID, streamID string, ev Events, replaces *Participant) (*Participant, error) {
	r.mu.Lock()
	closed, taken := r.closed, r.participants[id] != nil
	r.mu.Unlock()
	if closed {
		return nil, fmt.Errorf("join room %s: %w", r.id, ErrClosed)
	}
	if taken {
		return nil, fmt.Errorf("join room %s as %s: %w", r.id, id, ErrDuplicateParticipant)
	}

	p, err := newParticipant(r, id, streamID, ev, kindLeg)
	if err != nil {
		return nil, err
	}
	p.replaces = replaces
	if replaces != nil {
		p.startKbps.Store(int32(replaces.cameraKbps()))
	}

	r.mu.Lock()
	if r.closed || r.participants[id] != nil {
		closed := r.closed
		r.mu.Unlock()
		_ = p.closePeers()
		if closed {
			return nil, fmt.Errorf("join room %s: %w", r.id, ErrClosed)
		}
		return nil, fmt.Errorf("join room %s as %s: %w", r.id, id, ErrDuplicateParticipant)
	}
	r.participants[id] = p
	r.sfu.ledger.enter(p)
	for _, ft := range r.tracks {
		// Not the user's own tracks from another of their devices.
		if ft.publisher != p && ft.publisher.streamID != streamID && r.mayReceive(ft, p) {
			r.subscribeLocked(ft, p)
		}
	}
	r.mu.Unlock()

	p.start()
	p.log.Info("participant joined")
	return p, nil
}

// subscribeLocked forwards ft to sub. The caller holds r.mu.
func (r *Room) subscribeLocked(ft *forwardTrack, sub *Participant) {
	d, err := ft.addDown(sub)
	if err != nil {
		sub.log.Warn("cannot forward track", "track", ft.id, "from", ft.publisher.id, "err", err)
		return
	}
	sub.addDown(d)
}

// publish makes ft available to every other participant, now and later.
// It reports false if the publisher is no longer in the room.
func (r *Room) publish(ft *forwardTrack) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.participants[ft.publisher.id] != ft.publisher {
		return false
	}
	r.tracks = append(r.tracks, ft)
	var have map[*Participant]bool // moved over from the replaced leg's track
	if old := ft.publisher.replaces; old != nil {
		have = r.adoptLocked(ft, old)
	}
	for _, p := range r.participants {
		// WHIP publishers receive nothing; WHEP viewers keep the tracks
		// they were answered with (whip.go). Nobody receives their own
		// user's tracks from another device.
		if p != ft.publisher && p.kind == kindLeg && p.streamID != ft.publisher.streamID && !have[p] && r.mayReceive(ft, p) {
			r.subscribeLocked(ft, p)
		}
	}
	return true
}

// unpublish stops forwarding ft and removes it from every subscriber.
func (r *Room) unpublish(ft *forwardTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unpublishLocked(ft)
}

func (r *Room) unpublishLocked(ft *forwardTrack) {
	for i, t := range r.tracks {
		if t == ft {
			r.tracks = append(r.tracks[:i:i], r.tracks[i+1:]...)
			break
		}
	}
	for _, d := range ft.removeDowns(func(*downTrack) bool { return true }) {
		if d.track() == ft { // not one a handoff moved to another track
			d.sub.removeDown(d)
		}
	}
}

// leave removes p from the room: its tracks are unpublished and it stops
// receiving the others'.
func (r *Room) leave(p *Participant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.participants[p.id] == p {
		delete(r.participants, p.id)
	}
	for _, ft := range append([]*forwardTrack(nil), r.tracks...) {
		if ft.publisher == p {
			r.unpublishLocked(ft)
			continue
		}
		ft.removeDowns(func(d *downTrack) bool { return d.sub == p })
	}
}

// close closes every participant and refuses new ones.
func (r *Room) close() {
	r.mu.Lock()
	r.closed = true
	ps := make([]*Participant, 0, len(r.participants))
	for _, p := range r.participants {
		ps = append(ps, p)
	}
	r.mu.Unlock()

	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Go(func() { _ = p.Close() })
	}
	wg.Wait()
	r.log.Debug("room closed")
}
