package turn

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

const (
	// matchTTL is how long a verified (source, username) → key match is
	// kept for pion's AuthHandler, which runs right after the inspector.
	matchTTL = time.Minute
	// maxMatches and maxFailureSources bound the memory of the two tables.
	maxMatches        = 1 << 16
	maxFailureSources = 1 << 16
	// failureWindow is the period AuthFailuresPerMinute is counted over and
	// how long a source over its budget stays blocked.
	failureWindow = time.Minute
)

// matchKey identifies the client that sent a verified request.
type matchKey struct {
	src      string // network/address of the client, e.g. "udp/192.0.2.1:5000"
	username string
}

type match struct {
	key     []byte // long-term credential key MD5(username:realm:password)
	expires time.Time
}

// matchCache remembers which secret verified a client's request, as the
// key pion's AuthHandler must return. pion's AuthHandler can only return
// one key, so it cannot try several secrets itself.
type matchCache struct {
	mu sync.Mutex
	m  map[matchKey]match
}

func newMatchCache() *matchCache {
	return &matchCache{m: make(map[matchKey]match)}
}

func (c *matchCache) put(k matchKey, key []byte, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxMatches {
		for mk, v := range c.m {
			if now.After(v.expires) {
				delete(c.m, mk)
			}
		}
		if len(c.m) >= maxMatches {
			// Only verified clients create entries; starting over costs them
			// at most one 400 reply.
			clear(c.m)
		}
	}
	c.m[k] = match{key: key, expires: now.Add(matchTTL)}
}

func (c *matchCache) get(k matchKey, now time.Time) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	if !ok || now.After(v.expires) {
		return nil, false
	}
	return v.key, true
}

// failureLimiter counts authentication failures per source IP and blocks
// a source that goes over its budget for failureWindow.
type failureLimiter struct {
	budget int

	mu      sync.Mutex
	sources map[netip.Addr]*failures
}

type failures struct {
	windowStart  time.Time
	count        int
	blockedUntil time.Time
}

func newFailureLimiter(budget int) *failureLimiter {
	return &failureLimiter{budget: budget, sources: make(map[netip.Addr]*failures)}
}

// blocked reports whether ip is over its failure budget.
func (l *failureLimiter) blocked(ip netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.sources[ip]
	return ok && now.Before(f.blockedUntil)
}

// fail records one failure from ip.
func (l *failureLimiter) fail(ip netip.Addr, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.sources[ip]
	if !ok {
		if len(l.sources) >= maxFailureSources {
			l.pruneLocked(now)
		}
		f = &failures{windowStart: now}
		l.sources[ip] = f
	}
	if now.Sub(f.windowStart) >= failureWindow {
		f.windowStart, f.count = now, 0
	}
	f.count++
	if f.count > l.budget {
		f.blockedUntil = now.Add(failureWindow)
	}
}

func (l *failureLimiter) pruneLocked(now time.Time) {
	for ip, f := range l.sources {
		if now.Sub(f.windowStart) >= failureWindow && !now.Before(f.blockedUntil) {
			delete(l.sources, ip)
		}
	}
	if len(l.sources) >= maxFailureSources {
		// A flood from more sources than the table holds: forget the oldest
		// state wholesale rather than grow without bound.
		clear(l.sources)
	}
}

// addrIP returns the IP of a UDP or TCP address.
func addrIP(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	default:
		return netip.Addr{}
	}
}

// srcKey names a client address including its network, so a UDP and a TCP
// client on the same address and port stay apart.
func srcKey(a net.Addr) string {
	return a.Network() + "/" + a.String()
}

// authHandler is pion's AuthHandler: it returns the key the inspector
// verified for this client and username. Expiry is not checked here: the
// inspector already refused expired usernames that have no allocation.
func (s *Server) authHandler(username, _ string, src net.Addr) ([]byte, bool) {
	key, ok := s.matches.get(matchKey{src: srcKey(src), username: username}, s.cfg.Now())
	if !ok {
		s.metrics.authResult(authUnknownUser)
		return nil, false
	}
	return key, true
}
