package signaling

import (
	"context"
	"errors"
	"time"

	"github.com/tandemcall/tandem/internal/cluster"
	"github.com/tandemcall/tandem/signaling/callcore"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// Ringing devices that have no connection (Web Push, internal/accounts):
// when a user is rung, their devices without a live session are pushed;
// when the ring ends for them (answered on one of their devices,
// declined, cancelled, missed) the pushed devices are told, so that the
// ringing notification goes. The pusher queues and never waits.

// Pusher rings a user's devices that have no connection.
type Pusher interface {
	// Reachable reports whether user has a device a push can ring.
	Reachable(ctx context.Context, user string) bool
	PushRing(user string, online []string, callID, from string, video bool, ttl time.Duration)
	PushEnded(user string, online []string, callID, from, reason, device string, ttl time.Duration)
}

// SetPusher turns push ringing on; call it before serving.
func (h *Hub) SetPusher(p Pusher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pusher = p
}

// onlineNamesLocked are the names of user's devices with a live session
// anywhere this node knows of (its own and other nodes' proxies).
func (h *Hub) onlineNamesLocked(user string) []string {
	out := make([]string, 0, len(h.devices[user]))
	for d := range h.devices[user] {
		out = append(out, d)
	}
	return out
}

// pushRingLocked pushes m's ring to their devices without a session.
func (h *Hub) pushRingLocked(c *call, m *member) {
	if h.pusher == nil || m.Inviter == nil {
		return
	}
	ttl := h.cfg.RingTimeout
	if m.Ring.Waiting() {
		ttl = h.cfg.WaitingTimeout
	}
	m.pushed = true
	h.pusher.PushRing(m.User, h.onlineNamesLocked(m.User), c.ID, m.Inviter.user, c.Video, ttl)
}

// pushRingEndedLocked tells m's pushed devices their ring ended, for
// reason (device: the one that answered).
func (h *Hub) pushRingEndedLocked(c *call, m *member, reason, device string) {
	if h.pusher == nil || !m.pushed {
		return
	}
	m.pushed = false
	from := c.Caller
	if m.Inviter != nil {
		from = m.Inviter.user
	}
	h.pusher.PushEnded(m.User, h.onlineNamesLocked(m.User), c.ID, from, reason, device, h.cfg.RingTimeout)
}

// pushReachable reports whether user, with no device online, can still be
// rung by push.
func (h *Hub) pushReachable(user string) bool {
	h.mu.Lock()
	p := h.pusher
	h.mu.Unlock()
	if p == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return p.Reachable(ctx, user)
}

// ErrNotRinging: the call no longer rings for that user.
var ErrNotRinging = errors.New("signaling: the call no longer rings for that user")

// DeclineByPush declines callID for user from a ringing notification on
// device, which has no session (its service worker holds only the
// device's credential).
func (h *Hub) DeclineByPush(user, device, callID string) error {
	err := h.declineByPush(user, device, callID)
	if errors.Is(err, ErrNotRinging) && h.cluster != nil {
		// The call may live on another node: the one holding it declines.
		h.cluster.Broadcast(&cluster.Envelope{Kind: cluster.KindDecline, User: user, Device: device, Token: callID})
		return nil
	}
	return err
}

// declineByPush is DeclineByPush for a call on this node.
func (h *Hub) declineByPush(user, device, callID string) error {
	h.mu.Lock()
	c := h.calls[callID]
	var m *member
	if c != nil {
		m = c.members[user]
	}
	if m == nil || m.State != callcore.MemberRinging || c.Phase == callcore.PhaseEnded {
		h.mu.Unlock()
		return ErrNotRinging
	}
	e := h.unringLocked(c, m, protocol.ReasonDeclined, nil)
	h.mu.Unlock()
	if e != nil {
		h.finish(e)
	}
	h.log.Info("call declined from a notification", "call", callID, "user", user, "device", device)
	return nil
}
