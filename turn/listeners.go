package turn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tandemcall/tandem/internal/udpx"
)

// maxPendingHandshakes bounds TLS handshakes in progress at once.
const maxPendingHandshakes = 1024

// Batching of the UDP sockets: datagrams per recvmmsg and packets queued
// behind a writer, for listener sockets (shared by many clients) and relay
// sockets (one allocation each; kept small for memory).
const (
	listenerReadBatch  = 32
	listenerWriteQueue = 64
	relayReadBatch     = 4
	relayWriteQueue    = 8
)

// udpSocketBuffer is the receive and send buffer asked for on each UDP
// listener socket; the kernel caps it at net.core.{r,w}mem_max.
const udpSocketBuffer = 4 << 20

func reusePort(_, _ string, c syscall.RawConn) error {
	var opErr error
	if err := c.Control(func(fd uintptr) {
		opErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return opErr
}

// listenUDP opens n UDP sockets on addr with SO_REUSEPORT so the kernel
// spreads clients over n read loops. With port 0 the first socket picks
// the port and the others share it.
func listenUDP(addr string, n int, dropped *atomic.Uint64) ([]net.PacketConn, error) {
	lc := net.ListenConfig{Control: reusePort}
	conns := make([]net.PacketConn, 0, n)
	for i := range n {
		if i == 1 {
			addr = conns[0].LocalAddr().String()
		}
		c, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			for _, c := range conns {
				_ = c.Close()
			}
			return nil, fmt.Errorf("turn: listen udp %s: %w", addr, err)
		}
		u := c.(*net.UDPConn) //nolint:forcetypeassert // "udp" listens give *net.UDPConn
		_ = u.SetReadBuffer(udpSocketBuffer)
		_ = u.SetWriteBuffer(udpSocketBuffer)
		bc, err := udpx.New(u, udpx.Options{ReadBatch: listenerReadBatch, WriteQueue: listenerWriteQueue, MaxDatagram: inboundMTU, Dropped: dropped})
		if err != nil {
			_ = c.Close()
			for _, c := range conns {
				_ = c.Close()
			}
			return nil, fmt.Errorf("turn: listen udp %s: %w", addr, err)
		}
		conns = append(conns, bc)
	}
	return conns, nil
}

// inspectingPacketConn runs the inspector on every datagram before pion
// reads it.
type inspectingPacketConn struct {
	net.PacketConn
	s *Server
}

// ReadFrom returns the next datagram the inspector lets through.
func (c *inspectingPacketConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if c.s.inspect(p[:n], addr, transportUDP, c) {
			return n, addr, nil
		}
	}
}

func (c *inspectingPacketConn) reply(b []byte, to net.Addr) {
	_, _ = c.PacketConn.WriteTo(b, to)
}

// streamConn is one TCP or TLS client connection. Read hands pion one
// whole STUN or ChannelData frame at a time, after the inspector has seen
// it. A connection that has not allocated within PreAllocateTimeout is
// closed.
type streamConn struct {
	net.Conn
	s         *Server
	tr        transport
	key       allocKey
	fr        frameReader
	allocated atomic.Bool
	timer     atomic.Pointer[time.Timer]
	closeOnce sync.Once
	closeErr  error
}

// wrapStream registers c and starts its pre-allocation timer.
func (s *Server) wrapStream(c net.Conn, tr transport) *streamConn {
	sc := &streamConn{Conn: c, s: s, tr: tr, key: allocKey{tr, srcKey(c.RemoteAddr())}}
	sc.fr.r = c
	s.reg.mu.Lock()
	s.reg.conns[sc.key] = sc
	s.reg.mu.Unlock()
	sc.timer.Store(time.AfterFunc(s.cfg.PreAllocateTimeout, func() {
		if !sc.allocated.Load() {
			s.metrics.quotaRejected(quotaPreAllocateTimeout)
			_ = sc.Close()
		}
	}))
	return sc
}

// Read implements net.Conn for pion's STUNConn.
func (c *streamConn) Read(p []byte) (int, error) {
	for {
		frame, err := c.fr.next()
		if err != nil {
			return 0, err
		}
		if len(frame) > len(p) {
			return 0, io.ErrShortBuffer
		}
		if c.s.inspect(frame, c.RemoteAddr(), c.tr, c) {
			return copy(p, frame), nil
		}
	}
}

func (c *streamConn) reply(b []byte, _ net.Addr) {
	_, _ = c.Write(b)
}

// Close closes the connection and forgets it.
func (c *streamConn) Close() error {
	c.closeOnce.Do(func() {
		if t := c.timer.Load(); t != nil {
			t.Stop()
		}
		c.s.reg.mu.Lock()
		if c.s.reg.conns[c.key] == c {
			delete(c.s.reg.conns, c.key)
		}
		c.s.reg.mu.Unlock()
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

// tcpListener wraps accepted TCP connections as streamConns.
type tcpListener struct {
	net.Listener
	s *Server
}

// Accept implements net.Listener. pion stops serving a listener at the
// first Accept error, so transient errors (EMFILE, ECONNABORTED) are
// retried here with a backoff; only a closed listener ends it.
func (l *tcpListener) Accept() (net.Conn, error) {
	c, err := acceptRetrying(l.Listener, l.s)
	if err != nil {
		return nil, err
	}
	return l.s.wrapStream(c, transportTCP), nil
}

// acceptRetrying accepts from l, retrying transient errors with a backoff
// of up to one second, as net/http does.
func acceptRetrying(l net.Listener, s *Server) (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err == nil {
			return c, nil
		}
		if errors.Is(err, net.ErrClosed) {
			return nil, err
		}
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		s.log.Warn("turn: accept failed; retrying", "addr", l.Addr().String(), "err", err, "backoff", backoff)
		time.Sleep(backoff)
	}
}

// tlsListener does each TLS handshake on its own goroutine with a
// deadline, so a slow or silent client never holds up Accept, and hands
// pion only connections that completed the handshake.
type tlsListener struct {
	inner   net.Listener
	s       *Server
	ready   chan *tls.Conn
	done    chan struct{}
	sem     chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	mu      sync.Mutex
	pending map[net.Conn]struct{}
}

func newTLSListener(inner net.Listener, s *Server) *tlsListener {
	l := &tlsListener{
		inner:   inner,
		s:       s,
		ready:   make(chan *tls.Conn),
		done:    make(chan struct{}),
		sem:     make(chan struct{}, maxPendingHandshakes),
		pending: make(map[net.Conn]struct{}),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := acceptRetrying(l.inner, l.s)
		if err != nil {
			return
		}
		select {
		case l.sem <- struct{}{}:
		default:
			l.s.metrics.quotaRejected(quotaTLSHandshake)
			_ = c.Close()
			continue
		}
		l.mu.Lock()
		select {
		case <-l.done:
			l.mu.Unlock()
			<-l.sem
			_ = c.Close()
			return
		default:
		}
		l.pending[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(c net.Conn) {
	defer l.wg.Done()
	defer func() { <-l.sem }()
	tc := tls.Server(c, l.s.cfg.TLSConfig)
	ctx, cancel := context.WithTimeout(context.Background(), l.s.cfg.TLSHandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	l.mu.Lock()
	delete(l.pending, c)
	l.mu.Unlock()
	if err != nil {
		l.s.metrics.quotaRejected(quotaTLSHandshake)
		_ = c.Close()
		return
	}
	select {
	case l.ready <- tc:
	case <-l.done:
		_ = tc.Close()
	}
}

// Accept implements net.Listener.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case tc := <-l.ready:
		return l.s.wrapStream(tc, transportTLS), nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting, aborts handshakes in progress and waits for the
// listener's goroutines.
func (l *tlsListener) Close() error {
	var err error
	l.once.Do(func() {
		l.mu.Lock()
		close(l.done)
		pending := make([]net.Conn, 0, len(l.pending))
		for c := range l.pending {
			pending = append(pending, c)
		}
		l.mu.Unlock()
		err = l.inner.Close()
		for _, c := range pending {
			_ = c.Close()
		}
		l.wg.Wait()
	})
	return err
}

// Addr implements net.Listener.
func (l *tlsListener) Addr() net.Addr { return l.inner.Addr() }

func listenerPort(l net.Listener) int {
	if a, ok := l.Addr().(*net.TCPAddr); ok {
		return a.Port
	}
	_, p, _ := net.SplitHostPort(l.Addr().String())
	n, _ := strconv.Atoi(p)
	return n
}
