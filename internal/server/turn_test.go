package server

import (
	"net"
	"net/netip"
	"slices"
	"testing"
)

func TestNodePeers(t *testing.T) {
	ifaddrs := func() ([]net.Addr, error) {
		return []net.Addr{
			&net.IPNet{IP: net.IPv4(127, 0, 0, 1), Mask: net.CIDRMask(8, 32)},
			&net.IPNet{IP: net.ParseIP("198.51.100.20"), Mask: net.CIDRMask(24, 32)},
			&net.IPNet{IP: net.ParseIP("2001:db8::20"), Mask: net.CIDRMask(64, 128)},
		}, nil
	}
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name       string
		media      *net.UDPAddr
		public     []string
		relay, pub net.IP
		want       []netip.AddrPort
	}{
		{"dev: everything on loopback", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7882}, nil,
			net.IPv4(127, 0, 0, 1), nil, []netip.AddrPort{ap("127.0.0.1:7882")}},
		{"bound address, NAT public address, TURN elsewhere", &net.UDPAddr{IP: net.ParseIP("10.0.0.5"), Port: 7882}, []string{"203.0.113.10"},
			net.ParseIP("10.0.0.6"), net.ParseIP("203.0.113.11"),
			[]netip.AddrPort{ap("10.0.0.5:7882"), ap("10.0.0.6:7882"), ap("203.0.113.11:7882"), ap("203.0.113.10:7882")}},
		{"unspecified media address: every interface address", &net.UDPAddr{IP: net.IPv6zero, Port: 7882}, []string{"203.0.113.10"},
			net.IPv4zero, net.ParseIP("198.51.100.20"),
			[]netip.AddrPort{ap("198.51.100.20:7882"), ap("203.0.113.10:7882"), ap("127.0.0.1:7882"), ap("[2001:db8::20]:7882")}},
		{"no media socket", nil, []string{"203.0.113.10"}, nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := nodePeers(tc.media, tc.public, tc.relay, tc.pub, ifaddrs)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("nodePeers = %v, want %v", got, tc.want)
			}
		})
	}
}
