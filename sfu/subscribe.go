package sfu

import "github.com/pion/webrtc/v4"

// subLoop owns the sub PC's senders: it adds and removes forwarded tracks,
// starts their RTCP readers, makes offers (one outstanding at a time) and
// asks for keyframes once a subscriber can receive. It exits when the
// participant closes.
func (p *Participant) subLoop() {
	defer p.wg.Done()
	attached := make(map[*downTrack]*webrtc.RTPSender)
	for {
		select {
		case <-p.done:
			return
		case <-p.kick:
		}
		p.reconcile(attached)
	}
}

// reconcile brings the sub PC in line with p.downs and renegotiates if
// needed.
func (p *Participant) reconcile(attached map[*downTrack]*webrtc.RTPSender) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	want := make(map[*downTrack]struct{}, len(p.downs))
	for d := range p.downs {
		want[d] = struct{}{}
	}
	p.mu.Unlock()

	changed := false
	for d, s := range attached {
		if _, ok := want[d]; ok {
			continue
		}
		delete(attached, d)
		if err := p.sub.pc.RemoveTrack(s); err != nil {
			p.log.Debug("remove track", "track", d.ID(), "err", err)
		}
		changed = true
	}
	for d := range want {
		if _, ok := attached[d]; ok {
			continue
		}
		s, err := p.sub.pc.AddTrack(d)
		if err != nil {
			p.log.Warn("add track", "track", d.ID(), "from", d.track().publisher.id, "err", err)
			continue
		}
		attached[d] = s
		changed = true
		if !p.spawn(func() { d.rtcpLoop(s) }) {
			return
		}
	}

	p.mu.Lock()
	if changed {
		p.subDirty = true
	}
	doOffer := p.subDirty && !p.offerOutstanding && !p.closed
	restart := doOffer && p.subRestart
	if doOffer {
		p.offerOutstanding = true
		p.subDirty, p.subRestart = false, false
	}
	ready := p.subConnected && !p.offerOutstanding
	p.mu.Unlock()

	if doOffer {
		if restart {
			// The restart gathers new candidates: hold them until the
			// offer they belong to is out.
			p.candMu.Lock()
			p.subOffered = false
			p.candMu.Unlock()
		}
		sdp, err := p.sub.offer(restart)
		if err != nil {
			p.log.Warn("sub offer failed", "err", err)
			p.mu.Lock()
			p.offerOutstanding = false
			p.subRestart = p.subRestart || restart
			p.mu.Unlock()
			return
		}
		p.log.Debug("sub offer", "tracks", len(attached), "ice_restart", restart)
		p.emitSubOffer(sdp)
	}

	if ready {
		for d := range attached {
			if d.b.Load() != nil && d.needKeyframe.CompareAndSwap(true, false) {
				// Unless the one asked for at Bind is cached and fresh
				// enough to start from.
				if t := d.target.Load(); t != nil {
					if _, age, ok := t.lastKeyframe(monotime()); !ok || age > cachedStartAge/2 {
						t.ft.requestKeyframeWithin(t, startKeyframeInterval)
					}
				}
			}
		}
	}
}

// spawn runs f in a goroutine owned by the participant, unless it is closed.
func (p *Participant) spawn(f func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
	return true
}
