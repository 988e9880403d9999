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
}

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
	if e.lossSeen {
		switch {
		case e.maxLoss > 0.10 && now.Sub(e.lastDown) < decreaseInterval:
			// Reports still describe the rate before the last decrease.
		case e.maxLoss > 0.10:
			// Over 10 % lost: the link carries about what arrived.
			base := e.est
			if sentBps > 0 {
				base = min(base, sentBps)
			}
			e.est = base * (1 - 0.5*e.maxLoss)
			// Backing off again soon after the last increase means
			// the ceiling is near: wait longer before probing.
			e.backoffLocked(now)
		case e.maxLoss < 0.02 && now.After(e.holdTill):
			e.est *= 1 + 0.08*dt.Seconds()
		}
	}
	e.lossSeen, e.maxLoss = false, 0
	e.est = min(max(e.est, bweMin), bweMax)
	e.sentBps = sentBps
}

// estimate returns the current estimate in bit/s.
func (e *estimator) estimate() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return int64(e.est)
}
