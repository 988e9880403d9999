package sfu

import (
	"slices"

	"github.com/pion/rtp"
)

// Speaker is one participant heard over the last interval; Level is 0
// (barely) to 100 (loudest).
type Speaker struct {
	StreamID string
	Level    int
}

// maxSpeakers is how many speakers an update lists.
const maxSpeakers = 3

// voiceDBov is the level (in -dBov, RFC 6464) under which a packet counts
// as voice rather than silence or background noise.
const voiceDBov = 50

// noteLevel adds the audio level a packet carries to the track's interval.
func (ft *forwardTrack) noteLevel(pkt *rtp.Packet) {
	ext := pkt.Header.GetExtension(ft.levelExt)
	if len(ext) == 0 {
		return
	}
	dbov := uint64(ext[0] & 0x7f)
	ft.levelPackets.Add(1)
	if dbov < voiceDBov {
		ft.levelActive.Add(1)
		ft.levelSum.Add(voiceDBov - dbov)
	}
}

// takeLevel ends the track's interval: it reports a level if voice filled
// at least 40 % of its packets.
func (ft *forwardTrack) takeLevel() (int, bool) {
	packets, active, sum := ft.levelPackets.Swap(0), ft.levelActive.Swap(0), ft.levelSum.Swap(0)
	if packets == 0 || active*5 < packets*2 {
		return 0, false
	}
	return max(1, int(sum*100/(active*voiceDBov))), true
}

// speakers works out who spoke over the last tick and tells every
// participant when that changed: the list, or a level by more than 10.
func (r *Room) speakers(ps []*Participant, tracks []*forwardTrack) {
	var now []Speaker
	for _, ft := range tracks {
		if ft.levelExt == 0 {
			continue
		}
		if level, ok := ft.takeLevel(); ok {
			now = append(now, Speaker{StreamID: ft.publisher.streamID, Level: level})
		}
	}
	slices.SortStableFunc(now, func(a, b Speaker) int { return b.Level - a.Level })
	if len(now) > maxSpeakers {
		now = now[:maxSpeakers]
	}
	r.speakerMu.Lock()
	changed := len(now) != len(r.lastSpeakers)
	for i := 0; !changed && i < len(now); i++ {
		a, b := now[i], r.lastSpeakers[i]
		changed = a.StreamID != b.StreamID || a.Level-b.Level > 10 || b.Level-a.Level > 10
	}
	if changed {
		r.lastSpeakers = now
	}
	r.speakerMu.Unlock()
	if !changed {
		return
	}
	for _, p := range ps {
		if !p.isClosed() {
			p.ev.Speakers(slices.Clone(now))
		}
	}
}
