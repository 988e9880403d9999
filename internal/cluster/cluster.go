// Package cluster joins a Tandem node to the other nodes of its deployment
// through the Redis they share (DESIGN.md, "Multi-node"): a registry of
// live nodes kept by heartbeats, a pub/sub inbox per node and a channel to
// all of them, the presence of every signed-in device, and the detection
// of nodes that died or left. It knows nothing of calls: the signaling hub
// gives meaning to what it carries.
package cluster

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemcall/tandem/internal/store"
)

// Shared is what the nodes of a deployment share, and how: store.Redis.
type Shared interface {
	Subscribe(ctx context.Context, channels ...string) (*store.Subscription, error)
	Publish(ctx context.Context, channel string, data []byte) (int64, error)
	Send(ctx context.Context, batch []store.BusItem) error
	Beat(ctx context.Context, node string, entry []byte) (known, listening bool, err error)
	Nodes(ctx context.Context, listeners bool) (map[string][]byte, map[string]int64, error)
	ForgetNodes(ctx context.Context, ids ...string) error
	SetPresence(ctx context.Context, user, device string, entry []byte) error
	ClearPresence(ctx context.Context, user, device string, entry []byte) error
	Presence(ctx context.Context, user string) (map[string][]byte, error)
}

// Config sets up a node's membership.
type Config struct {
	Shared Shared
	NodeID string // the node's name; each start adds a random part to it
	// Media is the node's media address, for operators reading the
	// registry.
	Media     string
	Heartbeat time.Duration // how often the node says it is alive; default 1 s
	DeadAfter time.Duration // a node silent this long is dead; default 5 s
	Timeout   time.Duration // bound on every Redis command; default 1 s
	Log       *slog.Logger
}

// Handler is what the node reports to: the signaling hub.
type Handler interface {
	// Deliver hands over a message from another node. It runs on the
	// node's one receiving goroutine and must not block.
	Deliver(e *Envelope)
	// NodeGone reports a node that died (silent for DeadAfter) or left
	// (drained), once per departure. It runs on one of the node's own
	// goroutines and must not block: the work is the handler's.
	NodeGone(node string)
	// Resync asks for everything this node keeps in Redis to be written
	// again: Redis came back empty or after an outage.
	Resync()
}

// Envelope kinds.
const (
	KindUp       = "up"       // a device's message, to the node holding its call
	KindDown     = "down"     // a server message, to the node holding the device's socket
	KindOnline   = "online"   // broadcast: a device signed in
	KindOffline  = "offline"  // broadcast: a device's session ended
	KindLeft     = "left"     // broadcast: a node handed its calls over and is leaving
	KindErased   = "erased"   // broadcast: a user's data was erased; take them out everywhere
	KindRevoked  = "revoked"  // broadcast: tokens were revoked (User, Device or Token, At); end their sessions everywhere
	KindPresence = "presence" // broadcast: User's presence may have changed; tell their contacts' devices
	KindContact  = "contact"  // broadcast: User and Device (a user id here) became contacts
	KindDecline  = "decline"  // broadcast: User declined call Token on Device from a notification
	KindResynced = "resynced" // broadcast: a node wrote its state again after a Redis outage; tell it your devices again
)

// Envelope is one message between nodes. Only nodes publish to Redis, so
// its fields (grants included) are trusted.
type Envelope struct {
	Kind   string          `json:"k"`
	From   string          `json:"f"`
	Sess   string          `json:"s,omitempty"` // the device's session id, on the node holding its socket
	User   string          `json:"u,omitempty"`
	Device string          `json:"d,omitempty"`
	Grants []string        `json:"g,omitempty"`
	Lost   bool            `json:"l,omitempty"` // offline: the socket was lost, the device may come back
	Msg    json.RawMessage `json:"m,omitempty"` // up: the client's message; down: the frame to write
	// Token is a revoked token id; At a revocation's or erasure's mark,
	// Unix µs.
	Token string `json:"t,omitempty"`
	At    int64  `json:"at,omitempty"`
}

// Device is one signed-in device as presence records it.
type Device struct {
	Device string   `json:"-"`
	Node   string   `json:"n"`
	Sess   string   `json:"s"`
	Grants []string `json:"g,omitempty"`
}

// Info is a node as the registry shows it.
type Info struct {
	ID       string `json:"id"`
	Beat     int64  `json:"beat"`
	Load     int    `json:"load"`
	Draining bool   `json:"draining,omitempty"`
	Media    string `json:"media,omitempty"`
}

// ErrNoReceiver is returned by Send when the target node's inbox has no
// subscriber: the node is gone.
var ErrNoReceiver = errors.New("cluster: the node is not listening")

// Node is this process's membership of the deployment.
type Node struct {
	cfg    Config
	shared Shared
	id     string
	log    *slog.Logger
	h      Handler
	load   func() int

	draining atomic.Bool
	lastOK   atomic.Int64 // unix ns of the last successful heartbeat
	// settling is until when (unix ns) the shared state may lack what
	// the nodes write again after a Redis outage (Settling).
	settling atomic.Int64
	// listening is whether the last heartbeat found this node's inbox
	// subscribed: after an outage Redis answers commands before the
	// subscription is back, and what the others send meanwhile is lost.
	listening atomic.Bool
	out       chan outMsg

	mu   sync.Mutex
	view map[string]*seen // other nodes, by id
	dead map[string]bool

	sub  *store.Subscription
	stop chan struct{}
	wg   sync.WaitGroup
}

type seen struct {
	info    Info
	changed time.Time // when its beat last changed, by this node's clock
	silent  int       // consecutive checks its inbox had no subscriber
}

type outMsg struct {
	item store.BusItem
	// after, if not nil, runs once the item was sent (or failed).
	after func()
}

// New returns a node; Start joins it to the deployment.
func New(cfg Config) *Node {
	cfg.Heartbeat = cmp.Or(cfg.Heartbeat, time.Second)
	cfg.DeadAfter = cmp.Or(cfg.DeadAfter, 5*time.Second)
	cfg.Timeout = cmp.Or(cfg.Timeout, time.Second)
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	// Every start is a new member, even under a configured name: a node
	// restarted at once after a crash must not pass for the one that
	// crashed, whose calls the others take over.
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	id := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
	if cfg.NodeID != "" {
		id = cfg.NodeID + "." + id
	} else {
		id = "n_" + id
	}
	return &Node{cfg: cfg, shared: cfg.Shared, id: id, log: cfg.Log.With("node", id),
		out: make(chan outMsg, 8192), view: map[string]*seen{}, dead: map[string]bool{}, stop: make(chan struct{})}
}

// ID is this node's id.
func (n *Node) ID() string { return n.id }

// Ctx bounds one Redis exchange by the configured timeout.
func (n *Node) Ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), n.cfg.Timeout)
}

// Start subscribes to this node's inbox and the broadcast channel,
// registers the node and starts its heartbeat, its monitor of the others
// and its publisher. load reports how busy the node is (its calls).
func (n *Node) Start(h Handler, load func() int) error {
	n.h, n.load = h, load
	ctx, cancel := context.WithTimeout(context.Background(), 5*n.cfg.Timeout)
	defer cancel()
	sub, err := n.shared.Subscribe(ctx, store.Inbox(n.id), store.ChannelAll)
	if err != nil {
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	n.sub = sub
	if err := n.beat(ctx); err != nil {
		_ = n.sub.Close()
		return fmt.Errorf("cluster: register: %w", err)
	}
	ch := n.sub.Messages()
	n.wg.Add(4)
	go func() { defer n.wg.Done(); n.receive(ch) }()
	go func() { defer n.wg.Done(); n.heartbeats() }()
	go func() { defer n.wg.Done(); n.monitor() }()
	go func() { defer n.wg.Done(); n.publisher() }()
	n.log.Info("joined the deployment")
	return nil
}

// Close stops the node's goroutines; it does not announce a departure
// (Leave does).
func (n *Node) Close() error {
	select {
	case <-n.stop:
		return nil
	default:
	}
	close(n.stop)
	err := n.sub.Close()
	n.wg.Wait()
	return err
}

// SetDraining marks the node as taking no new calls; others stop choosing
// it as a home.
func (n *Node) SetDraining(on bool) { n.draining.Store(on) }

// Draining reports SetDraining.
func (n *Node) Draining() bool { return n.draining.Load() }

// Healthy reports whether the node reached Redis within the last three
// heartbeats and, at the last, was listening to its inbox: whether it can
// take part in calls across nodes.
func (n *Node) Healthy() bool {
	return time.Since(time.Unix(0, n.lastOK.Load())) < 3*n.cfg.Heartbeat && n.listening.Load()
}

// ---- messages ----

func (n *Node) encode(e *Envelope) []byte {
	e.From = n.id
	b, err := json.Marshal(e)
	if err != nil {
		panic("cluster: envelope does not encode: " + err.Error())
	}
	return b
}

// Send publishes e to node now and reports ErrNoReceiver when that node is
// not listening.
func (n *Node) Send(node string, e *Envelope) error {
	ctx, cancel := n.Ctx()
	defer cancel()
	got, err := n.shared.Publish(ctx, store.Inbox(node), n.encode(e))
	if err != nil {
		return err
	}
	if got == 0 {
		return ErrNoReceiver
	}
	return nil
}

// Post queues e for node without waiting; messages posted from one
// goroutine arrive in order. A full queue drops e and says so in the log.
func (n *Node) Post(node string, e *Envelope) { n.queue(store.Inbox(node), e) }

// QueueHistory adds call history writes to the queue of outgoing
// messages: they are written after everything posted before and before
// everything posted after, so whoever hears a later message finds them.
// after, if not nil, runs once they were written (or failed).
func (n *Node) QueueHistory(writes []store.HistoryWrite, after func()) {
	select {
	case n.out <- outMsg{item: store.BusItem{History: writes}, after: after}:
	default:
		n.log.Warn("cluster send queue full; writes dropped")
		if after != nil {
			after()
		}
	}
}

// Broadcast queues e for every node (this one ignores its own).
func (n *Node) Broadcast(e *Envelope) { n.queue(store.ChannelAll, e) }

func (n *Node) queue(channel string, e *Envelope) {
	select {
	case n.out <- outMsg{item: store.BusItem{Channel: channel, Data: n.encode(e)}}:
	default:
		n.log.Warn("cluster send queue full; message dropped", "kind", e.Kind)
	}
}

// publisher sends queued messages, pipelining what has piled up.
func (n *Node) publisher() {
	for {
		var batch []outMsg
		stopping := false
		select {
		case m := <-n.out:
			batch = append(batch, m)
		case <-n.stop:
			stopping = true // send what is queued, then stop
		}
	more:
		for len(batch) < 256 {
			if stopping && len(batch) == 0 && len(n.out) == 0 {
				return
			}
			select {
			case m := <-n.out:
				batch = append(batch, m)
			default:
				break more
			}
		}
		items := make([]store.BusItem, len(batch))
		for i, m := range batch {
			items[i] = m.item
		}
		err := n.send(items, stopping)
		for _, m := range batch {
			if m.after != nil {
				m.after()
			}
		}
		if err != nil {
			n.log.Error("cluster messages and history writes lost: Redis refused them too long", "count", len(batch), "err", err)
		}
		if stopping && len(n.out) == 0 {
			return
		}
	}
}

// sendRetryFor is how long the publisher keeps trying a batch Redis
// refuses: an outage that short loses no message and no call history,
// which arrive late but in order. (The store reads a history entry sent
// twice, when a refused batch had in fact been partly applied, once.)
const sendRetryFor = 2 * time.Minute

// send sends items, trying again while Redis refuses them, for up to
// sendRetryFor (not at all once stopping, whose Close must not wait).
func (n *Node) send(items []store.BusItem, stopping bool) error {
	first := time.Now()
	wait := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		ctx, cancel := n.Ctx()
		err := n.shared.Send(ctx, items)
		cancel()
		if err == nil {
			if attempt > 0 {
				n.log.Info("cluster messages sent after Redis came back", "count", len(items), "late", time.Since(first).Round(time.Millisecond))
			}
			return nil
		}
		if attempt == 0 {
			n.log.Warn("cluster messages not sent yet: trying again", "count", len(items), "err", err)
		}
		if stopping || time.Since(first) > sendRetryFor {
			return err
		}
		select {
		case <-time.After(wait):
		case <-n.stop:
			stopping = true // one more try, then give up
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func (n *Node) receive(ch <-chan store.Message) {
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				return
			}
			var e Envelope
			if err := json.Unmarshal(m.Payload, &e); err != nil || e.From == "" {
				n.log.Warn("cluster message not understood", "channel", m.Channel)
				continue
			}
			if e.From == n.id {
				continue
			}
			if e.Kind == KindLeft {
				n.markGone(e.From, "left")
				continue
			}
			n.h.Deliver(&e)
		case <-n.stop:
			return
		}
	}
}

// Leave tells every node that this one has handed its calls over: they
// take them now rather than after DeadAfter.
func (n *Node) Leave() {
	ctx, cancel := n.Ctx()
	defer cancel()
	_, _ = n.shared.Publish(ctx, store.ChannelAll, n.encode(&Envelope{Kind: KindLeft}))
	_ = n.shared.ForgetNodes(ctx, n.id)
}

// ---- registry ----

var beats atomic.Int64 // monotonic across restarts of Start in one process

func (n *Node) info() Info {
	load := 0
	if n.load != nil {
		load = n.load()
	}
	return Info{ID: n.id, Load: load, Draining: n.draining.Load(), Media: n.cfg.Media}
}

// beat registers the node and reports whether Redis had lost it (restarted
// empty, or this node was taken for dead). It also notes whether the
// node's inbox has its subscriber (Listening); on Redis Cluster, where
// PUBSUB NUMSUB counts only one shard's subscribers, it assumes so.
func (n *Node) beat(ctx context.Context) error {
	in := n.info()
	in.Beat = beats.Add(1)
	b, _ := json.Marshal(in)
	known, listening, err := n.shared.Beat(ctx, n.id, b)
	if err != nil {
		return err
	}
	n.listening.Store(listening)
	first := n.lastOK.Load() == 0
	n.lastOK.Store(time.Now().UnixNano())
	if !first && !known {
		return errLost
	}
	return nil
}

var errLost = errors.New("cluster: registration was lost")

// settleBeats is how many heartbeats after this node wrote its state
// again the others are taken to have written theirs.
const settleBeats = 3

// Settling reports whether Redis came back from an outage (empty,
// perhaps) so recently that the state every node writes again may not
// all be there yet: something missing from it is not yet news (a user
// unknown, say), and a request that depends on it is better refused as
// unavailable, to be tried again.
func (n *Node) Settling() bool { return time.Now().UnixNano() < n.settling.Load() }

func (n *Node) heartbeats() {
	t := time.NewTicker(n.cfg.Heartbeat)
	defer t.Stop()
	failing, resync := false, false
	for {
		select {
		case <-t.C:
		case <-n.stop:
			return
		}
		ctx, cancel := n.Ctx()
		err := n.beat(ctx)
		cancel()
		switch {
		case err != nil && !errors.Is(err, errLost):
			if !failing {
				n.log.Warn("Redis unreachable; calls in progress go on", "err", err)
			}
			failing = true
			n.settling.Store(math.MaxInt64)
			continue
		case errors.Is(err, errLost) || failing:
			failing, resync = false, true
			n.settling.Store(math.MaxInt64)
		}
		// The node's state is written again once it can hear the others
		// too: they act on what it writes by sending to its inbox.
		if resync && n.listening.Load() {
			resync = false
			n.log.Info("Redis is back; writing this node's state again")
			n.h.Resync()
			// The others write theirs at their next beat or two.
			n.settling.Store(time.Now().Add(settleBeats * n.cfg.Heartbeat).UnixNano())
		}
	}
}

// ---- the others ----

// monitor reads the registry twice per heartbeat. A node whose beat has
// not changed for DeadAfter is dead. So is one whose inbox has lost its
// subscriber (its process and its Redis connections are gone) for two
// checks running and whose beat is two heartbeats old; that is how a
// killed node is found in about two seconds rather than five. Silence is
// only counted while this node itself reads Redis.
func (n *Node) monitor() {
	t := time.NewTicker(n.cfg.Heartbeat / 2)
	defer t.Stop()
	blind := false
	if all, _, err := n.read(false); err == nil { // know the others from the start
		n.check(all, nil, false)
	}
	for {
		select {
		case <-t.C:
		case <-n.stop:
			return
		}
		all, subs, err := n.read(true)
		if err != nil {
			if !blind {
				n.log.Warn("the registry of nodes is unreadable; no node is judged meanwhile", "err", err)
			}
			blind = true
			continue
		}
		n.check(all, subs, blind)
		blind = false
	}
}

// read reads the registry and, with subs, how many subscribers each
// node's inbox has (nil where Redis cannot count them).
func (n *Node) read(subs bool) (map[string][]byte, map[string]int64, error) {
	ctx, cancel := n.Ctx()
	defer cancel()
	return n.shared.Nodes(ctx, subs)
}

func (n *Node) check(all map[string][]byte, subs map[string]int64, reseed bool) {
	now := time.Now()
	var gone []string
	var stale []string
	n.mu.Lock()
	for id := range n.view {
		if _, ok := all[id]; !ok {
			delete(n.view, id)
		}
	}
	for id, raw := range all {
		if id == n.id {
			continue
		}
		var in Info
		if json.Unmarshal(raw, &in) != nil {
			continue
		}
		s := n.view[id]
		if s == nil {
			n.view[id] = &seen{info: in, changed: now}
			delete(n.dead, id)
			continue
		}
		if reseed {
			s.changed, s.silent = now, 0
		}
		if in.Beat != s.info.Beat {
			s.changed, s.silent = now, 0
			delete(n.dead, id) // it was not dead after all, or came back
		}
		s.info = in
		if n.dead[id] {
			if now.Sub(s.changed) > time.Minute {
				stale = append(stale, id)
			}
			continue
		}
		if subs != nil && subs[id] == 0 {
			s.silent++
		} else {
			s.silent = 0
		}
		quiet := now.Sub(s.changed)
		if quiet >= n.cfg.DeadAfter || (s.silent >= 2 && quiet >= 2*n.cfg.Heartbeat) {
			n.dead[id] = true
			gone = append(gone, id)
			n.log.Warn("node is dead", "dead", id, "silent_for", quiet.Round(time.Millisecond))
		}
	}
	n.mu.Unlock()
	for _, id := range gone {
		n.h.NodeGone(id)
	}
	if len(stale) > 0 {
		ctx, cancel := n.Ctx()
		_ = n.shared.ForgetNodes(ctx, stale...)
		cancel()
	}
}

// markGone records a node that announced its departure.
func (n *Node) markGone(id, why string) {
	n.mu.Lock()
	already := n.dead[id]
	n.dead[id] = true
	n.mu.Unlock()
	if !already {
		n.log.Info("node is gone", "gone", id, "why", why)
		n.h.NodeGone(id)
	}
}

// Live reports whether node is this one or another not known to be dead
// (a node that joined since the last check is live).
func (n *Node) Live(node string) bool {
	if node == n.id {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return node != "" && !n.dead[node]
}

// Nodes lists the live nodes, this one first, then by id.
func (n *Node) Nodes() []Info {
	out := []Info{n.info()}
	n.mu.Lock()
	for id, s := range n.view {
		if !n.dead[id] {
			out = append(out, s.info)
		}
	}
	n.mu.Unlock()
	slices.SortFunc(out[1:], func(a, b Info) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// PickHome chooses the node for a new call or room: this one, unless it is
// draining or clearly busier than the least loaded live node.
func (n *Node) PickHome() string {
	nodes := n.Nodes()
	if len(nodes) == 1 && nodes[0].Draining {
		// Nobody else known yet: read the registry rather than refuse.
		if all, _, err := n.read(false); err == nil {
			n.check(all, nil, false)
			nodes = n.Nodes()
		}
	}
	self := nodes[0]
	best := self
	for _, in := range nodes[1:] {
		if !in.Draining && (best.Draining || in.Load < best.Load) {
			best = in
		}
	}
	if !self.Draining && self.Load <= best.Load+max(8, best.Load/4) {
		return self.ID
	}
	return best.ID
}

// Rank is this node's place (0 first) among the live nodes ordered by
// load: the least loaded claims the calls of a dead node first.
func (n *Node) Rank() int {
	nodes := n.Nodes()
	r := 0
	for _, in := range nodes[1:] {
		if in.Load < nodes[0].Load || (in.Load == nodes[0].Load && in.ID < n.id) {
			r++
		}
	}
	return r
}

// ---- presence ----

// SetPresence records that the device is signed in on this node.
func (n *Node) SetPresence(ctx context.Context, user string, d Device) error {
	d.Node = n.id
	b, _ := json.Marshal(d)
	return n.shared.SetPresence(ctx, user, d.Device, b)
}

// ClearPresence forgets the device's session on this node, unless the
// device has signed in again since.
func (n *Node) ClearPresence(ctx context.Context, user string, d Device) error {
	d.Node = n.id
	b, _ := json.Marshal(d)
	return n.shared.ClearPresence(ctx, user, d.Device, b)
}

// Presence lists the user's devices signed in on live nodes.
func (n *Node) Presence(ctx context.Context, user string) ([]Device, error) {
	all, err := n.shared.Presence(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]Device, 0, len(all))
	for dev, raw := range all {
		var d Device
		if json.Unmarshal(raw, &d) != nil || !n.Live(d.Node) {
			continue
		}
		d.Device = dev
		out = append(out, d)
	}
	return out, nil
}
