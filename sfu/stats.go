package sfu

import (
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// Stats are a participant's media counters.
type Stats struct {
	Audio MediaStats
	Video MediaStats
}

// MediaStats are the counters for one kind of media.
type MediaStats struct {
	// PacketsReceived and BytesReceived count RTP received from this
	// participant (bytes are SRTP-decrypted RTP packet sizes).
	PacketsReceived uint64
	BytesReceived   uint64
	// PacketsForwarded and BytesForwarded count RTP forwarded to this
	// participant from the others.
	PacketsForwarded uint64
	BytesForwarded   uint64
	// PacketsDropped counts packets for this participant that failed to send.
	PacketsDropped uint64
	// KeyframeRequests counts PLIs the SFU sent to this participant.
	KeyframeRequests uint64
	// NACKsReceived counts NACK packets this participant sent the SFU;
	// Retransmitted the packets resent from the cache in answer, and
	// NACKMisses the asked-for packets no longer cached. NACKStale
	// counts asked-for packets not resent because they came from a layer
	// the subscriber has since left (its decoder goes on from the new
	// layer's keyframe), and NACKOverBudget those not resent because
	// retransmissions had taken their share of the subscriber's
	// bandwidth estimate (rtxShare).
	NACKsReceived  uint64
	Retransmitted  uint64
	NACKMisses     uint64
	NACKStale      uint64
	NACKOverBudget uint64
	// LayerSwitches counts simulcast layer changes (and starts) of video
	// forwarded to this participant.
	LayerSwitches uint64
	// CachedStarts counts video started from the cached last keyframe of
	// its layer rather than a new one (startFromCache).
	CachedStarts uint64
	// Packets not forwarded to a subscriber, by why (PacketsDropped is
	// those a send failed for): its layer was paused for it (bandwidth or
	// a hidden tile), it waited for a keyframe to start or switch, it came
	// from a layer before a switch, or push-to-talk held it back (counted
	// once, on the publisher).
	SkippedPaused, SkippedKeyframeWait, SkippedLate, SkippedFloor uint64
}

// add adds o's counts to m.
func (m *MediaStats) add(o MediaStats) {
	m.PacketsReceived += o.PacketsReceived
	m.BytesReceived += o.BytesReceived
	m.PacketsForwarded += o.PacketsForwarded
	m.BytesForwarded += o.BytesForwarded
	m.PacketsDropped += o.PacketsDropped
	m.KeyframeRequests += o.KeyframeRequests
	m.NACKsReceived += o.NACKsReceived
	m.Retransmitted += o.Retransmitted
	m.NACKStale += o.NACKStale
	m.NACKOverBudget += o.NACKOverBudget
	m.NACKMisses += o.NACKMisses
	m.LayerSwitches += o.LayerSwitches
	m.CachedStarts += o.CachedStarts
	m.SkippedPaused += o.SkippedPaused
	m.SkippedKeyframeWait += o.SkippedKeyframeWait
	m.SkippedLate += o.SkippedLate
	m.SkippedFloor += o.SkippedFloor
}

// counters are the live, atomically updated form of MediaStats.
type counters struct {
	packetsReceived, bytesReceived    atomic.Uint64
	packetsForwarded, bytesForwarded  atomic.Uint64
	dropped, keyframeRequests         atomic.Uint64
	nacks, retransmitted, nackMisses  atomic.Uint64
	nackStale, nackOverBudget         atomic.Uint64
	layerSwitches, cachedStarts       atomic.Uint64
	paused, keyframeWait, late, floor atomic.Uint64
}

func (c *counters) received(n int) {
	c.packetsReceived.Add(1)
	c.bytesReceived.Add(uint64(n))
}

func (c *counters) forwarded(n int) {
	c.packetsForwarded.Add(1)
	c.bytesForwarded.Add(uint64(n))
}

func (c *counters) snapshot() MediaStats {
	return MediaStats{
		PacketsReceived:  c.packetsReceived.Load(),
		BytesReceived:    c.bytesReceived.Load(),
		PacketsForwarded: c.packetsForwarded.Load(),
		BytesForwarded:   c.bytesForwarded.Load(),
		PacketsDropped:   c.dropped.Load(),
		KeyframeRequests: c.keyframeRequests.Load(),
		NACKsReceived:    c.nacks.Load(),
		Retransmitted:    c.retransmitted.Load(),
		NACKMisses:       c.nackMisses.Load(),
		NACKStale:        c.nackStale.Load(),
		NACKOverBudget:   c.nackOverBudget.Load(),
		LayerSwitches:    c.layerSwitches.Load(),
		CachedStarts:     c.cachedStarts.Load(),

		SkippedPaused:       c.paused.Load(),
		SkippedKeyframeWait: c.keyframeWait.Load(),
		SkippedLate:         c.late.Load(),
		SkippedFloor:        c.floor.Load(),
	}
}

// participantStats holds a participant's counters per kind.
type participantStats struct {
	audio, video counters
	direct       atomic.Uint64 // packets sent to it by direct SRTP output
}

func (s *participantStats) kind(k webrtc.RTPCodecType) *counters {
	if k == webrtc.RTPCodecTypeAudio {
		return &s.audio
	}
	return &s.video
}
