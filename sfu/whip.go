package sfu

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
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

// Session is a WHIP publisher or a WHEP viewer in a room.
type Session struct {
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
func (r *Room) Publish(ctx context.Context, id, streamID, offer string) (*Session, string, error) {
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
	s := &Session{p: p, pr: p.pub, ev: ev}
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
func (r *Room) View(ctx context.Context, id, offer string) (*Session, string, error) {
	if _, err := parseSDP(offer); err != nil {
		return nil, "", err
	}
	wantAudio, wantVideo := receivingKinds(offer)
	if !wantAudio && !wantVideo {
		return nil, "", fmt.Errorf("%w: the offer receives neither audio nor video", ErrBadSDP)
	}
	ev := newSessionEvents()
	p, err := newParticipant(r, id, id, ev, kindViewer)
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
	s := &Session{p: p, pr: p.sub, ev: ev}
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
func (s *Session) negotiate(ctx context.Context, offer string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, _, err := s.pr.answer(offer); err != nil {
		return "", err
	}
	s.offer = offer
	s.ufrag, s.pwd = iceCredentials(offer)
	return s.gathered(ctx), nil
}

// gathered waits (within ctx) until the PC has gathered its candidates and
// returns its local description, which then carries them.
func (s *Session) gathered(ctx context.Context) string {
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
func (s *Session) ID() string { return s.p.id }

// Participant returns the session's participant (for stats).
func (s *Session) Participant() *Participant { return s.p }

// Failed is closed when the session's PeerConnection has failed or
// closed: the session cannot continue and should be closed.
func (s *Session) Failed() <-chan struct{} { return s.ev.failed }

// Done is closed when the session has been closed, by Close or because its
// room closed.
func (s *Session) Done() <-chan struct{} { return s.p.done }

// Close leaves the room and closes the PeerConnection. A publisher's
// tracks stop for everyone receiving them.
func (s *Session) Close() error { return s.p.Close() }

// Patch applies a trickle ICE fragment: its candidates are added and, if
// its credentials differ from the client's current ones, ICE restarts
// (RFC 9725 §4.3). For a restart it returns the SFU's new credentials and
// candidates as an application/trickle-ice-sdpfrag body and restarted =
// true. A fragment with another ufrag but no password, or the same ufrag
// with another password, returns ErrICEMismatch; bad candidates return
// ErrBadCandidate, and candidates past the limit of the ICE session
// ErrTooManyCandidates, before anything of the fragment is applied.
// Unusable candidates are dropped (candidates.go).
func (s *Session) Patch(ctx context.Context, f ICEFragment) (frag string, restarted bool, err error) {
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
		offer := withICECredentials(s.offer, f.Ufrag, f.Pwd)
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
	return localFragment(s.gathered(ctx)), true, nil
}

// Restarts reports whether Patch would restart ICE with f: f has both a
// ufrag and a password, and the ufrag is not the client's current one.
func (s *Session) Restarts(f ICEFragment) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f.Ufrag != "" && f.Ufrag != s.ufrag && f.Pwd != ""
}

// ICEFragment is what a trickle-ice-sdpfrag body (RFC 8840) carries: the
// ICE credentials it belongs to, candidates and end-of-candidates.
type ICEFragment struct {
	Ufrag, Pwd      string
	Candidates      []webrtc.ICECandidateInit
	EndOfCandidates bool
}

// Limits on a fragment.
const (
	maxFragmentBytes      = 64 << 10
	maxFragmentLines      = 512
	maxFragmentCandidates = 64
	maxMidLen             = 64
)

// ParseICEFragment parses an application/trickle-ice-sdpfrag body. It
// accepts session- and media-level ice-ufrag and ice-pwd (which must agree
// and use only ICE characters, RFC 8839 §5.4), mid, candidate and
// end-of-candidates lines, ignores other attributes, and returns an error
// wrapping ErrBadFragment for anything malformed.
func ParseICEFragment(body string) (ICEFragment, error) {
	var f ICEFragment
	bad := func(format string, args ...any) (ICEFragment, error) {
		return ICEFragment{}, fmt.Errorf("%w: "+format, append([]any{ErrBadFragment}, args...)...)
	}
	if len(body) > maxFragmentBytes {
		return bad("longer than %d bytes", maxFragmentBytes)
	}
	if !utf8.ValidString(body) {
		return bad("not UTF-8")
	}
	lines := strings.Split(body, "\n")
	if len(lines) > maxFragmentLines {
		return bad("more than %d lines", maxFragmentLines)
	}
	mid, sections, seen := "", 0, false
	for n, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z' {
			return bad("line %d is not <letter>=<value>", n+1)
		}
		seen = true
		if line[0] == 'm' {
			sections++
			mid = ""
			continue
		}
		if line[0] != 'a' {
			continue
		}
		name, value, _ := strings.Cut(line[2:], ":")
		switch name {
		case "ice-ufrag":
			if !iceString(value, 4) {
				return bad("ice-ufrag must be 4–256 ICE characters")
			}
			if f.Ufrag != "" && f.Ufrag != value {
				return bad("two different ice-ufrag values")
			}
			f.Ufrag = value
		case "ice-pwd":
			if !iceString(value, 22) {
				return bad("ice-pwd must be 22–256 ICE characters")
			}
			if f.Pwd != "" && f.Pwd != value {
				return bad("two different ice-pwd values")
			}
			f.Pwd = value
		case "mid":
			if value == "" || len(value) > maxMidLen || strings.ContainsFunc(value, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				return bad("bad mid")
			}
			mid = value
		case "candidate":
			if len(f.Candidates) == maxFragmentCandidates {
				return bad("more than %d candidates", maxFragmentCandidates)
			}
			if strings.ContainsFunc(value, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				return bad("control character in candidate on line %d", n+1)
			}
			if _, err := ice.UnmarshalCandidate(value); err != nil {
				return bad("candidate on line %d: %v", n+1, err)
			}
			c := webrtc.ICECandidateInit{Candidate: "candidate:" + value}
			if mid != "" {
				m := mid
				c.SDPMid = &m
			}
			if sections > 0 && sections <= maxFragmentLines {
				i := uint16(sections - 1)
				c.SDPMLineIndex = &i
			}
			f.Candidates = append(f.Candidates, c)
		case "end-of-candidates":
			f.EndOfCandidates = true
		}
	}
	if !seen {
		return bad("empty")
	}
	return f, nil
}

// iceString reports whether s is min–256 ICE characters (ALPHA / DIGIT /
// "+" / "/").
func iceString(s string, min int) bool {
	if len(s) < min || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// iceCredentials returns the ICE ufrag and password of a description
// (session level, else the first media section that has them).
func iceCredentials(desc string) (ufrag, pwd string) {
	var d sdp.SessionDescription
	if d.UnmarshalString(desc) != nil {
		return "", ""
	}
	ufrag, _ = d.Attribute("ice-ufrag")
	pwd, _ = d.Attribute("ice-pwd")
	for _, m := range d.MediaDescriptions {
		if ufrag == "" {
			ufrag, _ = m.Attribute("ice-ufrag")
		}
		if pwd == "" {
			pwd, _ = m.Attribute("ice-pwd")
		}
	}
	return ufrag, pwd
}

// withICECredentials returns desc with every ice-ufrag and ice-pwd replaced
// and its candidates removed: the offer a client restarting ICE would have
// sent. ufrag and pwd must have passed iceString.
func withICECredentials(desc, ufrag, pwd string) string {
	lines := strings.SplitAfter(desc, "\n")
	var b strings.Builder
	b.Grow(len(desc))
	for _, line := range lines {
		eol := line[len(strings.TrimRight(line, "\r\n")):]
		switch {
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			b.WriteString("a=ice-ufrag:" + ufrag + eol)
		case strings.HasPrefix(line, "a=ice-pwd:"):
			b.WriteString("a=ice-pwd:" + pwd + eol)
		case strings.HasPrefix(line, "a=candidate:"), strings.HasPrefix(line, "a=end-of-candidates"):
		default:
			b.WriteString(line)
		}
	}
	return b.String()
}

// localFragment turns the SFU's local description into the
// trickle-ice-sdpfrag answer to an ICE restart: the bundle group, the first
// media section's m= line and mid, the ICE credentials, its candidates and
// end-of-candidates.
func localFragment(desc string) string {
	var d sdp.SessionDescription
	if d.UnmarshalString(desc) != nil {
		return ""
	}
	var b strings.Builder
	line := func(s string) { b.WriteString(s + "\r\n") }
	if g, ok := d.Attribute("group"); ok {
		line("a=group:" + g)
	}
	ufrag, pwd := iceCredentials(desc)
	if len(d.MediaDescriptions) == 0 {
		line("a=ice-ufrag:" + ufrag)
		line("a=ice-pwd:" + pwd)
		return b.String()
	}
	m := d.MediaDescriptions[0]
	line(fmt.Sprintf("m=%s 9 %s %s", m.MediaName.Media, strings.Join(m.MediaName.Protos, "/"), strings.Join(m.MediaName.Formats, " ")))
	if mid, ok := m.Attribute("mid"); ok {
		line("a=mid:" + mid)
	}
	line("a=ice-ufrag:" + ufrag)
	line("a=ice-pwd:" + pwd)
	for _, a := range m.Attributes {
		if a.Key == "candidate" {
			line("a=candidate:" + a.Value)
		}
	}
	line("a=end-of-candidates")
	return b.String()
}

// CloseRoomIfEmpty closes and forgets the room if it has no participants,
// and reports whether it did. A Join racing with it fails with ErrClosed;
// SFU.Room then makes a new room.
func (s *SFU) CloseRoomIfEmpty(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[id]
	if !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.participants) > 0 {
		return false
	}
	r.closed = true
	delete(s.rooms, id)
	r.log.Debug("room closed: empty")
	return true
}
