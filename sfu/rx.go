package sfu

import (
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// Reception of one published layer, for what the SFU tells the publisher
// when direct input (srtpin.go) takes its packets from pion: receiver
// reports (RFC 3550 A.3 and A.8) and NACKs for the gaps. Both paths that
// deliver a layer's packets (direct input, and pion for what it keeps)
// note them here, hence the mutex.

const (
	nackMaxMissing = 128                     // most sequence numbers waited for at once
	nackTries      = 4                       // NACKs per missing packet
	nackSpacing    = 40 * time.Millisecond   // least time between NACKs of a layer
	nackGiveUp     = 1000 * time.Millisecond // a packet this late is no use
)

type missing struct {
	ext   uint32 // extended sequence number
	since int64  // monotime it went missing
	tries uint8
}

type rxStats struct {
	mu      sync.Mutex
	clock   uint32 // RTP clock rate
	started bool
	base    uint32 // first extended sequence number
	max     uint32 // highest extended sequence number
	count   uint32 // packets received

	expectedPrior, receivedPrior uint32 // at the last report

	jitter      float64 // in clock units
	lastTransit int64

	lastSR   uint32 // middle 32 bits of the last sender report's NTP time
	lastSRAt int64  // monotime it arrived

	missing  []missing
	lastNack int64
}

// note records the arrival of a packet at now (monotime).
func (r *rxStats) note(seq uint16, ts uint32, now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		r.started = true
		r.base, r.max = uint32(seq), uint32(seq)
		r.count = 1
		return
	}
	// Extend seq to the value nearest the highest seen.
	ext := r.max + uint32(int32(int16(seq-uint16(r.max))))
	switch d := int32(ext - r.max); {
	case d > 0:
		if d > 1 && d <= nackMaxMissing {
			for s := r.max + 1; s != ext; s++ {
				if len(r.missing) == nackMaxMissing {
					r.missing = r.missing[1:]
				}
				r.missing = append(r.missing, missing{ext: s, since: now})
			}
		}
		r.max = ext
	case d < 0:
		// Late or retransmitted: no longer missing.
		for i := range r.missing {
			if r.missing[i].ext == ext {
				r.missing = append(r.missing[:i], r.missing[i+1:]...)
				break
			}
		}
	}
	r.count++
	if r.clock != 0 {
		arrival := now * int64(r.clock) / int64(time.Second)
		transit := arrival - int64(ts)
		if r.lastTransit != 0 {
			d := float64(transit - r.lastTransit)
			if d < 0 {
				d = -d
			}
			r.jitter += (d - r.jitter) / 16
		}
		r.lastTransit = transit
	}
}

// counts returns the packets expected and received so far and the
// jitter in clock units, and false before the first packet.
func (r *rxStats) counts() (expected, received uint32, jitter float64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return 0, 0, 0, false
	}
	return r.max - r.base + 1, r.count, r.jitter, true
}

// senderReport records the publisher's sender report (NTP time ntp)
// arriving at now.
func (r *rxStats) senderReport(ntp uint64, now int64) {
	r.mu.Lock()
	r.lastSR, r.lastSRAt = uint32(ntp>>16), now
	r.mu.Unlock()
}

// report returns the reception report for ssrc at now, and whether
// anything was received.
func (r *rxStats) report(ssrc uint32, now int64) (rtcp.ReceptionReport, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		return rtcp.ReceptionReport{}, false
	}
	expected := r.max - r.base + 1
	lost := int64(expected) - int64(r.count)
	lost = max(0, min(lost, 0x7fffff))
	expInterval := expected - r.expectedPrior
	recvInterval := r.count - r.receivedPrior
	r.expectedPrior, r.receivedPrior = expected, r.count
	var fraction uint8
	if lostInterval := int64(expInterval) - int64(recvInterval); expInterval != 0 && lostInterval > 0 {
		fraction = uint8(min(255, lostInterval<<8/int64(expInterval)))
	}
	rr := rtcp.ReceptionReport{
		SSRC:               ssrc,
		FractionLost:       fraction,
		TotalLost:          uint32(lost),
		LastSequenceNumber: r.max,
		Jitter:             uint32(r.jitter),
		LastSenderReport:   r.lastSR,
	}
	if r.lastSRAt != 0 {
		rr.Delay = uint32((now - r.lastSRAt) * 65536 / int64(time.Second))
	}
	return rr, true
}

// nacks returns the sequence numbers to ask the publisher for again at
// now, at most once per nackSpacing, and forgets packets asked for
// nackTries times or missing longer than nackGiveUp.
func (r *rxStats) nacks(now int64, dst []uint16) []uint16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.missing) == 0 || now-r.lastNack < int64(nackSpacing) {
		return dst
	}
	r.lastNack = now
	keep := r.missing[:0]
	for _, m := range r.missing {
		if m.tries >= nackTries || now-m.since > int64(nackGiveUp) {
			continue
		}
		m.tries++
		dst = append(dst, uint16(m.ext))
		keep = append(keep, m)
	}
	r.missing = keep
	return dst
}
