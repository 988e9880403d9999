package sfu

import (
	"sync"
	"time"
)

// Bandwidth estimate bounds and start, in bit/s. The start lets a new
// subscriber take the top layer of one publisher at once; loss brings it
// down within a second or two where the link is narrower.
const (
	bweStart = 3_000_000
	bweMin   = 100_000
	bweMax   = 20_000_000
)

// decreaseInterval is the least time between two decreases: receiver
// reports arrive about once a second, so the loss that follows a decrease
// still describes the rate before it.
const decreaseInterval = 2500 * time.Millisecond

// estimator is one subscriber's downlink bandwidth estimate. It combines
// the loss-based rule of Google congestion control (RFC draft
// draft-ietf-rmcat-gcc §6) on the subscriber's receiver reports with the
// REMB browsers send from their receive-side delay estimator. It is fed by
// RTCP readers and advanced by the SFU's ticker; it has no timer of its own.
type estimator struct {
	mu       sync.Mutex
	est      float64
	maxLoss  float64 // highest loss reported since the last tick
	lossSeen bool
	rembBps  int64
	rembAt   time.Time
	hold     time.Duration // how long increases wait after a decrease
	holdTill time.Time
	lastDown time.Time
	sentBps  float64 // sent to the subscriber over the last tick
	rembCut  bool    // a REMB lowered the estimate since the last tick
	// ceil is what the link carried when it last proved full (what
	// arrived at heavy loss, or a REMB under what was sent); 0 when
	// unknown. Near it the estimate grows additively, as GCC's AIMD does
	// near its link capacity estimate: probing multiplicatively from just
	// under a ceiling reaches the layer that overflowed it again within
	// seconds, and the subscriber's picture stalls each time.
	ceil float64
	// unreported is the time since the last tick that had a report:
	// receivers report once a second or so, ticks come twice as often,
	// and an increase covers the whole time since the last one.
	unreported time.Duration
}

// ceilReach is how far above the last ceiling the estimate grows
// additively; beyond it the link has grown and the ceiling is forgotten.
const ceilReach = 2.0

// additiveStep is the least additive increase, in bit/s per second: about
// one 1,200-byte packet per 200 ms response time, as in GCC.
const additiveStep = 48_000

// heavyLossRoom is how far above what arrived a decrease on heavy loss may
// leave the estimate: GCC's rule alone (half the loss off) leaves a link
// that lost half of what was sent at 1.5 times its capacity.
const heavyLossRoom = 1 / 0.85

func newEstimator() *estimator { return &estimator{est: bweStart, hold: 2 * time.Second} }

// loss records a fraction lost (0–1) from one reception report.
func (e *estimator) loss(f float64) {
	e.mu.Lock()
	e.lossSeen = true
	e.maxLoss = max(e.maxLoss, f)
	e.mu.Unlock()
}

// rembBinding is how far under what the receiver gets a REMB must be to
// say the link is full. Chromium never reports more than about 1.5 times
// what it receives (plus 10 kbit/s), whatever the link could carry; taken
// as the capacity, that ceiling would keep a subscriber on a layer forever
// once it had been lowered (the next layer up costs more than 1.5 times
// it). Under congestion the report falls to about 0.85 times what arrives.
const rembBinding = 1.0

// remb records a receiver's estimated maximum bitrate. Below what it
// receives (by rembBinding) the link is full: the estimate comes down to
// it and holds, as after loss; otherwise it is the receiver's ceiling, not
// news about the link, and the estimate keeps probing upwards.
func (e *estimator) remb(bps int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rembBps, e.rembAt = bps, time.Now()
	if e.sentBps > 0 && float64(bps) < rembBinding*e.sentBps && float64(bps) < e.est {
		e.est = max(float64(bps), bweMin)
		e.ceil = e.est
		e.rembCut = true // the next tick starts the hold
	}
}

// backoffLocked starts a hold after a decrease: longer when the last one
// was recent (the ceiling is near), short again after a quiet while.
func (e *estimator) backoffLocked(now time.Time) {
	if now.Sub(e.lastDown) < 30*time.Second {
		e.hold = min(2*e.hold, 60*time.Second)
	} else {
		e.hold = 2 * time.Second
	}
	e.lastDown = now
	e.holdTill = now.Add(e.hold)
}

// tick advances the estimate given what was sent over the last dt.
func (e *estimator) tick(now time.Time, sentBps float64, dt time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rembCut {
		e.rembCut = false
		e.backoffLocked(now)
	}
	e.unreported += dt
	if e.lossSeen {
		since := e.unreported
		e.unreported = 0
		switch {
		case e.maxLoss > 0.10 && now.Sub(e.lastDown) < decreaseInterval:
			// Reports still describe the rate before the last decrease.
		case e.maxLoss > 0.10:
			// Over 10 % lost: the link carries about what arrived.
			base := e.est
			if sentBps > 0 {
				base = min(base, sentBps)
			}
			arrived := base * (1 - e.maxLoss)
			e.est = min(base*(1-0.5*e.maxLoss), arrived*heavyLossRoom)
			e.ceil = max(arrived, bweMin)
			// Backing off again soon after the last increase means
			// the ceiling is near: wait longer before probing.
			e.backoffLocked(now)
		case e.maxLoss < 0.02 && now.After(e.holdTill):
			e.increaseLocked(since)
		}
	}
	e.lossSeen, e.maxLoss = false, 0
	e.est = min(max(e.est, bweMin), bweMax)
	e.sentBps = sentBps
}

// increaseLocked raises the estimate after dt without loss: additively
// near the last ceiling, by 8 % a second below or far above it.
func (e *estimator) increaseLocked(dt time.Duration) {
	if e.ceil > 0 && e.est > ceilReach*e.ceil {
		e.ceil = 0
	}
	if e.ceil > 0 && e.est >= 0.85*e.ceil {
		e.est += max(additiveStep, 0.05*e.ceil) * dt.Seconds()
		return
	}
	e.est *= 1 + 0.08*dt.Seconds()
}

// estimate returns the current estimate in bit/s.
func (e *estimator) estimate() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return int64(e.est)
}
