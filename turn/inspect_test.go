package turn

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

// newInspectorServer returns a Server with the inspector's state only, no
// listeners, for fuzzing.
func newInspectorServer() *Server {
	clk := newFakeClock()
	cfg := Config{Secrets: [][]byte{secretA, secretB}, RelayIP: net.IPv4(127, 0, 0, 1), UDPListen: "x", Now: clk.Now,
		NodePeers: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.2:7882")}}
	cfg.applyDefaults()
	return &Server{
		cfg:     cfg,
		log:     testLoggerDiscard(),
		metrics: &metrics{},
		reg:     newRegistry(),
		matches: newMatchCache(),
		limiter: newFailureLimiter(cfg.AuthFailuresPerMinute),
	}
}

// countingReplier records how many replies the inspector sent.
type countingReplier struct{ n int }

func (r *countingReplier) reply(b []byte, _ net.Addr) {
	r.n++
	if m := (&stun.Message{Raw: append([]byte(nil), b...)}); m.Decode() != nil {
		panic("inspector sent an undecodable reply")
	}
}

func seedMessages(clk *fakeClock) [][]byte {
	user, pass := mint(secretA, "alice", clk, time.Minute)
	key := stun.NewLongTermIntegrity(user, "tandem", pass)
	auth := []stun.Setter{stun.NewUsername(user), stun.NewRealm("tandem"), stun.NewNonce("n"), key, stun.Fingerprint}
	peer := stun.XORMappedAddress{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	var peerAttr stun.Setter = setterFunc(func(m *stun.Message) error { return peer.AddToAs(m, stun.AttrXORPeerAddress) })
	msgs := [][]byte{
		stun.MustBuild(stun.TransactionID, stun.BindingRequest).Raw,
		stun.MustBuild(append([]stun.Setter{stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
			stun.RawAttribute{Type: stun.AttrRequestedTransport, Value: []byte{17, 0, 0, 0}}}, auth...)...).Raw,
		stun.MustBuild(append([]stun.Setter{stun.TransactionID, stun.NewType(stun.MethodCreatePermission, stun.ClassRequest),
			peerAttr}, auth...)...).Raw,
		{0x40, 0x00, 0x00, 0x03, 1, 2, 3, 0},
		buildSend(&net.UDPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 53}, []byte("x")),
	}
	return msgs
}

type setterFunc func(*stun.Message) error

func (f setterFunc) AddTo(m *stun.Message) error { return f(m) }

func TestInspectorDeniesLoopbackPeerWith403(t *testing.T) {
	s := newInspectorServer()
	msgs := seedMessages(newFakeClock())
	var r countingReplier
	src := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000}
	if !s.inspect(msgs[1], src, transportUDP, &r) {
		t.Fatal("valid Allocate was dropped")
	}
	if s.inspect(msgs[2], src, transportUDP, &r) || r.n != 1 {
		t.Fatalf("CreatePermission to loopback passed (replies %d)", r.n)
	}
	if st := s.Stats(); st.PeerDenied["loopback"] != 1 || st.Auth["ok"] != 2 {
		t.Fatalf("stats = %+v", st)
	}
	if _, ok := s.matches.get(matchKey{src: srcKey(src), username: usernameOf(t, msgs[1])}, s.cfg.Now()); !ok {
		t.Fatal("verified key not recorded for the AuthHandler")
	}
}

func usernameOf(t *testing.T, b []byte) string {
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		t.Fatal(err)
	}
	var u stun.Username
	_ = u.GetFrom(m)
	return u.String()
}

// FuzzInspect feeds arbitrary datagrams to the inspector: it must never
// panic and must only send well-formed replies.
func FuzzInspect(f *testing.F) {
	for _, m := range seedMessages(newFakeClock()) {
		f.Add(m)
	}
	s := newInspectorServer()
	src := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r countingReplier
		orig := append([]byte(nil), b...)
		s.inspect(b, src, transportUDP, &r)
		if !bytes.Equal(b, orig) {
			t.Fatal("inspect modified the caller's buffer")
		}
		if r.n > 1 {
			t.Fatalf("%d replies to one message", r.n)
		}
	})
}

// FuzzFrameReader splits arbitrary streams into frames and inspects them:
// no panic, frames within the limit, memory bounded by the fixed buffer.
func FuzzFrameReader(f *testing.F) {
	var stream []byte
	for _, m := range seedMessages(newFakeClock()) {
		stream = append(stream, m...)
	}
	f.Add(stream)
	f.Add([]byte{0x40, 0x00, 0xff, 0xff})
	f.Add([]byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42})
	s := newInspectorServer()
	src := &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5000}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := frameReader{r: &chunkReader{b: b}}
		total := 0
		for {
			frame, err := fr.next()
			if err != nil {
				break
			}
			if len(frame) == 0 || len(frame) > maxFrameLen {
				t.Fatalf("frame of %d bytes", len(frame))
			}
			if n, err := frameLen(frame); err != nil || n != len(frame) {
				t.Fatalf("frameLen(frame) = %d, %v; frame is %d bytes", n, err, len(frame))
			}
			total += len(frame)
			s.inspect(frame, src, transportTCP, &countingReplier{})
		}
		if total > len(b) {
			t.Fatalf("returned %d bytes of frames from %d input bytes", total, len(b))
		}
	})
}

// chunkReader returns its bytes a few at a time, like a slow TCP stream.
type chunkReader struct{ b []byte }

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), 7, len(r.b))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}
