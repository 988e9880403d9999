package sfu

import (
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// A leg's network quality, sampled every second by the SFU's ticker from
// what RTCP already tells it: the subscriber's receiver reports on what
// the SFU sends it (loss, jitter, and the round trip from the sender
// reports they answer), and the SFU's own reception of what it publishes
// (loss from sequence numbers, RFC 3550 jitter). Nothing per packet.

// Quality levels, with the web client's thresholds (web/quality.js).
const (
	LevelGood = "good"
	LevelPoor = "poor"
	LevelBad  = "bad"
)

// Level returns good, poor or bad for a round trip, a loss fraction (0 to
// 1) and a jitter; zero figures count as unknown and good.
func Level(rtt time.Duration, loss float64, jitter time.Duration) string {
	switch {
	case loss > 0.10 || rtt > 400*time.Millisecond:
		return LevelBad
	case loss > 0.03 || rtt > 200*time.Millisecond || jitter > 30*time.Millisecond:
		return LevelPoor
	}
	return LevelGood
}

// LegQuality is one leg's figures: the latest second's (Participant.Quality)
// or the means over its life (QualitySummary).
type LegQuality struct {
	Level string
	// RTT is the round trip between the SFU and the device; 0 = unknown.
	RTT time.Duration
	// LossUp is the fraction of the device's packets lost on the way to
	// the SFU, LossDown of the SFU's on the way to the device.
	LossUp, LossDown float64
	// JitterUp and JitterDown are the interarrival jitter each way.
	JitterUp, JitterDown time.Duration
	// SendBps is what the device sends the SFU, RecvBps what it gets.
	SendBps, RecvBps float64
	// Seconds is how long the figures cover.
	Seconds float64
}

// Loss is the worse of the two ways.
func (q LegQuality) Loss() float64 { return max(q.LossUp, q.LossDown) }

// Jitter is the worse of the two ways.
func (q LegQuality) Jitter() time.Duration { return max(q.JitterUp, q.JitterDown) }

// qualityMeter keeps a participant's samples. The ticker writes; Quality
// and QualitySummary read.
type qualityMeter struct {
	mu     sync.Mutex
	last   LegQuality
	n      int // samples
	nRTT   int // samples with a round trip
	sum    LegQuality
	prev   map[*layer][2]uint32 // expected and received at the last sample; the ticker's own
	recvBs float64              // bit/s the allocator measured sent to the device
}

// sampleQuality records one second of p's figures. tracks are the room's
// tracks, downs what p receives.
func (p *Participant) sampleQuality(dt time.Duration, tracks []*forwardTrack, downs []*downTrack) {
	var q LegQuality
	q.Seconds = dt.Seconds()
	var rtts []time.Duration
	for _, d := range downs {
		b := d.b.Load()
		if b == nil || d.packets.Load() == 0 {
			continue
		}
		q.LossDown = max(q.LossDown, float64(d.fractionLost.Load())/256)
		if b.clock > 0 {
			q.JitterDown = max(q.JitterDown, time.Duration(d.jitter.Load())*time.Second/time.Duration(b.clock))
		}
		if us := d.rttMicros.Load(); us > 0 {
			rtts = append(rtts, time.Duration(us)*time.Microsecond)
		}
	}
	for _, r := range rtts {
		q.RTT += r / time.Duration(len(rtts))
	}

	m := &p.quality
	if m.prev == nil {
		m.prev = map[*layer][2]uint32{}
	}
	seen := map[*layer]bool{}
	var expected, received uint32
	for _, ft := range tracks {
		if ft.publisher != p {
			continue
		}
		for _, l := range *ft.layers.Load() {
			q.SendBps += float64(l.rate.Load())
			exp, got, jitter, ok := l.rx.counts()
			if !ok {
				continue
			}
			seen[l] = true
			prev := m.prev[l]
			m.prev[l] = [2]uint32{exp, got}
			if de, dg := exp-prev[0], got-prev[1]; de > 0 && de >= dg && de < 1<<20 {
				expected += de
				received += dg
			}
			if l.rx.clock > 0 {
				q.JitterUp = max(q.JitterUp, time.Duration(jitter*float64(time.Second)/float64(l.rx.clock)))
			}
		}
	}
	for l := range m.prev {
		if !seen[l] {
			delete(m.prev, l)
		}
	}
	if expected > 0 {
		q.LossUp = float64(expected-received) / float64(expected)
	}

	m.mu.Lock()
	q.RecvBps = m.recvBs
	q.Level = Level(q.RTT, q.Loss(), q.Jitter())
	m.last = q
	m.n++
	m.sum.LossUp += q.LossUp
	m.sum.LossDown += q.LossDown
	m.sum.JitterUp += q.JitterUp
	m.sum.JitterDown += q.JitterDown
	m.sum.SendBps += q.SendBps
	m.sum.RecvBps += q.RecvBps
	m.sum.Seconds += q.Seconds
	if q.RTT > 0 {
		m.nRTT++
		m.sum.RTT += q.RTT
	}
	m.mu.Unlock()
}

// noteSent records the rate the allocator measured sent to p.
func (p *Participant) noteSent(bps float64) {
	p.quality.mu.Lock()
	p.quality.recvBs = bps
	p.quality.mu.Unlock()
}

// Quality returns p's figures over the last second, and false before the
// first sample.
func (p *Participant) Quality() (LegQuality, bool) {
	m := &p.quality
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last, m.n > 0
}

// QualitySummary returns the means of p's figures over its life, with
// the level of those means, and false if it was never sampled.
func (p *Participant) QualitySummary() (LegQuality, bool) {
	m := &p.quality
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.n == 0 {
		return LegQuality{}, false
	}
	n := float64(m.n)
	q := LegQuality{
		LossUp: m.sum.LossUp / n, LossDown: m.sum.LossDown / n,
		JitterUp: m.sum.JitterUp / time.Duration(m.n), JitterDown: m.sum.JitterDown / time.Duration(m.n),
		SendBps: m.sum.SendBps / n, RecvBps: m.sum.RecvBps / n,
		Seconds: m.sum.Seconds,
	}
	if m.nRTT > 0 {
		q.RTT = m.sum.RTT / time.Duration(m.nRTT)
	}
	q.Level = Level(q.RTT, q.Loss(), q.Jitter())
	return q, true
}

// TrackInfo describes one track a participant publishes.
type TrackInfo struct {
	ID     string
	Kind   string // audio or video
	Codec  string
	Screen bool
	// Layers are the simulcast layers' rids ("" for a single layer) with
	// their bitrate now.
	Layers []LayerInfo
	// Subscribers is how many participants receive it.
	Subscribers int
}

// LayerInfo is one simulcast layer of a track.
type LayerInfo struct {
	RID    string
	Width  int
	Height int
	Bps    int64
}

// ParticipantInfo is a participant as the admin API shows it.
type ParticipantInfo struct {
	ID       LegID
	StreamID string
	Tracks   []TrackInfo
	Quality  LegQuality
	Sampled  bool // Quality holds a sample
	Stats    Stats
}

// Participants describes the room's participants now.
func (r *Room) Participants() []ParticipantInfo {
	r.mu.Lock()
	ps := make([]*Participant, 0, len(r.participants))
	for _, p := range r.participants {
		ps = append(ps, p)
	}
	tracks := append([]*forwardTrack(nil), r.tracks...)
	r.mu.Unlock()
	out := make([]ParticipantInfo, 0, len(ps))
	for _, p := range ps {
		info := ParticipantInfo{ID: p.id, StreamID: p.streamID, Stats: p.Stats()}
		info.Quality, info.Sampled = p.Quality()
		for _, ft := range tracks {
			if ft.publisher != p {
				continue
			}
			ti := TrackInfo{ID: ft.id, Codec: ft.codec.MimeType, Screen: ft.screen, Kind: "audio", Subscribers: len(*ft.downs.Load())}
			if ft.kind == webrtc.RTPCodecTypeVideo {
				ti.Kind = "video"
			}
			for _, l := range *ft.layers.Load() {
				ti.Layers = append(ti.Layers, LayerInfo{RID: l.rid, Width: int(l.width.Load()), Height: int(l.height.Load()), Bps: l.rate.Load()})
			}
			info.Tracks = append(info.Tracks, ti)
		}
		out = append(out, info)
	}
	return out
}

// Participant returns the participant id, or nil.
func (r *Room) Participant(id LegID) *Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.participants[id]
}

// Rooms lists the ids of the SFU's rooms.
func (s *SFU) Rooms() []RoomID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RoomID, 0, len(s.rooms))
	for id := range s.rooms {
		out = append(out, id)
	}
	return out
}
