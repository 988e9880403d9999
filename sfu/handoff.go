package sfu

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Handoff moves a user's call from one device's leg to another's without
// the other participants noticing (DESIGN.md, "Handoff"). The new leg joins
// the room replacing the old one (JoinReplacing) and publishes. As each of
// its tracks arrives, every subscriber of the old leg's matching track
// (same kind and track id) is moved onto it: the downTrack, which is what
// the subscriber's PeerConnection holds, stays, and only the forwardTrack it
// copies changes. The downTrack targets the new track's layer and switches
// at its first keyframe (video) or packet (audio), continuing its sequence
// numbers and timestamps as a simulcast layer switch does, under the same
// SSRC: the subscriber sees one continuous track and no renegotiation.
// Until the switch the old leg's packets keep flowing: make before break.
// Takeover reports when every subscriber has switched; the caller then
// closes the old leg. If the new leg does not get there in time, Takeover
// moves everyone back.

// adoption is one of the old leg's tracks taken over by the new leg's.
type adoption struct {
	from, to *forwardTrack
	downs    []*downTrack
}

// JoinReplacing adds a leg that takes over the tracks of leg old, which
// must be in the room with the same stream id (the same user). The new leg
// receives the other participants' tracks as any leg does, and none of
// old's.
func (r *Room) JoinReplacing(id, streamID string, ev Events, old string) (*Participant, error) {
	r.mu.Lock()
	op := r.participants[old]
	r.mu.Unlock()
	if op == nil || op.streamID != streamID || op.kind != kindLeg {
		return nil, fmt.Errorf("join room %s replacing %s: %w", r.id, old, ErrNoLeg)
	}
	return r.join(id, streamID, ev, op)
}

// adoptLocked moves the subscribers of old's track matching ft onto ft and
// returns them by participant. The caller holds r.mu.
func (r *Room) adoptLocked(ft *forwardTrack, old *Participant) map[*Participant]bool {
	var from *forwardTrack
	for _, t := range r.tracks {
		if t.publisher == old && t.kind == ft.kind && t.id == ft.id &&
			strings.EqualFold(t.codec.MimeType, ft.codec.MimeType) {
			from = t
			break
		}
	}
	p := ft.publisher
	p.mu.Lock() // Room.mu, then Participant.mu, then forwardTrack.mu
	defer p.mu.Unlock()
	if from == nil || p.closed || p.tookOver {
		return nil // nothing to take over: ft is a new track, offered as usual
	}
	a := &adoption{from: from, to: ft}
	have := map[*Participant]bool{}
	for _, d := range *from.downs.Load() {
		if d.track() == from {
			a.downs = append(a.downs, d)
			have[d.sub] = true
		}
	}
	ft.mu.Lock()
	next := append(slices.Clone(*ft.downs.Load()), a.downs...)
	ft.downs.Store(&next)
	ft.mu.Unlock()
	for _, d := range a.downs {
		d.ft.Store(ft)
		d.setTarget(ft.lowest())
	}
	p.adopted = append(p.adopted, a)
	ft.log.Info("track taken over", "from", old.id, "subscribers", len(a.downs))
	return have
}

// Takeover waits until the participant, which joined with JoinReplacing,
// has taken over every track of the old leg that anybody receives and
// every such subscriber forwards the new leg's media, or until ctx ends.
// Then it moves every subscriber back to the old leg's tracks and returns
// an error wrapping ErrHandoff; the caller closes this participant. On
// success the caller closes the old leg.
func (p *Participant) Takeover(ctx context.Context) error {
	if p.replaces == nil {
		return nil
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !p.takenOver() {
		select {
		case <-ctx.Done():
			p.revert()
			return fmt.Errorf("handoff from %s to %s: %w: %w", p.replaces.id, p.id, ErrHandoff, ctx.Err())
		case <-p.done:
			return fmt.Errorf("handoff from %s to %s: %w", p.replaces.id, p.id, ErrClosed)
		case <-t.C:
		}
	}
	p.mu.Lock()
	p.tookOver, p.adopted = true, nil
	p.mu.Unlock()
	p.log.Info("handoff complete", "from", p.replaces.id)
	return nil
}

// takenOver reports whether the handoff is complete.
func (p *Participant) takenOver() bool {
	r, old := p.room, p.replaces
	p.mu.Lock()
	adopted := make(map[*forwardTrack]*adoption, len(p.adopted))
	for _, a := range p.adopted {
		adopted[a.from] = a
	}
	p.mu.Unlock()
	r.mu.Lock()
	var pending []*forwardTrack
	for _, t := range r.tracks {
		if t.publisher == old {
			pending = append(pending, t)
		}
	}
	r.mu.Unlock()
	for _, t := range pending {
		a := adopted[t]
		if a == nil {
			for _, d := range *t.downs.Load() {
				if d.track() == t && !d.sub.isClosed() {
					return false // somebody receives it and it has no successor yet
				}
			}
			continue
		}
		for _, d := range a.downs {
			if d.track() != a.to || d.b.Load() == nil || d.sub.isClosed() {
				continue // moved back, not negotiated yet, or gone: nothing to wait for
			}
			if c := d.cur.Load(); c == nil || c.ft != a.to {
				return false
			}
		}
	}
	return true
}

// revert moves every adopted subscriber back to the old leg's track, which
// has kept forwarding to those that had not switched yet, unless the
// takeover completed. Close calls it too, so that closing a leg that did
// not take over never takes a track away from a subscriber.
func (p *Participant) revert() {
	p.mu.Lock()
	adopted := p.adopted
	p.adopted = nil
	p.mu.Unlock()
	if len(adopted) == 0 {
		return
	}
	for _, a := range adopted {
		moved := map[*downTrack]bool{}
		for _, d := range a.downs {
			if d.ft.CompareAndSwap(a.to, a.from) {
				moved[d] = true
				if c := d.cur.Load(); c != nil && c.ft == a.from {
					d.setTarget(c)
				} else {
					d.setTarget(a.from.lowest())
				}
			}
		}
		a.to.removeDowns(func(d *downTrack) bool { return moved[d] })
		a.to.log.Info("takeover undone", "subscribers", len(moved))
	}
}
