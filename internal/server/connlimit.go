package server

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// limitListener closes, as soon as they are accepted, connections from a
// source address that already holds limit open ones, so that one address
// cannot take every file descriptor or goroutine of the node. It sits
// under TLS: a handshake in progress counts. An IPv6 source is counted
// by its /64, which one host usually has whole.
//
// A refused connection is closed without an answer: a 429 would have to
// be written before the request is read (and for TLS, after a handshake),
// and closing with the request unread resets the connection anyway.
type limitListener struct {
	net.Listener
	*connCounts // shared by every listener of the node (http.listen_also)
}

// connCounts are the open connections per source, and the refusals.
type connCounts struct {
	limit   int
	refused atomic.Uint64

	mu   sync.Mutex
	open map[netip.Addr]int // source key → connections open
}

func newLimitListener(l net.Listener, limit int) *limitListener {
	return &limitListener{Listener: l, connCounts: &connCounts{limit: limit, open: make(map[netip.Addr]int)}}
}

// also limits ln with the same counts as l.
func (l *limitListener) also(ln net.Listener) *limitListener {
	return &limitListener{Listener: ln, connCounts: l.connCounts}
}

// Accept returns the next connection whose source is under its limit.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, ok := sourceKey(c.RemoteAddr())
		if !ok {
			return c, nil // not an IP connection: nothing to count by
		}
		if !l.acquire(key) {
			l.refused.Add(1)
			_ = c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: l, key: key}, nil
	}
}

func (l *limitListener) acquire(key netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] >= l.limit {
		return false
	}
	l.open[key]++
	return true
}

func (l *limitListener) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}

// sourceKey is what a connection is counted by: its IPv4 address, or the
// /64 of its IPv6 address.
func sourceKey(a net.Addr) (netip.Addr, bool) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Addr{}, false
	}
	ip = ip.Unmap()
	if ip.Is6() {
		ip = netip.PrefixFrom(ip.WithZone(""), 64).Masked().Addr()
	}
	return ip, true
}

// limitedConn gives its slot back when it is closed, however that
// happens: by the HTTP server, or by whoever hijacked it (WebSockets).
type limitedConn struct {
	net.Conn
	l    *limitListener
	key  netip.Addr
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}

// CloseWrite shuts the sending side down where the connection can (TCP):
// the HTTP server does that before it closes a connection after an error
// reply, so that the client reads the reply rather than a reset.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
