// Package signaling runs Tandem's WebSocket signaling: sessions (one reader,
// one writer and one event loop each), the call state machine (invite, ring,
// answer, decline, busy, timeout) and the wiring of call legs to the SFU.
package signaling

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/clock"
	"github.com/tandemcall/tandem/internal/cluster"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/signaling/callcore"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// Config holds the signaling settings, already validated.
type Config struct {
	RingTimeout    time.Duration
	WaitingTimeout time.Duration
	HandoffTimeout time.Duration // how long a handoff may take; default 15 s
	ReconnectGrace time.Duration // how long a lost leg keeps its place; default 20 s
	// AssistRequestTimeout is how long a request for assistance grants
	// waits for the helped device; unanswered, it is denied. Default 30 s.
	AssistRequestTimeout time.Duration
	// AssistControlIdle ends a control grant unused this long; default 2 min.
	AssistControlIdle time.Duration
	MaxTalk           time.Duration // longest a push-to-talk floor is held
	MaxMessageBytes   int64
	PingInterval      time.Duration
	PongTimeout       time.Duration
	HelloTimeout      time.Duration
	WriteTimeout      time.Duration
	SendQueue         int
	RateLimit         int
	AllowedOrigins    []string
	// InviteLimits bound how often invites ring (invitelimit.go).
	InviteLimits InviteLimits
	// GroupUnansweredWithin makes a user's unanswered calls with the same
	// person, each within this of the one before, one history entry with
	// a count (store.CallGrouping); 0 keeps an entry per call.
	GroupUnansweredWithin time.Duration
	// MaxTokenTTL is the longest token lifetime (auth.max_token_ttl): a
	// revoked token id is remembered that long. Default auth.DefaultMaxTTL.
	MaxTokenTTL time.Duration
	// ICE returns the ICE servers for a device of user that reached
	// signaling at host (the request's Host), and how long until they must
	// be refreshed (0: never). Nil means none.
	ICE ICEProvider
	// ContactsOnly: a person with an account is rung only by their
	// contacts (accounts.calls_from: contacts); others get not_a_contact.
	ContactsOnly bool
	// Clock runs the call timers; nil is the real clock. Tests pass a
	// clock.Manual to ring out a call in microseconds.
	Clock clock.Clock
}

// ICEProvider hands out ICE servers, such as TURN with fresh credentials.
type ICEProvider func(user, host string) (servers []protocol.ICEServer, refreshIn time.Duration)

// Verifier checks access tokens.
type Verifier interface {
	Verify(token string) (auth.Identity, error)
}

// Store is the state signaling keeps across restarts.
type Store interface {
	store.History
	store.Users
	store.AssistLog
	store.Owner
	store.RateLimiter
	store.CallGrouping
	store.Revocations
}

// Hub owns every session and call on this node.
type Hub struct {
	cfg      Config
	log      *slog.Logger
	verifier Verifier
	media    MediaServer
	store    Store
	// clock is the time of the call timers (rings, grace windows, moves,
	// the floor, assistance) and of what the hub records; Config.Clock.
	clock clock.Clock

	// wg tracks sessions and background work (history writes, media
	// teardown) so Close can wait for them.
	wg sync.WaitGroup

	mu       sync.Mutex
	devices  map[string]map[string]*Session // user → device → session
	calls    map[string]*call
	userCall map[string]*call // user → the call or room they are in (outgoing or answered)
	rooms    map[string]*call // room name → its call
	draining bool
	closed   bool

	pending *pendingWrites
	// auditQ are the assistance audit entries not yet written, in the
	// order of their events; auditWriting says the writer runs (assist.go).
	auditQ       []auditEntry
	auditWriting bool
	// historyQ are history entries the store refused (Redis away), tried
	// again by the history retrier while historyRetrying (call.go).
	historyQ        []historyRetry
	historyRetrying bool
	metrics         *metrics
	limits          inviteLimiter
	notifier        Notifier // webhooks; under mu
	// onRevoke is told of revocations (OnRevoke); under mu.
	onRevoke func(auth.Revocation)
	// recent are the revocations of the last minute (revoke.go), under
	// mu: a session whose token was verified before one, and registers
	// after it closed the sessions it covers, is refused.
	recent auth.Recent

	// Presence (presence.go); all nil without a contact book. watchers
	// are the local sessions that see each user's presence; shown is the
	// state they were last told; presDirty the users whose presence may
	// have changed (true: the change was on this node), worked out by a
	// worker that runs while presRunning.
	contacts    ContactBook
	pusher      Pusher // rings devices without a connection (push.go)
	watchers    map[string]map[*Session]bool
	shown       map[string]string
	presDirty   map[string]bool
	presRunning bool

	// A node of a deployment (cluster.go); all nil on a single node.
	cluster *cluster.Node
	dir     store.CallDirectory // where the deployment's calls are
	remotes map[string]*Session // proxies, by "<node>/<session>"
	dirty   map[*call]bool      // calls whose state Redis must learn
	kick    chan struct{}       // wakes the flusher
	// dirtyGen counts changes (under mu); flushedGen is the last one
	// written, under flushMu, announced by flushedCond.
	dirtyGen    uint64
	flushMu     sync.Mutex
	flushedGen  uint64
	flushedCond *sync.Cond
	// While a call ends, messages to proxies wait (held) until its history
	// is queued ahead of them: whoever hears "ended" finds the call in the
	// history, on any node.
	holdMu  sync.Mutex
	holding bool
	held    []heldPost
	gone    *eventQueue    // nodes gone, for takeovers
	bg      sync.WaitGroup // the flusher, the sweeper and takeovers
	bgStop  chan struct{}
	bgOnce  sync.Once
}

// ErrClosed is returned when the hub no longer accepts sessions.
var ErrClosed = errors.New("signaling: closed")

// now is the hub's clock's time.
func (h *Hub) now() time.Time { return h.clock.Now() }

// NewHub returns a hub; it starts no goroutines until sessions arrive.
func NewHub(cfg Config, v Verifier, media MediaServer, st Store, log *slog.Logger) *Hub {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Hub{
		cfg: cfg, log: log, verifier: v, media: media, store: st, clock: cmp.Or[clock.Clock](cfg.Clock, clock.Real()),
		devices:  map[string]map[string]*Session{},
		calls:    map[string]*call{},
		userCall: map[string]*call{},
		rooms:    map[string]*call{},
		pending:  newPendingWrites(),
		metrics:  newMetrics(),
	}
}

func newID(prefix string) string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return prefix + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// register adds s as the user's device, replacing an older session of the
// same device, and rings s for calls already ringing its user.
func (h *Hub) register(s *Session) (old *Session, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if err := h.recentlyRevokedLocked(s.ident); err != nil {
		return nil, err
	}
	devs := h.devices[s.user]
	if devs == nil {
		devs = map[string]*Session{}
		h.devices[s.user] = devs
	}
	old = devs[s.device]
	devs[s.device] = s
	h.presenceChangedLocked(s.user, true)
	return old, nil
}

// ringLate rings s for calls that started ringing its user before it came
// online.
func (h *Hub) ringLate(s *Session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.devices[s.user][s.device] != s {
		return
	}
	for _, c := range h.calls {
		if m := c.members[s.user]; m != nil && m.State == callcore.MemberRinging {
			h.applyLocked(c, origin{m: m}, m.Ring.Add(s))
		}
	}
	// Give it back the calls its device's lost session was in.
	h.resumeLocked(s)
	// Tell it of a call the user holds on another device, to move here,
	// and the device holding it that one more device could take it.
	if h.userCall[s.user] != nil {
		h.announceLocked(s.user)
	}
}

// unregister removes s and ends or updates the calls it took part in.
func (h *Hub) unregister(s *Session) {
	var ends []*endResult
	var standbyLegs []MediaLeg
	if h.contacts != nil && s.remote == nil {
		// Noted before the device is gone: its contacts then see since when.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		h.contacts.Seen(ctx, s.user, s.device, h.now())
		cancel()
	}
	h.mu.Lock()
	if devs := h.devices[s.user]; devs[s.device] == s {
		delete(devs, s.device)
		if len(devs) == 0 {
			delete(h.devices, s.user)
		}
		h.presenceChangedLocked(s.user, true)
	}
	if s.sees != nil {
		h.unwatchLocked(s)
	}
	for _, c := range h.calls {
		switch m := c.members[s.user]; {
		case m == nil:
		case c.Phase == callcore.PhaseRinging && c.joinedBy(s) != nil:
			ends = append(ends, h.endLocked(c, protocol.ReasonCancelled, nil))
		case c.Phase == callcore.PhaseActive && c.joinedBy(s) != nil:
			switch nd := h.devices[s.user][s.device]; {
			case nd != nil:
				h.reattachLocked(c, m, nd) // already signed in again
			case s.lost.Load() && !h.closed:
				h.detachLocked(c, m, s)
			default:
				ends = append(ends, h.leaveLocked(c, m, protocol.ReasonConnectionLost, s))
			}
		case m.State == callcore.MemberRinging:
			m.Ring.Drop(s)
		case c.standby(s) != nil:
			if leg := h.dropHandoffLocked(c, m, s, "the new device went offline"); leg != nil {
				standbyLegs = append(standbyLegs, leg)
			}
		case c.listenerOf(s) != nil:
			if leg := h.dropListenerLocked(c, m, s, protocol.ReasonConnectionLost, true); leg != nil {
				standbyLegs = append(standbyLegs, leg)
			}
		}
	}
	if h.userCall[s.user] != nil {
		h.announceLocked(s.user) // one device fewer to move the call to
	}
	h.mu.Unlock()
	for _, l := range standbyLegs {
		_ = l.Close()
	}
	for _, e := range ends {
		h.finish(e)
	}
}

// online returns the user's sessions; the caller holds h.mu.
func (h *Hub) onlineLocked(user string) []*Session {
	devs := h.devices[user]
	out := make([]*Session, 0, len(devs))
	for _, s := range devs {
		out = append(out, s)
	}
	return out
}

// Drain stops new calls; calls already running go on.
func (h *Hub) Drain() {
	h.mu.Lock()
	h.draining = true
	h.mu.Unlock()
}

// Online counts the user's signed-in devices.
func (h *Hub) Online(user string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.devices[user])
}

// RoomCallID returns the call id of the running room with this name; the
// call id is also the room's SFU room id.
func (h *Hub) RoomCallID(name string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.rooms[name]; c != nil {
		return c.ID, true
	}
	return "", false
}

// ActiveCalls counts calls that are ringing or answered.
func (h *Hub) ActiveCalls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}

// Close ends every remaining call with failed, closes every session and
// waits for them, or for ctx.
func (h *Hub) Close(ctx context.Context) error {
	var ends []*endResult
	var sessions []*Session
	h.mu.Lock()
	h.closed = true
	h.draining = true
	for _, c := range h.calls {
		ends = append(ends, h.endLocked(c, protocol.ReasonFailed, nil))
	}
	for _, devs := range h.devices {
		for _, s := range devs {
			sessions = append(sessions, s)
		}
	}
	h.mu.Unlock()
	for _, e := range ends {
		h.finish(e)
	}
	for _, s := range sessions {
		s.closeWith(protocol.CodeShuttingDown, "server shutting down", 1001)
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if h.cluster != nil {
		h.bgOnce.Do(func() { close(h.bgStop) })
		h.bg.Wait()
		err = errors.Join(err, h.cluster.Close())
	}
	return err
}
