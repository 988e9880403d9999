package loadtest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// The media scenarios of a soak: an answered call whose two legs send
// each other audio, which is then moved to the callee's other device
// (SoakHandoff) or listened to along on it (SoakListen). Each device that
// receives counts the audio it gets, by sequence number, so that a soak
// tells the loss of every such call; and each checks that it hears the
// device that holds the call now.

// soakRx is what one device received of a call's audio.
type soakRx struct {
	mu     sync.Mutex
	tracks map[string]*seqCounter // by publishing user
	last   map[byte]time.Time     // by the sending device's tag: the last arrival
}

func newSoakRx() *soakRx {
	return &soakRx{tracks: map[string]*seqCounter{}, last: map[byte]time.Time{}}
}

func (r *soakRx) onRTP(tr client.RemoteTrack, p *rtp.Packet, at time.Time) {
	if tr.Kind == "audio" {
		r.add(tr.StreamID, p.SequenceNumber, p.Payload, at)
	}
}

// add counts an audio packet of stream's.
func (r *soakRx) add(stream string, seq uint16, payload []byte, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.tracks[stream]
	if c == nil {
		c = &seqCounter{}
		r.tracks[stream] = c
	}
	c.add(seq)
	if n := len(payload); n > 0 {
		r.last[payload[n-1]] = at
	}
}

// heard reports whether audio tagged tag arrived after since.
func (r *soakRx) heard(tag byte, since time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[tag].After(since)
}

// counts returns the packets expected and received over every track.
func (r *soakRx) counts() (expected, received uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.tracks {
		iv := c.position().since(c.origin())
		expected += max(iv.expected, iv.received)
		received += iv.received
	}
	return expected, received
}

// soakLeg is one device's media in a media scenario.
type soakLeg struct {
	d  *device
	m  *client.Media
	rx *soakRx
}

// mediaCall is the media of one call of a media scenario.
type mediaCall struct {
	s    *soak
	id   string
	legs []*soakLeg
}

// start connects d's media for the call: audio tagged tag both ways, or,
// listening, audio received only.
func (mc *mediaCall) start(ctx context.Context, d *device, tag byte, listen bool) (*soakLeg, error) {
	l := &soakLeg{d: d, rx: newSoakRx()}
	o := client.MediaOptions{Audio: !listen, ReceiveOnly: listen, Tag: tag, OnRTP: l.rx.onRTP}
	sctx, cancel := context.WithTimeout(ctx, soakStep)
	defer cancel()
	m, err := d.c.Load().StartMedia(sctx, mc.id, o)
	if err != nil {
		return nil, err
	}
	l.m = m
	mc.legs = append(mc.legs, l)
	mc.s.mu.Lock()
	mc.s.mediaDevs = append(mc.s.mediaDevs, d)
	mc.s.mu.Unlock()
	return l, nil
}

// hears waits until l hears audio tagged tag sent after since.
func (mc *mediaCall) hears(l *soakLeg, tag byte, since time.Time) bool {
	deadline := time.Now().Add(soakStep)
	for !l.rx.heard(tag, since) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// close stops every leg's media and records the call's loss: the packets
// its legs' sequence numbers say were sent them and did not arrive.
func (mc *mediaCall) close() {
	var expected, received uint64
	for _, l := range mc.legs {
		e, r := l.rx.counts()
		expected += e
		received += r
		_ = l.m.Close()
		mc.s.mu.Lock()
		if i := slices.Index(mc.s.mediaDevs, l.d); i >= 0 {
			mc.s.mediaDevs = slices.Delete(mc.s.mediaDevs, i, i+1)
		}
		mc.s.mu.Unlock()
	}
	mc.s.recordMedia(expected, received)
}

// recordMedia adds one call's audio to the figures: the packets its
// devices' sequence numbers say were sent them, and those that came.
func (s *soak) recordMedia(expected, received uint64) {
	if expected == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mediaCalls++
	s.mediaPackets += received
	s.mediaLoss = append(s.mediaLoss, float64(expected-received)/float64(expected))
}

// Tags of the devices in a media scenario.
const (
	tagCaller   = 0xc1
	tagAnswerer = 0xa1
	tagOther    = 0xa2
)

// media runs the media part of a media scenario in call id, answered on
// answerer: audio both ways, then the call moved to other, the callee's
// other device (handoff), or other listening along (listen). It returns
// the callee's device that holds the call after it and the devices that
// must hear the call end, and whether the scenario goes on; mc must be
// closed after the call ends.
func (s *soak) media(ctx context.Context, kind, id string, from, answerer, other *device, reached []*device, mc *mediaCall) (leg *device, legs []*device, ok bool) {
	brk := func(format string, args ...any) (*device, []*device, bool) {
		s.broke(ctx, id, from, reached, "%s %s: "+format, append([]any{kind, id}, args...)...)
		return nil, nil, false
	}
	sent := time.Now()
	caller, err := mc.start(ctx, from, tagCaller, false)
	if err != nil {
		return brk("the caller's media: %v", err)
	}
	callee, err := mc.start(ctx, answerer, tagAnswerer, false)
	if err != nil {
		return brk("the callee's media: %v", err)
	}
	if !mc.hears(caller, tagAnswerer, sent) || !mc.hears(callee, tagCaller, sent) {
		return brk("no audio both ways")
	}
	s.latency("media start → audio both ways", time.Since(sent))
	handoff := func(ok func(h *protocol.Handoff) bool) func() bool {
		return func() bool { h := s.call(id).handoff[other]; return h != nil && ok(h) }
	}
	// The other device heard the call answered elsewhere when it stopped
	// ringing; joining it now, it must hear it end again.
	s.mu.Lock()
	delete(s.call(id).ended, other)
	s.mu.Unlock()
	sent = time.Now()
	listen := kind == SoakListen
	if err := s.retry(ctx, kind, func(ctx context.Context) error {
		if listen {
			return other.c.Load().Listen(ctx, id)
		}
		return other.c.Load().Handoff(ctx, id, "")
	}); err != nil {
		return brk("%s: %v", kind, err)
	}
	if !s.await(soakStep, handoff(func(h *protocol.Handoff) bool { return h.State == protocol.HandoffStarted })) {
		return brk("%s never told to connect its media", other.name)
	}
	l, err := mc.start(ctx, other, tagOther, listen)
	if err != nil {
		return brk("%s's media: %v", other.name, err)
	}
	if !s.await(soakStep, handoff(func(h *protocol.Handoff) bool { return h.State != protocol.HandoffStarted })) {
		return brk("the %s never completed", kind)
	}
	if h := s.handoffOf(id, other); h.State != protocol.HandoffDone {
		return brk("the %s ended %q: %s", kind, h.State, h.Message)
	}
	if listen {
		// The listener hears the caller; the call stays where it was.
		if !mc.hears(l, tagCaller, sent) {
			return brk("%s listened along but heard nothing", other.name)
		}
		s.latency("listen → listener hears", time.Since(sent))
		return answerer, []*device{from, answerer, other}, true
	}
	// The call moved: the old device heard so, and the caller hears the
	// new one.
	if !s.await(s.cfg.EndWait, func() bool { _, ok := s.call(id).ended[answerer]; return ok }) {
		return brk("%s was never told the call moved", answerer.name)
	}
	if r := s.endOf(id, answerer); r != protocol.ReasonHandedOff {
		s.violate("%s %s: the device the call moved from heard it end %q, want %q", kind, id, r, protocol.ReasonHandedOff)
	}
	if !mc.hears(caller, tagOther, sent) {
		return brk("the caller never heard the device the call moved to")
	}
	s.latency("handoff → caller hears the new device", time.Since(sent))
	return other, []*device{from, other}, true
}

// handoffOf and endOf read what d last heard of call id's handoff and
// end.
func (s *soak) handoffOf(id string, d *device) *protocol.Handoff {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.call(id).handoff[d]
}

func (s *soak) endOf(id string, d *device) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.call(id).ended[d]
}

// lossPercentiles returns the median, 99th percentile and largest loss of
// the media calls, as fractions.
func lossPercentiles(loss []float64) (p50, p99, most float64) {
	if len(loss) == 0 {
		return 0, 0, 0
	}
	v := slices.Clone(loss)
	slices.Sort(v)
	return quantile(v, 0.5), quantile(v, 0.99), v[len(v)-1]
}
