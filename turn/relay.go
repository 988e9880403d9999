package turn

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/tandemcall/tandem/internal/udpx"
)

// Relay allocation errors.
var (
	ErrTotalAllocations     = errors.New("turn: total allocation limit reached")
	ErrNoRelayPort          = errors.New("turn: no free relay port in range")
	ErrTCPRelayUnsupported  = errors.New("turn: TCP relays (RFC 6062) are not supported")
	ErrRequestedPortInvalid = errors.New("turn: requested relay port outside the range")
	errServerClosing        = errors.New("turn: server closing")
)

// relayBindAttempts is how many random ports are tried per allocation.
const relayBindAttempts = 32

// relayGenerator is pion's RelayAddressGenerator: it binds relay sockets
// on RelayIP in the port range, advertises PublicIP, enforces the total
// allocation limit and wraps each socket with the bandwidth cap.
type relayGenerator struct {
	s *Server

	mu      sync.Mutex
	live    int
	closing bool
	idle    chan struct{}      // closed once closing and live == 0
	byPort  map[int]*relayConn // open relay sockets by port, for CloseUser
}

func newRelayGenerator(s *Server) *relayGenerator {
	return &relayGenerator{s: s, idle: make(chan struct{}), byPort: map[int]*relayConn{}}
}

// relayOn returns the open relay socket on port, or nil.
func (g *relayGenerator) relayOn(port int) *relayConn {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.byPort[port]
}

// Validate implements pion's RelayAddressGenerator.
func (g *relayGenerator) Validate() error { return nil }

func (g *relayGenerator) acquire() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closing:
		return errServerClosing
	case g.live >= g.s.cfg.MaxAllocations:
		return ErrTotalAllocations
	}
	g.live++
	return nil
}

func (g *relayGenerator) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.live--
	if g.closing && g.live == 0 {
		close(g.idle)
	}
}

// drain stops new relays and returns a channel closed when none are left.
func (g *relayGenerator) drain() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closing {
		g.closing = true
		if g.live == 0 {
			close(g.idle)
		}
	}
	return g.idle
}

// AllocatePacketConn implements pion's RelayAddressGenerator.
func (g *relayGenerator) AllocatePacketConn(network string, requestedPort int) (net.PacketConn, net.Addr, error) {
	if err := g.acquire(); err != nil {
		if errors.Is(err, ErrTotalAllocations) {
			g.s.metrics.quotaRejected(quotaTotalAllocations)
		}
		return nil, nil, err
	}
	conn, err := g.bind(network, requestedPort)
	if err != nil {
		g.release()
		return nil, nil, err
	}
	local, _ := conn.LocalAddr().(*net.UDPAddr)
	if local == nil {
		_ = conn.Close()
		g.release()
		return nil, nil, fmt.Errorf("%w: not a UDP socket", ErrNoRelayPort)
	}
	now := g.s.cfg.Now()
	rc := &relayConn{
		PacketConn: conn,
		s:          g.s,
		out:        newTokenBucket(g.s.cfg.BandwidthPerAllocation, now),
		in:         newTokenBucket(g.s.cfg.BandwidthPerAllocation, now),
	}
	rc.release = func() {
		g.mu.Lock()
		if g.byPort[local.Port] == rc {
			delete(g.byPort, local.Port)
		}
		g.mu.Unlock()
		g.release()
	}
	g.mu.Lock()
	g.byPort[local.Port] = rc
	g.mu.Unlock()
	return rc, &net.UDPAddr{IP: g.s.cfg.PublicIP, Port: local.Port}, nil
}

func (g *relayGenerator) bind(network string, requestedPort int) (net.PacketConn, error) {
	cfg := &g.s.cfg
	if cfg.RelayIP.To4() == nil {
		network = "udp6"
	}
	var lc net.ListenConfig
	listen := func(port int) (net.PacketConn, error) {
		addr := net.JoinHostPort(cfg.RelayIP.String(), strconv.Itoa(port))
		c, err := lc.ListenPacket(context.Background(), network, addr)
		if err != nil {
			return nil, err
		}
		bc, err := udpx.New(c.(*net.UDPConn), udpx.Options{ //nolint:forcetypeassert // udp listens give *net.UDPConn
			ReadBatch: relayReadBatch, WriteQueue: relayWriteQueue, MaxDatagram: inboundMTU, Dropped: &g.s.metrics.sendDropped,
		})
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		return bc, nil
	}
	if requestedPort != 0 {
		if requestedPort < int(cfg.RelayPortMin) || requestedPort > int(cfg.RelayPortMax) {
			return nil, fmt.Errorf("%w: %d", ErrRequestedPortInvalid, requestedPort)
		}
		return listen(requestedPort)
	}
	span := int(cfg.RelayPortMax) - int(cfg.RelayPortMin) + 1
	var lastErr error
	for range relayBindAttempts {
		conn, err := listen(int(cfg.RelayPortMin) + rand.IntN(span)) //nolint:gosec // port choice needs no crypto
		if err == nil {
			return conn, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("%w: %w", ErrNoRelayPort, lastErr)
}

// AllocateConn implements pion's RelayAddressGenerator; TCP relays are
// not offered.
func (g *relayGenerator) AllocateConn(string, int) (net.Conn, net.Addr, error) {
	return nil, nil, ErrTCPRelayUnsupported
}

// IsRelay reports whether addr is the address of one of this server's
// open relay sockets: what a peer sees as the source of relayed packets.
// The media server asks, to prefer a client's direct path to a relayed one
// (sfu.SFU.SetRelayCheck).
func (s *Server) IsRelay(addr netip.AddrPort) bool {
	ip, ok := netip.AddrFromSlice(s.cfg.RelayIP)
	if !ok || ip.Unmap() != addr.Addr().Unmap() && !ip.IsUnspecified() {
		return false
	}
	g := s.relays
	g.mu.Lock()
	defer g.mu.Unlock()
	_, open := g.byPort[int(addr.Port())]
	return open
}
