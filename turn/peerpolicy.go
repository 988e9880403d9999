package turn

import (
	"net/netip"
)

// Reasons PeerAllowed gives for a refusal. They are the label values of
// tandem_turn_peer_denied_total.
const (
	ReasonInvalid     = "invalid"
	ReasonDenyList    = "deny_list"
	ReasonLoopback    = "loopback"
	ReasonUnspecified = "unspecified"
	ReasonThisNetwork = "this_network"
	ReasonPrivate     = "private"
	ReasonLinkLocal   = "link_local"
	ReasonMetadata    = "metadata"
	ReasonCGNAT       = "cgnat"
	ReasonBenchmark   = "benchmark"
	ReasonMulticast   = "multicast"
	ReasonBroadcast   = "broadcast"
	ReasonDocumention = "documentation"
	ReasonReserved    = "reserved"
	ReasonNAT64Local  = "nat64_local"
	// ReasonNodePort: the peer is one of this node's own addresses at a
	// port other than its media port(s).
	ReasonNodePort = "node_port"
)

// peerDenyReasons lists every reason PeerAllowed can return, for metrics.
var peerDenyReasons = [...]string{
	ReasonInvalid, ReasonDenyList, ReasonLoopback, ReasonUnspecified,
	ReasonThisNetwork, ReasonPrivate, ReasonLinkLocal, ReasonMetadata,
	ReasonCGNAT, ReasonBenchmark, ReasonMulticast, ReasonBroadcast,
	ReasonDocumention, ReasonReserved, ReasonNAT64Local, ReasonNodePort,
}

// blockedRange is one built-in refusal. Order matters: the first match
// names the reason, so the narrow ranges come first.
type blockedRange struct {
	prefix netip.Prefix
	reason string
}

// builtinBlocked is read-only after package initialisation.
var builtinBlocked = []blockedRange{
	// Cloud metadata endpoints (before the wider ranges that contain them).
	{netip.MustParsePrefix("169.254.169.254/32"), ReasonMetadata},
	{netip.MustParsePrefix("fd00:ec2::254/128"), ReasonMetadata},
	{netip.MustParsePrefix("255.255.255.255/32"), ReasonBroadcast},

	// IPv4.
	{netip.MustParsePrefix("0.0.0.0/32"), ReasonUnspecified},
	{netip.MustParsePrefix("0.0.0.0/8"), ReasonThisNetwork},
	{netip.MustParsePrefix("10.0.0.0/8"), ReasonPrivate},
	{netip.MustParsePrefix("100.64.0.0/10"), ReasonCGNAT},
	{netip.MustParsePrefix("127.0.0.0/8"), ReasonLoopback},
	{netip.MustParsePrefix("169.254.0.0/16"), ReasonLinkLocal},
	{netip.MustParsePrefix("172.16.0.0/12"), ReasonPrivate},
	{netip.MustParsePrefix("192.0.0.0/24"), ReasonReserved},
	{netip.MustParsePrefix("192.0.2.0/24"), ReasonDocumention},
	{netip.MustParsePrefix("192.88.99.0/24"), ReasonReserved},
	{netip.MustParsePrefix("192.168.0.0/16"), ReasonPrivate},
	{netip.MustParsePrefix("198.18.0.0/15"), ReasonBenchmark},
	{netip.MustParsePrefix("198.51.100.0/24"), ReasonDocumention},
	{netip.MustParsePrefix("203.0.113.0/24"), ReasonDocumention},
	{netip.MustParsePrefix("224.0.0.0/4"), ReasonMulticast},
	{netip.MustParsePrefix("240.0.0.0/4"), ReasonReserved},

	// IPv6.
	{netip.MustParsePrefix("::/128"), ReasonUnspecified},
	{netip.MustParsePrefix("::1/128"), ReasonLoopback},
	{netip.MustParsePrefix("64:ff9b:1::/48"), ReasonNAT64Local},
	{netip.MustParsePrefix("100::/64"), ReasonReserved},
	{netip.MustParsePrefix("2001:2::/48"), ReasonBenchmark},
	{netip.MustParsePrefix("2001:db8::/32"), ReasonDocumention},
	{netip.MustParsePrefix("3fff::/20"), ReasonDocumention},
	{netip.MustParsePrefix("fc00::/7"), ReasonPrivate},
	{netip.MustParsePrefix("fe80::/10"), ReasonLinkLocal},
	{netip.MustParsePrefix("fec0::/10"), ReasonPrivate},
	{netip.MustParsePrefix("ff00::/8"), ReasonMulticast},
}

// Prefixes whose addresses carry an IPv4 address inside them.
var (
	prefixNAT64   = netip.MustParsePrefix("64:ff9b::/96")
	prefix6to4    = netip.MustParsePrefix("2002::/16")
	prefixTeredo  = netip.MustParsePrefix("2001::/32")
	prefixV4Compt = netip.MustParsePrefix("::/96")
	prefixSIIT    = netip.MustParsePrefix("::ffff:0:0:0/96")
)

// PeerAllowed reports whether the TURN server may relay to ip. It denies
// by default everything that is not a public unicast address, including
// such addresses hidden inside IPv6 forms that carry an IPv4 address
// (IPv4-mapped, IPv4-compatible, SIIT, NAT64, 6to4, Teredo, ISATAP).
//
// An address is allowed when it or an IPv4 address embedded in it falls
// in allow, whatever the other rules say. Otherwise it is refused when it
// or any embedded IPv4 address falls in deny or in the built-in list.
// reason names the first rule that refused it and is "" when ok.
func PeerAllowed(ip netip.Addr, allow, deny []netip.Prefix) (ok bool, reason string) {
	return judgePeer(ip, 0, false, nil, allow, deny)
}

// denied applies the deny list and the built-in list to every form of an
// address.
func denied(forms []netip.Addr, deny []netip.Prefix) (bool, string) {
	for _, a := range forms {
		if inAny(a, deny) {
			return false, ReasonDenyList
		}
		if r := builtinReason(a); r != "" {
			return false, r
		}
	}
	return true, ""
}

// PeerAddrAllowed reports whether the TURN server may relay to peer, an
// address and a port. node lists this node's own media endpoints: their
// addresses are permitted peers at exactly those ports and refused at
// every other port (ReasonNodePort), whatever the built-in list would say
// of the address, and so is a node address hidden inside an IPv6 form.
// allow keeps its meaning: an address in allow is permitted at any port,
// a node address included. Every other address is judged as PeerAllowed
// judges it.
func PeerAddrAllowed(peer netip.AddrPort, node []netip.AddrPort, allow, deny []netip.Prefix) (ok bool, reason string) {
	return judgePeer(peer.Addr(), peer.Port(), true, node, allow, deny)
}

// peerIPAllowed is the policy for a permission, which names an address
// without a port (RFC 8656 §9): a node address is permitted, and its port
// is checked on every channel bind and packet instead.
func peerIPAllowed(ip netip.Addr, node []netip.AddrPort, allow, deny []netip.Prefix) (ok bool, reason string) {
	return judgePeer(ip, 0, false, node, allow, deny)
}

func judgePeer(ip netip.Addr, port uint16, withPort bool, node []netip.AddrPort, allow, deny []netip.Prefix) (bool, string) {
	if !ip.IsValid() {
		return false, ReasonInvalid
	}
	ip = ip.WithZone("")
	forms, n := addressForms(ip)
	for _, a := range forms[:n] {
		if inAny(a, allow) {
			return true, ""
		}
	}
	if len(node) > 0 {
		if known, atPort := nodePort(forms[0], port, node); known {
			if atPort || !withPort {
				return true, ""
			}
			return false, ReasonNodePort
		}
		// The node reached through NAT64, 6to4 or the like is never a
		// media path: refuse it at every port.
		for _, a := range forms[1:n] {
			if known, _ := nodePort(a, 0, node); known {
				return false, ReasonNodePort
			}
		}
	}
	return denied(forms[:n], deny)
}

// nodePort reports whether ip is one of the node's addresses, and if so
// whether port is one of its media ports. ip must be unmapped and
// without a zone, as New leaves the entries of node.
func nodePort(ip netip.Addr, port uint16, node []netip.AddrPort) (known, atPort bool) {
	for _, ap := range node {
		if ap.Addr() == ip {
			known = true
			if ap.Port() == port {
				return true, true
			}
		}
	}
	return known, false
}

// addressForms returns ip (IPv4-mapped addresses unmapped) followed by
// every IPv4 address embedded in it.
func addressForms(ip netip.Addr) (forms [4]netip.Addr, n int) {
	ip = ip.Unmap()
	forms[0] = ip
	n = 1
	if ip.Is4() {
		return forms, n
	}
	b := ip.As16()
	v4 := func(i int) netip.Addr {
		return netip.AddrFrom4([4]byte{b[i], b[i+1], b[i+2], b[i+3]})
	}
	switch {
	case prefixV4Compt.Contains(ip), prefixSIIT.Contains(ip), prefixNAT64.Contains(ip):
		forms[n] = v4(12)
		n++
	case prefix6to4.Contains(ip):
		forms[n] = v4(2)
		n++
	case prefixTeredo.Contains(ip):
		forms[n] = v4(4) // Teredo server
		n++
		forms[n] = netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}) // client
		n++
	}
	// ISATAP interface identifier: [02]00:5efe:a.b.c.d, under any prefix.
	if (b[8] == 0x00 || b[8] == 0x02) && b[9] == 0x00 && b[10] == 0x5e && b[11] == 0xfe {
		forms[n] = v4(12)
		n++
	}
	return forms, n
}

func builtinReason(a netip.Addr) string {
	for _, r := range builtinBlocked {
		if r.prefix.Contains(a) {
			return r.reason
		}
	}
	return ""
}

func inAny(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
		// A prefix written in IPv4-mapped form still matches an IPv4 address.
		if p.Addr().Is4In6() && a.Is4() {
			if p.Bits() >= 96 && netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Contains(a) {
				return true
			}
		}
	}
	return false
}
