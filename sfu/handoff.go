package sfu

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
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

// adoptWait bounds how long a subscriber keeps receiving the old leg while
// the new leg has no layer as good as the one it received: a device that
// has just started its camera sends its lowest simulcast layer first, and
// adds the others as its bandwidth estimate ramps up. Past it the
// subscriber takes the best the new leg sends. The new leg's layers are
// not paused for want of a viewer meanwhile (pauseUnwatched).
const adoptWait = 4 * time.Second

// adoptWarmup is how long a new leg's video layer must have been sending
// before subscribers switch to it. A browser's encoder that has just
// started stalls for a few hundred milliseconds after its first keyframe
// (its rate control pays for the keyframe by dropping frames); switched
// at that keyframe, the others would see the stall as a freeze. Switched
// at a keyframe asked for once it runs, they see none. The old leg's
// media flows meanwhile.
const adoptWarmup = 500 * time.Millisecond

// adoptWant is what a subscriber moved onto a new leg's track waits for:
// a layer at least as good as from, the old leg's layer it received.
type adoptWant struct {
	from  *layer // nil: it received nothing, any layer will do
	width int32  // from's frame width, 0 = unknown
	rank  int    // from's rid rank, for when widths are unknown
	until int64  // monotime after which any layer will do
}

// adoptTarget returns the layer of ft, the new leg's track d was moved
// onto, that d should switch to, or the old leg's layer d receives while
// ft has none as good yet. Past the wait, or with nothing to match, it
// clears the want and returns the best layer of ft not better than the
// one d had (the lowest when d had none), which the allocator then moves
// as it would for any subscriber.
func (d *downTrack) adoptTarget(ft *forwardTrack, now int64) *layer {
	w := d.adopt.Load()
	order := *ft.order.Load()
	video := ft.kind == webrtc.RTPCodecTypeVideo
	asGood := func(l *layer) bool {
		if lw := l.width.Load(); w.width > 0 && lw > 0 {
			return lw >= w.width*9/10
		}
		return ridRank(l.rid) >= w.rank
	}
	ready := func(l *layer) bool { return asGood(l) && (!video || now-l.firstAt >= int64(adoptWarmup)) }
	if w == nil || w.from == nil {
		d.adopt.Store(nil)
		return ft.lowest()
	}
	if now >= w.until || w.from.ft.publisher.gone() {
		d.adopt.Store(nil)
		// The best layer the new device sends now: one it has not sent
		// since its first packets (its bandwidth estimate still keeps it
		// paused) would leave the subscriber waiting for a keyframe that
		// does not come, on the old device's picture, and the handoff
		// stalled.
		best := ft.lowest()
		for _, l := range order {
			if (!asGood(l) || l.width.Load() <= w.width) && l.rate.Load() > 0 {
				best = l
			}
		}
		return best
	}
	for _, l := range order { // lowest first: the closest match
		if ready(l) {
			return l
		}
	}
	return w.from // follow the old leg meanwhile: make before break
}

// Bounds of the start bitrate a new leg is given, in kbit/s: below the
// lower one a browser's own start does as well; the upper one keeps a
// misread rate from flooding a link the new device has not measured.
const (
	minStartKbps = 300
	maxStartKbps = 2500
)

// cameraKbps is what p's camera may send, over all its layers, in kbit/s:
// what each layer sends now, or its usual rate if more (a simple picture
// costs less than its layer may use, and the new device must be free to
// send every layer from the start); 0 when too little to be worth seeding
// a new leg with.
func (p *Participant) cameraKbps() int {
	r := p.room
	r.mu.Lock()
	var bps int64
	for _, ft := range r.tracks {
		if ft.publisher != p || ft.kind != webrtc.RTPCodecTypeVideo || ft.isScreen() {
			continue
		}
		order := *ft.order.Load()
		for i, l := range order {
			bps += max(l.lastRate.Load(), nominalRate(i, len(order)))
		}
	}
	r.mu.Unlock()
	kbps := int(bps / 1000)
	if kbps < minStartKbps {
		return 0
	}
	return min(kbps, maxStartKbps)
}

// withStartBitrate adds x-google-start-bitrate to the fmtp of every video
// codec (not RTX, RED or FEC) in an SDP answer: Chromium starts its
// bandwidth estimate for what it sends there. Other browsers ignore it.
func withStartBitrate(sdp string, kbps int) string {
	param := "x-google-start-bitrate=" + itoa(kbps)
	lines := strings.Split(sdp, "\r\n")
	out := make([]string, 0, len(lines)+4)
	video := false
	var media map[string]bool // payload types of video codecs in this section
	fmtp := map[string]bool{} // those that have an fmtp line
	var pending []string      // the section's video codecs, in order
	// A codec without an fmtp line gets one at the end of its section.
	flush := func() {
		for _, pt := range pending {
			if !fmtp[pt] {
				out = append(out, "a=fmtp:"+pt+" "+param)
			}
		}
		pending = pending[:0]
		fmtp = map[string]bool{}
	}
	for _, line := range lines {
		if strings.HasPrefix(line, "m=") {
			flush()
			video = strings.HasPrefix(line, "m=video ")
			media = map[string]bool{}
		}
		if video {
			if rest, ok := strings.CutPrefix(line, "a=rtpmap:"); ok {
				pt, codec, _ := strings.Cut(rest, " ")
				name, _, _ := strings.Cut(codec, "/")
				switch strings.ToLower(name) {
				case "rtx", "red", "ulpfec", "flexfec-03":
				default:
					media[pt] = true
					pending = append(pending, pt)
				}
			} else if rest, ok := strings.CutPrefix(line, "a=fmtp:"); ok {
				pt, _, _ := strings.Cut(rest, " ")
				if media[pt] {
					fmtp[pt] = true
					if !strings.Contains(line, "x-google-start-bitrate") {
						line += ";" + param
					}
				}
			}
		}
		if line == "" && video {
			flush() // the end of the SDP
		}
		out = append(out, line)
	}
	flush()
	return strings.Join(out, "\r\n")
}

// gone reports whether Close has begun, without taking p.mu (adoptLocked
// holds another participant's).
func (p *Participant) gone() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// adoption is one of the old leg's tracks taken over by the new leg's.
type adoption struct {
	from, to *forwardTrack
	downs    []*downTrack
}

// JoinReplacing adds a leg that takes over the tracks of leg old, which
// must be in the room with the same stream id (the same user). The new leg
// receives the other participants' tracks as any leg does, and none of
// old's.
func (r *Room) JoinReplacing(id LegID, streamID string, ev Events, old LegID) (*Participant, error) {
	r.mu.Lock()
	op := r.participants[old]
	r.mu.Unlock()
	if op == nil || op.streamID != streamID || op.kind != kindLeg {
		return nil, fmt.Errorf("join room %s replacing %s: %w", r.id, old, ErrNoLeg)
	}
	return r.join(id, streamID, ev, op)
}

// Replace makes p, a leg that receives but has published nothing (a
// device listening along), take over from leg old of the same user as a
// leg joined with JoinReplacing does: the tracks it publishes from now on
// take over old's, and Takeover waits for that. What p receives is not
// touched, so the device keeps seeing and hearing the others throughout.
func (p *Participant) Replace(old LegID) error {
	r := p.room
	r.mu.Lock()
	op := r.participants[old]
	r.mu.Unlock()
	if op == nil || op == p || op.streamID != p.streamID || op.kind != kindLeg || p.kind != kindLeg {
		return fmt.Errorf("leg %s replacing %s: %w", p.id, old, ErrNoLeg)
	}
	kbps := op.cameraKbps()
	r.mu.Lock() // publish reads replaces under the room's mutex
	defer r.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return fmt.Errorf("leg %s replacing %s: %w", p.id, old, ErrClosed)
	case p.replaces != nil || len(p.published) > 0:
		return fmt.Errorf("leg %s replacing %s: %w: it publishes already", p.id, old, ErrHandoff)
	}
	p.replaces = op
	p.startKbps.Store(int32(kbps))
	return nil
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
	until := monotime() + int64(adoptWait)
	for _, d := range a.downs {
		w := &adoptWant{until: until}
		if c := d.cur.Load(); c != nil && c.ft == from {
			w.from, w.width, w.rank = c, c.width.Load(), ridRank(c.rid)
		}
		d.adopt.Store(w)
		d.ft.Store(ft)
		d.setTarget(d.adoptTarget(ft, monotime()))
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
			p.logStalledTakeover()
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
			if d.track() != a.to || d.b.Load() == nil || d.sub.isClosed() || d.target.Load() == nil {
				continue // moved back, not negotiated yet, gone or paused: nothing to wait for
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
				d.adopt.Store(nil)
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

// logStalledTakeover says, when a takeover gives up, what the new leg
// received and where each subscriber it was to take over stands: what an
// operator (or a test) needs to tell a device that stopped sending from a
// subscriber that never switched.
func (p *Participant) logStalledTakeover() {
	var b strings.Builder
	p.mu.Lock()
	published := make([]*forwardTrack, 0, len(p.published))
	for _, ft := range p.published {
		published = append(published, ft)
	}
	adopted := slices.Clone(p.adopted)
	p.mu.Unlock()
	now := monotime()
	for _, ft := range published {
		for _, l := range *ft.layers.Load() {
			l.rx.mu.Lock()
			count := l.rx.count
			l.rx.mu.Unlock()
			fmt.Fprintf(&b, "%s/%s: %d packets, %d bytes, first %v ago; ", ft.id, l.rid, count, l.bytes.Load(), time.Duration(now-l.firstAt).Round(time.Millisecond))
		}
	}
	for _, a := range adopted {
		for _, d := range a.downs {
			name := func(l *layer) string {
				if l == nil {
					return "none"
				}
				return string(l.ft.publisher.id) + "/" + l.rid
			}
			fmt.Fprintf(&b, "subscriber %s of %s: on %s, target %s, adopting %v; ", d.sub.id, a.to.id, name(d.cur.Load()), name(d.target.Load()), d.adopt.Load() != nil)
		}
	}
	addr := "none"
	if a := p.pubAddr.Load(); a != nil {
		addr = a.String()
	}
	p.log.Warn("takeover stalled", "pair", addr, "direct_input", p.in.Load() != nil, "state", b.String())
}
