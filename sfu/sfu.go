// Package sfu is Tandem's selective forwarding unit: every call's media goes
// through it. A Room holds Participants; each Participant has two
// PeerConnections, "pub" (the client offers and sends its media) and "sub"
// (the SFU offers and sends the other participants' media). All
// PeerConnections share one UDP port through an ICE UDP mux.
package sfu

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/udpx"
)

// Config configures an SFU.
type Config struct {
	// UDPListen is the one UDP address all PeerConnections share (ICE UDP
	// mux), e.g. "0.0.0.0:7882"; "127.0.0.1:0" in tests.
	UDPListen string
	// PublicIPs, if set, are advertised in host candidates instead of the
	// bound address (1:1 NAT).
	PublicIPs []string
	// PionInput takes publishers' media through pion's receive path (its
	// goroutines and interceptors) instead of direct input at the shared
	// socket (srtpin.go). Direct input costs less CPU per packet; this is
	// for comparison, and a way out should a publisher need it.
	PionInput bool
}

// udpSocketBuffer is the receive and send buffer asked for on the shared
// socket; the kernel caps it at net.core.{r,w}mem_max.
const udpSocketBuffer = 4 << 20

// SFU owns the shared UDP socket and the rooms.
type SFU struct {
	log   *slog.Logger
	lf    slogFactory
	conn  *net.UDPConn
	media net.PacketConn // conn, batched; what direct SRTP output writes to
	mux   ice.UDPMux
	// relayChecks holds back checks relayed by the TURN server beside
	// this SFU, so that a direct path wins (relaycheck.go).
	relayChecks relayChecks
	rewrite     []webrtc.ICEAddressRewriteRule
	loopback    bool
	// cork, when the socket supports it, holds the writes of one packet's
	// fan-out so they leave in one sendmmsg.
	cork corker
	// inputs routes publishers' SRTP to direct input (srtpin.go) through
	// the socket's read filter; filtered says whether it is installed.
	inputs   inputs
	filtered bool

	// candidates screens clients' ICE candidates (candidates.go).
	candidates candidatePolicy

	mu     sync.Mutex
	closed bool
	rooms  map[RoomID]*Room

	ledger ledger // every participant's counters, for Totals

	done    chan struct{} // closed by Close; ends run
	ranDone chan struct{} // closed when run has ended
}

// New binds the UDP socket and builds the shared ICE UDP mux.
func New(cfg Config, log *slog.Logger) (*SFU, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var rewrite []webrtc.ICEAddressRewriteRule
	if len(cfg.PublicIPs) > 0 {
		for _, ip := range cfg.PublicIPs {
			if net.ParseIP(ip) == nil {
				return nil, fmt.Errorf("%w: public IP %q is not an IP address", ErrBadConfig, ip)
			}
		}
		rewrite = []webrtc.ICEAddressRewriteRule{{
			External:        append([]string(nil), cfg.PublicIPs...),
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}}
	}
	addr, err := net.ResolveUDPAddr("udp", cfg.UDPListen)
	if err != nil {
		return nil, fmt.Errorf("%w: udp listen %q: %w", ErrBadConfig, cfg.UDPListen, err)
	}
	conn, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("sfu: listen %s: %w", cfg.UDPListen, err)
	}
	_ = conn.SetReadBuffer(udpSocketBuffer)
	_ = conn.SetWriteBuffer(udpSocketBuffer)
	// Every leg's packets go through this one socket: batched reads, and
	// writes from many forwarding goroutines combined into sendmmsg.
	batched, err := udpx.New(conn, udpx.Options{ReadBatch: 32, WriteQueue: 256, MaxDatagram: 2048})
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("sfu: listen %s: %w", cfg.UDPListen, err)
	}
	lf := newSlogFactory(log)
	s := &SFU{
		log:      log,
		lf:       lf,
		conn:     conn,
		media:    batched,
		rewrite:  rewrite,
		loopback: addr.IP != nil && addr.IP.IsLoopback(),
		rooms:    make(map[RoomID]*Room),
		done:     make(chan struct{}),
		ranDone:  make(chan struct{}),
	}
	s.candidates.loopback = s.loopback
	s.relayChecks.now = time.Now
	s.mux = webrtc.NewICEUDPMux(lf.NewLogger("udpmux"), &muxConn{PacketConn: batched, r: &s.relayChecks})
	s.cork, _ = batched.(corker)
	if !cfg.PionInput {
		s.filtered = udpx.SetFilter(batched, &filter{s: s})
	}
	go s.run()
	log.Info("sfu listening", "udp", conn.LocalAddr().String())
	return s, nil
}

// corker is a socket that can hold writes and send them together.
type corker interface {
	Cork()
	Uncork()
}

// UDPAddr returns the bound address of the shared media socket.
func (s *SFU) UDPAddr() *net.UDPAddr {
	addr, _ := s.conn.LocalAddr().(*net.UDPAddr)
	return addr
}

// Room returns the room with the given id, creating it if needed. After
// Close it returns a closed room whose Join fails with ErrClosed.
func (s *SFU) Room(id RoomID) *Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		r := newRoom(s, id)
		r.closed = true
		return r
	}
	r, ok := s.rooms[id]
	if !ok {
		r = newRoom(s, id)
		s.rooms[id] = r
		r.log.Debug("room created")
	}
	return r
}

// LookupRoom returns the room with id, or nil if there is none.
func (s *SFU) LookupRoom(id RoomID) *Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[id]
}

// CloseRoom closes every participant of the room and forgets it.
func (s *SFU) CloseRoom(id RoomID) {
	s.mu.Lock()
	r, ok := s.rooms[id]
	delete(s.rooms, id)
	s.mu.Unlock()
	if ok {
		r.close()
	}
}

// CloseRoomIfEmpty closes and forgets the room if it has no participants,
// and reports whether it did. A Join racing with it fails with ErrClosed;
// SFU.Room then makes a new room.
func (s *SFU) CloseRoomIfEmpty(id RoomID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[id]
	if !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.participants) > 0 {
		return false
	}
	r.closed = true
	delete(s.rooms, id)
	r.log.Debug("room closed: empty")
	return true
}

// Close closes every room and the shared socket, and waits for the
// goroutines the rooms own.
func (s *SFU) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.rooms = map[RoomID]*Room{}
	s.mu.Unlock()
	close(s.done)
	<-s.ranDone

	for _, r := range rooms {
		r.close()
	}
	err := s.mux.Close()
	s.log.Info("sfu closed")
	return err
}

// newPeerConnection builds one PeerConnection with its own API, media engine
// and interceptor registry, sharing the SFU's UDP mux. It also gets a DTLS
// tap for direct SRTP output and input (srtpout.go, srtpin.go), and asks to
// be the DTLS server when it answers, as the tap needs.
//
// Its ICE agent is a full one that is never given a client's candidates
// (candidates.go): it checks only addresses that sent it a check carrying
// its ICE credentials (peer-reflexive candidates), and sends media only on
// a pair its own check proved. The server's address is public (or 1:1
// NAT), so clients always reach it first; a client behind a NAT is learned
// from its checks. On sub, which the SFU offers (a=setup:actpass), the
// client picks the DTLS role: browsers take the client role, as direct
// output needs, and so does internal/client; a client that takes the
// server role gets its media on pion's path.
//
// mode, for a pub PC, is where its receive path is decided (srtpin.go),
// and selected the address of its selected pair (followNomination).
func (s *SFU) newPeerConnection(role int, mode *atomic.Int32, selected *atomic.Pointer[net.UDPAddr]) (*webrtc.PeerConnection, *dtlsTap, error) {
	m, ir, err := newMediaEngine(s.lf, role, mode)
	if err != nil {
		return nil, nil, err
	}
	se := webrtc.SettingEngine{LoggerFactory: s.lf}
	se.SetICEUDPMux(s.mux)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(s.loopback)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	// Every remote candidate is peer-reflexive here, and on sub the SFU
	// controls: pion's default wait of a second before nominating such a
	// pair (meant for agents that also have the candidates signaled)
	// delayed the first media of every call, and the new device's first
	// picture of every handoff, by that second. The client checks its best
	// path first, so the first pair proved is the one to take.
	se.SetPrflxAcceptanceMinWait(0)
	if role == rolePub && selected != nil {
		se.SetICEBindingRequestHandler(followNomination(selected))
	}
	if len(s.rewrite) > 0 {
		if err := se.SetICEAddressRewriteRules(s.rewrite...); err != nil {
			return nil, nil, fmt.Errorf("%w: address rewrite: %w", ErrBadConfig, err)
		}
	}
	tap := &dtlsTap{}
	{
		se.SetDTLSKeyLogWriter(tap)
		se.SetDTLSServerHelloMessageHook(tap.serverHello)
		if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
			return nil, nil, fmt.Errorf("sfu: dtls role: %w", err)
		}
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, fmt.Errorf("sfu: new peer connection: %w", err)
	}
	return pc, tap, nil
}

// followNomination returns the ICE binding request handler of a pub PC,
// where the client controls ICE: the pair the client nominates (a check
// with USE-CANDIDATE) becomes the selected pair as soon as the SFU's own
// check has proved it, whatever its priority. pion's full agent would
// keep the pair it selected first unless a later one had a higher
// priority, while Chrome moves to a pair it finds better (as it does when
// its first pair's checks go unanswered for a moment on a busy machine) and
// sends its media there. Direct input, which takes the media arriving from
// the selected pair's address, then left the stream to pion without its
// transport-wide CC feedback, and with no feedback Chrome's congestion
// window soon stopped the device sending at all. selected is the address
// of the pair selected now: a check on it changes nothing.
func followNomination(selected *atomic.Pointer[net.UDPAddr]) func(*stun.Message, ice.Candidate, ice.Candidate, *ice.CandidatePair) bool {
	return func(m *stun.Message, _, remote ice.Candidate, pair *ice.CandidatePair) bool {
		if pair == nil || remote == nil || !m.Contains(stun.AttrUseCandidate) || pair.ResponsesReceived() == 0 {
			return false
		}
		cur := selected.Load()
		return cur == nil || cur.Port != remote.Port() || !cur.IP.Equal(net.ParseIP(remote.Address()))
	}
}
