package turn

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	pionturn "github.com/pion/turn/v4"

	"github.com/tandemcall/tandem/internal/turncred"
)

var (
	secretA = []byte("secret-a")
	secretB = []byte("secret-b")
	loopV4  = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
)

// fakeClock is a Config.Now that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testLogger writes to the test log at Debug when -v is set.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// newTestServer starts a server on 127.0.0.1 (UDP and TCP, port 0) that
// may relay to loopback peers, unless mutate changes that.
func newTestServer(t *testing.T, clk *fakeClock, mutate func(*Config)) *Server {
	t.Helper()
	cfg := Config{
		UDPListen:    "127.0.0.1:0",
		UDPSockets:   2,
		TCPListen:    "127.0.0.1:0",
		RelayIP:      net.IPv4(127, 0, 0, 1),
		RelayPortMin: 40000,
		RelayPortMax: 49999,
		Secrets:      [][]byte{secretA},
		AllowCIDRs:   loopV4,
		Now:          clk.Now,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg, testLogger(t), nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newUDPClient returns a listening pion TURN client over UDP.
func newUDPClient(t *testing.T, s *Server, username, password string) *pionturn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startClient(t, conn, s.UDPAddr().String(), username, password)
}

func startClient(t *testing.T, conn net.PacketConn, server, username, password string) *pionturn.Client {
	t.Helper()
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: server,
		TURNServerAddr: server,
		Conn:           conn,
		Username:       username,
		Password:       password,
		Realm:          "tandem",
		RTO:            200 * time.Millisecond,
		LoggerFactory:  newSlogFactory(testLogger(t)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		_ = conn.Close()
	})
	return c
}

func mint(secret []byte, user string, clk *fakeClock, ttl time.Duration) (string, string) {
	u, p, _ := turncred.Mint(secret, user, clk.Now(), ttl)
	return u, p
}

// echoPeer is a UDP peer on loopback that sends every packet back.
func echoPeer(t *testing.T) *net.UDPAddr {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		<-done
	})
	return pc.LocalAddr().(*net.UDPAddr)
}

// roundTrips sends n packets through relay to peer and waits for each echo.
func roundTrips(t *testing.T, relay net.PacketConn, peer net.Addr, n int) {
	t.Helper()
	buf := make([]byte, 1500)
	for i := range n {
		msg := []byte{byte(i), 'p', 'i', 'n', 'g'}
		if _, err := relay.WriteTo(msg, peer); err != nil {
			t.Fatalf("packet %d: write: %v", i, err)
		}
		_ = relay.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, from, err := relay.ReadFrom(buf)
		if err != nil {
			t.Fatalf("packet %d: no echo: %v", i, err)
		}
		if from.String() != peer.String() || string(buf[:got]) != string(msg) {
			t.Fatalf("packet %d: got %q from %v, want %q from %v", i, buf[:got], from, msg, peer)
		}
	}
}

// turnCode returns the STUN error code carried by err, or 0.
func turnCode(err error) int {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return int(te.ErrorCodeAttr.Code)
	}
	return 0
}

// refresh sends an authenticated Refresh request through c, as a client
// does before its allocation's lifetime runs out.
func refresh(c *pionturn.Client, username, password string) error {
	lifetime := stun.RawAttribute{Type: stun.AttrLifetime, Value: []byte{0, 0, 0x02, 0x58}} // 600 s
	first := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest), lifetime)
	res, err := c.PerformTransaction(first, c.TURNServerAddr(), false)
	if err != nil {
		return err
	}
	var nonce stun.Nonce
	if err := nonce.GetFrom(res.Msg); err != nil {
		return err
	}
	msg := stun.MustBuild(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest), lifetime,
		stun.NewUsername(username), stun.NewRealm("tandem"), nonce,
		stun.NewLongTermIntegrity(username, "tandem", password), stun.Fingerprint)
	res, err = c.PerformTransaction(msg, c.TURNServerAddr(), false)
	if err != nil {
		return err
	}
	if res.Msg.Type.Class != stun.ClassSuccessResponse {
		var code stun.ErrorCodeAttribute
		_ = code.GetFrom(res.Msg)
		return &stun.TurnError{StunMessageType: res.Msg.Type, ErrorCodeAttr: code}
	}
	return nil
}

func testLoggerDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
