package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/cluster"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/sfu"
	"github.com/tandemcall/tandem/signaling/callcore"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// Several nodes (DESIGN.md, "Multi-node"). Any node accepts any device. A
// call lives on one node, its home: the state machine and the SFU room
// are there. A device whose socket is on another node appears at the home
// as a proxy session: what the home sends it is posted to the device's
// node, which writes it to the socket and learns from it which node holds
// that call; what the device sends about the call is forwarded to the
// home, which hands it to the proxy's loop as if it came from a socket.
// The SDP the home's SFU answers with carries the home's own media
// address, so media goes straight there.
//
// Where each user's call and each room live, the calls' snapshots and who
// takes a dead node's call over are in the shared store's call directory
// (store.CallDirectory); the presence of devices and the messages between
// nodes go through internal/cluster.

// remoteEnd is where a proxy session's device really is.
type remoteEnd struct{ node, sess string }

// inbound is a client message with its bytes, as read by a session of a
// node in a deployment: it may have to be forwarded.
type inbound struct {
	msg any
	raw []byte
}

// SetCluster joins the hub to a deployment whose calls are listed in dir;
// call it before serving. The node reports to the hub from then on.
func (h *Hub) SetCluster(n *cluster.Node, dir store.CallDirectory) error {
	h.cluster = n
	h.dir = dir
	h.remotes = map[string]*Session{}
	h.dirty = map[*call]bool{}
	h.kick = make(chan struct{}, 1)
	h.flushedCond = sync.NewCond(&h.flushMu)
	h.bgStop = make(chan struct{})
	if err := n.Start(h, h.ActiveCalls); err != nil {
		return err
	}
	h.gone = newEventQueue()
	h.bg.Go(h.flusher)
	h.bg.Go(h.sweeper)
	h.bg.Go(h.takeovers)
	return nil
}

// dirtyLocked queues c's state for writing to Redis, at once.
func (h *Hub) dirtyLocked(c *call) {
	if h.cluster != nil {
		h.dirty[c] = true
		h.dirtyGen++
		select {
		case h.kick <- struct{}{}:
		default:
		}
	}
}

// flusher writes what changed as soon as it changed, and retries what
// could not be written each half second.
func (h *Hub) flusher() {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-h.kick:
		case <-t.C:
		case <-h.bgStop:
			h.flush()
			return
		}
		h.flush()
	}
}

// recorded waits until what changed so far is written to Redis (or the
// write failed, or a second passed): a request is acknowledged only once
// the other nodes can see its effect. Waiting requests share one write.
func (h *Hub) recorded() {
	h.mu.Lock()
	gen := h.dirtyGen
	h.mu.Unlock()
	h.flushMu.Lock()
	defer h.flushMu.Unlock()
	if h.flushedGen >= gen {
		return
	}
	select {
	case h.kick <- struct{}{}:
	default:
	}
	stop := time.AfterFunc(time.Second, func() {
		h.flushMu.Lock()
		h.flushedCond.Broadcast()
		h.flushMu.Unlock()
	})
	defer stop.Stop()
	deadline := time.Now().Add(time.Second)
	for h.flushedGen < gen && time.Now().Before(deadline) {
		h.flushedCond.Wait()
	}
}

// flush writes the state of the calls that changed. Only the flusher
// calls it, so writes of one key keep their order.
func (h *Hub) flush() {
	h.mu.Lock()
	gen := h.dirtyGen
	h.mu.Unlock()
	defer func() {
		h.flushMu.Lock()
		h.flushedGen = max(h.flushedGen, gen)
		h.flushedCond.Broadcast()
		h.flushMu.Unlock()
	}()
	self := h.cluster.ID()
	var ch store.CallChanges
	h.mu.Lock()
	if len(h.dirty) == 0 {
		h.mu.Unlock()
		return
	}
	batch := h.dirty
	h.dirty = map[*call]bool{}
	for c := range batch {
		for u := range c.members {
			if uc := h.userCall[u]; uc != nil {
				ch.Users = append(ch.Users, store.HomeChange{Key: u, Call: uc.ID})
			} else {
				ch.Users = append(ch.Users, store.HomeChange{Key: u, Call: c.ID, Clear: true})
			}
		}
		if c.Room != "" {
			ch.Rooms = append(ch.Rooms, store.HomeChange{Key: c.Room, Call: c.ID, Clear: c.Phase == callcore.PhaseEnded})
		}
		switch c.Phase {
		case callcore.PhaseRinging, callcore.PhaseActive:
			ch.Snapshots = append(ch.Snapshots, h.snapLocked(c))
		case callcore.PhaseEnded:
			ch.Ended = append(ch.Ended, c.ID)
		}
	}
	h.mu.Unlock()
	ctx, cancel := h.cluster.Ctx()
	defer cancel()
	if err := h.dir.WriteCalls(ctx, self, ch); err != nil {
		h.log.Debug("call state not written; retrying", "err", err)
		// Try again on the next tick; Resync rewrites everything anyway
		// once Redis is back.
		h.mu.Lock()
		for c := range batch {
			h.dirty[c] = true
		}
		h.mu.Unlock()
	}
}

// snapLocked describes an answered call for another node to rebuild.
func (h *Hub) snapLocked(c *call) store.CallSnapshot {
	snap := c.Snapshot(c.core(), h.cluster.ID(), c.floor != nil)
	if a := c.assist; a != nil && !a.Over() {
		snap.Assist = &store.AssistSnapshot{Helper: a.Helper, Helped: a.Helped, Granted: a.Granted()}
	}
	return snap
}

func (h *Hub) sweeper() {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for i := 1; ; i++ {
		select {
		case <-t.C:
		case <-h.bgStop:
			return
		}
		var idle []*Session
		h.mu.Lock()
		for key, p := range h.remotes {
			// Not in a call here, nothing heard from it for a while and
			// nothing waiting for its loop: no longer needed. Taken out
			// of remotes under the lock, so no message can reach it now.
			if !h.involvedLocked(p.user) && h.now().Sub(p.lastUp) > 30*time.Second && p.inbox.len() == 0 {
				delete(h.remotes, key)
				idle = append(idle, p)
			}
		}
		if i%60 == 0 {
			for _, c := range h.calls { // keep the TTLs of long calls fresh
				h.dirtyLocked(c)
			}
		}
		h.mu.Unlock()
		for _, p := range idle {
			h.unregister(p)
			p.shutdown()
		}
	}
}

// involvedLocked reports whether user takes part in a call on this node:
// their devices here must be proxies of the real ones.
func (h *Hub) involvedLocked(user string) bool {
	if h.userCall[user] != nil {
		return true
	}
	for _, c := range h.calls {
		if m := c.members[user]; m != nil && m.State != callcore.MemberGone {
			return true
		}
	}
	return false
}

type heldPost struct {
	node string
	e    *cluster.Envelope
}

// post sends a message to a proxy's device, or holds it while a call ends.
func (h *Hub) post(node string, e *cluster.Envelope) {
	h.holdMu.Lock()
	if h.holding {
		h.held = append(h.held, heldPost{node, e})
		h.holdMu.Unlock()
		return
	}
	h.holdMu.Unlock()
	h.cluster.Post(node, e)
}

// holdLocked starts holding messages to proxies (endLocked).
func (h *Hub) holdLocked() {
	if h.cluster != nil {
		h.holdMu.Lock()
		h.holding = true
		h.holdMu.Unlock()
	}
}

// releaseHeldLocked queues e's history writes, then the messages held since
// holdLocked; e's history is then not written again by record.
func (h *Hub) releaseHeldLocked(e *endResult) {
	if h.cluster == nil {
		return
	}
	if len(e.entries) > 0 {
		writes := make([]store.HistoryWrite, 0, len(e.entries))
		for user, entry := range e.entries {
			writes = append(writes, store.HistoryWrite{User: user, Entry: entry, Within: h.cfg.GroupUnansweredWithin})
		}
		users := e.users
		h.cluster.QueueHistory(writes, func() { h.pending.done(users...) })
		e.entries, e.users = nil, nil
	}
	h.holdMu.Lock()
	held := h.held
	h.held, h.holding = nil, false
	h.holdMu.Unlock()
	for _, hp := range held {
		h.cluster.Post(hp.node, hp.e)
	}
}

// ---- the device's node ----

// online records a new local session in presence and tells every node.
func (h *Hub) online(s *Session) {
	if h.cluster == nil {
		return
	}
	ctx, cancel := h.cluster.Ctx()
	defer cancel()
	if err := h.cluster.SetPresence(ctx, s.user, s.presence()); err != nil {
		s.log.Warn("presence not recorded", "err", err)
	}
	h.cluster.Broadcast(&cluster.Envelope{Kind: cluster.KindOnline, Sess: s.id, User: s.user, Device: s.device, Grants: s.ident.Grants})
	h.sharedPresenceChanged(s.user)
}

// presence is how a local session is recorded in presence.
func (s *Session) presence() cluster.Device {
	return cluster.Device{Device: s.device, Sess: s.id, Grants: s.ident.Grants}
}

// offline forgets a local session that ended.
func (h *Hub) offline(s *Session) {
	if h.cluster == nil {
		return
	}
	h.mu.Lock()
	lost := s.lost.Load() || h.closed // a node going away: the device comes back elsewhere
	h.mu.Unlock()
	ctx, cancel := h.cluster.Ctx()
	defer cancel()
	if err := h.cluster.ClearPresence(ctx, s.user, s.presence()); err != nil {
		s.log.Warn("presence not cleared", "err", err)
	}
	h.cluster.Broadcast(&cluster.Envelope{Kind: cluster.KindOffline, Sess: s.id, User: s.user, Device: s.device, Lost: lost})
	h.sharedPresenceChanged(s.user)
}

// forwarded sends a client message on to the node holding its call, and
// reports whether it did (or failed to and told the device).
func (s *Session) forwarded(in inbound) bool {
	h := s.hub
	switch in.msg.(type) {
	case *protocol.Hello, *protocol.Header:
		return false // a ping, or a second hello: answered here
	}
	var hd struct {
		ID     string `json:"id"`
		CallID string `json:"call_id"`
	}
	_ = json.Unmarshal(in.raw, &hd)
	node, err := h.homeFor(s, in.msg, hd.CallID)
	if errors.Is(err, errCallMoving) {
		s.sendError(hd.ID, protocol.CodeUnavailable, "the call is moving to another node, or its shared state is being written again after an outage; try again in a moment", hd.CallID)
		return true
	}
	if err != nil {
		s.sendError(hd.ID, protocol.CodeUnavailable, "the call service cannot reach its shared state; calls in progress go on, try again shortly", hd.CallID)
		return true
	}
	if node == "" || node == h.cluster.ID() {
		return false
	}
	err = h.cluster.Send(node, &cluster.Envelope{Kind: cluster.KindUp, Sess: s.id, User: s.user, Device: s.device,
		Grants: s.ident.Grants, Msg: in.raw})
	if err != nil {
		s.log.Warn("message not forwarded", "node", node, "err", err)
		s.sendError(hd.ID, protocol.CodeUnavailable, "the node holding this call cannot be reached; try again in a moment", hd.CallID)
	}
	return true
}

// homeFor names the node that must handle a message ("": this one).
func (h *Hub) homeFor(s *Session, msg any, callID string) (string, error) {
	switch m := msg.(type) {
	case *protocol.Invite:
		if m.CallID == "" {
			return h.inviteHome(s, m.To)
		}
	case *protocol.Join:
		return h.roomHome(m.Room)
	}
	if callID == "" {
		return "", nil
	}
	h.mu.Lock()
	local := h.calls[callID] != nil
	h.mu.Unlock()
	if local {
		return "", nil
	}
	if node := s.route(callID); node != "" && h.cluster.Live(node) {
		return node, nil
	}
	ctx, cancel := h.cluster.Ctx()
	defer cancel()
	snap, ok, err := h.dir.CallSnapshot(ctx, callID)
	if err != nil {
		return "", err
	}
	if ok && h.cluster.Live(snap.Home) {
		return snap.Home, nil
	}
	if ok && snap.Home != h.cluster.ID() && (!snap.Answered.IsZero() || snap.Room != "") {
		// Its node went and no other has taken it over yet: an answered
		// call or a room is not gone, and a hangup or a leave answered
		// "no such call" now would leave it running once it is taken
		// over. (A call still ringing is not taken over: it ended with
		// its node, endOrphans.)
		return "", errCallMoving
	}
	return "", nil
}

// errCallMoving: the node holding a call went away, and another has not
// yet taken it over; or Redis is back from an outage and the nodes are
// still writing their calls and rooms again.
var errCallMoving = errors.New("signaling: the call's node is being settled")

// inviteHome picks the node for a new call: the one holding the call the
// callee (or the caller) is already in, so that call waiting and busy
// work as on one node; otherwise by load.
func (h *Hub) inviteHome(s *Session, to string) (string, error) {
	ctx, cancel := h.cluster.Ctx()
	defer cancel()
	homes, err := h.dir.UserHomes(ctx, to, s.user)
	if err != nil {
		return "", err
	}
	for _, home := range homes {
		if home.Node != "" && h.cluster.Live(home.Node) {
			return home.Node, nil
		}
	}
	return h.cluster.PickHome(), nil
}

// roomHome finds the node holding a room, or claims one for it.
func (h *Hub) roomHome(name string) (string, error) {
	ctx, cancel := h.cluster.Ctx()
	defer cancel()
	for range 3 {
		cur, err := h.dir.RoomHome(ctx, name)
		if err != nil {
			return "", err
		}
		if cur.Node != "" && h.cluster.Live(cur.Node) {
			return cur.Node, nil
		}
		if cur.Node != "" && cur.Call != "" && cur.Node != h.cluster.ID() {
			// Its node is gone. While its snapshot still names that
			// node, another is about to take the room over: starting it
			// anew now would split it in two rooms of one name.
			snap, ok, err := h.dir.CallSnapshot(ctx, cur.Call)
			if err != nil {
				return "", err
			}
			if ok && snap.Home == cur.Node {
				return "", errCallMoving
			}
		}
		if cur.Node == "" && h.cluster.Settling() {
			// Redis is back from an outage, maybe empty, and the nodes
			// are writing their rooms again: this one may be running
			// already, and starting it anew now would split it.
			return "", errCallMoving
		}
		// None, or its node is gone and nobody took it over: start it
		// anew.
		home := h.cluster.PickHome()
		ok, err := h.dir.ClaimRoom(ctx, name, home, 30*time.Second, cur.Node != "")
		if err != nil {
			return "", err
		}
		if ok {
			return home, nil
		}
	}
	return h.cluster.ID(), nil
}

// route is the node a call's messages to this device came from.
func (s *Session) route(callID string) string {
	s.routesMu.Lock()
	defer s.routesMu.Unlock()
	return s.routes[callID]
}

// deliverDown writes a message from a call's home to the device's socket,
// learning from it where the call is.
func (h *Hub) deliverDown(e *cluster.Envelope) {
	h.mu.Lock()
	s := h.devices[e.User][e.Device]
	h.mu.Unlock()
	if s == nil || s.id != e.Sess || s.remote != nil {
		return
	}
	var hd struct {
		Type   string `json:"type"`
		CallID string `json:"call_id"`
	}
	_ = json.Unmarshal(e.Msg, &hd)
	// active_call names the call another of the user's devices holds,
	// and its end comes with no call id: a route learned from it would
	// outlive the call (a handoff finds the call's node without one).
	if hd.CallID != "" && hd.Type != protocol.TypeActiveCall {
		s.routesMu.Lock()
		if hd.Type == protocol.TypeEnded {
			delete(s.routes, hd.CallID)
		} else {
			if s.routes == nil {
				s.routes = map[string]string{}
			}
			s.routes[hd.CallID] = e.From
		}
		s.routesMu.Unlock()
	}
	s.enqueue(outFrame{data: []byte(e.Msg)})
}

// ---- the call's home ----

// Deliver implements cluster.Handler.
func (h *Hub) Deliver(e *cluster.Envelope) {
	switch e.Kind {
	case cluster.KindDown:
		h.deliverDown(e)
	case cluster.KindUp:
		m, err := protocol.Decode(e.Msg)
		if err != nil { // it was decoded on the device's node: cannot happen
			h.log.Warn("forwarded message not understood", "err", err)
			return
		}
		for range 2 { // once more if the proxy was swept meanwhile
			p := h.proxyFor(e)
			if p == nil {
				return
			}
			h.mu.Lock()
			if h.remotes[e.From+"/"+e.Sess] != p {
				h.mu.Unlock()
				continue
			}
			p.lastUp = h.now()
			if !p.inbox.put(m) {
				h.metrics.dropped.Inc()
				p.log.Warn("forwarded message dropped: the session's loop is stuck")
			}
			h.mu.Unlock()
			return
		}
	case cluster.KindOnline:
		h.mu.Lock()
		want := h.involvedLocked(e.User) && !h.closed
		if want {
			h.wg.Add(1) // under the lock: Close may be waiting
		}
		h.mu.Unlock()
		if want {
			go func() { defer h.wg.Done(); h.proxyFor(e) }()
		}
	case cluster.KindResynced:
		if e.From != h.cluster.ID() {
			h.goUnlessClosed(func() { h.announceLocal(h.localSessions()) })
		}
	case cluster.KindErased:
		if e.From == h.cluster.ID() {
			return
		}
		mark := h.now()
		if e.At != 0 {
			mark = time.UnixMicro(e.At)
		}
		h.goUnlessClosed(func() { h.erasedElsewhere(e.User, mark) })
	case cluster.KindPresence:
		if e.From != h.cluster.ID() {
			h.mu.Lock()
			h.presenceChangedLocked(e.User, false)
			h.mu.Unlock()
		}
	case cluster.KindContact:
		if e.From != h.cluster.ID() {
			h.contactAdded(e.User, e.Device)
		}
	case cluster.KindDecline:
		if e.From != h.cluster.ID() {
			h.goUnlessClosed(func() { _ = h.declineByPush(e.User, e.Device, e.Token) })
		}
	case cluster.KindRevoked:
		if e.From == h.cluster.ID() {
			return
		}
		h.goUnlessClosed(func() { h.revokedElsewhere(e) })
	case cluster.KindOffline:
		h.mu.Lock()
		p := h.remotes[e.From+"/"+e.Sess]
		if p != nil && !h.closed {
			h.wg.Add(1)
		} else {
			p = nil
		}
		h.mu.Unlock()
		if p != nil {
			go func() { defer h.wg.Done(); h.dropProxy(p, e.Lost) }()
		}
	}
}

// proxyFor returns the proxy of the device session e comes from or names,
// making it (and ringing it for calls ringing its user) if new.
func (h *Hub) proxyFor(e *cluster.Envelope) *Session {
	key := e.From + "/" + e.Sess
	h.mu.Lock()
	if p := h.remotes[key]; p != nil || h.closed {
		h.mu.Unlock()
		return p
	}
	p := &Session{
		hub: h, id: e.Sess, user: e.User, device: e.Device,
		ident:  auth.Identity{User: e.User, Device: e.Device, Grants: e.Grants},
		remote: &remoteEnd{node: e.From, sess: e.Sess},
		inbox:  newEventQueue(),
		done:   make(chan struct{}),
	}
	p.log = h.log.With("session", p.id, "user", p.user, "device", p.device, "via", e.From)
	p.lastUp = h.now()
	devs := h.devices[p.user]
	if devs == nil {
		devs = map[string]*Session{}
		h.devices[p.user] = devs
	}
	old := devs[p.device]
	devs[p.device] = p
	h.remotes[key] = p
	h.wg.Add(1)
	h.mu.Unlock()
	go func() { defer h.wg.Done(); p.startLoop(); p.loops.Wait() }()
	if old != nil && old.remote != nil {
		h.dropProxy(old, true) // the device signed in again elsewhere
	}
	h.ringLate(p)
	return p
}

// dropProxy ends a proxy whose device session ended (lost: without
// leaving, so its calls wait for it) or that is no longer needed.
func (h *Hub) dropProxy(p *Session, lost bool) {
	key := p.remote.node + "/" + p.remote.sess
	h.mu.Lock()
	if h.remotes[key] != p {
		h.mu.Unlock()
		return
	}
	delete(h.remotes, key)
	h.mu.Unlock()
	p.lost.Store(lost)
	h.unregister(p)
	p.shutdown()
}

// loadRemote makes proxies of the user's devices signed in on other nodes,
// so that ringing and moving calls reach them.
func (h *Hub) loadRemote(user string) error {
	if h.cluster == nil {
		return nil
	}
	ctx, cancel := h.cluster.Ctx()
	defer cancel()
	devs, err := h.cluster.Presence(ctx, user)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if d.Node != h.cluster.ID() {
			h.proxyFor(&cluster.Envelope{From: d.Node, Sess: d.Sess, User: user, Device: d.Device, Grants: d.Grants})
		}
	}
	return nil
}

// Resync implements cluster.Handler: Redis came back, perhaps empty.
func (h *Hub) Resync() {
	local := h.localSessions()
	h.mu.Lock()
	for _, c := range h.calls {
		h.dirtyLocked(c)
	}
	h.mu.Unlock()
	for _, s := range local {
		ctx, cancel := h.cluster.Ctx()
		_ = h.store.TouchUser(ctx, s.user)
		_ = h.cluster.SetPresence(ctx, s.user, s.presence())
		cancel()
	}
	h.announceLocal(local)
	// The others announce theirs in turn: what they told while this node
	// could not hear (a device signing in again, its call held here) was
	// lost, Redis keeping no message for a subscriber that is away.
	h.cluster.Broadcast(&cluster.Envelope{Kind: cluster.KindResynced})
	h.log.Info("state written again after a Redis outage", "sessions", len(local))
}

// announceLocal tells the other nodes again of this node's devices, as
// when each signed in: a node holding a call of one resumes its leg on
// the session it may not have heard of (proxyFor; one it knows is left
// as it is).
func (h *Hub) announceLocal(local []*Session) {
	for _, s := range local {
		h.cluster.Broadcast(&cluster.Envelope{Kind: cluster.KindOnline, Sess: s.id, User: s.user, Device: s.device, Grants: s.ident.Grants})
	}
}

// localSessions lists the devices signed in on this node.
func (h *Hub) localSessions() []*Session {
	var local []*Session
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, devs := range h.devices {
		for _, s := range devs {
			if s.remote == nil {
				local = append(local, s)
			}
		}
	}
	return local
}

// NodeGone implements cluster.Handler: the devices whose sockets were on
// that node lost them, and its calls come here unless another node is
// quicker to take them. The work is the hub's takeover worker's, which
// Close waits for.
func (h *Hub) NodeGone(node string) {
	if !h.gone.put(node) {
		h.log.Error("a gone node's calls are not taken over", "gone", node, "reason", "too many nodes gone at once")
	}
}

// takeovers takes over the calls of the nodes that went away, one node
// at a time, until the hub closes.
func (h *Hub) takeovers() {
	for {
		select {
		case <-h.gone.ready:
			for _, node := range h.gone.take() {
				h.takeOver(node.(string))
			}
		case <-h.bgStop:
			return
		}
	}
}

// takeOver ends the proxies of node's devices and claims its calls.
func (h *Hub) takeOver(node string) {
	var drop []*Session
	h.mu.Lock()
	for _, p := range h.remotes {
		if p.remote.node == node {
			drop = append(drop, p)
		}
	}
	h.mu.Unlock()
	for _, p := range drop {
		h.dropProxy(p, true)
	}
	// The least loaded node claims first.
	wait := time.NewTimer(time.Duration(h.cluster.Rank()) * 100 * time.Millisecond)
	defer wait.Stop()
	select {
	case <-wait.C:
	case <-h.bgStop:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ids, err := h.dir.NodeCalls(ctx, node)
	if err != nil {
		h.log.Error("the calls of a gone node cannot be read", "gone", node, "err", err)
		return
	}
	for _, id := range ids {
		won, err := h.dir.ClaimCall(ctx, id, h.cluster.ID(), time.Minute)
		if err != nil || !won {
			continue
		}
		snap, ok, err := h.dir.CallSnapshot(ctx, id)
		if err != nil || !ok || snap.Home != node {
			continue
		}
		if len(snap.Members) == 0 {
			// Nobody left to take it over for: it ends here, and its
			// room's name is free (roomHome waits while a snapshot
			// names the gone node).
			_ = h.dir.WriteCalls(ctx, h.cluster.ID(), store.CallChanges{Ended: []string{id}})
			_ = h.dir.ForgetNodeCall(ctx, node, id)
			continue
		}
		h.rehome(snap)
		_ = h.dir.ForgetNodeCall(ctx, node, id)
	}
	h.goUnlessClosed(func() { h.endOrphans(node) })
}

// orphanWait is how long after a node went its calls may take to be taken
// over (every node's claim, least loaded first, and the first messages
// from the new home) before a device still told of one from the gone node
// hears it ended.
const orphanWait = 3 * time.Second

// endOrphans tells this node's devices that the calls they heard of from
// node, which went away, have ended, unless another node took them over:
// a call still ringing when its node died is not taken over (only
// answered calls and rooms are), its snapshot goes on naming the gone
// node, and without this the devices it rang would ring on forever.
func (h *Hub) endOrphans(node string) {
	select {
	case <-time.After(orphanWait):
	case <-h.bgStop:
		return
	}
	type orphan struct {
		s  *Session
		id string
	}
	var found []orphan
	for _, s := range h.localSessions() {
		s.routesMu.Lock()
		for id, from := range s.routes {
			if from == node {
				found = append(found, orphan{s, id})
			}
		}
		s.routesMu.Unlock()
	}
	for _, o := range found {
		ctx, cancel := h.cluster.Ctx()
		snap, ok, err := h.dir.CallSnapshot(ctx, o.id)
		cancel()
		if err != nil {
			continue // Redis away: asked again when it is back (Resync)
		}
		if ok && snap.Home != node {
			continue // taken over: the new home speaks to the device
		}
		o.s.routesMu.Lock()
		still := o.s.routes[o.id] == node
		delete(o.s.routes, o.id)
		o.s.routesMu.Unlock()
		// No snapshot: the call had ended already (a route can outlive
		// its call), and the device heard so.
		if still && ok {
			h.log.Info("call ended with its node", "call", o.id, "gone", node, "user", o.s.user, "device", o.s.device)
			o.s.send(protocol.TypeEnded, &protocol.Ended{CallID: o.id, Reason: protocol.ReasonFailed})
		}
	}
}

// rehome rebuilds a call another node held. Members whose device is
// online get resumed with rejoin and connect their media here; the others
// keep their place for the reconnect grace, as after a lost socket.
func (h *Hub) rehome(snap store.CallSnapshot) {
	for _, m := range snap.Members {
		if err := h.loadRemote(m.User); err != nil {
			h.log.Warn("presence unreadable while taking a call over", "call", snap.ID, "err", err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.calls[snap.ID] != nil || h.closed || len(snap.Members) == 0 {
		return
	}
	core, ms, away, effs := callcore.Restore(snap, sessionParty, func(user, device string) (*Session, bool) {
		if d := h.devices[user][device]; d != nil && device != "" {
			return d, true
		}
		return h.ghost(user, device), false
	})
	c := newCall(*core)
	if snap.PTT {
		c.floor = &floor{}
	}
	for _, cm := range ms {
		m := &member{Member: *cm}
		c.members[m.User] = m
		if h.userCall[m.User] == nil {
			h.userCall[m.User] = c
		}
	}
	for _, m := range away {
		h.detachLocked(c, c.members[m.User], m.Dev)
	}
	h.calls[c.ID] = c
	if c.Room != "" {
		h.rooms[c.Room] = c
	}
	h.applyLocked(c, origin{}, effs)
	if sa := snap.Assist; sa != nil {
		a := &assist{Assist: callcore.LostAssist(sa.Helper, sa.Helped, sa.Granted)}
		h.applyLocked(c, origin{a: a}, callcore.EndAssist[*Session](a.Assist, "node_gone"))
	}
	for _, m := range ms {
		if !slices.Contains(away, m) {
			h.announceLocked(m.User)
		}
	}
	h.dirtyLocked(c)
	h.log.Info("took over a call from a gone node", "call", c.ID, "from", snap.Home, "members", len(c.members), "online", len(ms)-len(away))
}

// ghost is a stand-in session for a device that is not signed in
// anywhere: whatever is sent to it is dropped.
func (h *Hub) ghost(user, device string) *Session {
	s := &Session{hub: h, id: newID("s_"), user: user, device: device, done: make(chan struct{})}
	s.log = h.log.With("user", user, "device", device)
	s.stop.Do(func() { close(s.done) })
	s.lost.Store(true)
	return s
}

// Handover gives this node's answered calls to the other nodes without
// ending them: their state is written, this node forgets them, and the
// others take them over as from a dead node while the devices reconnect
// elsewhere. Calls still ringing end as failed. It reports the calls
// handed over.
func (h *Hub) Handover(ctx context.Context) int {
	if h.cluster == nil {
		return 0
	}
	var ends []*endResult
	var rooms []string
	var snaps []store.CallSnapshot
	h.mu.Lock()
	for _, c := range h.calls {
		if c.Phase != callcore.PhaseActive {
			ends = append(ends, h.endLocked(c, protocol.ReasonFailed, nil))
			continue
		}
		snaps = append(snaps, h.snapLocked(c))
		rooms = append(rooms, c.ID)
	}
	for _, s := range snaps {
		c := h.calls[s.ID]
		delete(h.calls, c.ID)
		if c.Room != "" && h.rooms[c.Room] == c {
			delete(h.rooms, c.Room)
		}
		for u, m := range c.members {
			if h.userCall[u] == c {
				delete(h.userCall, u)
			}
			if m.timer != nil {
				m.timer.Stop()
			}
			if m.detached != nil {
				m.detached.Stop()
			}
			if m.handoff != nil {
				m.handoff.stop()
			}
		}
		c.Phase = callcore.PhaseEnded // its timers and stragglers find nothing to do
		delete(h.dirty, c)
	}
	h.mu.Unlock()
	for _, e := range ends {
		h.finish(e)
	}
	n := h.cluster
	if err := h.dir.WriteCalls(ctx, n.ID(), store.CallChanges{Snapshots: snaps}); err != nil {
		h.log.Error("calls not handed over: Redis unreachable", "calls", len(snaps), "err", err)
	}
	if h.media != nil {
		for _, id := range rooms {
			h.media.CloseRoom(sfu.RoomID(id))
		}
	}
	n.SetDraining(true)
	n.Leave()
	h.log.Info("calls handed over to the other nodes", "calls", len(snaps))
	return len(snaps)
}

// goUnlessClosed runs f on a goroutine the hub waits for when it closes,
// unless it has closed already.
func (h *Hub) goUnlessClosed(f func()) {
	h.mu.Lock()
	closed := h.closed
	if !closed {
		h.wg.Add(1) // under the lock: Close may be waiting
	}
	h.mu.Unlock()
	if !closed {
		go func() { defer h.wg.Done(); f() }()
	}
}
