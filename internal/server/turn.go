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
	// This node's own media server is always a permitted peer.
	if a, ok := netip.AddrFromSlice(s.sfu.UDPAddr().IP); ok && !a.Unmap().IsUnspecified() {
		a = a.Unmap()
		allow = append(allow, netip.PrefixFrom(a, a.BitLen()))
	}
	for _, ip := range cfg.Media.PublicIPs {
		if a, err := netip.ParseAddr(ip); err == nil {
			allow = append(allow, netip.PrefixFrom(a, a.BitLen()))
		}
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

	s.turnMarks = newTURNMarks(t.CredentialTTL, s.store.TokensRevoked, s.log.With("part", "turn"))
	bandwidth := t.BandwidthPerAllocation
	if bandwidth == 0 {
		bandwidth = -1 // config: 0 means no cap; turn: negative means no cap
	}
	srv, err := turn.New(turn.Config{
		Realm: t.Realm, UDPListen: t.UDPListen, UDPSockets: t.UDPSockets,
		TCPListen: t.TCPListen, TLSListen: t.TLSListen, TLSConfig: tlsCfg,
		RelayIP: relayIP, PublicIP: public,
		RelayPortMin: uint16(t.RelayPortMin), RelayPortMax: uint16(t.RelayPortMax),
		Secrets: secrets, AllowCIDRs: allow, DenyCIDRs: deny,
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
