package turn

import (
	"net/netip"
	"testing"
)

func TestPeerAllowed(t *testing.T) {
	deny := []netip.Prefix{netip.MustParsePrefix("8.8.4.0/24")}
	allowOwn := []netip.Prefix{netip.MustParsePrefix("10.1.2.0/24")}
	cases := []struct {
		name   string
		ip     string
		allow  []netip.Prefix
		ok     bool
		reason string
	}{
		// Public unicast is relayed.
		{"public v4", "8.8.8.8", nil, true, ""},
		{"public v6", "2606:4700:4700::1111", nil, true, ""},
		{"mapped public v4", "::ffff:8.8.8.8", nil, true, ""},
		{"nat64 of public v4", "64:ff9b::808:808", nil, true, ""},
		{"6to4 of public v4", "2002:808:808::1", nil, true, ""},

		// Plain special-purpose IPv4.
		{"loopback", "127.0.0.1", nil, false, ReasonLoopback},
		{"loopback 127.1 (parsed to 127.0.0.1 by the STUN layer)", "127.0.0.1", nil, false, ReasonLoopback},
		{"loopback high", "127.255.255.254", nil, false, ReasonLoopback},
		{"unspecified v4", "0.0.0.0", nil, false, ReasonUnspecified},
		{"this network", "0.1.2.3", nil, false, ReasonThisNetwork},
		{"rfc1918 10", "10.0.0.1", nil, false, ReasonPrivate},
		{"rfc1918 172", "172.31.255.255", nil, false, ReasonPrivate},
		{"rfc1918 192", "192.168.1.1", nil, false, ReasonPrivate},
		{"172.32 is public", "172.32.0.1", nil, true, ""},
		{"link-local", "169.254.1.1", nil, false, ReasonLinkLocal},
		{"cloud metadata", "169.254.169.254", nil, false, ReasonMetadata},
		{"cgnat", "100.64.0.1", nil, false, ReasonCGNAT},
		{"cgnat top", "100.127.255.254", nil, false, ReasonCGNAT},
		{"benchmark", "198.18.0.1", nil, false, ReasonBenchmark},
		{"benchmark 2", "198.19.255.255", nil, false, ReasonBenchmark},
		{"multicast", "224.0.0.1", nil, false, ReasonMulticast},
		{"multicast top", "239.255.255.250", nil, false, ReasonMulticast},
		{"reserved", "240.0.0.1", nil, false, ReasonReserved},
		{"broadcast", "255.255.255.255", nil, false, ReasonBroadcast},
		{"documentation", "192.0.2.10", nil, false, ReasonDocumention},
		{"ietf protocol assignments", "192.0.0.170", nil, false, ReasonReserved},

		// Plain special-purpose IPv6.
		{"v6 unspecified [::]", "::", nil, false, ReasonUnspecified},
		{"v6 loopback", "::1", nil, false, ReasonLoopback},
		{"v6 ula", "fd12:3456::1", nil, false, ReasonPrivate},
		{"v6 link-local", "fe80::1", nil, false, ReasonLinkLocal},
		{"v6 link-local zoned", "fe80::1%eth0", nil, false, ReasonLinkLocal},
		{"v6 site-local", "fec0::1", nil, false, ReasonPrivate},
		{"v6 multicast", "ff02::1", nil, false, ReasonMulticast},
		{"aws v6 metadata", "fd00:ec2::254", nil, false, ReasonMetadata},
		{"v6 documentation", "2001:db8::1", nil, false, ReasonDocumention},
		{"nat64 local-use", "64:ff9b:1::a00:1", nil, false, ReasonNAT64Local},

		// Embedded IPv4 forms (CVE-2020-26262 and later bypasses).
		{"ipv4-mapped loopback ::ffff:127.0.0.1", "::ffff:127.0.0.1", nil, false, ReasonLoopback},
		{"ipv4-mapped unspecified", "::ffff:0.0.0.0", nil, false, ReasonUnspecified},
		{"ipv4-mapped metadata", "::ffff:169.254.169.254", nil, false, ReasonMetadata},
		{"ipv4-mapped private", "::ffff:10.0.0.1", nil, false, ReasonPrivate},
		{"ipv4-compatible loopback ::127.0.0.1", "::127.0.0.1", nil, false, ReasonLoopback},
		{"ipv4-compatible private", "::10.0.0.1", nil, false, ReasonPrivate},
		{"siit translated loopback", "::ffff:0:127.0.0.1", nil, false, ReasonLoopback},
		{"nat64 loopback", "64:ff9b::127.0.0.1", nil, false, ReasonLoopback},
		{"nat64 metadata", "64:ff9b::a9fe:a9fe", nil, false, ReasonMetadata},
		{"nat64 private", "64:ff9b::c0a8:101", nil, false, ReasonPrivate},
		{"6to4 loopback", "2002:7f00:1::", nil, false, ReasonLoopback},
		{"6to4 private", "2002:c0a8:101::1", nil, false, ReasonPrivate},
		{"6to4 metadata", "2002:a9fe:a9fe::1", nil, false, ReasonMetadata},
		{"teredo client loopback", "2001:0:4136:e378:8000:63bf:80ff:fffe", nil, false, ReasonLoopback},
		{"teredo client private", "2001:0:4136:e378:8000:63bf:f5ff:fffe", nil, false, ReasonPrivate},
		{"teredo server private", "2001:0:a00:1:8000:63bf:f7f7:f7f7", nil, false, ReasonPrivate},
		{"isatap loopback", "2001:4860::5efe:7f00:1", nil, false, ReasonLoopback},
		{"isatap global-bit private", "2001:4860::200:5efe:a00:1", nil, false, ReasonPrivate},

		// Operator lists.
		{"deny list", "8.8.4.4", nil, false, ReasonDenyList},
		{"deny list mapped", "::ffff:8.8.4.4", nil, false, ReasonDenyList},
		{"allow overrides builtin", "10.1.2.3", allowOwn, true, ""},
		{"allow covers mapped form", "::ffff:10.1.2.3", allowOwn, true, ""},
		{"allow covers nat64 form", "64:ff9b::a01:203", allowOwn, true, ""},
		{"allow is exact", "10.1.3.1", allowOwn, false, ReasonPrivate},
		{"loopback allowed in tests", "127.0.0.1", loopV4, true, ""},
		{"mapped loopback allowed in tests", "::ffff:127.0.0.1", loopV4, true, ""},
		{"allow written mapped", "127.0.0.1", []netip.Prefix{netip.MustParsePrefix("::ffff:127.0.0.0/104")}, true, ""},
		{"v6 loopback not covered by v4 allow", "::1", loopV4, false, ReasonLoopback},

		{"invalid", "", nil, false, ReasonInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ip netip.Addr
			if tc.ip != "" {
				ip = netip.MustParseAddr(tc.ip)
			}
			ok, reason := PeerAllowed(ip, tc.allow, deny)
			if ok != tc.ok || reason != tc.reason {
				t.Fatalf("PeerAllowed(%s) = %v %q, want %v %q", tc.ip, ok, reason, tc.ok, tc.reason)
			}
		})
	}
}

func FuzzPeerAllowed(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::ffff:127.0.0.1", "::127.0.0.1", "64:ff9b::7f00:1",
		"2002:7f00:1::", "2001:0:4136:e378:8000:63bf:80ff:fffe", "2001:db8::5efe:7f00:1", "8.8.8.8", "1.2.3.4"} {
		b := netip.MustParseAddr(s).As16()
		f.Add(b[:], uint16(7882))
		f.Add(b[:], uint16(53))
	}
	// The node's own endpoints: a loopback one (dev mode) and a public one.
	node := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:7882"), netip.MustParseAddrPort("1.2.3.4:7882")}
	f.Fuzz(func(t *testing.T, b []byte, port uint16) {
		ip, ok := netip.AddrFromSlice(b)
		if !ok {
			_, _ = PeerAllowed(netip.Addr{}, nil, nil)
			_, _ = PeerAddrAllowed(netip.AddrPort{}, node, nil, nil)
			return
		}
		allowed, reason := PeerAllowed(ip, nil, nil)
		if allowed != (reason == "") {
			t.Fatalf("PeerAllowed(%v) = %v with reason %q", ip, allowed, reason)
		}
		forms, n := addressForms(ip)
		for _, a := range forms[:n] {
			if a.Is4() && (a.IsLoopback() || a.IsUnspecified() || a.IsPrivate() || a.IsLinkLocalUnicast()) && allowed {
				t.Fatalf("PeerAllowed(%v) allowed an address embedding %v", ip, a)
			}
		}
		if ip.Unmap().IsLoopback() && allowed {
			t.Fatalf("PeerAllowed(%v) allowed loopback", ip)
		}
		// Allowing loopback must allow every form that embeds it, and only those
		// or public ones.
		if ok, _ := PeerAllowed(ip, loopV4, nil); !ok && allowed {
			t.Fatalf("adding an allow list refused %v", ip)
		}

		// With the node's endpoints: exactly the media port of a node
		// address is added, every other port of one is taken away, and
		// nothing else changes.
		ap := netip.AddrPortFrom(ip, port)
		withNode, why := PeerAddrAllowed(ap, node, nil, nil)
		if withNode != (why == "") {
			t.Fatalf("PeerAddrAllowed(%v) = %v with reason %q", ap, withNode, why)
		}
		plain := ip.Unmap().WithZone("")
		isNode := plain == node[0].Addr() || plain == node[1].Addr()
		embedsNode := false
		for _, a := range forms[1:n] {
			embedsNode = embedsNode || a == node[0].Addr() || a == node[1].Addr()
		}
		switch {
		case isNode && port == 7882:
			if !withNode {
				t.Fatalf("PeerAddrAllowed(%v) refused the media port: %q", ap, why)
			}
		case isNode || embedsNode:
			if withNode || why != ReasonNodePort {
				t.Fatalf("PeerAddrAllowed(%v) = %v %q, want refused as node_port", ap, withNode, why)
			}
		default:
			if withNode != allowed {
				t.Fatalf("PeerAddrAllowed(%v) = %v %q but PeerAllowed = %v", ap, withNode, why, allowed)
			}
		}
		// A permission (no port) is granted where some port is allowed.
		if perm, _ := peerIPAllowed(ip, node, nil, nil); perm != (withNode || (isNode && !embedsNode)) {
			t.Fatalf("peerIPAllowed(%v) = %v, PeerAddrAllowed at port %d = %v", ip, perm, port, withNode)
		}
		// The operator's allow list still reopens every port of an address.
		if ok, _ := PeerAddrAllowed(ap, node, loopV4, nil); plain.Is4() && loopV4[0].Contains(plain) && !ok {
			t.Fatalf("allow_cidrs did not reopen %v", ap)
		}
	})
}
