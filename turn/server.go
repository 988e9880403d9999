// Package turn is Tandem's embedded TURN server, built on pion/turn/v4.
// It adds what an open relay on the internet needs: TURN REST credentials
// with several secrets at once, a deny-by-default peer policy, quotas,
// per-allocation bandwidth caps, authentication rate limiting, several
// SO_REUSEPORT UDP sockets with batched I/O (internal/udpx), TCP and
// TLS listeners, and metrics.
//
// Every client message passes an inspector (inspect.go) before pion sees
// it; pion's handlers then do the TURN protocol itself.
package turn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	pionturn "github.com/pion/turn/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemcall/tandem/internal/turncred"
)

// Configuration errors from New.
var (
	ErrNoSecrets      = errors.New("turn: at least one secret is required")
	ErrNoListeners    = errors.New("turn: no listener configured")
	ErrNoTLSConfig    = errors.New("turn: TLSListen is set but TLSConfig is nil")
	ErrRelayIP        = errors.New("turn: RelayIP is required; an unspecified RelayIP needs PublicIP")
	ErrRelayPortRange = errors.New("turn: RelayPortMin must not exceed RelayPortMax")
	ErrSamePort       = errors.New("turn: TCPListen and TLSListen must use different ports")
	ErrNodePeer       = errors.New("turn: a NodePeers entry needs a specified address and a port")
)

// drainTimeout bounds how long Close waits for pion to close relays.
const drainTimeout = 5 * time.Second

// Config configures the TURN server. Zero values take the defaults noted.
type Config struct {
	Realm                       string         // default "tandem"
	UDPListen                   string         // e.g. "0.0.0.0:3478"; "" = no UDP
	UDPSockets                  int            // SO_REUSEPORT sockets on UDPListen; default runtime.NumCPU()
	TCPListen                   string         // "" = no TCP
	TLSListen                   string         // "" = no TLS
	TLSConfig                   *tls.Config    // required if TLSListen is set
	RelayIP                     net.IP         // address relay sockets bind on
	PublicIP                    net.IP         // address advertised in XOR-RELAYED-ADDRESS; nil = RelayIP
	RelayPortMin, RelayPortMax  uint16         // relay port range; default 49152–65535
	Secrets                     [][]byte       // TURN REST secrets, all accepted
	AllowCIDRs                  []netip.Prefix // peers allowed despite the deny rules
	DenyCIDRs                   []netip.Prefix // denied in addition to the built-in list
	MaxAllocationsPerUser       int            // default 12
	MaxAllocations              int            // total; default 10000
	MaxPermissionsPerAllocation int            // default 32
	BandwidthPerAllocation      int64          // bytes/s each direction; 0 = default 1_000_000; <0 = unlimited
	PreAllocateTimeout          time.Duration  // default 60s
	TLSHandshakeTimeout         time.Duration  // default 10s
	AuthFailuresPerMinute       int            // per source IP; default 20
	// Revoked, if set, reports whether the REST credential of user that
	// expires at expiry was revoked since it was minted (its user's tokens
	// were revoked or their data erased). It is asked on every
	// authenticated request (Allocate, Refresh, CreatePermission,
	// ChannelBind; never for ChannelData or Send), so it must answer
	// quickly: no network round trip per call. CloseUser ends the
	// allocations a revoked user already holds.
	Revoked func(user string, expiry time.Time) bool
	Now     func() time.Time

	// NodePeers are this node's own media endpoints. Their addresses are
	// permitted peers at exactly these ports, and refused at every other
	// port unless AllowCIDRs covers them.
	NodePeers []netip.AddrPort
}

func (c *Config) applyDefaults() {
	if c.Realm == "" {
		c.Realm = "tandem"
	}
	if c.UDPSockets <= 0 {
		c.UDPSockets = runtime.NumCPU()
	}
	if c.PublicIP == nil {
		c.PublicIP = c.RelayIP
	}
	if c.RelayPortMin == 0 {
		c.RelayPortMin = 49152
	}
	if c.RelayPortMax == 0 {
		c.RelayPortMax = 65535
	}
	if c.MaxAllocationsPerUser <= 0 {
		c.MaxAllocationsPerUser = 12
	}
	if c.MaxAllocations <= 0 {
		c.MaxAllocations = 10000
	}
	if c.MaxPermissionsPerAllocation <= 0 {
		c.MaxPermissionsPerAllocation = 32
	}
	switch {
	case c.BandwidthPerAllocation == 0:
		c.BandwidthPerAllocation = 1_000_000
	case c.BandwidthPerAllocation < 0:
		c.BandwidthPerAllocation = 0
	}
	if c.PreAllocateTimeout <= 0 {
		c.PreAllocateTimeout = 60 * time.Second
	}
	if c.TLSHandshakeTimeout <= 0 {
		c.TLSHandshakeTimeout = 10 * time.Second
	}
	if c.AuthFailuresPerMinute <= 0 {
		c.AuthFailuresPerMinute = 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	// The policy compares plain addresses: unmapped, without a zone.
	node := make([]netip.AddrPort, 0, len(c.NodePeers))
	for _, ap := range c.NodePeers {
		node = append(node, netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port()))
	}
	c.NodePeers = node
}

func (c *Config) validate() error {
	switch {
	case len(c.Secrets) == 0:
		return ErrNoSecrets
	case c.UDPListen == "" && c.TCPListen == "" && c.TLSListen == "":
		return ErrNoListeners
	case c.TLSListen != "" && c.TLSConfig == nil:
		return ErrNoTLSConfig
	case c.RelayIP == nil, c.PublicIP.IsUnspecified():
		return ErrRelayIP
	case c.RelayPortMin > c.RelayPortMax:
		return ErrRelayPortRange
	}
	for _, ap := range c.NodePeers {
		if !ap.Addr().IsValid() || ap.Addr().IsUnspecified() || ap.Port() == 0 {
			return fmt.Errorf("%w: %v", ErrNodePeer, ap)
		}
	}
	for i, s := range c.Secrets {
		if len(s) == 0 {
			return fmt.Errorf("%w: secret %d is empty", ErrNoSecrets, i)
		}
	}
	return nil
}

// Server is a running TURN server.
type Server struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	reg     *registry
	matches *matchCache
	limiter *failureLimiter
	relays  *relayGenerator
	pion    *pionturn.Server
	prom    prometheus.Registerer

	udp     []net.PacketConn
	tcp     net.Listener
	tls     *tlsListener
	tlsPort int

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg, opens the listeners and starts serving. log receives
// pion's logs too; reg, if not nil, gets the server's metrics.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	cfg.applyDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		log:     log,
		metrics: &metrics{},
		reg:     newRegistry(),
		matches: newMatchCache(),
		limiter: newFailureLimiter(cfg.AuthFailuresPerMinute),
	}
	s.relays = newRelayGenerator(s)
	if err := s.listen(); err != nil {
		s.closeListeners()
		return nil, err
	}

	pc := pionturn.ServerConfig{
		Realm:         cfg.Realm,
		AuthHandler:   s.authHandler,
		QuotaHandler:  s.quotaHandler,
		EventHandler:  s.eventHandler(),
		LoggerFactory: newSlogFactory(log),
		InboundMTU:    inboundMTU,
	}
	for _, c := range s.udp {
		pc.PacketConnConfigs = append(pc.PacketConnConfigs, pionturn.PacketConnConfig{
			PacketConn:            &inspectingPacketConn{PacketConn: c, s: s},
			RelayAddressGenerator: s.relays,
			PermissionHandler:     s.permissionHandler(transportUDP),
		})
	}
	if s.tcp != nil {
		pc.ListenerConfigs = append(pc.ListenerConfigs, pionturn.ListenerConfig{
			Listener:              &tcpListener{Listener: s.tcp, s: s},
			RelayAddressGenerator: s.relays,
			PermissionHandler:     s.permissionHandler(transportTCP),
		})
	}
	if s.tls != nil {
		pc.ListenerConfigs = append(pc.ListenerConfigs, pionturn.ListenerConfig{
			Listener:              s.tls,
			RelayAddressGenerator: s.relays,
			PermissionHandler:     s.permissionHandler(transportTLS),
		})
	}
	if reg != nil {
		if err := reg.Register(newCollector(s.metrics)); err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("turn: register metrics: %w", err)
		}
		s.prom = reg
	}
	p, err := pionturn.NewServer(pc)
	if err != nil {
		s.closeListeners()
		s.unregister()
		return nil, fmt.Errorf("turn: start: %w", err)
	}
	s.pion = p
	log.Info("turn: listening", "udp", s.UDPAddr(), "udp_sockets", len(s.udp),
		"tcp", s.TCPAddr(), "tls", s.TLSAddr(), "relay_ip", cfg.RelayIP, "public_ip", cfg.PublicIP,
		"relay_ports", fmt.Sprintf("%d-%d", cfg.RelayPortMin, cfg.RelayPortMax))
	return s, nil
}

func (s *Server) listen() error {
	if s.cfg.UDPListen != "" {
		conns, err := listenUDP(s.cfg.UDPListen, s.cfg.UDPSockets, &s.metrics.sendDropped)
		if err != nil {
			return err
		}
		s.udp = conns
	}
	if s.cfg.TCPListen != "" {
		l, err := net.Listen("tcp", s.cfg.TCPListen)
		if err != nil {
			return fmt.Errorf("turn: listen tcp %s: %w", s.cfg.TCPListen, err)
		}
		s.tcp = l
	}
	if s.cfg.TLSListen != "" {
		l, err := net.Listen("tcp", s.cfg.TLSListen)
		if err != nil {
			return fmt.Errorf("turn: listen tls %s: %w", s.cfg.TLSListen, err)
		}
		s.tlsPort = listenerPort(l)
		s.tls = newTLSListener(l, s)
		if s.tcp != nil && listenerPort(s.tcp) == s.tlsPort {
			return ErrSamePort
		}
	}
	return nil
}

// closeListeners closes what listen opened; used when New fails.
func (s *Server) closeListeners() {
	for _, c := range s.udp {
		_ = c.Close()
	}
	if s.tcp != nil {
		_ = s.tcp.Close()
	}
	if s.tls != nil {
		_ = s.tls.Close()
	}
}

func (s *Server) unregister() {
	if s.prom != nil {
		s.prom.Unregister(newCollector(s.metrics))
	}
}

// UDPAddr returns the UDP listening address, or nil.
func (s *Server) UDPAddr() *net.UDPAddr {
	if len(s.udp) == 0 {
		return nil
	}
	a, _ := s.udp[0].LocalAddr().(*net.UDPAddr)
	return a
}

// TCPAddr returns the TCP listening address, or nil.
func (s *Server) TCPAddr() *net.TCPAddr {
	if s.tcp == nil {
		return nil
	}
	a, _ := s.tcp.Addr().(*net.TCPAddr)
	return a
}

// TLSAddr returns the TLS listening address, or nil.
func (s *Server) TLSAddr() *net.TCPAddr {
	if s.tls == nil {
		return nil
	}
	a, _ := s.tls.Addr().(*net.TCPAddr)
	return a
}

// CloseUser ends the allocations user holds (user as in the credential,
// not the whole username) whose credential's expiry revoked reports true
// for (all of them when revoked is nil), by closing their relay sockets,
// and returns how many it ended. The clients' next request for them fails;
// new ones need credentials Config.Revoked does not refuse.
func (s *Server) CloseUser(user string, revoked func(expiry time.Time) bool) int {
	s.reg.mu.Lock()
	var relays []*relayConn
	for k, username := range s.reg.allocs {
		expiry, u, err := turncred.ParseUsername(username)
		if err != nil || u != user || (revoked != nil && !revoked(expiry)) {
			continue
		}
		if rc := s.reg.relays[k]; rc != nil {
			relays = append(relays, rc)
		}
	}
	s.reg.mu.Unlock()
	for _, rc := range relays {
		_ = rc.Close()
	}
	if len(relays) > 0 {
		s.log.Info("turn: allocations of a revoked user closed", "user", user, "allocations", len(relays))
	}
	return len(relays)
}

// Allocations returns how many allocations user holds now.
func (s *Server) Allocations(user string) int {
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	return s.reg.perUser[user]
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() Stats { return s.metrics.snapshot() }

// Close stops the listeners, closes every client connection and waits
// (up to a bound) until every relay socket is closed.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.pion.Close()
		s.reg.mu.Lock()
		conns := make([]*streamConn, 0, len(s.reg.conns))
		for _, c := range s.reg.conns {
			conns = append(conns, c)
		}
		s.reg.mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
		t := time.NewTimer(drainTimeout)
		defer t.Stop()
		select {
		case <-s.relays.drain():
		case <-t.C:
			s.log.Warn("turn: relays still open after close", "timeout", drainTimeout)
		}
		s.unregister()
	})
	return s.closeErr
}
