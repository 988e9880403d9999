package signaling

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/cluster"
	"github.com/tandemcall/tandem/sfu"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// WebSocket close codes Tandem uses besides the standard ones.
const (
	CloseUnauthorized = 4001
	CloseReplaced     = 4009
)

// Session is one signed-in device's WebSocket. Its reader (the HTTP
// handler goroutine) handles the client's messages in order; a writer runs
// only while frames wait to be written; an event loop runs once media
// events (pion callbacks) need one. An idle device costs one goroutine.
type Session struct {
	hub    *Hub
	id     string
	user   string
	device string
	ident  auth.Identity
	conn   *websocket.Conn
	log    *slog.Logger

	qmu     sync.Mutex
	queue   []outFrame // to the writer; bounded, never blocks a sender
	writing bool       // a writer goroutine is draining queue
	// welcomed says welcome is queued. The session is registered, and
	// other nodes may send it messages (its call resumed), a moment before
	// that: those wait in held, for welcome is the first message a device
	// hears. Under qmu.
	welcomed bool
	held     []outFrame
	// written is signalled (under qmu) when the writer ends: the session
	// waits for it before it closes the socket.
	written sync.Cond
	ping    *time.Timer
	// refresh sends fresh ICE servers; closer ends a session whose close
	// frame could not be written. Under qmu; stopped when the session ends.
	refresh, closer *time.Timer

	handleMu sync.Mutex  // one message or event handled at a time
	after    []func()    // slow work of the one being handled (later); under handleMu
	inbox    *eventQueue // events for the loop; never blocks who posts
	loopOnce sync.Once
	loops    sync.WaitGroup
	done     chan struct{} // closed when the session stops
	// ended is closed when a local session's run is over: it has left
	// the hub and its calls (nil for proxies and stand-ins).
	ended chan struct{}
	stop  sync.Once

	closing atomic.Bool // an error and close frame are queued
	// lost is set when the socket failed without the client closing it
	// (no close frame): its calls wait for the device to come back.
	lost atomic.Bool

	host       string        // the Host the client reached signaling on
	iceRefresh time.Duration // when to send fresh ICE servers; 0 never

	// remote is set on a proxy: a device whose socket is on another node
	// (cluster.go). Its messages arrive forwarded; what is sent to it is
	// posted to that node.
	remote *remoteEnd
	lastUp time.Time // a proxy's last forwarded message (under the hub's lock)
	// sees are the users whose presence this local session is told of
	// (presence.go); under the hub's lock.
	sees map[string]bool
	// routes are the nodes holding this local session's calls, as learned
	// from their messages.
	routesMu sync.Mutex
	routes   map[string]string
}

// legID names s's media leg in the SFU room of a call: its session id.
func (s *Session) legID() sfu.LegID { return sfu.LegID(s.id) }

// outFrame is a message to write, optionally followed by a close frame.
type outFrame struct {
	data      []byte
	ping      bool
	closeCode int
	closeText string
	welcome   bool // the welcome: what was held goes out after it
}

func (h *Hub) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return slices.Contains(h.cfg.AllowedOrigins, "*") || slices.Contains(h.cfg.AllowedOrigins, origin)
}

// ServeHTTP upgrades a request on /ws and runs the session until it ends.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		writeHTTPError(w, http.StatusServiceUnavailable, protocol.CodeShuttingDown, "server shutting down")
		return
	}
	h.wg.Add(1)
	h.mu.Unlock()
	handed := false
	defer func() {
		if !handed {
			h.wg.Done()
		}
	}()

	up := websocket.Upgrader{
		// A small read buffer (messages are mostly small; larger ones
		// are read through it), and a write buffer taken from a pool
		// only while writing: an idle session holds 1 KiB of buffers.
		ReadBufferSize:   1024,
		WriteBufferPool:  writeBuffers,
		HandshakeTimeout: h.cfg.HelloTimeout,
		CheckOrigin:      h.checkOrigin,
	}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered with an HTTP error
	}
	s := &Session{
		hub: h, id: newID("s_"), conn: conn, host: requestHost(r),
		inbox: newEventQueue(),
		done:  make(chan struct{}),
		ended: make(chan struct{}),
	}
	s.written.L = &s.qmu
	s.log = h.log.With("session", s.id)
	// The session runs on a goroutine of its own so that the HTTP
	// server's, and the request and buffers it holds, are freed: an idle
	// device costs little more than its socket.
	handed = true
	go func() {
		defer h.wg.Done()
		s.run()
	}()
}

func (s *Session) run() {
	h := s.hub
	defer close(s.ended)
	s.ping = time.AfterFunc(h.cfg.PingInterval, s.pingNow)
	defer func() {
		if s.closing.Load() {
			// Let the writer deliver the error and the close frame: it
			// stops the session once it has.
			t := time.NewTimer(h.cfg.WriteTimeout)
			select {
			case <-s.done:
			case <-t.C:
			}
			t.Stop()
		}
		s.shutdown()
		s.ping.Stop()
		s.loops.Wait()
		s.qmu.Lock()
		for _, t := range []*time.Timer{s.refresh, s.closer} {
			if t != nil {
				t.Stop()
			}
		}
		for s.writing { // the writer ends at once: the socket is closed
			s.written.Wait()
		}
		s.qmu.Unlock()
		_ = s.conn.Close()
	}()

	s.conn.SetReadLimit(h.cfg.MaxMessageBytes)
	if !s.hello() {
		return
	}
	s.log = s.log.With("user", s.user, "device", s.device)

	old, err := h.register(s)
	if errors.Is(err, ErrRevoked) {
		s.closeWith(protocol.CodeTokenRevoked, err.Error(), CloseUnauthorized)
		return
	}
	if err != nil {
		s.closeWith(protocol.CodeShuttingDown, "server shutting down", websocket.CloseGoingAway)
		return
	}
	if old != nil {
		old.closeWith(protocol.CodeReplaced, "this device signed in again on another connection", CloseReplaced)
	}
	h.online(s)
	defer h.offline(s)
	defer h.unregister(s)
	ice := s.iceServers()
	welcome, err := protocol.Encode(protocol.TypeWelcome, &protocol.Welcome{
		Protocol: protocol.Version, SessionID: s.id, User: s.user, Device: s.device,
		ICEServers: ice, RingTimeoutMS: h.cfg.RingTimeout.Milliseconds(),
	})
	if err != nil {
		s.log.Error("encode welcome", "err", err)
		return
	}
	h.metrics.messages.WithLabelValues("out", protocol.TypeWelcome).Inc()
	s.enqueue(outFrame{data: welcome, welcome: true})
	s.log.Info("session started")
	h.ringLate(s)
	h.watchContacts(s)
	s.armRefresh()
	s.read()
	s.log.Info("session ended")
}

// iceServers asks the provider for this device's servers and notes when
// to refresh them.
func (s *Session) iceServers() []protocol.ICEServer {
	servers := []protocol.ICEServer{}
	if s.hub.cfg.ICE != nil {
		var refresh time.Duration
		if got, r := s.hub.cfg.ICE(s.user, s.host); got != nil {
			servers, refresh = got, r
		}
		s.iceRefresh = refresh
	}
	return servers
}

// requestHost is the host name (without port) the client used.
func requestHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		return strings.Trim(h, "[]")
	}
	return strings.Trim(r.Host, "[]")
}

// hello reads and checks the first message.
func (s *Session) hello() bool {
	h := s.hub
	_ = s.conn.SetReadDeadline(time.Now().Add(h.cfg.HelloTimeout))
	_, data, err := s.conn.ReadMessage()
	if err != nil {
		if errors.Is(err, websocket.ErrReadLimit) {
			s.shutdown() // gorilla has sent close 1009
		}
		return false
	}
	m, err := protocol.Decode(data)
	if err != nil {
		s.closeWith(protocol.CodeHelloRequired, "the first message must be a valid hello", CloseUnauthorized)
		return false
	}
	hello, ok := m.(*protocol.Hello)
	if !ok {
		s.closeWith(protocol.CodeHelloRequired, "the first message must be hello", CloseUnauthorized)
		return false
	}
	id, err := h.Verify(hello.Token)
	switch {
	case errors.Is(err, auth.ErrExpired):
		s.closeWith(protocol.CodeTokenExpired, "the access token has expired; get a new one", CloseUnauthorized)
		return false
	case errors.Is(err, ErrRevoked):
		s.closeWith(protocol.CodeTokenRevoked, err.Error(), CloseUnauthorized)
		return false
	case err != nil && !errors.Is(err, auth.ErrInvalid):
		// A good token whose revocation marks cannot be read (the shared
		// store is away): the device should come back, not sign out.
		s.log.Warn("sign-in refused: revocations unreadable", "err", err)
		s.closeWith(protocol.CodeUnavailable, "the server cannot check sign-ins now; try again shortly", websocket.CloseTryAgainLater)
		return false
	case err != nil:
		s.closeWith(protocol.CodeUnauthorized, "the access token is not valid", CloseUnauthorized)
		return false
	}
	s.ident, s.user, s.device = id, id.User, id.Device
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.store.TouchUser(ctx, s.user); err != nil {
		s.log.Warn("user not recorded", "err", err)
	}
	return true
}

// read is the reader: it decodes frames and posts them to the loop.
func (s *Session) read() {
	h := s.hub
	alive := func() { _ = s.conn.SetReadDeadline(time.Now().Add(h.cfg.PongTimeout)) }
	alive()
	s.conn.SetPongHandler(func(string) error { alive(); return nil })
	bucket := newBucket(h.cfg.RateLimit)
	for {
		typ, data, err := s.conn.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				s.log.Warn("message over the size limit; closing")
			}
			// A close frame from the client means it left; anything else
			// (gorilla reports a bare EOF as 1006) is a lost connection.
			var ce *websocket.CloseError
			closed := errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure
			s.lost.Store(!closed && !s.closing.Load())
			return
		}
		alive()
		if !bucket.take(time.Now()) {
			// Refused unread, but answered with its request id, so the
			// client knows which request failed.
			s.sendError(protocol.RequestID(data), protocol.CodeRateLimited, "too many messages; slow down", "")
			continue
		}
		if typ != websocket.TextMessage {
			s.sendError("", protocol.CodeBadMessage, "messages are JSON text frames", "")
			continue
		}
		m, err := protocol.Decode(data)
		h.metrics.countIn(m)
		if err != nil {
			var de *protocol.DecodeError
			if errors.As(err, &de) {
				s.sendError(de.ID, de.Code, de.Msg, "")
			}
			continue
		}
		var ev any = m
		if h.cluster != nil {
			ev = inbound{msg: m, raw: data}
		}
		select {
		case <-s.done:
			return
		default:
		}
		s.dispatch(ev)
	}
}

// dispatch handles a client message or an event, one at a time, then does
// the slow work the handling left (later) without holding the handler
// lock: the device's next message or media event need not wait for a
// PeerConnection to close or for history to be written.
func (s *Session) dispatch(ev any) {
	s.handleMu.Lock()
	s.handle(ev)
	after := s.after
	s.after = nil
	s.handleMu.Unlock()
	for _, f := range after {
		f()
	}
}

// later leaves f for after the message or event being handled; only the
// handling goroutine may call it.
func (s *Session) later(f func()) { s.after = append(s.after, f) }

// post hands an event to the loop, starting it on first use. It never
// blocks, so a pion callback can post; it fails when the session has
// stopped, or when its loop is stuck and its queue full (the event is
// dropped and counted).
func (s *Session) post(ev any) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	s.startLoop()
	if !s.inbox.put(ev) {
		s.hub.metrics.dropped.Inc()
		s.log.Warn("event dropped: the session's loop is stuck", "queued", maxQueuedEvents)
		return false
	}
	return true
}

// startLoop starts the session's event loop once.
func (s *Session) startLoop() {
	s.loopOnce.Do(func() {
		s.loops.Add(1)
		go func() { defer s.loops.Done(); s.loop() }()
	})
}

// armRefresh schedules fresh ICE servers (TURN credentials) for the device.
func (s *Session) armRefresh() {
	if s.iceRefresh <= 0 {
		return
	}
	t := time.AfterFunc(s.iceRefresh, func() {
		select {
		case <-s.done:
			return
		default:
		}
		s.send(protocol.TypeICEServers, &protocol.ICEServers{ICEServers: s.iceServers()})
		s.armRefresh()
	})
	s.qmu.Lock()
	s.refresh = t
	s.qmu.Unlock()
}

// pingNow queues a WebSocket ping and schedules the next.
func (s *Session) pingNow() {
	if s.enqueue(outFrame{ping: true}) {
		s.ping.Reset(s.hub.cfg.PingInterval)
	}
}

// writeBuffers lend sockets a write buffer only while they write.
var writeBuffers = &sync.Pool{}

// writer writes queued frames until the queue is empty, then ends.
func (s *Session) writer() {
	h := s.hub
	for {
		s.qmu.Lock()
		if len(s.queue) == 0 {
			s.writing = false
			s.queue = nil // an idle session keeps no queue
			s.written.Broadcast()
			s.qmu.Unlock()
			return
		}
		f := s.queue[0]
		s.queue[0] = outFrame{}
		s.queue = s.queue[1:]
		s.qmu.Unlock()
		deadline := time.Now().Add(h.cfg.WriteTimeout)
		var err error
		switch {
		case f.ping:
			err = s.conn.WriteControl(websocket.PingMessage, nil, deadline)
		case f.data != nil:
			_ = s.conn.SetWriteDeadline(deadline)
			err = s.conn.WriteMessage(websocket.TextMessage, f.data)
		}
		if err == nil && f.closeCode != 0 {
			msg := websocket.FormatCloseMessage(f.closeCode, f.closeText)
			_ = s.conn.WriteControl(websocket.CloseMessage, msg, deadline)
			err = errClosedByServer
		}
		if err != nil {
			s.shutdown()
			s.qmu.Lock()
			s.writing, s.queue = false, nil
			s.written.Broadcast()
			s.qmu.Unlock()
			return
		}
	}
}

var errClosedByServer = errors.New("signaling: closed by the server")

// shutdown stops the session: the socket closes, which ends the reader.
func (s *Session) shutdown() {
	s.stop.Do(func() {
		close(s.done)
		if s.conn != nil {
			_ = s.conn.Close()
		}
	})
}

// enqueue hands a frame to the writer without blocking. A session whose
// queue is full is too slow to keep: it is closed.
func (s *Session) enqueue(f outFrame) bool {
	select {
	case <-s.done:
		return false
	default:
	}
	if s.remote != nil {
		if f.data != nil {
			s.hub.post(s.remote.node, &cluster.Envelope{Kind: cluster.KindDown, Sess: s.remote.sess,
				User: s.user, Device: s.device, Msg: f.data})
		}
		return true
	}
	s.qmu.Lock()
	if len(s.queue)+len(s.held) >= max(s.hub.cfg.SendQueue, 1) {
		s.qmu.Unlock()
		s.log.Warn("send queue full; closing slow session")
		s.shutdown()
		return false
	}
	switch {
	case f.welcome:
		s.welcomed = true
		s.queue = append(append(s.queue, f), s.held...)
		s.held = nil
	case !s.welcomed && f.data != nil && f.closeCode == 0:
		s.held = append(s.held, f) // until welcome
		s.qmu.Unlock()
		return true
	default:
		s.queue = append(s.queue, f)
	}
	start := !s.writing
	s.writing = true
	s.qmu.Unlock()
	if start {
		go s.writer()
	}
	return true
}

// send encodes and queues a message.
func (s *Session) send(typ string, m protocol.EncodedMessage) {
	b, err := protocol.Encode(typ, m)
	if err != nil {
		s.log.Error("encode", "type", typ, "err", err)
		return
	}
	s.hub.metrics.messages.WithLabelValues("out", typ).Inc()
	s.enqueue(outFrame{data: b})
}

func (s *Session) sendError(re, code, msg, callID string) {
	s.send(protocol.TypeError, &protocol.Error{Re: re, Code: code, Message: msg, CallID: callID})
}

// closeWith sends an error and then closes the socket with wsCode.
func (s *Session) closeWith(code, msg string, wsCode int) {
	if s.remote != nil {
		s.shutdown() // the device's own node closes its socket
		return
	}
	b, _ := protocol.Encode(protocol.TypeError, &protocol.Error{Code: code, Message: msg})
	s.closing.Store(true)
	if !s.enqueue(outFrame{data: b, closeCode: wsCode, closeText: code}) {
		s.shutdown()
		return
	}
	// A writer stuck on a dead peer is cut off by its write deadline; make
	// sure the session ends even then.
	t := time.AfterFunc(2*s.hub.cfg.WriteTimeout, s.shutdown)
	s.qmu.Lock()
	if s.closer != nil {
		s.closer.Stop()
	}
	s.closer = t
	s.qmu.Unlock()
}

// bucket is a token-bucket rate limiter owned by one reader.
type bucket struct {
	rate   float64
	tokens float64
	last   time.Time
}

func newBucket(perSecond int) *bucket {
	return &bucket{rate: float64(perSecond), tokens: float64(2 * perSecond)}
}

func (b *bucket) take(now time.Time) bool {
	if !b.last.IsZero() {
		b.tokens = min(2*b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
