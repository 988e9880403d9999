package sfu

import (
	"context"
	"fmt"
	"sync"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/sdpfrag"
)

// WHIP (RFC 9725) and WHEP sessions: a participant with one PeerConnection
// that its client negotiates once, by an HTTP POST of an offer, and changes
// afterwards only by trickle ICE and ICE restarts (HTTP PATCH of an
// application/trickle-ice-sdpfrag body, RFC 8840). There is no way to send
// the client a new offer, so:
//
//   - a WHIP publisher is a participant with a "pub" PC only; it publishes
//     into the room like a call leg and is never subscribed to anything;
//   - a WHEP viewer is a participant with a "sub" PC only, answered (not
//     offered) with the tracks the room had when it arrived: the video of
//     the publisher that published video last, and that publisher's audio.
//     When that publisher leaves, the viewer's tracks stop; a publisher
//     arriving later is not added. A screen share (a=content:slides) is
//     never a viewer's: it may be the screen of someone being helped
//     (assist.go), which only the helper sees, and only with consent.
//
// The HTTP side (resources, tokens, ETags, CORS) lives in internal/server.

// WHIPSession is a WHIP publisher or a WHEP viewer in a room.
type WHIPSession struct {
	p  *Participant
	pr *peer // the one PeerConnection
	ev *sessionEvents

	// mu serializes Patch. offer is the client's offer as last applied,
	// with its ICE credentials: an ICE restart re-applies it with new ones.
	mu         sync.Mutex
	offer      string
	ufrag, pwd string
}

// sessionEvents is the Events of a session: it has no signaling channel,
// so it only notes when the PeerConnection has failed or closed.
type sessionEvents struct {
	failed chan struct{}
	once   sync.Once
}

var _ Events = (*sessionEvents)(nil)

func newSessionEvents() *sessionEvents { return &sessionEvents{failed: make(chan struct{})} }

func (e *sessionEvents) SubscriberOffer(string)                        {}
func (e *sessionEvents) ICECandidate(string, *webrtc.ICECandidateInit) {}
func (e *sessionEvents) Layers(string, map[string]bool)                {}
func (e *sessionEvents) Speakers([]Speaker)                            {}

func (e *sessionEvents) ConnectionState(_ string, s webrtc.PeerConnectionState) {
	if s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed {
		e.once.Do(func() { close(e.failed) })
	}
}

// Publish adds a WHIP publisher to the room under leg id id: offer is the
// client's offer for its "pub" PC, and the tracks it sends are forwarded
// with stream id streamID (made unique in the room with a "-2", "-3"…
// suffix) to every call leg in the room. It returns the
// SFU's answer with all of its ICE candidates (the client gets no trickle
// from the server); ctx bounds the wait for them. A bad offer returns an
// error wrapping ErrBadSDP and leaves nothing behind.
func (r *Room) Publish(ctx context.Context, id LegID, streamID, offer string) (*WHIPSession, string, error) {
	if _, err := parseSDP(offer); err != nil {
		return nil, "", err
	}
	ev := newSessionEvents()
	p, err := newParticipant(r, id, streamID, ev, kindPublisher)
	if err != nil {
		return nil, "", err
	}
	err = r.addSession(p, func() error {
		// Subscribers tell tracks apart by stream id: a second WHIP
		// publisher of the same user gets "<user>-2".
		for n := 2; r.streamTakenLocked(p.streamID); n++ {
			p.streamID = fmt.Sprintf("%s-%d", streamID, n)
		}
		return nil
	})
	if err != nil {
		_ = p.closePeers()
		return nil, "", err
	}
	p.start()
	s := &WHIPSession{p: p, pr: p.pub, ev: ev}
	ans, err := s.negotiate(ctx, offer)
	if err != nil {
		_ = p.Close()
		return nil, "", err
	}
	p.log.Info("whip publisher joined")
	return s, ans, nil
}

// View adds a WHEP viewer to the room under leg id id: offer is the
// client's offer (receiving audio and/or video). The viewer is given the
// video track published last in the room that is not a screen share, and
// the audio of the same publisher (or, failing that, the audio published
// last). It returns the SFU's answer with all of its ICE candidates; ctx
// bounds the wait for them. With nothing published it returns
// ErrNothingPublished; a bad offer returns an error wrapping ErrBadSDP.
func (r *Room) View(ctx context.Context, id LegID, offer string) (*WHIPSession, string, error) {
	if _, err := parseSDP(offer); err != nil {
		return nil, "", err
	}
	wantAudio, wantVideo := receivingKinds(offer)
	if !wantAudio && !wantVideo {
		return nil, "", fmt.Errorf("%w: the offer receives neither audio nor video", ErrBadSDP)
	}
	ev := newSessionEvents()
	p, err := newParticipant(r, id, string(id), ev, kindViewer)
	if err != nil {
		return nil, "", err
	}
	var downs []*downTrack
	err = r.addSession(p, func() error {
		video, audio := r.pickLocked(p, wantAudio, wantVideo)
		if video == nil && audio == nil {
			return fmt.Errorf("view room %s: %w", r.id, ErrNothingPublished)
		}
		for _, ft := range []*forwardTrack{video, audio} {
			if ft != nil {
				r.subscribeLocked(ft, p)
			}
		}
		downs = p.downTracks()
		return nil
	})
	if err != nil {
		_ = p.closePeers()
		return nil, "", err
	}
	p.start()
	// The senders exist before the offer is applied, so that pion matches
	// them to the offer's receiving media sections.
	for _, d := range downs {
		tr, err := p.sub.pc.AddTransceiverFromTrack(d, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			_ = p.Close()
			return nil, "", fmt.Errorf("sfu: add %s track: %w", d.Kind(), err)
		}
		sender := tr.Sender()
		p.spawn(func() { d.rtcpLoop(sender) })
	}
	s := &WHIPSession{p: p, pr: p.sub, ev: ev}
	ans, err := s.negotiate(ctx, offer)
	if err != nil {
		_ = p.Close()
		return nil, "", err
	}
	p.log.Info("whep viewer joined", "tracks", len(downs))
	return s, ans, nil
}

// addSession registers a WHIP or WHEP participant. attach, if set, runs
// under the room lock before registration; its error refuses the join.
func (r *Room) addSession(p *Participant, attach func() error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("join room %s: %w", r.id, ErrClosed)
	}
	if r.participants[p.id] != nil {
		return fmt.Errorf("join room %s as %s: %w", r.id, p.id, ErrDuplicateParticipant)
	}
	if attach != nil {
		if err := attach(); err != nil {
			return err
		}
	}
	r.participants[p.id] = p
	r.sfu.ledger.enter(p)
	return nil
}

// streamTakenLocked reports whether a participant that publishes uses
// stream id id. The caller holds r.mu.
func (r *Room) streamTakenLocked(id string) bool {
	for _, p := range r.participants {
		if p.kind != kindViewer && p.streamID == id {
			return true
		}
	}
	return false
}

// pickLocked chooses what WHEP viewer p gets: the video track published
// last that p may receive (no screen share), and audio from its
// publisher, else the audio published last. The caller holds r.mu.
func (r *Room) pickLocked(p *Participant, wantAudio, wantVideo bool) (video, audio *forwardTrack) {
	for i := len(r.tracks) - 1; i >= 0 && wantVideo; i-- {
		if ft := r.tracks[i]; ft.kind == webrtc.RTPCodecTypeVideo && r.mayReceive(ft, p) {
			video = ft
			break
		}
	}
	for i := len(r.tracks) - 1; i >= 0 && wantAudio; i-- {
		ft := r.tracks[i]
		if ft.kind != webrtc.RTPCodecTypeAudio || !r.mayReceive(ft, p) {
			continue
		}
		if audio == nil {
			audio = ft
		}
		if video != nil && ft.publisher == video.publisher {
			audio = ft
			break
		}
	}
	return video, audio
}

// receivingKinds reports whether an offer has media sections that can
// receive audio and video (recvonly or sendrecv).
func receivingKinds(offer string) (audio, video bool) {
	var d sdp.SessionDescription
	if d.UnmarshalString(offer) != nil {
		return false, false
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Port.Value == 0 {
			continue // rejected section
		}
		_, sendonly := m.Attribute("sendonly")
		_, inactive := m.Attribute("inactive")
		if sendonly || inactive {
			continue
		}
		switch m.MediaName.Media {
		case "audio":
			audio = true
		case "video":
			video = true
		}
	}
	return audio, video
}

// viewLoop asks for a keyframe for each of a viewer's videos once the
// viewer can receive. It exits when the participant closes.
func (p *Participant) viewLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.done:
			return
		case <-p.kick:
		}
		p.mu.Lock()
		ready := p.subConnected && !p.closed
		p.mu.Unlock()
		if !ready {
			continue
		}
		for _, d := range p.downTracks() {
			if d.b.Load() != nil && d.needKeyframe.CompareAndSwap(true, false) {
				if t := d.target.Load(); t != nil {
					t.ft.requestKeyframeWithin(t, startKeyframeInterval)
				}
			}
		}
	}
}

// negotiate applies the client's offer and returns the answer with the
// SFU's candidates.
func (s *WHIPSession) negotiate(ctx context.Context, offer string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, err := s.pr.answer(offer); err != nil {
		return "", err
	}
	s.offer = offer
	s.ufrag, s.pwd = sdpfrag.Credentials(offer)
	return s.gathered(ctx), nil
}

// gathered waits (within ctx) until the PC has gathered its candidates and
// returns its local description, which then carries them.
func (s *WHIPSession) gathered(ctx context.Context) string {
	select {
	case <-webrtc.GatheringCompletePromise(s.pr.pc):
	case <-ctx.Done():
	case <-s.p.done:
	}
	if d := s.pr.pc.LocalDescription(); d != nil {
		return d.SDP
	}
	return ""
}

// ID returns the session's leg id in its room.
func (s *WHIPSession) ID() LegID { return s.p.id }

// Participant returns the session's participant (for stats).
func (s *WHIPSession) Participant() *Participant { return s.p }

// Failed is closed when the session's PeerConnection has failed or
// closed: the session cannot continue and should be closed.
func (s *WHIPSession) Failed() <-chan struct{} { return s.ev.failed }

// Done is closed when the session has been closed, by Close or because its
// room closed.
func (s *WHIPSession) Done() <-chan struct{} { return s.p.done }

// Close leaves the room and closes the PeerConnection. A publisher's
// tracks stop for everyone receiving them.
func (s *WHIPSession) Close() error { return s.p.Close() }

// Patch applies a trickle ICE fragment: its candidates are added and, if
// its credentials differ from the client's current ones, ICE restarts
// (RFC 9725 §4.3). For a restart it returns the SFU's new credentials and
// candidates as an application/trickle-ice-sdpfrag body and restarted =
// true. A fragment with another ufrag but no password, or the same ufrag
// with another password, returns ErrICEMismatch; bad candidates return
// ErrBadCandidate, and candidates past the limit of the ICE session
// ErrTooManyCandidates, before anything of the fragment is applied.
// Unusable candidates are dropped (candidates.go).
func (s *WHIPSession) Patch(ctx context.Context, f sdpfrag.Fragment) (frag string, restarted bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p.isClosed() {
		return "", false, fmt.Errorf("patch: %w", ErrClosed)
	}
	cands := f.Candidates
	if f.EndOfCandidates {
		cands = append(cands[:len(cands):len(cands)], webrtc.ICECandidateInit{})
	}
	sc, err := s.pr.policy.screen(s.pr.name, cands)
	if err != nil {
		return "", false, err
	}
	switch {
	case f.Ufrag == "" && f.Pwd != "":
		return "", false, fmt.Errorf("%w: ice-pwd without ice-ufrag", ErrICEMismatch)
	case f.Ufrag == "" || f.Ufrag == s.ufrag:
		if f.Pwd != "" && f.Pwd != s.pwd {
			return "", false, fmt.Errorf("%w: ice-pwd differs for the same ice-ufrag", ErrICEMismatch)
		}
	case f.Pwd == "":
		return "", false, fmt.Errorf("%w: another ice-ufrag without ice-pwd", ErrICEMismatch)
	default:
		// A new ICE session starts with no candidates: refuse too many
		// before restarting, so a refused fragment changes nothing.
		if n := sc.distinct(); n > maxRemoteCandidates {
			s.pr.policy.count(dropOverLimit, n)
			return "", false, fmt.Errorf("%w: %d usable candidates, at most %d per ICE session", ErrTooManyCandidates, n, maxRemoteCandidates)
		}
		restarted = true
		offer := sdpfrag.WithCredentials(s.offer, f.Ufrag, f.Pwd)
		if _, _, err := s.pr.answer(offer); err != nil {
			return "", false, err
		}
		s.offer, s.ufrag, s.pwd = offer, f.Ufrag, f.Pwd
		s.p.log.Info("ice restart")
	}
	if err := s.pr.addScreened(sc); err != nil {
		return "", false, err
	}
	if !restarted {
		return "", false, nil
	}
	return sdpfrag.Local(s.gathered(ctx)), true, nil
}

// Restarts reports whether Patch would restart ICE with f: f has both a
// ufrag and a password, and the ufrag is not the client's current one.
func (s *WHIPSession) Restarts(f sdpfrag.Fragment) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f.Ufrag != "" && f.Ufrag != s.ufrag && f.Pwd != ""
}
