package signaling

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/tandemcall/tandem/internal/clock"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/internal/webhook"
	"github.com/tandemcall/tandem/sfu"
	"github.com/tandemcall/tandem/signaling/callcore"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// Limits on the size of a call or room.
const (
	maxCallMembers = 50  // members joined or ringing in a call
	maxRoomMembers = 550 // members of a named room (most listen only)
)

// member is one user's place in a call: their devices ringing, then the one
// device (leg) that joined, then gone.
type member struct {
	callcore.Member[*Session]
	timer clock.Timer // the ring's, while it rings
	// stranger: their inviter is not among their contacts; the ring says so.
	stranger bool
	// pushed: their devices without a connection were pushed the ring.
	pushed  bool
	handoff *handoff // the call moving to another of their devices
	// detached runs while the leg's device is offline: when it fires, the
	// member leaves with connection_lost (resume.go).
	detached clock.Timer
}

// call is a call between users (1:1, growing into a group by invites) or a
// named room people join without ringing. The hub's mutex guards it.
type call struct {
	callcore.Call[*Session]
	members  map[string]*member // by user
	legs     map[*Session]*leg  // each device's media in the call, by device
	floor    *floor             // push-to-talk rooms only
	assist   *assist            // remote assistance, while it runs (assist.go)
	watchers int                // WHEP viewers of the call's media (watchers.go)
	// legLog is every leg the call had, for its quality summary.
	legLog []*leg
}

// newCall makes a call of core, with no members yet.
func newCall(core callcore.Call[*Session]) *call {
	core.Party = sessionParty
	return &call{Call: core, members: map[string]*member{}, legs: map[*Session]*leg{}}
}

// sessionParty names a device as messages show it.
func sessionParty(s *Session) protocol.Party { return protocol.Party{User: s.user, Device: s.device} }

// core returns c's members as the call core takes them.
func (c *call) core() []*callcore.Member[*Session] {
	ms := make([]*callcore.Member[*Session], 0, len(c.members))
	for _, m := range c.members {
		ms = append(ms, &m.Member)
	}
	return ms
}

// leg is one device's media in a call: its media leg and the sink of
// that leg's events, which moves with the leg to a resumed session.
type leg struct {
	user, device string
	media        MediaLeg
	events       *legEvents
}

// addLegLocked records media, with its event sink ev, as s's leg.
func (c *call) addLegLocked(s *Session, media MediaLeg, ev *legEvents) {
	l := &leg{user: s.user, device: s.device, media: media, events: ev}
	c.legs[s] = l
	if len(c.legLog) < 4*maxCallMembers {
		c.legLog = append(c.legLog, l)
	}
}

// mediaOf returns s's media leg in c, or nil.
func (c *call) mediaOf(s *Session) MediaLeg {
	if l := c.legs[s]; l != nil {
		return l.media
	}
	return nil
}

// dropLegLocked forgets s's leg and returns its media leg, to close
// after unlocking; nil if s had none.
func (c *call) dropLegLocked(s *Session) MediaLeg {
	l := c.legs[s]
	if l == nil {
		return nil
	}
	delete(c.legs, s)
	return l.media
}

// joinedBy returns the joined member whose leg is s.
func (c *call) joinedBy(s *Session) *member {
	if m := c.members[s.user]; m != nil && m.State == callcore.MemberJoined && m.Dev == s {
		return m
	}
	return nil
}

// ringingFor returns the member s is ringing for.
func (c *call) ringingFor(s *Session) *member {
	if m := c.members[s.user]; m != nil && m.State == callcore.MemberRinging && m.Ring.Rings(s) {
		return m
	}
	return nil
}

// mediaRoom is the SFU room of c's media: its call id.
func (c *call) mediaRoom() sfu.RoomID { return sfu.RoomID(c.ID) }

func (c *call) isLeg(s *Session) bool { return c.Phase != callcore.PhaseEnded && c.joinedBy(s) != nil }

// joined returns the joined members in the order they joined
// (callcore.Joined's order).
func (c *call) joined() []*member {
	js := callcore.Joined(c.core())
	out := make([]*member, len(js))
	for i, m := range js {
		out[i] = c.members[m.User]
	}
	return out
}

func (c *call) count(st callcore.MemberState) int {
	n := 0
	for _, m := range c.members {
		if m.State == st {
			n++
		}
	}
	return n
}

// parties is the joined members as messages show them, in the order
// they joined.
func (c *call) parties() []protocol.Party { return c.Parties(c.core()) }

// tellMembers sends msg to every joined leg but except.
func (c *call) tellMembers(except *Session, typ string, msg func() protocol.EncodedMessage) {
	for _, m := range c.joined() {
		if m.Dev != except {
			m.Dev.send(typ, msg())
		}
	}
}

func (c *call) incoming(m *member) *protocol.Incoming {
	in := &protocol.Incoming{CallID: c.ID, Video: c.Video, Waiting: m.Ring.Waiting(), Stranger: m.stranger}
	if m.Inviter != nil {
		in.From = protocol.Party{User: m.Inviter.user, Device: m.Inviter.device}
	}
	if c.Phase == callcore.PhaseActive {
		in.Members = c.parties()
	}
	return in
}

// historyUsers are the users who get a history entry when c ends.
func (c *call) historyUsers() []string {
	if c.Room != "" {
		return nil
	}
	users := make([]string, 0, len(c.members))
	for u := range c.members {
		users = append(users, u)
	}
	return users
}

// endResult is what is left to do, outside the lock, after a call ended or
// a member left it.
type endResult struct {
	call    *call
	reason  string
	entries map[string]store.CallEntry
	users   []string // whose history writes are pending
	legs    []MediaLeg
	partial bool   // a member left; the call goes on
	after   func() // media update to make after the lock, if any
}

// reqError is a failed request, reported back to the requesting device.
type reqError struct {
	code, msg string
	retry     time.Duration // when to try again, if the server says so
}

func (e *reqError) Error() string { return e.code + ": " + e.msg }

func fail(code, msg string) error { return &reqError{code: code, msg: msg} }

// checkCallee refuses calling oneself and users who never signed in.
func (h *Hub) checkCallee(s *Session, to string) error {
	if to == s.user {
		return fail(protocol.CodeBadMessage, "you cannot call yourself")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	known, err := h.store.KnownUser(ctx, to)
	if err != nil {
		h.log.Warn("user directory unreachable", "err", err)
		return fail(protocol.CodeUnavailable, "the call service cannot reach its shared state; calls in progress go on, try again shortly")
	}
	if !known && h.cluster != nil && h.cluster.Settling() {
		// Redis is back from an outage, maybe empty, and the nodes are
		// writing their users again: not knowing one yet is not news.
		return fail(protocol.CodeUnavailable, "the call service is rebuilding its shared state after an outage; try again shortly")
	}
	if !known {
		return fail(protocol.CodeUserUnknown, "no user "+to+" has signed in on this server")
	}
	return nil
}

// ringLocked adds a ringing member for user to, rung on devs.
func (h *Hub) ringLocked(c *call, to string, inviter *Session, devs []*Session, stranger bool) *member {
	m := &member{Member: callcore.Member[*Session]{User: to, Inviter: inviter}, stranger: stranger}
	c.members[to] = m
	var effs []callcore.Effect[*Session]
	m.Ring, effs = callcore.NewRing(devs, h.userCall[to] != nil, callcore.Timeouts{Ring: h.cfg.RingTimeout, Waiting: h.cfg.WaitingTimeout})
	h.applyLocked(c, origin{m: m}, effs)
	h.pushRingLocked(c, m)
	return m
}

// invite starts a call from s to user `to`, or, with callID, rings `to`
// into that running call.
func (h *Hub) invite(s *Session, to string, video bool, callID string) (string, error) {
	if err := h.limitCaller(s.user); err != nil {
		return callID, err
	}
	if err := h.checkCallee(s, to); err != nil {
		return "", err
	}
	if err := h.limitCallee(s.user, to); err != nil {
		return callID, err
	}
	stranger, err := h.checkRelation(s.user, to)
	if err != nil {
		return callID, err
	}
	if err := h.loadRemote(to); err != nil {
		return "", fail(protocol.CodeUnavailable, "the call service cannot reach its shared state; try again shortly")
	}
	// A callee with no device online may still be rung on a device whose
	// app is closed (asked of the store only then).
	h.mu.Lock()
	offline := len(h.devices[to]) == 0
	h.mu.Unlock()
	pushable := offline && h.pushReachable(to)
	if callID != "" {
		return callID, h.inviteInto(s, to, callID, stranger, pushable)
	}
	_ = h.loadRemote(s.user) // the caller's other devices hear of the call
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
	c := newCall(callcore.Call[*Session]{
		ID: newID("c_"), Caller: s.user, Callee: to, Video: video, Started: now,
	})
	c.members[s.user] = &member{Member: callcore.Member[*Session]{User: s.user, Dev: s, State: callcore.MemberJoined, Joined: now}}
	devs := h.onlineLocked(to)
	if len(devs) == 0 && !pushable {
		h.mu.Unlock()
		// The callee learns of the attempt as a missed call.
		c.Phase = callcore.PhaseEnded
		c.members[to] = &member{Member: callcore.Member[*Session]{User: to, Inviter: s}}
		users := c.historyUsers()
		h.pending.add(users...)
		h.record(&endResult{call: c, reason: protocol.ReasonNoAnswer, users: users, entries: h.entries(c, protocol.ReasonNoAnswer, now)})
		return "", fail(protocol.CodeUserOffline, to+" has no device online")
	}
	h.calls[c.ID] = c
	h.userCall[s.user] = c
	h.dirtyLocked(c)
	h.notifyLocked(webhook.CallStarted, callStartedEvent{CallID: c.ID, Caller: &partyEvent{User: s.user, Device: s.device}, Callees: []string{to}, Video: video})
	h.notifyJoinedLocked(c, c.members[s.user])
	m := h.ringLocked(c, to, s, devs, stranger)
	h.mu.Unlock()
	s.log.Info("call invite", "call", c.ID, "to", to, "devices", len(devs), "waiting", m.Ring.Waiting())
	return c.ID, nil
}

// inviteInto rings `to` into the running call callID, of which s is a
// member: a group call.
func (h *Hub) inviteInto(s *Session, to, callID string, stranger, pushable bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.lookupLocked(callID)
	if err != nil {
		return err
	}
	switch m := c.members[to]; {
	case h.draining:
		return fail(protocol.CodeShuttingDown, "the server is shutting down; try again shortly")
	case c.joinedBy(s) == nil:
		return fail(protocol.CodeNotInCall, "this device is not a member of that call")
	case c.Room != "":
		return fail(protocol.CodeInvalidState, "a room is joined, not rung: share its name instead")
	case c.Phase != callcore.PhaseActive:
		return fail(protocol.CodeInvalidState, "the call has not been answered yet")
	case m != nil && m.State != callcore.MemberGone:
		return fail(protocol.CodeInvalidState, to+" is already in the call or being rung")
	case c.count(callcore.MemberJoined)+c.count(callcore.MemberRinging) >= maxCallMembers:
		return fail(protocol.CodeCallFull, "the call is full")
	}
	devs := h.onlineLocked(to)
	if len(devs) == 0 && !pushable {
		return fail(protocol.CodeUserOffline, to+" has no device online")
	}
	h.ringLocked(c, to, s, devs, stranger)
	s.log.Info("call invite into group", "call", c.ID, "to", to, "devices", len(devs))
	return nil
}

// join puts s into the named room, creating it with mode ("" or "ptt").
func (h *Hub) join(s *Session, room, mode string) (string, error) {
	_ = h.loadRemote(s.user)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draining {
		return "", fail(protocol.CodeShuttingDown, "the server is shutting down; try again shortly")
	}
	if uc := h.userCall[s.user]; uc != nil {
		if uc.Room == room && uc.joinedBy(s) != nil && (uc.floor != nil) == (mode == protocol.ModePTT) {
			// This device is in the room already and asks again, the
			// same way: the reply to its join was lost (the room's node
			// went before sending it, say). It is answered as it would
			// have been. Another join of it (another mode) is a mistake.
			if uc.floor == nil {
				s.send(protocol.TypeJoined, &protocol.Joined{CallID: uc.ID, Room: room, Members: uc.parties()})
				return uc.ID, nil
			}
			s.send(protocol.TypeJoined, &protocol.Joined{CallID: uc.ID, Room: room, Mode: protocol.ModePTT, Members: uc.parties()})
			s.send(protocol.TypeFloor, uc.floorState(h.now()))
			return uc.ID, nil
		}
		return "", fail(protocol.CodeBusy, "you are already in a call or room")
	}
	c := h.rooms[room]
	if c == nil {
		c = newCall(callcore.Call[*Session]{
			ID: newID("r_"), Room: room, Phase: callcore.PhaseActive, Started: h.now(),
		})
		if mode == protocol.ModePTT {
			c.floor = &floor{}
		}
		h.calls[c.ID] = c
		h.rooms[room] = c
		h.notifyLocked(webhook.CallStarted, callStartedEvent{CallID: c.ID, Room: room, Mode: cmp.Or(mode, "group")})
	}
	if (c.floor != nil) != (mode == protocol.ModePTT) {
		if c.floor != nil {
			return "", fail(protocol.CodeInvalidState, "room "+room+" is a push-to-talk room: join it with mode ptt")
		}
		return "", fail(protocol.CodeInvalidState, "room "+room+" is not a push-to-talk room")
	}
	if c.count(callcore.MemberJoined) >= maxRoomMembers {
		return "", fail(protocol.CodeCallFull, "the room is full")
	}
	m := &member{Member: callcore.Member[*Session]{User: s.user, Dev: s, State: callcore.MemberJoined, Joined: h.now()}}
	c.members[s.user] = m
	h.userCall[s.user] = c
	h.dirtyLocked(c)
	h.notifyJoinedLocked(c, m)
	s.send(protocol.TypeJoined, &protocol.Joined{CallID: c.ID, Room: room, Mode: mode, Members: c.parties()})
	c.greetWatchers(s)
	if c.floor != nil {
		s.send(protocol.TypeFloor, c.floorState(h.now()))
	}
	c.tellMembers(s, protocol.TypeMemberJoined, func() protocol.EncodedMessage {
		return &protocol.MemberJoined{CallID: c.ID, Member: c.MemberParty(&m.Member)}
	})
	h.announceLocked(s.user)
	s.log.Info("room joined", "room", room, "call", c.ID, "members", c.count(callcore.MemberJoined))
	return c.ID, nil
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
	m := c.members[s.user]
	if m == nil || !m.Ring.Rings(s) {
		return fail(protocol.CodeNotInCall, "this device is not ringing for that call")
	}
	if m.State != callcore.MemberRinging {
		return fail(protocol.CodeInvalidState, "the call is no longer ringing")
	}
	if inv := m.Inviter; inv != nil && c.joinedBy(inv) != nil {
		inv.send(protocol.TypeRinging, &protocol.RingingEvent{CallID: c.ID, Device: s.device})
	}
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
	m := c.members[s.user]
	var cm *callcore.Member[*Session]
	if m != nil {
		cm = &m.Member
	}
	switch err := c.CheckAnswer(cm, s); {
	case errors.Is(err, callcore.ErrOwnCall):
		h.mu.Unlock()
		return fail(protocol.CodeInvalidState, "you cannot accept your own call")
	case errors.Is(err, callcore.ErrNotRung):
		h.mu.Unlock()
		return fail(protocol.CodeNotInCall, "this device was not rung for that call")
	case err != nil:
		h.mu.Unlock()
		return fail(protocol.CodeInvalidState, "the call was already answered")
	}
	if cur := h.userCall[s.user]; cur != nil && cur != c {
		if !endCurrent {
			h.mu.Unlock()
			return fail(protocol.CodeInvalidState, "you are in another call; accept with end_current to end it")
		}
		if cm := cur.members[s.user]; cm != nil && cm.State == callcore.MemberJoined {
			ends = append(ends, h.leaveLocked(cur, cm, protocol.ReasonCompleted, nil))
		}
	}
	// Checked above: the ring rings on s, so the answer stands.
	effs, first, _ := c.Answer(&m.Member, s, c.core(), h.now())
	h.pushRingEndedLocked(c, m, protocol.ReasonAnsweredElsewhere, s.device)
	h.userCall[s.user] = c
	h.applyLocked(c, origin{}, effs)
	h.dirtyLocked(c)
	if first {
		h.notifyLocked(webhook.CallAnswered, callAnsweredEvent{CallID: c.ID, By: partyEvent{User: s.user, Device: s.device}})
		h.announceLocked(c.Caller)
	}
	h.notifyJoinedLocked(c, m)
	h.announceLocked(s.user)
	h.mu.Unlock()
	for _, e := range ends {
		s.later(func() { h.finish(e) })
	}
	s.log.Info("call accepted", "call", c.ID, "members", len(c.members))
	return nil
}

// decline refuses the call for all of the user's devices.
func (h *Hub) decline(s *Session, callID string) error {
	h.mu.Lock()
	c, err := h.lookupLocked(callID)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	m := c.members[s.user]
	if m == nil || !m.Ring.Rings(s) || s.user == c.Caller && m.State != callcore.MemberRinging {
		h.mu.Unlock()
		return fail(protocol.CodeNotInCall, "this device was not rung for that call")
	}
	if m.State != callcore.MemberRinging {
		h.mu.Unlock()
		return fail(protocol.CodeInvalidState, "the call was already answered; hang up instead")
	}
	e := h.unringLocked(c, m, protocol.ReasonDeclined, s)
	h.mu.Unlock()
	if e != nil {
		s.later(func() { h.finish(e) })
	}
	return nil
}

// unringLocked ends the ringing of m for reason, or busy if they were in
// another call: the whole call while it is the first invite, otherwise
// only m's invite into the running call. decliner is the device that
// declined, if any.
func (h *Hub) unringLocked(c *call, m *member, reason string, decliner *Session) *endResult {
	pushReason := reason
	if decliner != nil && reason == protocol.ReasonDeclined {
		pushReason = protocol.ReasonDeclinedElsewhere
	}
	h.pushRingEndedLocked(c, m, pushReason, "")
	effs, endReason := c.Unring(&m.Member, c.core(), reason, decliner, h.now())
	if endReason != "" {
		return h.endLocked(c, endReason, decliner)
	}
	h.applyLocked(c, origin{}, effs)
	return nil
}

// hangup ends the call for s: cancelled before an answer; after it, s
// leaves, and the call ends when fewer than two members are left in it.
func (h *Hub) hangup(s *Session, callID string) error {
	h.mu.Lock()
	c, err := h.lookupLocked(callID)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	var e *endResult
	switch {
	case c.Phase == callcore.PhaseRinging && c.joinedBy(s) != nil:
		e = h.endLocked(c, protocol.ReasonCancelled, nil)
	case c.Phase == callcore.PhaseActive && c.isLeg(s):
		e = h.leaveLocked(c, c.joinedBy(s), protocol.ReasonCompleted, nil)
	case c.listenerOf(s) != nil:
		leg := h.dropListenerLocked(c, c.listenerOf(s), s, protocol.ReasonCompleted, false)
		h.mu.Unlock()
		if leg != nil {
			s.later(func() { _ = leg.Close() })
		}
		return nil
	case c.ringingFor(s) != nil:
		h.mu.Unlock()
		return fail(protocol.CodeInvalidState, "the call is ringing; decline it instead")
	default:
		h.mu.Unlock()
		return fail(protocol.CodeNotInCall, "this device is not in that call")
	}
	h.mu.Unlock()
	s.later(func() { h.finish(e) })
	return nil
}

// leaveLocked takes joined member m out of c for reason. by is the device
// whose loss caused it, if any; it is told nothing. A call left with fewer
// than two members, or a room left empty, ends.
func (h *Hub) leaveLocked(c *call, m *member, reason string, by *Session) *endResult {
	effs, ends := c.Leave(&m.Member, c.core(), reason, by, h.now())
	if ends {
		return h.endLocked(c, reason, by)
	}
	h.notifyLeftLocked(c, m, reason)
	left := c.count(callcore.MemberJoined)
	if h.userCall[m.User] == c {
		delete(h.userCall, m.User)
	}
	h.applyLocked(c, origin{}, effs)
	h.dirtyLocked(c)
	e := &endResult{call: c, reason: reason, partial: true}
	h.assistLeftLocked(c, m.User)
	if leg := h.dropHandoffLocked(c, m, nil, "the call ended on the other device"); leg != nil {
		e.legs = append(e.legs, leg)
	}
	for _, l := range slices.Clone(m.Listeners) {
		if leg := h.dropListenerLocked(c, m, l, reason, false); leg != nil {
			e.legs = append(e.legs, leg)
		}
	}
	h.announceLocked(m.User)
	if h.releaseLocked(c, m.User) {
		e.after = h.floorChangedLocked(c)
	}
	if l := c.dropLegLocked(m.Dev); l != nil {
		e.legs = append(e.legs, l)
	}
	h.log.Info("member left", "call", c.ID, "user", m.User, "reason", reason, "members", left)
	return e
}

// ringTimeout is the timer of ring r, user's in call callID: if that ring
// still waits for an answer, it ends unanswered.
func (h *Hub) ringTimeout(callID, user string, r *callcore.Ring[*Session]) {
	h.mu.Lock()
	c := h.calls[callID]
	var m *member
	if c != nil {
		m = c.members[user]
	}
	if m == nil || m.Ring != r || !r.Timeout() || m.State != callcore.MemberRinging || c.Phase == callcore.PhaseEnded {
		h.mu.Unlock()
		return
	}
	e := h.unringLocked(c, m, protocol.ReasonNoAnswer, nil)
	h.mu.Unlock()
	if e != nil {
		h.finish(e)
	}
}

// endLocked ends c with reason and tells every device involved, each in its
// own terms. by is the device whose action or loss ended the call, if any.
// The caller holds h.mu; finish(result) must follow after unlocking.
func (h *Hub) endLocked(c *call, reason string, by *Session) *endResult {
	// Count the history writes as pending before any device can hear of
	// the end: writers send without taking the hub lock.
	users := c.historyUsers()
	h.pending.add(users...)
	h.holdLocked()
	h.endAssistLocked(c, "call_ended")
	now := h.now()
	for _, m := range c.members {
		if m.State == callcore.MemberRinging {
			h.pushRingEndedLocked(c, m, callcore.RingEndReason(!c.Answered.IsZero(), reason), "")
		}
	}
	effs, d := c.End(c.core(), reason, by, now)
	dur := d.Milliseconds()
	if c.floor != nil {
		stopTimer(&c.floor.timer)
	}
	delete(h.calls, c.ID)
	if c.Room != "" && h.rooms[c.Room] == c {
		delete(h.rooms, c.Room)
	}
	h.dirtyLocked(c)
	for _, m := range c.members {
		stopTimer(&m.timer)
		if h.userCall[m.User] == c {
			delete(h.userCall, m.User)
		}
		if ho := m.handoff; ho != nil {
			ho.stop() // the core told its device the call ended
			m.handoff = nil
		}
	}
	h.applyLocked(c, origin{}, effs)
	for u := range c.members {
		if h.userCall[u] == nil {
			h.announceLocked(u)
		}
	}
	for _, m := range c.joined() {
		h.notifyLeftLocked(c, m, reason)
	}
	h.notifyLocked(webhook.CallEnded, callEndedEvent{CallID: c.ID, Reason: reason, DurationMS: dur, Answered: !c.Answered.IsZero()})
	e := &endResult{call: c, reason: reason, users: users, entries: h.entries(c, reason, now)}
	for _, l := range c.legs {
		e.legs = append(e.legs, l.media)
	}
	c.legs = nil
	h.releaseHeldLocked(e)
	h.metrics.callEnded(c, reason, now)
	h.log.Info("call ended", "call", c.ID, "users", c.historyUsers(), "reason", reason, "duration_ms", dur)
	return e
}

// entries builds every member's history entry for an ended call
// (callcore.History's rules).
func (h *Hub) entries(c *call, reason string, now time.Time) map[string]store.CallEntry {
	f := callcore.Facts{ID: c.ID, Caller: c.Caller, Callee: c.Callee, Room: c.Room, Video: c.Video, Started: c.Started, Answered: c.Answered}
	for _, m := range c.members {
		mf := callcore.MemberFacts{User: m.User, Joined: m.Joined, Left: m.Left, Reason: m.Reason}
		if m.Inviter != nil {
			mf.Inviter = m.Inviter.user
		}
		f.Members = append(f.Members, mf)
	}
	return callcore.History(f, reason, now)
}

// finish does the slow part of ending a call or a member's leaving,
// outside the lock: media teardown and history.
func (h *Hub) finish(e *endResult) {
	for _, l := range e.legs {
		_ = l.Close()
	}
	if e.after != nil {
		e.after()
	}
	if e.partial {
		return
	}
	if h.media != nil {
		h.media.CloseRoom(e.call.mediaRoom())
	}
	h.record(e)
}

func (h *Hub) record(e *endResult) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	defer h.pending.done(e.users...)
	q := h.callQuality(e.call)
	for user, entry := range e.entries {
		if q != nil && entry.AnsweredAt != nil {
			entry.Quality = q
		}
		if err := h.appendCall(ctx, user, entry); err != nil {
			h.log.Warn("call history not written yet: trying again", "call", e.call.ID, "user", user, "err", err)
			h.retryHistory(historyRetry{user: user, entry: entry, since: time.Now(), err: err})
		}
	}
}

// historyRetry is a history entry the store refused, kept to try again.
type historyRetry struct {
	user  string
	entry store.CallEntry
	since time.Time
	err   error // the store's last refusal
}

// History entries the store refuses are tried again every
// historyRetryEvery for historyRetryFor, then given up as lost: a Redis
// outage of a few minutes loses no history.
const (
	historyRetryEvery = time.Second
	historyRetryFor   = 15 * time.Minute
)

// retryHistory queues r for the history retrier, starting it if it does
// not run. The entry counts as its user's pending write until written or
// given up, so an export or the history API waits for it.
func (h *Hub) retryHistory(r historyRetry) {
	h.pending.add(r.user)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.historyQ = append(h.historyQ, r)
	if !h.historyRetrying {
		h.historyRetrying = true
		h.wg.Go(h.historyRetrier)
	}
}

// historyRetrier writes the queued entries, in order, once the store takes
// them again; it gives up an entry after historyRetryFor, and everything
// when the hub closes.
func (h *Hub) historyRetrier() {
	for {
		h.mu.Lock()
		batch, closed := h.historyQ, h.closed
		h.historyQ = nil
		if len(batch) == 0 {
			h.historyRetrying = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		if closed {
			for _, r := range batch {
				h.log.Error("call history lost: the node closed before the store took it", "call", r.entry.CallID, "user", r.user, "err", r.err)
				h.pending.done(r.user)
			}
			continue
		}
		var again []historyRetry
		for i, r := range batch {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := h.appendCall(ctx, r.user, r.entry)
			cancel()
			switch {
			case err == nil:
				h.log.Info("call history written after a delay", "call", r.entry.CallID, "user", r.user, "late", time.Since(r.since).Round(time.Millisecond))
				h.pending.done(r.user)
			case time.Since(r.since) > historyRetryFor:
				h.log.Error("call history lost: the store refused it too long", "call", r.entry.CallID, "user", r.user, "err", err)
				h.pending.done(r.user)
			default:
				// The store is still away: keep this and the rest, in order.
				batch[i].err = err
				again = append(again, batch[i:]...)
			}
			if len(again) > 0 {
				break
			}
		}
		if len(again) > 0 {
			h.mu.Lock()
			h.historyQ = append(again, h.historyQ...)
			h.mu.Unlock()
			time.Sleep(historyRetryEvery)
		}
	}
}

// appendCall writes a history entry, grouping unanswered calls with the
// same person when the hub is set to.
func (h *Hub) appendCall(ctx context.Context, user string, e store.CallEntry) error {
	if h.cfg.GroupUnansweredWithin > 0 {
		return h.store.GroupCall(ctx, user, e, h.cfg.GroupUnansweredWithin)
	}
	return h.store.AppendCall(ctx, user, e)
}

// callQuality summarises the network quality of every media leg c had,
// nil if none was measured.
func (h *Hub) callQuality(c *call) *store.CallQuality {
	h.mu.Lock()
	legs := slices.Clone(c.legLog)
	h.mu.Unlock()
	var q store.CallQuality
	rank := map[string]int{store.QualityGood: 0, store.QualityPoor: 1, store.QualityBad: 2}
	for _, l := range legs {
		s, ok := l.media.QualitySummary()
		if !ok {
			continue
		}
		lq := legQuality(s)
		lq.User, lq.Device = l.user, l.device
		q.Legs = append(q.Legs, lq)
		if q.Level == "" || rank[lq.Level] > rank[q.Level] {
			q.Level = lq.Level
		}
	}
	if len(q.Legs) == 0 {
		return nil
	}
	return &q
}

// legQuality turns the SFU's figures into a history entry's, rounded to
// a tenth.
func legQuality(s sfu.LegQuality) store.LegQuality {
	r := roundTenth
	ms := func(d time.Duration) float64 { return r(float64(d) / float64(time.Millisecond)) }
	return store.LegQuality{
		Level: s.Level, RTTMs: ms(s.RTT), LossPct: r(100 * s.Loss()), JitterMs: ms(s.Jitter()),
		SendKbps: r(s.SendBps / 1000), RecvKbps: r(s.RecvBps / 1000), Seconds: r(s.Seconds),
	}
}

// roundTenth rounds v to one decimal.
func roundTenth(v float64) float64 { return math.Round(v*10) / 10 }
