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
}

func newEstimator() *estimator { return &estimator{est: bweStart, hold: 2 * time.Second} }

// loss records a fraction lost (0–1) from one reception report.
func (e *estimator) loss(f float64) {
	e.mu.Lock()
	e.lossSeen = true
	e.maxLoss = max(e.maxLoss, f)
	e.mu.Unlock()
}

// remb records a receiver's estimated maximum bitrate.
func (e *estimator) remb(bps int64) {
	e.mu.Lock()
	e.rembBps, e.rembAt = bps, time.Now()
	e.mu.Unlock()
}

// tick advances the estimate given what was sent over the last dt.
func (e *estimator) tick(now time.Time, sentBps float64, dt time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
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
			if now.Sub(e.lastDown) < 30*time.Second {
				e.hold = min(2*e.hold, 60*time.Second)
			} else {
				e.hold = 2 * time.Second
			}
			e.lastDown = now
			e.holdTill = now.Add(e.hold)
		case e.maxLoss < 0.02 && now.After(e.holdTill):
			e.est *= 1 + 0.08*dt.Seconds()
		}
	}
	e.lossSeen, e.maxLoss = false, 0
	e.est = min(max(e.est, bweMin), bweMax)
}

// estimate returns the current estimate in bit/s.
func (e *estimator) estimate() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	est := int64(e.est)
	if e.rembBps > 0 && time.Since(e.rembAt) < 5*time.Second {
		est = min(est, e.rembBps)
	}
	return est
}
