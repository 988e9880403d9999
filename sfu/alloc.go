package sfu

import (
	"maps"
	"sort"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// tickInterval paces the SFU's one background loop: layer rates, bandwidth
// estimates, layer choice, publisher pausing and active speakers. Sender
// reports go out every second tick. One loop for the whole SFU, not a timer
// per participant.
const tickInterval = 500 * time.Millisecond

// pauseAfter is how long nobody must receive a simulcast layer before its
// publisher is told to stop encoding it.
const pauseAfter = 3 * time.Second

// rtxShare is the share of a subscriber's bandwidth estimate its
// retransmissions may take; NACKs beyond it wait for the next tick's
// allowance, and what they asked for is not resent. On a congested link a
// receiver asks for each lost packet again and again (ten times, in
// browsers), and answering it all would keep the link full after its
// layers were lowered to relieve it. libwebrtc bounds a sender's
// retransmissions by its target rate for the same reason.
const rtxShare = 0.25

// takeRTX takes n bytes of p's retransmission allowance for this tick,
// if that many are left.
func (p *Participant) takeRTX(n int) bool {
	if p.bwe == nil {
		return true
	}
	allowance := int64(float64(p.bwe.estimate()) * rtxShare * tickInterval.Seconds() / 8)
	if p.rtxSent.Add(int64(n)) > allowance {
		p.rtxSent.Add(-int64(n))
		return false
	}
	return true
}

// audioReserve is the bandwidth set aside per forwarded audio track before
// video is allocated.
const audioReserve = 40_000

// Tile is how a subscriber shows one remote video: the publisher's stream
// id, the track id, and the size in device pixels. 0×0 means hidden.
type Tile struct {
	StreamID string
	TrackID  string
	Width    int
	Height   int
}

// run is the SFU's background loop; it ends when the SFU closes.
func (s *SFU) run() {
	defer close(s.ranDone)
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	prev := time.Now()
	for n := 0; ; n++ {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			dt := now.Sub(prev)
			prev = now
			s.tick(now, dt, n%2 == 0)
		}
	}
}

func (s *SFU) tick(now time.Time, dt time.Duration, reports bool) {
	s.mu.Lock()
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		r.tick(now, dt, reports)
	}
}

// tick measures, allocates and reports for one room.
func (r *Room) tick(now time.Time, dt time.Duration, reports bool) {
	r.mu.Lock()
	tracks := append([]*forwardTrack(nil), r.tracks...)
	ps := make([]*Participant, 0, len(r.participants))
	for _, p := range r.participants {
		ps = append(ps, p)
	}
	r.mu.Unlock()

	for _, ft := range tracks {
		ft.measure(dt)
	}
	mono := monotime()
	for _, p := range ps {
		downs := p.downTracks()
		p.allocate(now, dt, downs)
		if reports {
			p.sendReports(now, mono, downs)
			p.sampleQuality(2*dt, tracks, downs)
		}
	}
	for _, ft := range tracks {
		ft.pauseUnwatched(now)
	}
	r.speakers(ps, tracks)
}

// measure turns the bytes each layer received since the last tick into a
// rate and reorders the layers once rates are known.
func (ft *forwardTrack) measure(dt time.Duration) {
	if dt <= 0 {
		return
	}
	for _, l := range *ft.layers.Load() {
		rate := int64(float64(l.bytes.Swap(0)*8) / dt.Seconds())
		l.rate.Store(rate)
		if rate > 0 {
			l.lastRate.Store(rate)
		}
	}
	if len(*ft.layers.Load()) > 1 {
		ft.mu.Lock()
		ft.reorderLocked()
		ft.mu.Unlock()
	}
}

// downTracks returns the tracks forwarded to p.
func (p *Participant) downTracks() []*downTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*downTrack, 0, len(p.downs))
	for d := range p.downs {
		out = append(out, d)
	}
	return out
}

// allocate advances p's bandwidth estimate and picks, for each video it
// receives, the layer that fits: screen shares first, then larger tiles;
// no layer larger than its tile needs; nothing for a hidden tile; at least
// the lowest layer for every visible one, so nothing freezes.
func (p *Participant) allocate(now time.Time, dt time.Duration, downs []*downTrack) {
	var octets uint64
	for _, d := range downs {
		octets += d.octets.Load()
	}
	sent := float64(octets-p.lastOctets) * 8 / dt.Seconds()
	p.lastOctets = octets
	p.noteSent(sent)
	p.bwe.tick(now, sent, dt)
	budget := p.bwe.estimate()
	p.rtxSent.Store(0)

	video := downs[:0:0]
	for _, d := range downs {
		if d.kind == webrtc.RTPCodecTypeAudio {
			budget -= audioReserve
			continue
		}
		video = append(video, d)
	}
	sort.SliceStable(video, func(i, j int) bool {
		a, b := video[i], video[j]
		if a.track().isScreen() != b.track().isScreen() {
			return a.track().isScreen()
		}
		return a.viewW.Load()*a.viewH.Load() > b.viewW.Load()*b.viewH.Load()
	})
	mono := monotime()
	for _, d := range video {
		if d.hidden.Load() {
			d.adopt.Store(nil)
			d.setTarget(nil)
			continue
		}
		if d.adopt.Load() != nil {
			// Moving to a user's new device: the layer that matches
			// what it had, or the old device's meanwhile.
			if t := d.adoptTarget(d.track(), mono); d.adopt.Load() != nil && t != nil {
				budget -= t.lastRate.Load()
				d.setTarget(t)
				continue
			}
		}
		order := *d.track().order.Load()
		if len(order) == 0 {
			continue
		}
		pick := pickLayer(order, int(d.viewW.Load()), budget)
		if c := d.cur.Load(); c == nil || c.ft != d.track() {
			// Nothing shown yet, or still the picture of a user's old
			// device: start on a layer the publisher sends now, not one
			// it paused (for want of viewers, or while its bandwidth
			// estimate ramps up), which takes its browser a while to
			// resume; the next tick raises it.
			for pick > 0 && order[pick].rate.Load() == 0 {
				pick--
			}
		}
		if t := d.target.Load(); t != order[pick] {
			p.log.Debug("layer chosen", "track", d.track().id, "from", d.track().publisher.id, "rid", order[pick].rid,
				"budget", budget, "cost", layerCost(order, pick), "tile_width", d.viewW.Load())
		}
		budget -= layerCost(order, pick)
		d.setTarget(order[pick])
	}
}

// pickLayer returns the index (in order, lowest first) of the best layer
// for a tile width (0 = unknown) within budget; the lowest if none fits.
func pickLayer(order []*layer, width int, budget int64) int {
	top := len(order) - 1
	if width > 0 {
		// The smallest layer at least as wide as the tile is enough.
		for i, l := range order {
			if w := int(l.width.Load()); w > 0 && w >= width*9/10 {
				top = i
				break
			}
		}
	}
	for i := top; i > 0; i-- {
		if layerCost(order, i) <= budget {
			return i
		}
	}
	return 0
}

func layerCost(order []*layer, i int) int64 {
	l := order[i]
	r := l.lastRate.Load()
	switch nominal := nominalRate(i, len(order)); {
	case r <= 0:
		return nominal
	case monotime()-l.firstAt < int64(rateSettles):
		// Its first measurements are mostly its first keyframe: a layer
		// that just started (a device that just took a call) costs no
		// more than usual.
		return min(r, nominal)
	default:
		return r
	}
}

// rateSettles is how long after its first packet a layer's measured rate
// is taken for what it costs without question.
const rateSettles = 2 * time.Second

// pauseUnwatched tells the publisher to stop encoding simulcast layers
// nobody has received for pauseAfter, and to resume them when wanted. The
// lowest layer always stays on, so a new subscriber sees a picture at once.
func (ft *forwardTrack) pauseUnwatched(now time.Time) {
	layers := *ft.layers.Load()
	if len(layers) < 2 || ft.publisher.isClosed() {
		return
	}
	wanted := map[*layer]bool{ft.lowest(): true}
	for _, d := range *ft.downs.Load() {
		if d.adopt.Load() != nil && d.track() == ft {
			// A subscriber waits for this new leg's layer as good as the
			// one it had: keep every layer coming until it has switched.
			for _, l := range layers {
				wanted[l] = true
			}
		}
		if t := d.target.Load(); t != nil {
			wanted[t] = true
		}
		if c := d.cur.Load(); c != nil {
			wanted[c] = true
		}
	}
	if ft.unwatchedAt == nil {
		ft.unwatchedAt = map[string]time.Time{}
	}
	next := make(map[string]bool, len(layers))
	for _, l := range layers {
		on := true
		if wanted[l] {
			delete(ft.unwatchedAt, l.rid)
		} else if since, ok := ft.unwatchedAt[l.rid]; !ok {
			ft.unwatchedAt[l.rid] = now
		} else if now.Sub(since) >= pauseAfter {
			on = false
		} else if ft.active != nil {
			on = ft.active[l.rid]
		}
		next[l.rid] = on
	}
	if maps.Equal(next, ft.active) || (ft.active == nil && !hasFalse(next)) {
		return
	}
	ft.active = next
	ft.log.Debug("publisher layers", "active", next)
	ft.publisher.ev.Layers(ft.id, maps.Clone(next))
}

func hasFalse(m map[string]bool) bool {
	for _, v := range m {
		if !v {
			return true
		}
	}
	return false
}

// sendReports sends one RTCP sender report per forwarded track, so the
// subscriber can sync audio with video and measure the round trip.
func (p *Participant) sendReports(now time.Time, mono int64, downs []*downTrack) {
	var pkts []rtcp.Packet
	for _, d := range downs {
		if sr := d.senderReport(now, mono); sr != nil {
			pkts = append(pkts, sr)
		}
	}
	if len(pkts) == 0 || p.sub == nil || p.isClosed() {
		return
	}
	if err := p.sub.pc.WriteRTCP(pkts); err != nil {
		p.log.Debug("sender reports", "err", err)
	}
}
