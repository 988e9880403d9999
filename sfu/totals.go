package sfu

import "sync"

// Totals are the SFU's counters since it started, for metrics: what its
// rooms hold now, and every participant's media counters summed, those
// that left included.
type Totals struct {
	Rooms, Participants, Tracks int
	Audio, Video                MediaStats
	// Candidates counts clients' ICE candidates not used, by reason.
	Candidates CandidateDrops
}

// ledger keeps the participants whose counters Totals sums: the live ones,
// and the sum of those that left. One mutex covers both, so a participant
// moves from one to the other between two reads and the sums never go
// back (Prometheus would take that for a restart).
type ledger struct {
	mu      sync.Mutex
	live    map[*Participant]struct{}
	retired Stats
}

// enter starts counting p, which has joined a room.
func (g *ledger) enter(p *Participant) {
	g.mu.Lock()
	if g.live == nil {
		g.live = map[*Participant]struct{}{}
	}
	g.live[p] = struct{}{}
	g.mu.Unlock()
}

// retire moves p's counters into the sum of those that left.
func (g *ledger) retire(p *Participant) {
	g.mu.Lock()
	if _, ok := g.live[p]; ok {
		delete(g.live, p)
		st := p.Stats()
		g.retired.Audio.add(st.Audio)
		g.retired.Video.add(st.Video)
	}
	g.mu.Unlock()
}

// Totals returns the SFU's counters now.
func (s *SFU) Totals() Totals {
	var t Totals
	s.mu.Lock()
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	t.Rooms = len(rooms)
	t.Candidates = s.candidates.totals()
	for _, r := range rooms {
		r.mu.Lock()
		t.Participants += len(r.participants)
		t.Tracks += len(r.tracks)
		r.mu.Unlock()
	}

	g := &s.ledger
	g.mu.Lock()
	t.Audio, t.Video = g.retired.Audio, g.retired.Video
	for p := range g.live {
		st := p.Stats()
		t.Audio.add(st.Audio)
		t.Video.add(st.Video)
	}
	g.mu.Unlock()
	return t
}
