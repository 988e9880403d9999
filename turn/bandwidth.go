package turn

import (
	"net"
	"sync"
	"time"
)

// tokenBucket limits a byte rate. A nil bucket allows everything.
type tokenBucket struct {
	rate  float64 // bytes per second
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// newTokenBucket returns a bucket that holds one second of traffic and
// starts full; rate 0 means unlimited and returns nil.
func newTokenBucket(rate int64, now time.Time) *tokenBucket {
	if rate <= 0 {
		return nil
	}
	return &tokenBucket{rate: float64(rate), burst: float64(rate), tokens: float64(rate), last: now}
}

// allow takes n bytes from the bucket and reports whether they were there.
func (b *tokenBucket) allow(n int, now time.Time) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// relayConn is an allocation's relay socket. It counts relayed traffic and
// drops packets over the allocation's bandwidth in either direction.
type relayConn struct {
	net.PacketConn
	s        *Server
	out, in  *tokenBucket
	release  func()
	closeMu  sync.Once
	closeErr error
}

// WriteTo sends a client's packet to a peer. A packet over the budget, or
// for one of the node's addresses at a port other than its media port, is
// dropped and reported as written, as a congested network would.
func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.s.nodePortDeniedAddr(addr) {
		c.s.nodePortDenial("relay write", addr)
		return len(p), nil
	}
	if !c.out.allow(len(p), c.s.cfg.Now()) {
		c.s.metrics.quotaRejected(quotaBandwidth)
		return len(p), nil
	}
	n, err := c.PacketConn.WriteTo(p, addr)
	if err == nil {
		c.s.metrics.relayed(toPeer, n)
	}
	return n, err
}

// ReadFrom receives a peer's packet for the client, skipping packets over
// the budget and packets from the node's addresses at a port other than
// its media port. Packets pion then discards for lack of a permission are
// counted too: they were received on the relay.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if c.s.nodePortDeniedAddr(addr) {
			c.s.nodePortDenial("relay read", addr)
			continue
		}
		if !c.in.allow(n, c.s.cfg.Now()) {
			c.s.metrics.quotaRejected(quotaBandwidth)
			continue
		}
		c.s.metrics.relayed(fromPeer, n)
		return n, addr, nil
	}
}

// Close closes the socket and returns its slot to the relay generator.
func (c *relayConn) Close() error {
	c.closeMu.Do(func() {
		c.closeErr = c.PacketConn.Close()
		c.release()
	})
	return c.closeErr
}
