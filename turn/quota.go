package turn

import (
	"net"
	"net/netip"
	"sync"
	"time"

	pionturn "github.com/pion/turn/v4"

	"github.com/tandemcall/tandem/internal/turncred"
)

// allocKey identifies a client 5-tuple as pion does: the client transport
// and the client's address (the server side is implied by the transport).
type allocKey struct {
	tr  transport
	src string // srcKey of the client address
}

// registry tracks allocations, permissions and stream connections from
// pion's events. Its lock is held only for map updates; nothing inside
// calls back into pion or does I/O.
type registry struct {
	mu      sync.Mutex
	allocs  map[allocKey]string // username of the allocation
	perUser map[string]int      // user id → live allocations
	// reserved holds, per user, the clients (srcKey) whose Allocate passed
	// the quota and is being created, with when it passed: they count
	// against the quota until OnAllocationCreated or reservationTTL.
	reserved map[string]map[string]time.Time
	perms    map[allocKey]map[netip.Addr]struct{}
	conns    map[allocKey]*streamConn
	relays   map[allocKey]*relayConn // each allocation's relay socket
}

func newRegistry() *registry {
	return &registry{
		allocs:   make(map[allocKey]string),
		perUser:  make(map[string]int),
		reserved: make(map[string]map[string]time.Time),
		perms:    make(map[allocKey]map[netip.Addr]struct{}),
		conns:    make(map[allocKey]*streamConn),
		relays:   make(map[allocKey]*relayConn),
	}
}

// hasAllocation reports whether the client has an allocation made with username.
func (r *registry) hasAllocation(tr transport, src, username string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, ok := r.allocs[allocKey{tr, src}]
	return ok && u == username
}

// hasAllocationFrom reports whether the client has any allocation.
func (r *registry) hasAllocationFrom(tr transport, src string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.allocs[allocKey{tr, src}]
	return ok
}

func userOf(username string) string {
	if _, user, err := turncred.ParseUsername(username); err == nil {
		return user
	}
	return username
}

// transportOf tells the client transport from the server side address of
// an allocation's 5-tuple.
func (s *Server) transportOf(dst net.Addr) transport {
	if a, ok := dst.(*net.TCPAddr); ok {
		if s.tlsPort != 0 && a.Port == s.tlsPort {
			return transportTLS
		}
		return transportTCP
	}
	return transportUDP
}

// eventHandler returns pion's allocation lifecycle callbacks.
func (s *Server) eventHandler() pionturn.EventHandler {
	return pionturn.EventHandler{
		OnAllocationCreated: func(src, dst net.Addr, _, username, _ string, relay net.Addr, _ int) {
			tr := s.transportOf(dst)
			k := allocKey{tr, srcKey(src)}
			u := userOf(username)
			var rc *relayConn
			if a, ok := relay.(*net.UDPAddr); ok {
				rc = s.relays.relayOn(a.Port)
			}
			s.reg.mu.Lock()
			s.reg.allocs[k] = username
			if rc != nil {
				s.reg.relays[k] = rc
			}
			s.reg.perUser[u]++
			s.reg.unreserveLocked(u, k.src)
			c := s.reg.conns[k]
			s.reg.mu.Unlock()
			if c != nil {
				c.allocated.Store(true)
			}
			s.metrics.allocations[tr].Add(1)
			s.metrics.allocationsTotal[tr].Add(1)
		},
		OnAllocationDeleted: func(src, dst net.Addr, _, username, _ string) {
			tr := s.transportOf(dst)
			k := allocKey{tr, srcKey(src)}
			s.reg.mu.Lock()
			_, ok := s.reg.allocs[k]
			if ok {
				delete(s.reg.allocs, k)
				delete(s.reg.perms, k)
				delete(s.reg.relays, k)
				u := userOf(username)
				if s.reg.perUser[u]--; s.reg.perUser[u] <= 0 {
					delete(s.reg.perUser, u)
				}
			}
			s.reg.mu.Unlock()
			if ok {
				s.metrics.allocations[tr].Add(-1)
			}
		},
		OnPermissionCreated: func(src, dst net.Addr, _, _, _ string, _ net.Addr, peer net.IP) {
			k := allocKey{s.transportOf(dst), srcKey(src)}
			ip, _ := netip.AddrFromSlice(peer)
			s.reg.mu.Lock()
			defer s.reg.mu.Unlock()
			if _, ok := s.reg.allocs[k]; !ok {
				return
			}
			set := s.reg.perms[k]
			if set == nil {
				set = make(map[netip.Addr]struct{})
				s.reg.perms[k] = set
			}
			set[ip.Unmap()] = struct{}{}
		},
		OnPermissionDeleted: func(src, dst net.Addr, _, _, _ string, _ net.Addr, peer net.IP) {
			k := allocKey{s.transportOf(dst), srcKey(src)}
			ip, _ := netip.AddrFromSlice(peer)
			s.reg.mu.Lock()
			defer s.reg.mu.Unlock()
			delete(s.reg.perms[k], ip.Unmap())
		},
	}
}

// reservationTTL bounds how long an Allocate that passed the quota holds
// its place: pion creates the allocation within milliseconds, or failed
// (a relay port it could not get) and never will.
const reservationTTL = 5 * time.Second

// quotaHandler is pion's QuotaHandler: it refuses an allocation (486) when
// the user already has MaxAllocationsPerUser, counting the ones that
// passed this check and are being created, so that requests racing on
// different sockets cannot overshoot. The total is enforced by the relay
// generator, which pion answers with 508.
func (s *Server) quotaHandler(username, _ string, src net.Addr) bool {
	u, key, now := userOf(username), srcKey(src), s.cfg.Now()
	s.reg.mu.Lock()
	defer s.reg.mu.Unlock()
	res := s.reg.reserved[u]
	for k, at := range res {
		if now.Sub(at) > reservationTTL {
			delete(res, k)
		}
	}
	n := s.reg.perUser[u] + len(res)
	if _, again := res[key]; again {
		n-- // a retransmitted Allocate holds the place it already has
	}
	if n >= s.cfg.MaxAllocationsPerUser {
		s.metrics.quotaRejected(quotaUserAllocations)
		return false
	}
	if res == nil {
		res = make(map[string]time.Time)
		s.reg.reserved[u] = res
	}
	res[key] = now
	return true
}

// unreserveLocked ends the reservation of client src for user u, whose
// allocation now exists. The caller holds r.mu.
func (r *registry) unreserveLocked(u, src string) {
	if res := r.reserved[u]; res != nil {
		delete(res, src)
		if len(res) == 0 {
			delete(r.reserved, u)
		}
	}
}

// permissionHandler returns pion's PermissionHandler for one listener. It
// applies the peer policy (the inspector has already answered denied
// peers with 403; this is the second line) and the per-allocation
// permission cap, refreshes of existing permissions excepted.
func (s *Server) permissionHandler(tr transport) func(net.Addr, net.IP) bool {
	return func(client net.Addr, peer net.IP) bool {
		ip, _ := netip.AddrFromSlice(peer)
		ip = ip.Unmap()
		if ok, reason := peerIPAllowed(ip, s.cfg.NodePeers, s.cfg.AllowCIDRs, s.cfg.DenyCIDRs); !ok {
			s.metrics.peerDeniedFor(reason)
			return false
		}
		k := allocKey{tr, srcKey(client)}
		s.reg.mu.Lock()
		set := s.reg.perms[k]
		_, exists := set[ip]
		full := !exists && len(set) >= s.cfg.MaxPermissionsPerAllocation
		s.reg.mu.Unlock()
		if full {
			s.metrics.quotaRejected(quotaPermissions)
			return false
		}
		return true
	}
}
