package turn

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	pionturn "github.com/pion/turn/v4"

	"github.com/tandemcall/tandem/internal/udptrap"
)

func TestPeerAddrAllowed(t *testing.T) {
	node := []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:7882"),
		netip.MustParseAddrPort("1.2.3.4:7882"),
		netip.MustParseAddrPort("[2a00:1450::10]:7882"),
		netip.MustParseAddrPort("203.0.113.10:7882"),
	}
	deny := []netip.Prefix{netip.MustParsePrefix("8.8.4.0/24")}
	allowNode := []netip.Prefix{netip.MustParsePrefix("1.2.3.0/24")}
	cases := []struct {
		name   string
		peer   string
		allow  []netip.Prefix
		ok     bool
		reason string
	}{
		{"loopback node at the media port", "127.0.0.1:7882", nil, true, ""},
		{"loopback node at another port", "127.0.0.1:53", nil, false, ReasonNodePort},
		{"public node at the media port", "1.2.3.4:7882", nil, true, ""},
		{"public node at another port", "1.2.3.4:7883", nil, false, ReasonNodePort},
		{"documentation-range node at the media port", "203.0.113.10:7882", nil, true, ""},
		{"documentation-range node at another port", "203.0.113.10:9", nil, false, ReasonNodePort},
		{"v6 node at the media port", "[2a00:1450::10]:7882", nil, true, ""},
		{"v6 node at another port", "[2a00:1450::10]:22", nil, false, ReasonNodePort},
		{"mapped node at the media port", "[::ffff:1.2.3.4]:7882", nil, true, ""},
		{"mapped node at another port", "[::ffff:127.0.0.1]:6379", nil, false, ReasonNodePort},
		{"nat64 node at the media port", "[64:ff9b::102:304]:7882", nil, false, ReasonNodePort},
		{"6to4 node", "[2002:102:304::1]:7882", nil, false, ReasonNodePort},
		{"zoned v6 node", "[2a00:1450::10%eth0]:53", nil, false, ReasonNodePort},
		{"operator allow reopens the node's ports", "1.2.3.4:7883", allowNode, true, ""},
		{"operator allow keeps the media port", "1.2.3.4:7882", allowNode, true, ""},
		{"other loopback at the media port", "127.0.0.2:7882", nil, false, ReasonLoopback},
		{"other public at any port", "8.8.8.8:53", nil, true, ""},
		{"deny list still applies", "8.8.4.4:7882", nil, false, ReasonDenyList},
		{"invalid", "", nil, false, ReasonInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ap netip.AddrPort
			if tc.peer != "" {
				ap = netip.MustParseAddrPort(tc.peer)
			}
			ok, reason := PeerAddrAllowed(ap, node, tc.allow, deny)
			if ok != tc.ok || reason != tc.reason {
				t.Fatalf("PeerAddrAllowed(%s) = %v %q, want %v %q", tc.peer, ok, reason, tc.ok, tc.reason)
			}
		})
	}

	// A permission names an address only: the node's addresses get one,
	// and their ports are checked later.
	for _, c := range []struct {
		ip     string
		ok     bool
		reason string
	}{
		{"127.0.0.1", true, ""},
		{"::ffff:127.0.0.1", true, ""},
		{"1.2.3.4", true, ""},
		{"64:ff9b::7f00:1", false, ReasonNodePort},
		{"127.0.0.2", false, ReasonLoopback},
		{"8.8.8.8", true, ""},
	} {
		if ok, reason := peerIPAllowed(netip.MustParseAddr(c.ip), node, nil, deny); ok != c.ok || reason != c.reason {
			t.Errorf("peerIPAllowed(%s) = %v %q, want %v %q", c.ip, ok, reason, c.ok, c.reason)
		}
	}
	// Without node addresses the policy is PeerAllowed's.
	if ok, reason := PeerAddrAllowed(netip.MustParseAddrPort("127.0.0.1:7882"), nil, nil, nil); ok || reason != ReasonLoopback {
		t.Errorf("no node peers: loopback allowed (%v %q)", ok, reason)
	}
}

// buildSend returns a Send indication to peer.
func buildSend(peer *net.UDPAddr, payload []byte) []byte {
	xa := stun.XORMappedAddress{IP: peer.IP, Port: peer.Port}
	return stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication),
		setterFunc(func(m *stun.Message) error { return xa.AddToAs(m, stun.AttrXORPeerAddress) }),
		stun.RawAttribute{Type: stun.AttrData, Value: payload}, stun.Fingerprint).Raw
}

// pionPeer is the peer pion's Send indication handler relays to, or ok
// false when pion would drop the indication.
func pionPeer(b []byte) (netip.AddrPort, bool) {
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if m.Decode() != nil {
		return netip.AddrPort{}, false
	}
	var xa stun.XORMappedAddress
	if xa.GetFromAs(m, stun.AttrXORPeerAddress) != nil {
		return netip.AddrPort{}, false
	}
	ip, ok := netip.AddrFromSlice(xa.IP)
	if !ok || xa.Port < 0 || xa.Port > 0xFFFF {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip, uint16(xa.Port)), true
}

func TestFirstXORPeer(t *testing.T) {
	for _, peer := range []*net.UDPAddr{
		{IP: net.IPv4(127, 0, 0, 1), Port: 7882},
		{IP: net.ParseIP("2a00:1450::10"), Port: 53},
		{IP: net.ParseIP("::ffff:10.0.0.1"), Port: 1},
	} {
		b := buildSend(peer, []byte("hello"))
		got, ok := firstXORPeer(b)
		want, _ := pionPeer(b)
		if !ok || got != want {
			t.Errorf("firstXORPeer = %v %v, pion reads %v", got, ok, want)
		}
	}
	if _, ok := firstXORPeer([]byte{0, 0x16, 0, 4, 0x21, 0x12, 0xa4, 0x42}); ok {
		t.Error("a truncated message yielded a peer")
	}
}

// FuzzFirstXORPeer: wherever pion would relay a Send indication, the
// inspector reads the same peer from it, so that it cannot be told one
// address while pion sends to another.
func FuzzFirstXORPeer(f *testing.F) {
	f.Add(buildSend(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7882}, []byte("x")))
	f.Add(buildSend(&net.UDPAddr{IP: net.ParseIP("2a00:1450::10"), Port: 53}, nil))
	short := buildSend(&net.UDPAddr{IP: net.IPv4(1, 2, 3, 4), Port: 9}, nil)
	f.Add(short[:len(short)-4])
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := append([]byte(nil), b...)
		got, ok := firstXORPeer(b)
		if !bytes.Equal(b, orig) {
			t.Fatal("firstXORPeer modified its input")
		}
		if want, pionOK := pionPeer(b); pionOK && (!ok || got != want) {
			t.Fatalf("firstXORPeer = %v %v, pion relays to %v", got, ok, want)
		}
	})
}

func TestInspectorNodePort(t *testing.T) {
	s := newInspectorServer()
	clk := newFakeClock()
	user, pass := mint(secretA, "alice", clk, time.Minute)
	key := stun.NewLongTermIntegrity(user, "tandem", pass)
	src := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000}
	request := func(method stun.Method, peer *net.UDPAddr) []byte {
		xa := stun.XORMappedAddress{IP: peer.IP, Port: peer.Port}
		return stun.MustBuild(stun.TransactionID, stun.NewType(method, stun.ClassRequest),
			stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0, 0, 0}},
			setterFunc(func(m *stun.Message) error { return xa.AddToAs(m, stun.AttrXORPeerAddress) }),
			stun.NewUsername(user), stun.NewRealm("tandem"), stun.NewNonce("n"), key, stun.Fingerprint).Raw
	}
	media := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 7882}
	other := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 53}
	var r countingReplier
	for _, c := range []struct {
		name    string
		msg     []byte
		pass    bool
		replies int
	}{
		{"send to the media port", buildSend(media, []byte("x")), true, 0},
		{"send to another port", buildSend(other, []byte("x")), false, 0},
		{"permission for the node address", request(stun.MethodCreatePermission, other), true, 0},
		{"channel bind to the media port", request(stun.MethodChannelBind, media), true, 0},
		{"channel bind to another port", request(stun.MethodChannelBind, other), false, 1},
	} {
		r.n = 0
		if got := s.inspect(c.msg, src, transportUDP, &r); got != c.pass || r.n != c.replies {
			t.Errorf("%s: passed %v with %d replies, want %v with %d", c.name, got, r.n, c.pass, c.replies)
		}
	}
	if n := s.Stats().PeerDenied[ReasonNodePort]; n != 2 {
		t.Errorf("node_port denials = %d, want 2", n)
	}
}

// authedRequest performs an authenticated request through c.
func authedRequest(c *pionturn.Client, username, password string, method stun.Method, setters ...stun.Setter) (*stun.Message, error) {
	first := stun.MustBuild(append([]stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}, setters...)...)
	res, err := c.PerformTransaction(first, c.TURNServerAddr(), false)
	if err != nil {
		return nil, err
	}
	var nonce stun.Nonce
	if err := nonce.GetFrom(res.Msg); err != nil {
		return nil, err
	}
	all := append([]stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}, setters...)
	all = append(all, stun.NewUsername(username), stun.NewRealm("tandem"), nonce,
		stun.NewLongTermIntegrity(username, "tandem", password), stun.Fingerprint)
	res, err = c.PerformTransaction(stun.MustBuild(all...), c.TURNServerAddr(), false)
	if err != nil {
		return nil, err
	}
	return res.Msg, nil
}

// TestRelayToNodeAddressOnlyAtMediaPort: with the node's media endpoint
// on loopback and no allow list, a client relays to the media port, and
// nothing it sends to another port on the same address arrives, through a
// Send indication or a channel (whose bind is refused with 403).
func TestRelayToNodeAddressOnlyAtMediaPort(t *testing.T) {
	clk := newFakeClock()
	media := echoPeer(t)
	// A service on the node that is not Tandem's.
	trap := udptrap.New(t, 1)
	sink := trap.Addr(0)
	s := newTestServer(t, clk, func(c *Config) {
		c.AllowCIDRs = nil
		c.NodePeers = []netip.AddrPort{media.AddrPort()}
	})
	user, pass := mint(secretA, "mallory", clk, 10*time.Minute)
	c := newUDPClient(t, s, user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	defer relay.Close()
	roundTrips(t, relay, media, 5)

	for i := range 5 {
		if _, err := relay.WriteTo([]byte{byte(i), 'x'}, sink); err != nil {
			t.Fatalf("write to the other port: %v", err)
		}
	}
	xa := stun.XORMappedAddress{IP: sink.IP, Port: sink.Port}
	res, err := authedRequest(c, user, pass, stun.MethodChannelBind,
		stun.RawAttribute{Type: stun.AttrChannelNumber, Value: []byte{0x40, 0x10, 0, 0}},
		setterFunc(func(m *stun.Message) error { return xa.AddToAs(m, stun.AttrXORPeerAddress) }))
	if err != nil {
		t.Fatal(err)
	}
	var code stun.ErrorCodeAttribute
	if res.Type.Class != stun.ClassErrorResponse || code.GetFrom(res) != nil || code.Code != stun.CodeForbidden {
		t.Fatalf("ChannelBind to another port of the node: %v %v, want 403", res.Type, code)
	}
	// A service on another port of the node's address writes to the
	// relayed address: the permission for the address does not let it
	// through (roundTrips fails on a packet from anyone but the media
	// port), and the media port still works.
	side, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer side.Close()
	if _, err := side.WriteTo([]byte("sneaking in"), relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	roundTrips(t, relay, media, 3)
	time.Sleep(100 * time.Millisecond)
	if n := trap.Packets(); n != 0 {
		t.Fatalf("the service on another port received %d packets", n)
	}
	if st := s.Stats(); st.PeerDenied[ReasonNodePort] < 3 {
		t.Fatalf("node_port denials = %v", st.PeerDenied)
	}
}

// TestRelayConnRefusesNodePorts: the relay socket itself, the last line,
// neither sends to nor takes packets from another port of a node address.
func TestRelayConnRefusesNodePorts(t *testing.T) {
	media := echoPeer(t)
	// A service on the node that is not Tandem's.
	trap := udptrap.New(t, 1)
	sink := trap.Addr(0)
	cfg := Config{NodePeers: []netip.AddrPort{media.AddrPort()}, Secrets: [][]byte{secretA}, RelayIP: net.IPv4(127, 0, 0, 1), UDPListen: "x"}
	cfg.applyDefaults()
	s := &Server{cfg: cfg, log: testLoggerDiscard(), metrics: &metrics{}}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &relayConn{PacketConn: pc, s: s, release: func() {}}
	defer rc.Close()

	if n, err := rc.WriteTo([]byte("nope"), sink); err != nil || n != 4 {
		t.Fatalf("WriteTo the other port = %d, %v; want it dropped silently", n, err)
	}
	// A packet from another port of the node's address, queued before the
	// echo from the media port, is skipped.
	side, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer side.Close()
	if _, err := side.WriteTo([]byte("from the side"), pc.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.WriteTo([]byte("ping"), media); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	_ = rc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		n, addr, err := rc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("ReadFrom: %v", err)
		}
		if addr.String() != media.String() {
			t.Fatalf("ReadFrom returned %q from %v", buf[:n], addr)
		}
		if string(buf[:n]) == "ping" {
			break
		}
	}
	if trap.Packets() != 0 {
		t.Fatal("the relay socket sent to another port of the node")
	}
	if n := s.Stats().PeerDenied[ReasonNodePort]; n != 2 {
		t.Fatalf("node_port denials = %d, want 2 (one each way)", n)
	}
}
