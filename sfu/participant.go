package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// Events is what the SFU needs from signaling. Methods are called from pion
// goroutines and must not block (post to a queue).
type Events interface {
	// SubscriberOffer delivers a server-created offer on the "sub"
	// PeerConnection; the client answers via HandleAnswer.
	SubscriberOffer(sdp string)
	// ICECandidate delivers a local candidate of pc ("pub" or "sub"); nil
	// means gathering is complete.
	ICECandidate(pc string, c *webrtc.ICECandidateInit)
	// ConnectionState reports a state change of pc.
	ConnectionState(pc string, s webrtc.PeerConnectionState)
	// Layers tells the publisher which simulcast layers (by rid) of its
	// track anybody receives; it may stop encoding the others.
	Layers(track string, active map[string]bool)
	// Speakers tells who in the room speaks now, loudest first (empty:
	// nobody).
	Speakers(speakers []Speaker)
}

// legKind says how a participant negotiates with its client.
type legKind int

const (
	// kindLeg is a call leg: "pub" offered by the client, "sub" offered by
	// the SFU with every other participant's tracks.
	kindLeg legKind = iota
	// kindPublisher is a WHIP publisher: "pub" only; it receives nothing.
	kindPublisher
	// kindViewer is a WHEP viewer: "sub" only, offered by the client and
	// answered once with the tracks it was given (whip.go).
	kindViewer
)

// Participant is one call leg in a room, with its "pub" and "sub"
// PeerConnections. A WHIP publisher has only "pub" and a WHEP viewer only
// "sub" (the other is nil).
type Participant struct {
	id       LegID
	streamID string
	kind     legKind
	room     *Room
	ev       Events
	log      *slog.Logger
	pub, sub *peer
	stats    participantStats
	quality  qualityMeter
	bwe      *estimator
	// rtxSent is how many payload bytes were retransmitted to p since
	// the last tick (takeRTX).
	rtxSent atomic.Int64

	// Direct SRTP output of the sub PC (srtpout.go): tap collects its DTLS
	// secrets, out is set once they are known, subAddr follows the
	// selected candidate pair.
	tap     *dtlsTap
	out     atomic.Pointer[srtpOut]
	subAddr atomic.Pointer[net.UDPAddr]

	// Direct input of the pub PC (srtpin.go), likewise.
	pubTap  *dtlsTap
	pubMode atomic.Int32
	in      atomic.Pointer[srtpIn]
	pubAddr atomic.Pointer[net.UDPAddr]
	fb      *pubFeedback // when pion's receive interceptors are off

	lastOctets uint64 // sent to p as of the last tick; the ticker's own

	kick chan struct{} // wakes subLoop; capacity 1
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	// candMu orders sub candidates after the first sub offer: candidates
	// gathered while the offer is being made are held until it is emitted.
	// Events never block, so they may be called under it.
	candMu       sync.Mutex
	subOffered   bool
	heldSubCands []*webrtc.ICECandidateInit

	// replaces is the leg this one takes over from (handoff.go); adopted
	// lists the tracks taken over so far, under mu.
	replaces *Participant
	adopted  []*adoption
	tookOver bool
	// startKbps, for a leg taking over, is the old leg's camera rate: the
	// new device's encoder starts there (x-google-start-bitrate) rather
	// than ramp up from a browser's default on its lowest layer. 0 = none.
	startKbps atomic.Int32

	// assistDC is the open "assist" data channel of pub (assist.go).
	assistDC atomic.Pointer[assistChannel]
	// slides are the pub mids the client marked as screen shares.
	slides atomic.Pointer[map[string]bool]

	mu               sync.Mutex
	closed           bool
	downs            map[*downTrack]struct{} // tracks to forward to this participant
	trackIDs         map[webrtc.RTPCodecType]int
	published        map[*webrtc.RTPReceiver]*forwardTrack
	views            map[string]Tile // by stream id + "/" + track id
	offerOutstanding bool
	subDirty         bool // sub's tracks changed since the last offer
	subRestart       bool // the next sub offer restarts ICE
	subConnected     bool
	// subUp mirrors subConnected for the forwarding loops, which read it
	// without the lock before starting a track (downtrack.go).
	subUp atomic.Bool
}

func newParticipant(r *Room, id LegID, streamID string, ev Events, kind legKind) (*Participant, error) {
	p := &Participant{
		id:       id,
		streamID: streamID,
		kind:     kind,
		room:     r,
		ev:       ev,
		log:      r.log.With("participant", id),
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		downs:    make(map[*downTrack]struct{}),
		trackIDs: make(map[webrtc.RTPCodecType]int),
		bwe:      newEstimator(),
	}
	if kind != kindViewer {
		if r.sfu.filtered {
			// Direct input: pion's receive interceptors never start, and
			// the SFU's own feedback replaces them.
			p.pubMode.Store(modeDirect)
			p.fb = newPubFeedback(p)
		}
		pubPC, tap, err := r.sfu.newPeerConnection(rolePub, &p.pubMode, &p.pubAddr)
		if err != nil {
			return nil, err
		}
		p.pubTap = tap
		p.pub = &peer{name: PCPub, pc: pubPC, log: p.log, policy: &r.sfu.candidates}
	}
	if kind != kindPublisher {
		subPC, tap, err := r.sfu.newPeerConnection(roleSub, nil, nil)
		if err != nil {
			_ = p.closePeers()
			return nil, err
		}
		p.sub = &peer{name: PCSub, pc: subPC, log: p.log, policy: &r.sfu.candidates}
		p.tap = tap
	}
	return p, nil
}

// start registers the PeerConnection callbacks and the subscriber loop.
func (p *Participant) start() {
	for _, pr := range []*peer{p.pub, p.sub} {
		if pr == nil {
			continue
		}
		name := pr.name
		pr.pc.OnICECandidate(func(c *webrtc.ICECandidate) {
			var init *webrtc.ICECandidateInit
			if c != nil {
				j := c.ToJSON()
				init = &j
			}
			if name == PCSub && p.kind == kindLeg {
				p.subCandidate(init)
				return
			}
			p.ev.ICECandidate(name, init)
		})
		pr.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
			p.log.Debug("connection state", "pc", name, "state", s.String())
			if name == PCPub {
				switch s {
				case webrtc.PeerConnectionStateConnected:
					p.startDirectInput()
				case webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateFailed:
					p.stopDirectInput()
				}
			}
			if name == PCSub {
				if s == webrtc.PeerConnectionStateConnected {
					p.startDirectOutput()
				}
				p.mu.Lock()
				p.subConnected = s == webrtc.PeerConnectionStateConnected
				p.subUp.Store(p.subConnected)
				p.mu.Unlock()
				p.wake()
			}
			p.ev.ConnectionState(name, s)
		})
	}
	if p.sub != nil {
		p.sub.pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(pair *webrtc.ICECandidatePair) {
			addr := pairAddr(pair)
			p.subAddr.Store(addr)
			if out := p.out.Load(); out != nil {
				out.addr.Store(addr)
			}
		})
	}
	if p.pub != nil {
		p.pub.pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(pair *webrtc.ICECandidatePair) {
			addr := pairAddr(pair)
			if prev := p.pubAddr.Swap(addr); prev != nil && addr != nil && prev.String() != addr.String() {
				p.log.Debug("publisher moved to another ICE pair", "from", prev.String(), "to", addr.String())
			}
			p.setInputAddr(addr)
		})
	}
	switch p.kind {
	case kindLeg:
		p.pub.pc.OnTrack(p.onTrack)
		p.pub.pc.OnDataChannel(p.onDataChannel)
		p.wg.Add(1)
		go p.subLoop()
	case kindPublisher:
		p.pub.pc.OnTrack(p.onTrack)
	case kindViewer:
		p.wg.Add(1)
		go p.viewLoop()
	}
}

// startDirectOutput switches the sub PC's media to direct SRTP output once
// DTLS is up, if its keys could be learned; otherwise media stays on pion's
// path.
func (p *Participant) startDirectOutput() {
	if p.tap == nil || p.out.Load() != nil || p.room.sfu.media == nil {
		return
	}
	k, err := p.tap.keys()
	if err != nil {
		p.log.Debug("sub media stays on pion's SRTP path", "err", err)
		return
	}
	out := &srtpOut{conn: p.room.sfu.media, profile: k.profile, key: k.serverKey, salt: k.serverSalt}
	out.addr.Store(p.subAddr.Load())
	p.out.Store(out)
	// A pair change before out was visible stored its address only in
	// subAddr, and one while we store could be overwritten by the address
	// we read before it: store until what we stored is still current.
	for {
		a := p.subAddr.Load()
		out.addr.Store(a)
		if p.subAddr.Load() == a {
			return
		}
	}
}

// ID returns the participant's leg id.
func (p *Participant) ID() LegID { return p.id }

// StreamID returns the MediaStream id of the participant's published tracks.
func (p *Participant) StreamID() string { return p.streamID }

// onTrack is pion's OnTrack callback on the pub PC, called once per RTP
// stream: once for a plain track, once per layer of a simulcast one. The
// first stream of a receiver publishes the track; later ones add layers.
// Reading is handed to goroutines owned by the participant.
func (p *Participant) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	screen := false
	if slides := p.slides.Load(); slides != nil && remote.Kind() == webrtc.RTPCodecTypeVideo {
		screen = (*slides)[p.midOf(receiver)]
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	if p.published == nil {
		p.published = make(map[*webrtc.RTPReceiver]*forwardTrack)
	}
	ft, known := p.published[receiver]
	if !known {
		// Tracks are named by kind ("audio", "video", "video-2"); a screen
		// share is "screen".
		kind, name := remote.Kind(), remote.Kind().String()
		if screen {
			kind, name = 0, "screen"
		}
		p.trackIDs[kind]++
		id := name
		if n := p.trackIDs[kind]; n > 1 {
			id = fmt.Sprintf("%s-%d", name, n)
		}
		ft = newForwardTrack(p, remote, receiver, id)
		ft.screen = screen
		p.published[receiver] = ft
	}
	l := ft.addLayer(remote)
	if in := p.in.Load(); in != nil {
		in.addLayer(l)
	}
	p.wg.Add(2)
	p.mu.Unlock()

	go func() {
		defer p.wg.Done()
		ft.rtcpLoop(l)
	}()
	go func() {
		defer p.wg.Done()
		if !known {
			if !p.room.publish(ft) {
				return
			}
			ft.log.Info("track published")
			defer func() {
				p.room.unpublish(ft)
				ft.log.Info("track unpublished")
			}()
		}
		ft.log.Debug("layer receiving", "rid", l.rid, "ssrc", l.ssrc)
		ft.readLoop(l)
	}()
}

// subCandidate emits a sub candidate, or holds it until the first sub offer
// has been emitted, so signaling never sees a candidate before the offer.
func (p *Participant) subCandidate(c *webrtc.ICECandidateInit) {
	p.candMu.Lock()
	defer p.candMu.Unlock()
	if !p.subOffered {
		p.heldSubCands = append(p.heldSubCands, c)
		return
	}
	p.ev.ICECandidate(PCSub, c)
}

// emitSubOffer emits a sub offer and then any candidates held for it.
func (p *Participant) emitSubOffer(sdp string) {
	p.candMu.Lock()
	defer p.candMu.Unlock()
	p.ev.SubscriberOffer(sdp)
	p.subOffered = true
	for _, c := range p.heldSubCands {
		p.ev.ICECandidate(PCSub, c)
	}
	p.heldSubCands = nil
}

// addDown schedules d to be sent on the sub PC.
func (p *Participant) addDown(d *downTrack) {
	p.mu.Lock()
	if !p.closed {
		p.downs[d] = struct{}{}
	}
	p.mu.Unlock()
	p.wake()
}

// removeDown schedules d to be removed from the sub PC.
func (p *Participant) removeDown(d *downTrack) {
	p.mu.Lock()
	delete(p.downs, d)
	p.mu.Unlock()
	p.wake()
}

// wake nudges subLoop without blocking.
func (p *Participant) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// HandleOffer applies the client's offer on the pub PC (first offer,
// renegotiation or ICE restart) and returns the SFU's answer. A bad offer
// returns an error wrapping ErrBadSDP and leaves the PC as it was.
//
// The SFU's pub candidates may be reported through Events before HandleOffer
// returns; signaling that posts Events to the queue it calls HandleOffer from
// sends the answer first, as the client needs.
func (p *Participant) HandleOffer(sdp string) (string, error) {
	if p.isClosed() {
		return "", fmt.Errorf("pub offer: %w", ErrClosed)
	}
	if p.pub == nil {
		return "", fmt.Errorf("pub offer: %w: %q", ErrUnknownPC, PCPub)
	}
	// Before the offer applies: a screen's first packet may follow at once.
	if s := slidesMids(sdp); s != nil || p.slides.Load() != nil {
		p.slides.Store(&s)
	}
	ans, restarted, err := p.pub.answer(sdp)
	if err != nil {
		p.log.Info("pub offer rejected", "err", err)
		return "", err
	}
	if kbps := p.startKbps.Load(); kbps > 0 {
		ans = withStartBitrate(ans, int(kbps))
	}
	if restarted && p.kind == kindLeg {
		// The client's network changed: its sub path is as stale as its
		// pub path, and only the SFU can offer on sub.
		p.log.Info("ice restart")
		p.mu.Lock()
		p.subDirty, p.subRestart = true, true
		p.mu.Unlock()
		p.wake()
	}
	return ans, nil
}

// HandleAnswer applies the client's answer to the outstanding sub offer. If
// the tracks changed meanwhile, a new offer follows. A malformed answer
// returns an error wrapping ErrBadSDP and the offer stays outstanding, so the
// client may answer it again.
func (p *Participant) HandleAnswer(sdp string) error {
	p.mu.Lock()
	closed, outstanding := p.closed, p.offerOutstanding
	p.mu.Unlock()
	if closed {
		return fmt.Errorf("sub answer: %w", ErrClosed)
	}
	if !outstanding {
		return fmt.Errorf("sub answer: %w", ErrNoOffer)
	}
	pending, err := p.sub.acceptAnswer(sdp)
	p.mu.Lock()
	p.offerOutstanding = pending
	if err != nil && !pending {
		// The answer was half-applied: renegotiate from a fresh offer.
		p.subDirty = true
	}
	p.mu.Unlock()
	p.wake()
	if err != nil {
		p.log.Info("sub answer rejected", "err", err)
	}
	return err
}

// AddICECandidate screens a client candidate for pc ("pub" or "sub"); the
// SFU never checks the address it names (candidates.go). An empty
// Candidate means end of candidates. An unusable candidate is dropped and
// counted; a malformed one returns ErrBadCandidate, one past the limit of
// its ICE generation ErrTooManyCandidates.
func (p *Participant) AddICECandidate(pc string, c webrtc.ICECandidateInit) error {
	if p.isClosed() {
		return fmt.Errorf("candidate: %w", ErrClosed)
	}
	switch {
	case pc == PCPub && p.pub != nil:
		return p.pub.addCandidates([]webrtc.ICECandidateInit{c})
	case pc == PCSub && p.sub != nil:
		return p.sub.addCandidates([]webrtc.ICECandidateInit{c})
	default:
		return fmt.Errorf("%w: %q", ErrUnknownPC, pc)
	}
}

// SetView replaces the sizes this participant shows the others' videos at;
// videos not listed get the largest layer that fits the bandwidth.
func (p *Participant) SetView(tiles []Tile) {
	views := make(map[string]Tile, len(tiles))
	for _, t := range tiles {
		views[t.StreamID+"/"+t.TrackID] = t
	}
	p.mu.Lock()
	p.views = views
	downs := make([]*downTrack, 0, len(p.downs))
	for d := range p.downs {
		downs = append(downs, d)
	}
	p.mu.Unlock()
	for _, d := range downs {
		t, ok := views[d.StreamID()+"/"+d.ID()]
		if !ok { // not listed: no size limit, not hidden
			d.viewW.Store(0)
			d.viewH.Store(0)
			d.hidden.Store(false)
			continue
		}
		d.applyView(t)
	}
}

// viewFor returns how p shows ft, if it said.
func (p *Participant) viewFor(ft *forwardTrack) *Tile {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.views[ft.publisher.streamID+"/"+ft.id]; ok {
		return &t
	}
	return nil
}

// Stats returns the participant's media counters.
func (p *Participant) Stats() Stats {
	return Stats{Audio: p.stats.audio.snapshot(), Video: p.stats.video.snapshot()}
}

func (p *Participant) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Close leaves the room: the participant's tracks are removed from the other
// participants' sub PCs, both PCs close and its goroutines finish before
// Close returns. It must not be called from an Events method.
func (p *Participant) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.downs = map[*downTrack]struct{}{}
	p.mu.Unlock()

	p.revert()
	p.stopDirectInput()
	p.room.leave(p)
	close(p.done)
	err := p.closePeers()
	p.wg.Wait()
	p.room.sfu.ledger.retire(p)
	p.log.Info("participant left")
	return err
}

func (p *Participant) closePeers() error {
	var errs []error
	for _, pr := range []*peer{p.pub, p.sub} {
		if pr != nil {
			errs = append(errs, pr.pc.Close())
		}
	}
	return errors.Join(errs...)
}
