package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/turn"
)

// deriveTURNSecret makes the TURN REST secret from the signing secret when
// none is configured, so a node needs one secret only.
func deriveTURNSecret(signing []byte) []byte {
	m := hmac.New(sha256.New, signing)
	m.Write([]byte("tandem turn rest secret"))
	return []byte(base64.RawURLEncoding.EncodeToString(m.Sum(nil)))
}

// firstGlobalIP is the host's first global unicast IPv4 address, read from
// its interfaces (nothing is sent).
func firstGlobalIP() net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() && !n.IP.IsPrivate() {
			return n.IP
		}
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP
		}
	}
	return nil
}

// nodePeers lists this node's own addresses at its media port: the media
// socket's address (every interface address when it is bound to the
// unspecified address), media.public_ips, and the addresses TURN relays
// from and advertises. Relaying to any of them reaches this host, where
// only the media port is Tandem's to reach. ifaddrs is
// net.InterfaceAddrs, replaced in tests.
func nodePeers(media *net.UDPAddr, publicIPs []string, relayIP, turnPublic net.IP, ifaddrs func() ([]net.Addr, error)) []netip.AddrPort {
	if media == nil || media.Port <= 0 || media.Port > 0xFFFF {
		return nil
	}
	port := uint16(media.Port)
	seen := map[netip.Addr]bool{}
	var out []netip.AddrPort
	add := func(a netip.Addr) {
		a = a.Unmap().WithZone("")
		if !a.IsValid() || a.IsUnspecified() || seen[a] {
			return
		}
		seen[a] = true
		out = append(out, netip.AddrPortFrom(a, port))
	}
	interfaces := false
	for _, ip := range []net.IP{media.IP, relayIP, turnPublic} {
		if ip == nil {
			continue
		}
		if ip.IsUnspecified() {
			interfaces = true
			continue
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			add(a)
		}
	}
	if media.IP == nil {
		interfaces = true
	}
	for _, ip := range publicIPs {
		if a, err := netip.ParseAddr(ip); err == nil {
			add(a)
		}
	}
	if interfaces {
		// A socket bound to the unspecified address answers on every
		// address of the host.
		addrs, _ := ifaddrs()
		for _, ia := range addrs {
			if n, ok := ia.(*net.IPNet); ok {
				if a, ok := netip.AddrFromSlice(n.IP); ok {
					add(a)
				}
			}
		}
	}
	return out
}

// startTURN starts the embedded TURN server when it is enabled and returns
// what signaling needs to hand out (nil when off).
func (s *Server) startTURN(cfg config.Config, signing []byte, reg prometheus.Registerer) (*turnEndpoints, error) {
	t := cfg.TURN
	if !t.Enabled {
		return nil, nil
	}
	secrets := make([][]byte, 0, len(t.Secrets)+1)
	for _, sec := range t.Secrets {
		secrets = append(secrets, []byte(sec))
	}
	if len(secrets) == 0 {
		secrets = append(secrets, deriveTURNSecret(signing))
	}
	allow, err := config.ParsedCIDRs("turn.allow_cidrs", t.AllowCIDRs)
	if err != nil {
		return nil, err
	}
	deny, err := config.ParsedCIDRs("turn.deny_cidrs", t.DenyCIDRs)
	if err != nil {
		return nil, err
	}
	relayIP := net.ParseIP(t.RelayIP)
	var public net.IP
	switch {
	case t.PublicIP != "":
		public = net.ParseIP(t.PublicIP)
	case relayIP.IsUnspecified():
		if public = firstGlobalIP(); public == nil {
			return nil, &config.KeyError{Key: "turn.public_ip", Err: fmt.Errorf("no global address found on this host; set the address clients reach TURN on, or turn.enabled: false")}
		}
		s.log.Info("turn: advertising relay address found on this host; set turn.public_ip behind NAT", "ip", public.String())
	}

	var tlsCfg *tls.Config
	if t.TLSListen != "" {
		cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLSCert, cfg.HTTP.TLSKey)
		if err != nil {
			return nil, &config.KeyError{Key: "http.tls_cert", Err: err}
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	// This node's media server is a permitted peer at its media port, and
	// the node's addresses are refused at every other port.
	node := nodePeers(s.sfu.UDPAddr(), cfg.Media.PublicIPs, relayIP, public, net.InterfaceAddrs)
	s.log.Debug("turn: this node's addresses are peers at the media port only", "peers", node)

	s.turnMarks = newTURNMarks(t.CredentialTTL, s.store.TokensRevoked, s.log.With("part", "turn"))
	s.turnMarks.closeRevoked = s.closeTURNRelays
	bandwidth := t.BandwidthPerAllocation
	if bandwidth == 0 {
		bandwidth = -1 // config: 0 means no cap; turn: negative means no cap
	}
	srv, err := turn.New(turn.Config{
		Realm: t.Realm, UDPListen: t.UDPListen, UDPSockets: t.UDPSockets,
		TCPListen: t.TCPListen, TLSListen: t.TLSListen, TLSConfig: tlsCfg,
		RelayIP: relayIP, PublicIP: public,
		RelayPortMin: uint16(t.RelayPortMin), RelayPortMax: uint16(t.RelayPortMax),
		Secrets: secrets, AllowCIDRs: allow, DenyCIDRs: deny, NodePeers: node,
		MaxAllocationsPerUser: t.MaxAllocationsPerUser, MaxAllocations: t.MaxAllocations,
		MaxPermissionsPerAllocation: t.MaxPermissionsPerAllocation,
		BandwidthPerAllocation:      bandwidth,
		PreAllocateTimeout:          t.PreAllocateTimeout, TLSHandshakeTimeout: t.TLSHandshakeTimeout,
		AuthFailuresPerMinute: t.AuthFailuresPerMinute,
		Revoked:               s.turnMarks.revoked,
	}, s.log.With("part", "turn"), reg)
	if err != nil {
		return nil, fmt.Errorf("turn: %w", err)
	}
	s.turn = srv
	s.sfu.SetRelayCheck(srv.IsRelay)
	ep := &turnEndpoints{host: t.PublicHost, secret: secrets[0], ttl: t.CredentialTTL, now: time.Now}
	if a := srv.UDPAddr(); a != nil {
		ep.udpPort = a.Port
	}
	if a := srv.TCPAddr(); a != nil {
		ep.tcpPort = a.Port
	}
	if a := srv.TLSAddr(); a != nil {
		ep.tlsPort = a.Port
	}
	s.log.Info("turn listening", "udp", srv.UDPAddr(), "tcp", srv.TCPAddr(), "tls", srv.TLSAddr())
	return ep, nil
}

// TURN is the embedded TURN server, or nil when it is off.
func (s *Server) TURN() *turn.Server { return s.turn }
