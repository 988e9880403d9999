package signaling

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/clock"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/internal/webhook"
	"github.com/tandemcall/tandem/sfu"
	"github.com/tandemcall/tandem/signaling/callcore"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// Remote assistance (DESIGN.md, "Remote assistance"): in a call between
// two people, one helps the other with their screen. The helped device
// alone grants view, annotate and control, each on its own; the helper
// may only ask. A request unanswered in time is denied, one message takes
// everything back, and control also lapses when unused. The SFU enforces
// what is granted (screen tracks and data channel events); every start,
// request, grant, revoke and end goes to both users' audit logs.

// Defaults for Config.AssistRequestTimeout and Config.AssistControlIdle.
const (
	defaultAssistRequestTimeout = 30 * time.Second
	defaultAssistControlIdle    = 2 * time.Minute
)

// assist is a call's assistance (callcore.Assist's rules) and its
// timers; the hub's mutex guards it.
type assist struct {
	*callcore.Assist
	reqTimer  clock.Timer // denies what is requested when it fires
	idleTimer clock.Timer // checks control for disuse
}

// auditEntry is an audit log entry for one user, queued under the hub's
// mutex and written by the audit writer.
type auditEntry struct {
	user  string
	entry store.AssistEntry
}

func (s *Session) assistGrant() error {
	if !s.ident.Has(auth.GrantAssist) {
		return fail(protocol.CodeForbidden, "the access token does not allow remote assistance")
	}
	return nil
}

// assistCallLocked returns the call s is a leg of, for assistance.
func (h *Hub) assistCallLocked(s *Session, callID string) (*call, error) {
	c, err := h.lookupLocked(callID)
	if err != nil {
		return nil, err
	}
	if !c.isLeg(s) {
		return nil, fail(protocol.CodeNotInCall, "this device is not in that call")
	}
	return c, nil
}

// assistStart begins assistance in a call between two people. helped is
// either the other member (s helps and asks for grants) or s's own user
// (s invites the other to help, granting grants at once).
func (h *Hub) assistStart(s *Session, callID, helped string, grants []string) error {
	h.mu.Lock()
	c, err := h.assistCallLocked(s, callID)
	if err != nil {
		h.mu.Unlock()
		return err
	}
	joined := c.joined()
	switch {
	case c.Phase != callcore.PhaseActive:
		err = fail(protocol.CodeInvalidState, "the call has not been answered yet")
	case c.assist != nil:
		err = fail(protocol.CodeInvalidState, "assistance is already under way in this call")
	case c.floor != nil || len(joined) != 2:
		err = fail(protocol.CodeInvalidState, "remote assistance is between two people: use a call with just the two of you")
	case c.members[helped] == nil || c.members[helped].State != callcore.MemberJoined:
		err = fail(protocol.CodeNotInCall, helped+" is not in this call")
	}
	if err != nil {
		h.mu.Unlock()
		return err
	}
	other := joined[0].User
	if other == s.user {
		other = joined[1].User
	}
	core, effs := callcore.StartAssist[*Session](s.user, other, helped, grants)
	a := &assist{Assist: core}
	c.assist = a
	h.applyLocked(c, origin{a: a}, effs)
	h.mu.Unlock()
	s.log.Info("assistance started", "call", callID, "helper", a.Helper, "helped", a.Helped)
	return nil
}

// assistRequest is the helper asking for more grants.
func (h *Hub) assistRequest(s *Session, callID string, grants []string) error {
	h.mu.Lock()
	c, err := h.assistCallLocked(s, callID)
	if err == nil && (c.assist == nil || c.assist.Helper != s.user) {
		err = fail(protocol.CodeInvalidState, "only the helper in a running assistance asks for grants")
	}
	if err != nil {
		h.mu.Unlock()
		return err
	}
	h.applyLocked(c, origin{a: c.assist}, callcore.Request[*Session](c.assist.Assist, grants))
	h.mu.Unlock()
	return nil
}

// assistSetGrants is the helped device answering: grants becomes the
// whole granted set, and every open request is answered by it.
func (h *Hub) assistSetGrants(s *Session, callID string, grants []string) error {
	h.mu.Lock()
	c, err := h.assistCallLocked(s, callID)
	if err == nil && (c.assist == nil || c.assist.Helped != s.user) {
		err = fail(protocol.CodeForbidden, "only the device being helped gives or takes back grants")
	}
	if err != nil {
		h.mu.Unlock()
		return err
	}
	h.applyLocked(c, origin{a: c.assist}, callcore.SetGrants[*Session](c.assist.Assist, grants, protocol.AssistGranted))
	h.mu.Unlock()
	return nil
}

// assistEnd ends the assistance at either side's request.
func (h *Hub) assistEnd(s *Session, callID string) error {
	h.mu.Lock()
	c, err := h.assistCallLocked(s, callID)
	if err == nil && c.assist == nil {
		err = fail(protocol.CodeInvalidState, "no assistance is under way in this call")
	}
	if err != nil {
		h.mu.Unlock()
		return err
	}
	h.endAssistLocked(c, "ended")
	h.mu.Unlock()
	return nil
}

// assistClipboard passes clipboard text from one side of c's assistance
// to the other while the clipboard grant is given, and logs that it did
// (who copied, not what).
func (h *Hub) assistClipboard(s *Session, m *protocol.Clipboard) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.assistCallLocked(s, m.CallID)
	if err != nil {
		return err
	}
	a := c.assist
	switch {
	case a == nil:
		return fail(protocol.CodeInvalidState, "no assistance is under way in this call")
	case !a.Has(protocol.AssistClipboard):
		return fail(protocol.CodeForbidden, "the clipboard is not shared: the person helped has not allowed it")
	}
	to, reason := a.Helped, "from_helper"
	if s.user == a.Helped {
		to, reason = a.Helper, "from_helped"
	}
	dst := c.members[to]
	if dst == nil || dst.State != callcore.MemberJoined || dst.Dev == nil {
		return fail(protocol.CodeNotInCall, to+" is not in this call")
	}
	dst.Dev.send(protocol.TypeAssistClipboard, &protocol.Clipboard{CallID: c.ID, Text: m.Text, From: s.user})
	h.auditLocked(c, a, store.AssistClipboard, nil, reason)
	return nil
}

// assistScreens passes the helped device's list of screens to the helper
// (m is an *protocol.AssistScreens) or the helper's choice of screen to
// the helped device (an *protocol.AssistPick), while an assistance runs;
// a choice only while view is granted.
func (h *Hub) assistScreens(s *Session, callID string, m protocol.EncodedMessage) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, err := h.assistCallLocked(s, callID)
	if err != nil {
		return err
	}
	a := c.assist
	if a == nil {
		return fail(protocol.CodeInvalidState, "no assistance is under way in this call")
	}
	typ, to := protocol.TypeAssistScreens, a.Helper
	_, pick := m.(*protocol.AssistPick)
	switch {
	case pick:
		if s.user != a.Helper {
			return fail(protocol.CodeForbidden, "only the helper chooses what to see")
		}
		if !a.Has(protocol.AssistView) {
			return fail(protocol.CodeForbidden, "the screen is not shared: the person helped has not allowed it")
		}
		typ, to = protocol.TypeAssistScreen, a.Helped
	case s.user != a.Helped:
		return fail(protocol.CodeForbidden, "only the device being helped lists its screens")
	}
	dst := c.members[to]
	if dst == nil || dst.State != callcore.MemberJoined || dst.Dev == nil {
		return fail(protocol.CodeNotInCall, to+" is not in this call")
	}
	dst.Dev.send(typ, m)
	return nil
}

// endAssistLocked ends c's assistance, telling the members still in it;
// why goes to the audit log.
func (h *Hub) endAssistLocked(c *call, why string) {
	a := c.assist
	if a == nil {
		return
	}
	c.assist = nil
	h.applyLocked(c, origin{a: a}, callcore.EndAssist[*Session](a.Assist, why))
}

// assistRequestTimeout is a's request timer gen firing.
func (h *Hub) assistRequestTimeout(callID string, a *assist, gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.calls[callID]; c != nil && c.assist == a {
		h.applyLocked(c, origin{a: a}, callcore.RequestTimeout[*Session](a.Assist, gen))
	}
}

// armIdleLocked starts the check on control's use: control granted and
// unused for the idle time lapses.
func (h *Hub) armIdleLocked(c *call, a *assist) {
	stopTimer(&a.idleTimer)
	id, idle := c.ID, cmp.Or(h.cfg.AssistControlIdle, defaultAssistControlIdle)
	since := h.now()
	var check func()
	check = func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		c := h.calls[id]
		if c == nil || c.assist != a || !a.Has(protocol.AssistControl) {
			return
		}
		last := since
		if h.media != nil {
			if t := h.media.ControlActivity(sfu.RoomID(id)); t.After(last) {
				last = t
			}
		}
		if left := idle - h.now().Sub(last); left > 0 {
			a.idleTimer = h.clock.AfterFunc(left, check)
			return
		}
		h.applyLocked(c, origin{a: a}, callcore.ControlIdle[*Session](a.Assist))
	}
	a.idleTimer = h.clock.AfterFunc(idle, check)
}

// tellAssistLocked sends a's state to both members; reason AssistEnded
// says it is over.
func (h *Hub) tellAssistLocked(c *call, a *assist, reason string) {
	msg := &protocol.AssistState{CallID: c.ID, Active: !a.Over(),
		Helper: a.Helper, Helped: a.Helped, Granted: a.Granted(), Requested: a.Requested(), Reason: reason}
	for _, u := range []string{a.Helper, a.Helped} {
		if m := c.members[u]; m != nil && m.State == callcore.MemberJoined && m.Dev != nil {
			m.Dev.send(protocol.TypeAssistState, msg)
		}
	}
}

// applyAssistLocked tells the SFU what the helper may receive and send.
func (h *Hub) applyAssistLocked(c *call, a *assist) {
	if h.media == nil {
		return
	}
	if a.Over() {
		h.media.SetAssist(c.mediaRoom(), nil)
		return
	}
	h.media.SetAssist(c.mediaRoom(), &sfu.Assist{
		Helper: a.Helper, Helped: a.Helped,
		View: a.Has(protocol.AssistView), Annotate: a.Has(protocol.AssistAnnotate),
		Control: a.Has(protocol.AssistControl),
	})
}

// auditLocked logs an event of c's assistance for both users: it queues
// their entries, in the order the events happen, for the audit writer.
func (h *Hub) auditLocked(c *call, a *assist, event string, grants []string, reason string) {
	e := store.AssistEntry{At: h.now(), CallID: c.ID, Helper: a.Helper, Helped: a.Helped, Event: event,
		Grants: slices.Clone(grants), Reason: reason}
	if m := c.members[a.Helped]; m != nil && m.Dev != nil {
		e.Device = m.Dev.device
	}
	switch event {
	case store.AssistGrant:
		h.notifyLocked(webhook.AssistGranted, assistEvent{CallID: c.ID, Helper: a.Helper, Helped: a.Helped, Device: e.Device, Grants: e.Grants})
	case store.AssistRevoke:
		h.notifyLocked(webhook.AssistRevoked, assistEvent{CallID: c.ID, Helper: a.Helper, Helped: a.Helped, Device: e.Device, Grants: e.Grants, Reason: reason})
	}
	h.queueAuditLocked(auditEntry{user: a.Helped, entry: e}, auditEntry{user: a.Helper, entry: e})
}

// queueAuditLocked hands entries to the audit writer, starting it if it
// is not running. Entries are written in the order they are queued, which
// is the order of the events under the hub's lock: a grant that lapses
// just before the call ends is not logged after the end. Until written
// they count as the users' pending writes (an export or erasure waits for
// them). The caller holds h.mu.
func (h *Hub) queueAuditLocked(entries ...auditEntry) {
	for _, e := range entries {
		h.pending.add(e.user)
	}
	h.auditQ = append(h.auditQ, entries...)
	if !h.auditWriting {
		h.auditWriting = true
		h.wg.Add(1)
		go h.auditWriter()
	}
}

// auditWriter writes queued audit entries, in order, until none are left.
func (h *Hub) auditWriter() {
	defer h.wg.Done()
	for {
		h.mu.Lock()
		batch := h.auditQ
		h.auditQ = nil
		if len(batch) == 0 {
			h.auditWriting = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for _, e := range batch {
			if err := h.store.AppendAssist(ctx, e.user, e.entry); err != nil {
				h.log.Error("assistance audit entry not written", "call", e.entry.CallID, "user", e.user, "err", err)
			}
			h.pending.done(e.user)
		}
		cancel()
	}
}

// helpedDeviceChangedLocked resets the grants when the helped user's call
// moved to another device: that device has granted nothing.
func (h *Hub) helpedDeviceChangedLocked(c *call, user string) {
	if c.assist == nil || c.assist.Helped != user {
		return
	}
	h.applyLocked(c, origin{a: c.assist}, callcore.HelpedDeviceChanged[*Session](c.assist.Assist))
}

// assistLeftLocked ends c's assistance when its helper or helped leaves.
func (h *Hub) assistLeftLocked(c *call, user string) {
	if c.assist == nil || (c.assist.Helper != user && c.assist.Helped != user) {
		return
	}
	h.endAssistLocked(c, "member_left")
}
