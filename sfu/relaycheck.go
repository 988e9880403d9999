package sfu

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v3"
)

// A client with a TURN server among its ICE servers checks the SFU from
// its own address and through the relay at once. On sub the SFU controls
// and nominates the first pair proved, and a relay on this very node
// answers about as fast as the direct path: the lab saw one call in four
// relay its media when nothing needed it, doubling what the node sends
// and receives for that leg. So a check that arrives through one of this
// node's relays waits: relayHeadStart after the leg's first check, and
// while direct checks of the leg arrive, up to relayHold. A client that
// only reaches the SFU through TURN (UDP blocked) loses relayHeadStart;
// one whose direct checks go unanswered (a firewall that lets them out
// and nothing back) falls back to the relay after relayHold.
const (
	relayHeadStart = 300 * time.Millisecond
	relayHold      = 3 * time.Second
	// relayCheckStates bounds the legs remembered; older ones go first.
	relayCheckStates = 4096
)

// relayChecks holds back relayed checks; see above.
type relayChecks struct {
	isRelay atomic.Pointer[func(netip.AddrPort) bool]
	now     func() time.Time

	mu   sync.Mutex
	legs map[string]*legChecks // by the USERNAME of the leg's checks
}

type legChecks struct {
	first  time.Time
	direct bool
}

// SetRelayCheck tells the SFU which source addresses are relays of the
// TURN server beside it; nil: none.
func (s *SFU) SetRelayCheck(isRelay func(netip.AddrPort) bool) {
	if isRelay == nil {
		s.relayChecks.isRelay.Store(nil)
		return
	}
	s.relayChecks.isRelay.Store(&isRelay)
}

// hold reports whether to drop a packet from addr for now: a STUN binding
// request relayed by this node's TURN server that should give the direct
// path its head start.
func (r *relayChecks) hold(b []byte, addr net.Addr) bool {
	if len(b) < 20 || b[0]>>6 != 0 || !stun.IsMessage(b) {
		return false
	}
	fn := r.isRelay.Load()
	if fn == nil {
		return false
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return false
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil || m.Type != stun.BindingRequest {
		return false
	}
	user, err := m.Get(stun.AttrUsername)
	if err != nil {
		return false
	}
	relayed := (*fn)(ua.AddrPort())
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.legs == nil {
		r.legs = map[string]*legChecks{}
	}
	k := string(user)
	leg := r.legs[k]
	if leg == nil {
		if len(r.legs) >= relayCheckStates {
			r.forgetOld(now)
		}
		leg = &legChecks{first: now}
		r.legs[k] = leg
	}
	if !relayed {
		leg.direct = true
		return false
	}
	age := now.Sub(leg.first)
	return age < relayHeadStart || leg.direct && age < relayHold
}

// forgetOld drops the legs whose hold is over, or all when none is.
func (r *relayChecks) forgetOld(now time.Time) {
	for k, l := range r.legs {
		if now.Sub(l.first) >= relayHold {
			delete(r.legs, k)
		}
	}
	if len(r.legs) >= relayCheckStates {
		clear(r.legs)
	}
}

// muxConn is the shared socket as ICE reads it: relayed checks that must
// wait are dropped (the client sends them again).
type muxConn struct {
	net.PacketConn
	r *relayChecks
}

func (c *muxConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.r.hold(b[:n], addr) {
			return n, addr, err
		}
	}
}
