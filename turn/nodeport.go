package turn

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"

	"github.com/pion/stun/v3"
)

// The node's own addresses (Config.NodePeers) are peers at their media
// ports only. A permission names an address without a port, so the port
// is checked where a port is known: ChannelBind (the inspector answers
// 403), Send indications (the inspector drops them) and, as the last line,
// every packet the relay socket sends or receives (relayConn).

// nodePortDenied reports whether ip:port is one of the node's addresses at
// a port that is not one of its media ports, and not let through by
// AllowCIDRs. It is cheap for every other address: no allocation, and
// AllowCIDRs is consulted only for node addresses.
func (s *Server) nodePortDenied(ip netip.Addr, port uint16) bool {
	if len(s.cfg.NodePeers) == 0 {
		return false
	}
	ip = ip.Unmap().WithZone("")
	known, atPort := nodePort(ip, port, s.cfg.NodePeers)
	return known && !atPort && !inAny(ip, s.cfg.AllowCIDRs)
}

// nodePortDeniedAddr is nodePortDenied for a socket address; addresses
// that are not UDP are left to the socket to refuse.
func (s *Server) nodePortDeniedAddr(a net.Addr) bool {
	ua, ok := a.(*net.UDPAddr)
	if !ok || len(s.cfg.NodePeers) == 0 {
		return false
	}
	ip, ok := netip.AddrFromSlice(ua.IP)
	if !ok || ua.Port < 0 || ua.Port > 0xFFFF {
		return false
	}
	return s.nodePortDenied(ip, uint16(ua.Port))
}

// nodePortDenial counts and logs one refusal of a node address's port;
// peer is formatted only if the log is at debug level.
func (s *Server) nodePortDenial(what string, peer any) {
	s.metrics.peerDeniedFor(ReasonNodePort)
	// Checked first: a flood of refused packets must not cost a log
	// record each.
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("turn: peer port denied", "what", what, "peer", peer)
	}
}

// Address families of STUN address attributes (RFC 8489 §14.1).
const (
	familyIPv4 = 0x01
	familyIPv6 = 0x02
)

// firstXORPeer returns the first XOR-PEER-ADDRESS of the STUN message in
// b, decoded as pion's stun package decodes it for a Send indication
// (which relays to the first one), without allocating. ok is false when
// the message has none or pion would not decode it; pion then drops the
// indication itself.
func firstXORPeer(b []byte) (peer netip.AddrPort, ok bool) {
	if len(b) < stunHeaderLen {
		return netip.AddrPort{}, false
	}
	end := stunHeaderLen + int(binary.BigEndian.Uint16(b[2:4]))
	if end > len(b) {
		return netip.AddrPort{}, false
	}
	for off := stunHeaderLen; off < end; {
		if end-off < 4 {
			return netip.AddrPort{}, false
		}
		typ := stun.AttrType(binary.BigEndian.Uint16(b[off : off+2]))
		n := int(binary.BigEndian.Uint16(b[off+2 : off+4]))
		off += 4
		padded := (n + 3) &^ 3
		if end-off < padded {
			return netip.AddrPort{}, false
		}
		if typ == stun.AttrXORPeerAddress {
			return decodeXORAddress(b[off:off+n], b[4:stunHeaderLen])
		}
		off += padded
	}
	return netip.AddrPort{}, false
}

// decodeXORAddress decodes the value of an XOR-*-ADDRESS attribute; xor is
// the magic cookie and transaction id (header bytes 4–20). Like pion, it
// takes an address shorter than its family's length with the missing
// bytes zero, and refuses a longer one.
func decodeXORAddress(v, xor []byte) (netip.AddrPort, bool) {
	if len(v) <= 4 {
		return netip.AddrPort{}, false
	}
	var size int
	switch binary.BigEndian.Uint16(v[0:2]) {
	case familyIPv4:
		size = 4
	case familyIPv6:
		size = 16
	default:
		return netip.AddrPort{}, false
	}
	raw := v[4:]
	if len(raw) > size {
		return netip.AddrPort{}, false
	}
	var ip [16]byte
	for i := range raw {
		ip[i] = raw[i] ^ xor[i]
	}
	port := binary.BigEndian.Uint16(v[2:4]) ^ uint16(stunMagicCookie>>16)
	var a netip.Addr
	if size == 4 {
		a = netip.AddrFrom4([4]byte(ip[:4]))
	} else {
		a = netip.AddrFrom16(ip)
	}
	return netip.AddrPortFrom(a, port), true
}
