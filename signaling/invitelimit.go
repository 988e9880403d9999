package signaling

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// Ringing someone is the one thing a signed-in user can make happen on
// another person's devices, so invites have limits of their own, kept in
// the store: they hold across a user's devices and reconnects (the
// per-socket message limit starts afresh with each socket) and, on Redis,
// across the nodes of a deployment. Every invite counts, a new call or an
// invite into a running call, whether the callee is online or not (an
// offline callee gets a missed call). The caller's limit is checked first,
// before anything else, so that a flood of invites to unknown names does
// not probe who has an account faster than the limit; then the pair's and
// the callee's, only for a callee who exists, so that no limit is kept for
// names nobody has. A refused invite rings nobody, and the limits after
// the one that refused it do not count it (the caller's counts every
// attempt that gets to it: a caller who keeps trying to ring someone they
// may not ring now spends what they may ring others with).
//
// When the store cannot answer (Redis unreachable), the limits are kept
// in this node's memory instead: a new call needs Redis for the callee's
// presence anyway, so refusing adds nothing there, while a Redis that
// answers some commands and not others must neither lift the limits nor
// refuse a family's call; a node-local limit is still a limit (at most
// the number of nodes times as loose).

// InviteLimits bound how often invites ring; a zero Rate is no limit.
type InviteLimits struct {
	Caller store.Rate // invites one user sends, from all their devices
	Callee store.Rate // invites one user receives, from everyone
	Pair   store.Rate // invites from one user to one other
}

// The limits, as named in metrics.
const (
	limitCaller = "caller"
	limitCallee = "callee"
	limitPair   = "pair"
)

// inviteLimiter keeps the limits: the store's, or this node's memory
// while the store cannot answer.
type inviteLimiter struct {
	local    store.MemoryLimiter
	lastWarn atomic.Int64 // Unix ns of the last warning that the store failed
}

// limitCaller refuses an invite from user when they have sent as
// many as the caller limit allows.
func (h *Hub) limitCaller(user string) error {
	return h.allowInvite(limitCaller, "invite:caller:"+user, h.cfg.InviteLimits.Caller,
		"you have placed too many calls")
}

// limitCallee refuses an invite from caller to callee when the pair, or
// the callee from everyone, has had as many as allowed.
func (h *Hub) limitCallee(caller, callee string) error {
	l := h.cfg.InviteLimits
	pair := fmt.Sprintf("invite:pair:%d:%s:%s", len(caller), caller, callee)
	if err := h.allowInvite(limitPair, pair, l.Pair, "you have called "+callee+" too often"); err != nil {
		return err
	}
	return h.allowInvite(limitCallee, "invite:callee:"+callee, l.Callee, callee+" is being called too often")
}

// allowInvite counts an invite against one limit, or refuses it with
// rate_limited saying what and when to try again.
func (h *Hub) allowInvite(limit, key string, r store.Rate, what string) error {
	if r.Off() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := h.now()
	d, err := h.store.Allow(ctx, key, r, now)
	if err != nil {
		h.warnLimits(now, err)
		// Not ctx: the store may have used it up, and the memory limiter
		// refuses under a done context.
		d, _ = h.limits.local.Allow(context.Background(), key, r, now)
	}
	if d.Allowed {
		return nil
	}
	h.metrics.limited.WithLabelValues(limit).Inc()
	h.log.Debug("invite refused by a limit", "limit", limit, "retry_after", d.RetryAfter)
	return &reqError{code: protocol.CodeRateLimited, retry: d.RetryAfter,
		msg: fmt.Sprintf("%s; try again in %s", what, inSeconds(d.RetryAfter))}
}

// warnLimits says, at most once a minute, that the limits are this node's.
func (h *Hub) warnLimits(now time.Time, err error) {
	last := h.limits.lastWarn.Load()
	if now.UnixNano()-last < int64(time.Minute) || !h.limits.lastWarn.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	h.log.Warn("invite limits kept on this node only: the store does not answer", "err", err)
}

// inSeconds says d in whole seconds, rounded up, for people.
func inSeconds(d time.Duration) string {
	s := (d + time.Second - 1) / time.Second
	if s <= 1 {
		return "1 second"
	}
	return fmt.Sprintf("%d seconds", s)
}

// retryMS is d in whole milliseconds, rounded up (0 for none).
func retryMS(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
