package turn

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	pionturn "github.com/pion/turn/v4"

	"github.com/tandemcall/tandem/internal/testkit"
)

func TestRelayRoundTripUDP(t *testing.T) {
	clk := newFakeClock()
	s := newTestServer(t, clk, nil)
	user, pass := mint(secretA, "alice", clk, 10*time.Minute)
	c := newUDPClient(t, s, user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	defer relay.Close()
	if got := relay.LocalAddr().(*net.UDPAddr); !got.IP.Equal(net.IPv4(127, 0, 0, 1)) || got.Port < 40000 || got.Port > 49999 {
		t.Fatalf("relay address %v outside 127.0.0.1:40000-49999", got)
	}
	peer := echoPeer(t)
	roundTrips(t, relay, peer, 20)

	testkit.Eventually(t, 5*time.Second, "relay counters", func() bool {
		st := s.Stats()
		return st.RelayedPackets["to_peer"] >= 20 && st.RelayedPackets["from_peer"] >= 20
	})
	st := s.Stats()
	if st.Allocations["udp"] != 1 || st.AllocationsTotal["udp"] != 1 {
		t.Errorf("allocations = %v, total = %v; want udp 1", st.Allocations, st.AllocationsTotal)
	}
	if st.RelayedPackets["to_peer"] < 20 || st.RelayedPackets["from_peer"] < 20 {
		t.Errorf("relayed packets = %v, want ≥ 20 each way", st.RelayedPackets)
	}
	if st.RelayedBytes["to_peer"] < 100 {
		t.Errorf("relayed bytes = %v", st.RelayedBytes)
	}
	if st.Auth["ok"] == 0 {
		t.Errorf("auth = %v, want ok > 0", st.Auth)
	}
}

func TestWrongSecretIsUnauthorized(t *testing.T) {
	clk := newFakeClock()
	s := newTestServer(t, clk, nil)
	user, pass := mint([]byte("not-our-secret"), "mallory", clk, 10*time.Minute)
	c := newUDPClient(t, s, user, pass)
	_, err := c.Allocate()
	if code := turnCode(err); code != 401 {
		t.Fatalf("Allocate with a wrong secret: err %v (code %d), want 401", err, code)
	}
	if st := s.Stats(); st.Auth["bad_integrity"] != 1 || st.AllocationsTotal["udp"] != 0 {
		t.Fatalf("auth = %v, allocations = %v", st.Auth, st.AllocationsTotal)
	}
}

func TestSecretRotation(t *testing.T) {
	clk := newFakeClock()
	s := newTestServer(t, clk, func(c *Config) { c.Secrets = [][]byte{secretA, secretB} })
	for _, secret := range [][]byte{secretA, secretB} {
		user, pass := mint(secret, "bob", clk, 10*time.Minute)
		c := newUDPClient(t, s, user, pass)
		relay, err := c.Allocate()
		if err != nil {
			t.Fatalf("Allocate with secret %q: %v", secret, err)
		}
		roundTrips(t, relay, echoPeer(t), 3)
		_ = relay.Close()
	}
}

func TestExpiredUsernameIsRefused(t *testing.T) {
	clk := newFakeClock()
	s := newTestServer(t, clk, nil)
	user, pass := mint(secretA, "carol", clk, -time.Minute)
	c := newUDPClient(t, s, user, pass)
	_, err := c.Allocate()
	if code := turnCode(err); code != 401 {
		t.Fatalf("Allocate with an expired username: err %v (code %d), want 401", err, code)
	}
	if st := s.Stats(); st.Auth["expired"] != 1 {
		t.Fatalf("auth = %v, want expired 1", st.Auth)
	}
}

func TestExpiryCheckedAtAllocationOnly(t *testing.T) {
	clk := newFakeClock()
	s := newTestServer(t, clk, nil)
	user, pass := mint(secretA, "dave", clk, time.Minute)
	c := newUDPClient(t, s, user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	defer relay.Close()
	peer := echoPeer(t)
	roundTrips(t, relay, peer, 2)

	clk.Advance(2 * time.Hour) // the credential is long expired
	if err := refresh(c, user, pass); err != nil {
		t.Fatalf("Refresh after expiry: %v", err)
	}
	if err := c.CreatePermission(peer); err != nil {
		t.Fatalf("CreatePermission after expiry: %v", err)
	}
	roundTrips(t, relay, peer, 2)

	// The same expired credential cannot open a new allocation.
	c2 := newUDPClient(t, s, user, pass)
	if _, err := c2.Allocate(); turnCode(err) != 401 {
		t.Fatalf("new Allocate with expired username: %v, want 401", err)
	}
}

func TestDeniedPeerIsForbidden(t *testing.T) {
	clk := newFakeClock()
	s := newTestServer(t, clk, func(c *Config) { c.AllowCIDRs = nil })
	user, pass := mint(secretA, "erin", clk, 10*time.Minute)
	c := newUDPClient(t, s, user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	defer relay.Close()
	for _, ip := range []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(169, 254, 169, 254), net.IPv4zero, net.ParseIP("::1")} {
		err := c.CreatePermission(&net.UDPAddr{IP: ip, Port: 9})
		if code := turnCode(err); code != 403 {
			t.Errorf("CreatePermission(%v): err %v (code %d), want 403", ip, err, code)
		}
	}
	st := s.Stats()
	if st.PeerDenied["loopback"] != 2 || st.PeerDenied["metadata"] != 1 || st.PeerDenied["unspecified"] != 1 {
		t.Errorf("peer denied = %v", st.PeerDenied)
	}
	if st.RelayedPackets["to_peer"] != 0 {
		t.Errorf("relayed %v packets to a denied peer", st.RelayedPackets)
	}
}

func TestPerUserAllocationQuota(t *testing.T) {
	clk := newFakeClock()
	s := newTestServer(t, clk, nil)
	for i := range 13 {
		user, pass := mint(secretA, "frank", clk, 10*time.Minute)
		c := newUDPClient(t, s, user, pass)
		_, err := c.Allocate()
		switch {
		case i < 12 && err != nil:
			t.Fatalf("allocation %d: %v", i+1, err)
		case i == 12 && turnCode(err) != 486:
			t.Fatalf("allocation 13: err %v, want 486", err)
		}
	}
	// Another user is not affected.
	user, pass := mint(secretA, "grace", clk, 10*time.Minute)
	if _, err := newUDPClient(t, s, user, pass).Allocate(); err != nil {
		t.Fatalf("other user: %v", err)
	}
	if st := s.Stats(); st.QuotaRejections["user_allocations"] != 1 || st.Allocations["udp"] != 13 {
		t.Fatalf("quota = %v, allocations = %v", st.QuotaRejections, st.Allocations)
	}
}

func TestTotalAllocationLimit(t *testing.T) {
	clk := newFakeClock()
	s := newTestServer(t, clk, func(c *Config) { c.MaxAllocations = 2 })
	for i := range 3 {
		user, pass := mint(secretA, "user"+string(rune('a'+i)), clk, 10*time.Minute)
		_, err := newUDPClient(t, s, user, pass).Allocate()
		if i < 2 && err != nil {
			t.Fatalf("allocation %d: %v", i+1, err)
		}
		if i == 2 && turnCode(err) != 508 {
			t.Fatalf("allocation 3: %v, want 508", err)
		}
	}
	if st := s.Stats(); st.QuotaRejections["total_allocations"] != 1 {
		t.Fatalf("quota = %v", st.QuotaRejections)
	}
}

func TestPermissionQuota(t *testing.T) {
	clk := newFakeClock()
	s := newTestServer(t, clk, func(c *Config) { c.MaxPermissionsPerAllocation = 2 })
	user, pass := mint(secretA, "heidi", clk, 10*time.Minute)
	c := newUDPClient(t, s, user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	for i, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.2", "127.0.0.4"} {
		err := c.CreatePermission(&net.UDPAddr{IP: net.ParseIP(ip), Port: 9})
		if (i < 3) != (err == nil) {
			t.Fatalf("permission %d (%s): err %v", i+1, ip, err)
		}
	}
	if st := s.Stats(); st.QuotaRejections["permissions"] != 1 {
		t.Fatalf("quota = %v", st.QuotaRejections)
	}
}

func TestTCPAllocation(t *testing.T) {
	clk := newFakeClock()
	s := newTestServer(t, clk, nil)
	tc, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	user, pass := mint(secretA, "ivan", clk, 10*time.Minute)
	c := startClient(t, pionturn.NewSTUNConn(tc), s.TCPAddr().String(), user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate over TCP: %v", err)
	}
	defer relay.Close()
	roundTrips(t, relay, echoPeer(t), 20)
	if st := s.Stats(); st.Allocations["tcp"] != 1 || st.RelayedPackets["from_peer"] < 20 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestTLSAllocationAndHandshakeTimeout(t *testing.T) {
	clk := newFakeClock()
	cert := selfSigned(t)
	s := newTestServer(t, clk, func(c *Config) {
		c.TLSListen = "127.0.0.1:0"
		c.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		// Long enough for a real handshake on a loaded machine under the
		// race detector; the idle client below still waits it out.
		c.TLSHandshakeTimeout = 2 * time.Second
	})

	// A client that connects and says nothing is cut off.
	idle, err := net.Dial("tcp", s.TLSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle TLS connection: read %v, want EOF", err)
	}
	testkit.Eventually(t, 5*time.Second, "tls_handshake rejection counted", func() bool {
		return s.Stats().QuotaRejections["tls_handshake"] == 1
	})

	conn, err := tls.Dial("tcp", s.TLSAddr().String(), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // self-signed test cert
	if err != nil {
		t.Fatal(err)
	}
	user, pass := mint(secretA, "judy", clk, 10*time.Minute)
	c := startClient(t, pionturn.NewSTUNConn(conn), s.TLSAddr().String(), user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("Allocate over TLS: %v", err)
	}
	defer relay.Close()
	roundTrips(t, relay, echoPeer(t), 5)
	if st := s.Stats(); st.Allocations["tls"] != 1 || st.Allocations["tcp"] != 0 {
		t.Fatalf("allocations = %v", st.Allocations)
	}
}

func TestPreAllocateTimeoutClosesIdleTCP(t *testing.T) {
	clk := newFakeClock()
	s := newTestServer(t, clk, func(c *Config) { c.PreAllocateTimeout = 100 * time.Millisecond })

	// An allocated connection survives the timeout.
	tc, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	user, pass := mint(secretA, "ken", clk, 10*time.Minute)
	c := startClient(t, pionturn.NewSTUNConn(tc), s.TCPAddr().String(), user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()

	idle, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_ = idle.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("idle connection: read %v, want EOF", err)
	}
	if st := s.Stats(); st.QuotaRejections["pre_allocate_timeout"] != 1 {
		t.Fatalf("quota = %v", st.QuotaRejections)
	}
	roundTrips(t, relay, echoPeer(t), 3) // the allocated one still relays
}

func TestAuthFailureRateLimit(t *testing.T) {
	clk := newFakeClock()
	const budget = 3
	s := newTestServer(t, clk, func(c *Config) { c.AuthFailuresPerMinute = budget })
	conn, err := net.Dial("udp4", s.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	user, _ := mint(secretA, "mallory", clk, 10*time.Minute)
	badAllocate := func() *stun.Message {
		return stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
			stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}},
			stun.NewUsername(user), stun.NewRealm("tandem"), stun.NewNonce("nonce"),
			stun.NewLongTermIntegrity(user, "tandem", "wrong password"), stun.Fingerprint)
	}
	binding := func() *stun.Message {
		return stun.MustBuild(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
	}
	// next sends req and then a Binding request, and returns the type of
	// the first reply. The socket is processed in order, so a dropped
	// request shows as the Binding success arriving first.
	next := func(req *stun.Message) stun.MessageType {
		t.Helper()
		for _, m := range []*stun.Message{req, binding()} {
			if _, err := conn.Write(m.Raw); err != nil {
				t.Fatal(err)
			}
		}
		buf := make([]byte, 1500)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no reply: %v", err)
		}
		res := &stun.Message{Raw: buf[:n]}
		if err := res.Decode(); err != nil {
			t.Fatal(err)
		}
		if res.Type != stun.BindingSuccess {
			// Consume the Binding reply too.
			if _, err := conn.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
		return res.Type
	}
	allocErr := stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse)
	for i := range budget + 1 {
		if got := next(badAllocate()); got != allocErr {
			t.Fatalf("bad request %d answered with %v, want %v", i+1, got, allocErr)
		}
	}
	for i := range 3 {
		if got := next(badAllocate()); got != stun.BindingSuccess {
			t.Fatalf("request %d over budget answered with %v, want no answer", i+1, got)
		}
	}
	st := s.Stats()
	if st.Auth["bad_integrity"] != budget+1 || st.Auth["rate_limited"] != 3 {
		t.Fatalf("auth = %v", st.Auth)
	}
	clk.Advance(2 * time.Minute)
	if got := next(badAllocate()); got != allocErr {
		t.Fatalf("after the block: %v, want %v", got, allocErr)
	}
}

func TestBandwidthCapDropsExcess(t *testing.T) {
	clk := newFakeClock() // frozen: the bucket never refills
	s := newTestServer(t, clk, func(c *Config) { c.BandwidthPerAllocation = 5000 })
	user, pass := mint(secretA, "lena", clk, 10*time.Minute)
	c := newUDPClient(t, s, user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	peer := echoPeer(t)
	payload := make([]byte, 1000)
	for range 20 {
		if _, err := relay.WriteTo(payload, peer); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 5*time.Second, "20 packets accounted for", func() bool {
		st := s.Stats()
		return st.RelayedPackets["to_peer"]+st.QuotaRejections["bandwidth"] >= 20
	})
	st := s.Stats()
	if st.RelayedPackets["to_peer"] != 5 || st.QuotaRejections["bandwidth"] < 15 {
		t.Fatalf("relayed %v, bandwidth drops %d; want 5 relayed (5000 B budget)", st.RelayedPackets, st.QuotaRejections["bandwidth"])
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	leaks := testkit.LeakCheck(t, 0)
	clk := newFakeClock()
	cfg := Config{
		UDPListen: "127.0.0.1:0", UDPSockets: 3, TCPListen: "127.0.0.1:0",
		RelayIP: net.IPv4(127, 0, 0, 1), Secrets: [][]byte{secretA}, AllowCIDRs: loopV4, Now: clk.Now,
	}
	s, err := New(cfg, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	func() {
		udp, _ := net.ListenPacket("udp4", "127.0.0.1:0")
		user, pass := mint(secretA, "mia", clk, time.Minute)
		c, err := pionturn.NewClient(&pionturn.ClientConfig{
			TURNServerAddr: s.UDPAddr().String(), Conn: udp, Username: user, Password: pass,
			LoggerFactory: newSlogFactory(testLogger(t)),
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { c.Close(); _ = udp.Close() }()
		if err := c.Listen(); err != nil {
			t.Fatal(err)
		}
		relay, err := c.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		defer relay.Close()                              // after the server is gone: stops the client's timers
		tc, err := net.Dial("tcp", s.TCPAddr().String()) // left open: Close must end it
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		testkit.Eventually(t, 5*time.Second, "tcp conn registered", func() bool {
			s.reg.mu.Lock()
			defer s.reg.mu.Unlock()
			return len(s.reg.conns) == 1
		})
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}()
	leaks()
}
