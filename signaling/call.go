package signaling

import (
	"context"
	"time"

	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/signaling/protocol"
)

type callState int

const (
	stateRinging callState = iota
	stateActive
	stateEnded
)

// call is one call between two users. The hub's mutex guards it.
type call struct {
	id        string
	caller    string
	callee    string
	callerDev *Session
	calleeDev *Session          // set on accept
	rung      map[*Session]bool // callee devices that got incoming
	video     bool
	waiting   bool // the callee was in another call when invited
	state     callState
	started   time.Time
	answered  time.Time
	timer     *time.Timer
	legs      map[*Session]MediaLeg
}

func (c *call) incoming() *protocol.Incoming {
	return &protocol.Incoming{
		CallID: c.id, Video: c.video, Waiting: c.waiting,
		From: protocol.Party{User: c.caller, Device: c.callerDev.device},
	}
}

func (c *call) isLeg(s *Session) bool {
	return c.state != stateEnded && (c.callerDev == s || (c.state == stateActive && c.calleeDev == s))
}

func (c *call) other(s *Session) *Session {
	if s == c.callerDev {
		return c.calleeDev
	}
	return c.callerDev
}

// endResult is what is left to do, outside the lock, after a call ended.
type endResult struct {
	call    *call
	reason  string
	entries map[string]store.CallEntry
	legs    []MediaLeg
}

// reqError is a failed request, reported back to the requesting device.
type reqError struct {
	code, msg string
}

func (e *reqError) Error() string { return e.code + ": " + e.msg }

func fail(code, msg string) error { return &reqError{code: code, msg: msg} }

// invite starts a call from s to user `to`.
func (h *Hub) invite(s *Session, to string, video bool) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if to == s.user {
		return "", fail(protocol.CodeBadMessage, "you cannot call yourself")
	}
	known, err := h.store.KnownUser(ctx, to)
	if err != nil {
		return "", fail(protocol.CodeInternal, "user directory unavailable")
	}
	if !known {
		return "", fail(protocol.CodeUserUnknown, "no user "+to+" has signed in on this server")
	}

	h.mu.Lock()
	if h.draining {
		h.mu.Unlock()
		return "", fail(protocol.CodeShuttingDown, "the server is shutting down; try again shortly")
	}
	if h.userCall[s.user] != nil {
		h.mu.Unlock()
		return "", fail(protocol.CodeBusy, "you are already in a call")
	}
	now := h.now()
	c := &call{
		id: newID("c_"), caller: s.user, callee: to, callerDev: s, video: video,
		rung: map[*Session]bool{}, started: now, legs: map[*Session]MediaLeg{},
	}
	devs := h.onlineLocked(to)
	if len(devs) == 0 {
		h.mu.Unlock()
		// The callee learns of the attempt as a missed call.
		c.state = stateEnded
		h.pending.add(c.caller, c.callee)
		h.record(&endResult{call: c, reason: protocol.ReasonNoAnswer, entries: h.entries(c, protocol.ReasonNoAnswer, now)})
		return "", fail(protocol.CodeUserOffline, to+" has no device online")
	}
	c.waiting = h.userCall[to] != nil
	h.calls[c.id] = c
	h.userCall[s.user] = c
	timeout := h.cfg.RingTimeout
	if c.waiting {
		timeout = h.cfg.WaitingTimeout
	}
	id := c.id
	c.timer = time.AfterFunc(timeout, func() { h.ringTimeout(id) })
	for _, d := range devs {
		c.rung[d] = true
		d.send(protocol.TypeIncoming, c.incoming())
	}
	h.mu.Unlock()
	s.log.Info("call invite", "call", c.id, "to", to, "devices", len(devs), "waiting", c.waiting)
	return c.id, nil
}

func (h *Hub) lookupLocked(callID string) (*call, error) {
	c := h.calls[callID]
	if c == nil {
		return nil, fail(protocol.CodeNotFound, "no such call, or it has ended")
	}
	return c, nil
}

// ringing relays that device s shows the call.
func (h *Hub) ringing(s *Session, callID string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.lookupLocked(callID)
	if err != nil {
		return err
	}
	if !c.rung[s] {
		return fail(protocol.CodeNotInCall, "this device is not ringing for that call")
	}
	if c.state != stateRinging {
		return fail(protocol.CodeInvalidState, "the call is no longer ringing")
	}
	c.callerDev.send(protocol.TypeRinging, &protocol.RingingEvent{CallID: c.id, Device: s.device})
	return nil
}

// accept answers the call on device s.
func (h *Hub) accept(s *Session, callID string, endCurrent bool) error {
	var ends []*endResult
	h.mu.Lock()
	c, err := h.lookupLocked(callID)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	switch {
	case c.callerDev == s || c.caller == s.user:
		h.mu.Unlock()
		return fail(protocol.CodeInvalidState, "you cannot accept your own call")
	case !c.rung[s]:
		h.mu.Unlock()
		return fail(protocol.CodeNotInCall, "this device was not rung for that call")
	case c.state != stateRinging:
		h.mu.Unlock()
		return fail(protocol.CodeInvalidState, "the call was already answered")
	}
	if cur := h.userCall[s.user]; cur != nil && cur != c {
		if !endCurrent {
			h.mu.Unlock()
			return fail(protocol.CodeInvalidState, "you are in another call; accept with end_current to end it")
		}
		ends = append(ends, h.endLocked(cur, protocol.ReasonCompleted, nil))
	}
	c.timer.Stop()
	c.state = stateActive
	c.calleeDev = s
	c.answered = h.now()
	h.userCall[s.user] = c
	for d := range c.rung {
		if d != s {
			d.send(protocol.TypeEnded, &protocol.Ended{CallID: c.id, Reason: protocol.ReasonAnsweredElsewhere})
		}
	}
	c.rung = map[*Session]bool{s: true}
	callerP := protocol.Party{User: c.caller, Device: c.callerDev.device}
	calleeP := protocol.Party{User: s.user, Device: s.device}
	c.callerDev.send(protocol.TypeAccepted, &protocol.Accepted{CallID: c.id, By: calleeP, Peer: calleeP})
	s.send(protocol.TypeAccepted, &protocol.Accepted{CallID: c.id, By: calleeP, Peer: callerP})
	h.mu.Unlock()
	for _, e := range ends {
		h.finish(e)
	}
	s.log.Info("call accepted", "call", c.id)
	return nil
}

// decline refuses the call for all of the callee's devices.
func (h *Hub) decline(s *Session, callID string) error {
	h.mu.Lock()
	c, err := h.lookupLocked(callID)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	if !c.rung[s] || c.callerDev == s {
		h.mu.Unlock()
		return fail(protocol.CodeNotInCall, "this device was not rung for that call")
	}
	if c.state != stateRinging {
		h.mu.Unlock()
		return fail(protocol.CodeInvalidState, "the call was already answered; hang up instead")
	}
	reason := protocol.ReasonDeclined
	if c.waiting {
		reason = protocol.ReasonBusy
	}
	e := h.endLocked(c, reason, s)
	h.mu.Unlock()
	h.finish(e)
	return nil
}

// hangup ends the call: cancelled before an answer, completed after.
func (h *Hub) hangup(s *Session, callID string) error {
	h.mu.Lock()
	c, err := h.lookupLocked(callID)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	var e *endResult
	switch {
	case c.state == stateRinging && c.callerDev == s:
		e = h.endLocked(c, protocol.ReasonCancelled, nil)
	case c.state == stateActive && c.isLeg(s):
		e = h.endLocked(c, protocol.ReasonCompleted, nil)
	case c.state == stateRinging && c.rung[s]:
		h.mu.Unlock()
		return fail(protocol.CodeInvalidState, "the call is ringing; decline it instead")
	default:
		h.mu.Unlock()
		return fail(protocol.CodeNotInCall, "this device is not in that call")
	}
	h.mu.Unlock()
	h.finish(e)
	return nil
}

func (h *Hub) ringTimeout(callID string) {
	h.mu.Lock()
	c := h.calls[callID]
	if c == nil || c.state != stateRinging {
		h.mu.Unlock()
		return
	}
	reason := protocol.ReasonNoAnswer
	if c.waiting {
		reason = protocol.ReasonBusy
	}
	e := h.endLocked(c, reason, nil)
	h.mu.Unlock()
	h.finish(e)
}

// endLocked ends c with reason and tells every device involved, each in its
// own terms. by is the device whose action or loss ended the call, if any.
// The caller holds h.mu; finish(result) must follow after unlocking.
func (h *Hub) endLocked(c *call, reason string, by *Session) *endResult {
	// Count the history write as pending before any device can hear of
	// the end: writers send without taking the hub lock.
	h.pending.add(c.caller, c.callee)
	now := h.now()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.state = stateEnded
	delete(h.calls, c.id)
	for _, u := range []string{c.caller, c.callee} {
		if h.userCall[u] == c {
			delete(h.userCall, u)
		}
	}
	var dur int64
	if !c.answered.IsZero() {
		dur = now.Sub(c.answered).Milliseconds()
	}
	tell := func(s *Session, r string) {
		if s != nil {
			s.send(protocol.TypeEnded, &protocol.Ended{CallID: c.id, Reason: r, DurationMS: dur})
		}
	}
	switch reason {
	case protocol.ReasonDeclined, protocol.ReasonBusy:
		tell(c.callerDev, reason)
		for d := range c.rung {
			switch {
			case d == by:
				tell(d, protocol.ReasonDeclined)
			case by != nil:
				tell(d, protocol.ReasonDeclinedElsewhere)
			default:
				tell(d, reason)
			}
		}
	case protocol.ReasonConnectionLost:
		// The device that dropped gets nothing: its socket is gone.
		tell(c.other(by), reason)
	default:
		tell(c.callerDev, reason)
		for d := range c.rung {
			tell(d, reason)
		}
	}
	e := &endResult{call: c, reason: reason, entries: h.entries(c, reason, now)}
	for _, l := range c.legs {
		e.legs = append(e.legs, l)
	}
	c.legs = nil
	h.log.Info("call ended", "call", c.id, "reason", reason, "duration_ms", dur)
	return e
}

// entries builds both users' history entries for an ended call.
func (h *Hub) entries(c *call, reason string, now time.Time) map[string]store.CallEntry {
	base := store.CallEntry{CallID: c.id, Video: c.video, StartedAt: c.started, EndedAt: now, Reason: reason}
	if !c.answered.IsZero() {
		a := c.answered
		base.AnsweredAt = &a
		base.DurationMS = now.Sub(a).Milliseconds()
	}
	out := base
	out.Peer, out.Direction = c.callee, store.Outgoing
	in := base
	in.Peer, in.Direction = c.caller, store.Incoming
	in.Missed = reason == protocol.ReasonNoAnswer || reason == protocol.ReasonCancelled
	return map[string]store.CallEntry{c.caller: out, c.callee: in}
}

// finish does the slow part of ending a call, outside the lock: media
// teardown and history.
func (h *Hub) finish(e *endResult) {
	for _, l := range e.legs {
		_ = l.Close()
	}
	if h.media != nil {
		h.media.CloseRoom(e.call.id)
	}
	h.record(e)
}

func (h *Hub) record(e *endResult) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	defer h.pending.done(e.call.caller, e.call.callee)
	for user, entry := range e.entries {
		if err := h.store.AppendCall(ctx, user, entry); err != nil {
			h.log.Error("call history not written", "call", e.call.id, "user", user, "err", err)
		}
	}
}
