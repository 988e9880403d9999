package signaling

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/tandemcall/tandem/internal/auth"
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

// assist is a call's assistance; the hub's mutex guards it.
type assist struct {
	helper, helped string // users
	granted        map[string]bool
	requested      map[string]bool
	reqTimer       *time.Timer // denies requested when it fires
	idleTimer      *time.Timer // checks control for disuse
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

// sorted lists the keys of a grant set in a fixed order.
func sorted(set map[string]bool) []string {
	out := []string{}
	for _, g := range []string{protocol.AssistView, protocol.AssistAnnotate, protocol.AssistControl} {
		if set[g] {
			out = append(out, g)
		}
	}
	return out
}

func setOf(grants []string) map[string]bool {
	m := make(map[string]bool, len(grants))
	for _, g := range grants {
		m[g] = true
	}
	return m
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
	a := &assist{helper: other, helped: s.user, granted: setOf(grants), requested: map[string]bool{}}
	if helped != s.user {
		// s helps: it may only ask, and at least to see.
		a.helper, a.helped, a.granted = s.user, helped, map[string]bool{}
		a.requested = setOf(append(grants, protocol.AssistView))
	}
	c.assist = a
	h.auditLocked(c, store.AssistStart, nil, "")
	if len(a.granted) > 0 {
		h.auditLocked(c, store.AssistGrant, sorted(a.granted), "")
		h.armIdleLocked(c)
	}
	if len(a.requested) > 0 {
		h.auditLocked(c, store.AssistRequest, sorted(a.requested), "")
		h.armRequestLocked(c)
	}
	h.tellAssistLocked(c, protocol.AssistStarted)
	h.applyAssistLocked(c)
	h.mu.Unlock()
	s.log.Info("assistance started", "call", callID, "helper", a.helper, "helped", a.helped)
	return nil
}

// assistRequest is the helper asking for more grants.
func (h *Hub) assistRequest(s *Session, callID string, grants []string) error {
	h.mu.Lock()
	c, err := h.assistCallLocked(s, callID)
	if err == nil && (c.assist == nil || c.assist.helper != s.user) {
		err = fail(protocol.CodeInvalidState, "only the helper in a running assistance asks for grants")
	}
	if err != nil {
		h.mu.Unlock()
		return err
	}
	a := c.assist
	var asked []string
	for _, g := range grants {
		if !a.granted[g] && !a.requested[g] {
			a.requested[g] = true
			asked = append(asked, g)
		}
	}
	if len(asked) > 0 {
		h.auditLocked(c, store.AssistRequest, sorted(setOf(asked)), "")
		h.armRequestLocked(c)
		h.tellAssistLocked(c, protocol.AssistRequested)
	}
	h.mu.Unlock()
	return nil
}

// assistSetGrants is the helped device answering: grants becomes the
// whole granted set, and every open request is answered by it.
func (h *Hub) assistSetGrants(s *Session, callID string, grants []string) error {
	h.mu.Lock()
	c, err := h.assistCallLocked(s, callID)
	if err == nil && (c.assist == nil || c.assist.helped != s.user) {
		err = fail(protocol.CodeForbidden, "only the device being helped gives or takes back grants")
	}
	if err != nil {
		h.mu.Unlock()
		return err
	}
	h.setGrantsLocked(c, setOf(grants), protocol.AssistGranted)
	h.mu.Unlock()
	return nil
}

// setGrantsLocked replaces c's grants with want, clears the requests,
// tells both sides (why: AssistGranted when the helped device chose) and
// the SFU, and logs the change for both users.
func (h *Hub) setGrantsLocked(c *call, want map[string]bool, why string) {
	revokeWhy := why
	if why == protocol.AssistGranted {
		revokeWhy = "revoked"
	}
	a := c.assist
	var given, taken []string
	for _, g := range sorted(want) {
		if !a.granted[g] {
			given = append(given, g)
		}
	}
	for _, g := range sorted(a.granted) {
		if !want[g] {
			taken = append(taken, g)
		}
	}
	a.granted = want
	a.requested = map[string]bool{}
	if a.reqTimer != nil {
		a.reqTimer.Stop()
		a.reqTimer = nil
	}
	if len(given) > 0 {
		h.auditLocked(c, store.AssistGrant, given, "")
	}
	if len(taken) > 0 {
		h.auditLocked(c, store.AssistRevoke, taken, revokeWhy)
	}
	h.armIdleLocked(c)
	h.tellAssistLocked(c, why)
	h.applyAssistLocked(c)
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

// endAssistLocked ends c's assistance, telling the members still in it;
// why goes to the audit log.
func (h *Hub) endAssistLocked(c *call, why string) {
	a := c.assist
	if a == nil {
		return
	}
	if len(a.granted) > 0 {
		h.auditLocked(c, store.AssistRevoke, sorted(a.granted), why)
	}
	h.auditLocked(c, store.AssistEnd, nil, why)
	if a.reqTimer != nil {
		a.reqTimer.Stop()
	}
	if a.idleTimer != nil {
		a.idleTimer.Stop()
	}
	a.granted, a.requested = map[string]bool{}, map[string]bool{}
	h.tellAssistLocked(c, protocol.AssistEnded)
	c.assist = nil
	h.applyAssistLocked(c)
}

// armRequestLocked (re)starts the clock on c's open requests.
func (h *Hub) armRequestLocked(c *call) {
	a := c.assist
	if a.reqTimer != nil {
		a.reqTimer.Stop()
	}
	id := c.ID
	a.reqTimer = time.AfterFunc(cmp.Or(h.cfg.AssistRequestTimeout, defaultAssistRequestTimeout), func() {
		h.assistRequestTimeout(id, a)
	})
}

// assistRequestTimeout denies what the helped device did not answer.
func (h *Hub) assistRequestTimeout(callID string, a *assist) {
	h.mu.Lock()
	c := h.calls[callID]
	if c == nil || c.assist != a || len(a.requested) == 0 {
		h.mu.Unlock()
		return
	}
	h.auditLocked(c, store.AssistDenied, sorted(a.requested), protocol.AssistRequestTimeout)
	a.requested = map[string]bool{}
	a.reqTimer = nil
	h.tellAssistLocked(c, protocol.AssistRequestTimeout)
	h.mu.Unlock()
}

// armIdleLocked starts or stops the check on control's use.
func (h *Hub) armIdleLocked(c *call) {
	a := c.assist
	if a.idleTimer != nil {
		a.idleTimer.Stop()
		a.idleTimer = nil
	}
	if !a.granted[protocol.AssistControl] {
		return
	}
	id, idle := c.ID, cmp.Or(h.cfg.AssistControlIdle, defaultAssistControlIdle)
	since := h.now()
	var check func()
	check = func() {
		h.mu.Lock()
		c := h.calls[id]
		if c == nil || c.assist != a || !a.granted[protocol.AssistControl] {
			h.mu.Unlock()
			return
		}
		last := since
		if h.media != nil {
			if t := h.media.ControlActivity(sfu.RoomID(id)); t.After(last) {
				last = t
			}
		}
		if left := idle - h.now().Sub(last); left > 0 {
			a.idleTimer = time.AfterFunc(left, check)
			h.mu.Unlock()
			return
		}
		want := setOf(sorted(a.granted))
		delete(want, protocol.AssistControl)
		h.setGrantsLocked(c, want, protocol.AssistControlIdle)
		h.mu.Unlock()
	}
	a.idleTimer = time.AfterFunc(idle, check)
}

// tellAssistLocked sends c's assistance state to both members; reason
// AssistEnded says it is over.
func (h *Hub) tellAssistLocked(c *call, reason string) {
	a := c.assist
	msg := &protocol.AssistState{CallID: c.ID, Active: reason != protocol.AssistEnded,
		Helper: a.helper, Helped: a.helped, Granted: sorted(a.granted), Requested: sorted(a.requested), Reason: reason}
	for _, u := range []string{a.helper, a.helped} {
		if m := c.members[u]; m != nil && m.State == callcore.MemberJoined && m.Dev != nil {
			m.Dev.send(protocol.TypeAssistState, msg)
		}
	}
}

// applyAssistLocked tells the SFU what the helper may receive and send.
func (h *Hub) applyAssistLocked(c *call) {
	if h.media == nil {
		return
	}
	a := c.assist
	if a == nil {
		h.media.SetAssist(c.mediaRoom(), nil)
		return
	}
	h.media.SetAssist(c.mediaRoom(), &sfu.Assist{
		Helper: a.helper, Helped: a.helped,
		View: a.granted[protocol.AssistView], Annotate: a.granted[protocol.AssistAnnotate],
		Control: a.granted[protocol.AssistControl],
	})
}

// auditLocked logs an event of c's assistance for both users: it queues
// their entries, in the order the events happen, for the audit writer.
func (h *Hub) auditLocked(c *call, event string, grants []string, reason string) {
	a := c.assist
	e := store.AssistEntry{At: h.now(), CallID: c.ID, Helper: a.helper, Helped: a.helped, Event: event,
		Grants: slices.Clone(grants), Reason: reason}
	if m := c.members[a.helped]; m != nil && m.Dev != nil {
		e.Device = m.Dev.device
	}
	switch event {
	case store.AssistGrant:
		h.notifyLocked(webhook.AssistGranted, assistEvent{CallID: c.ID, Helper: a.helper, Helped: a.helped, Device: e.Device, Grants: e.Grants})
	case store.AssistRevoke:
		h.notifyLocked(webhook.AssistRevoked, assistEvent{CallID: c.ID, Helper: a.helper, Helped: a.helped, Device: e.Device, Grants: e.Grants, Reason: reason})
	}
	h.queueAuditLocked(auditEntry{user: a.helped, entry: e}, auditEntry{user: a.helper, entry: e})
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
	if c.assist == nil || c.assist.helped != user || len(c.assist.granted) == 0 {
		return
	}
	h.setGrantsLocked(c, map[string]bool{}, protocol.AssistDeviceChanged)
}

// assistLeftLocked ends c's assistance when its helper or helped leaves.
func (h *Hub) assistLeftLocked(c *call, user string) {
	if c.assist == nil || (c.assist.helper != user && c.assist.helped != user) {
		return
	}
	h.endAssistLocked(c, "member_left")
}
