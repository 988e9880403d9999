package turn

import (
	"encoding/binary"
	"net"
	"net/netip"
	"time"

	"github.com/pion/stun/v3"

	"github.com/tandemcall/tandem/internal/turncred"
)

// replier sends a response the inspector builds itself back to a client.
type replier interface {
	reply(b []byte, to net.Addr)
}

// inspect looks at one client message before pion does and reports
// whether pion should see it. It verifies MESSAGE-INTEGRITY against every
// configured secret, refuses expired usernames that have no allocation,
// rate limits sources that keep failing, and answers CreatePermission and
// ChannelBind requests for denied peers with 403 Forbidden.
//
// b is not retained; tr and src identify the client.
func (s *Server) inspect(b []byte, src net.Addr, tr transport, w replier) bool {
	if len(b) == 0 {
		return false
	}
	if isChannelData(b) {
		return true
	}
	if len(b) < stunHeaderLen || b[0]&0xC0 != 0 ||
		binary.BigEndian.Uint32(b[4:8]) != stunMagicCookie {
		return false
	}
	// Only requests authenticate; indications (Send) and anything else go
	// to pion, which checks them against the allocation. A Send to one of
	// the node's addresses at another port than its media port is dropped
	// here: the permission pion checks covers every port of an address.
	t := stun.MessageType{}
	t.ReadValue(binary.BigEndian.Uint16(b[0:2]))
	if t.Class == stun.ClassIndication && t.Method == stun.MethodSend && len(s.cfg.NodePeers) > 0 {
		if peer, ok := firstXORPeer(b); ok && s.nodePortDenied(peer.Addr(), peer.Port()) {
			s.nodePortDenial("send", peer)
			return false
		}
	}
	if t.Class != stun.ClassRequest || t.Method == stun.MethodBinding {
		return true
	}

	// The integrity check rewrites the header length while it runs and
	// appends to the slice, so it works on a private copy.
	m := &stun.Message{Raw: append(make([]byte, 0, len(b)), b...)}
	if err := m.Decode(); err != nil {
		return false
	}
	now := s.cfg.Now()
	ip := addrIP(src)
	sk := srcKey(src)
	blocked := s.limiter.blocked(ip, now)

	if !m.Contains(stun.AttrMessageIntegrity) {
		// The first, unauthenticated request of a transaction: pion answers
		// 401 with a nonce, unless this source is over its budget.
		if blocked {
			s.metrics.authResult(authRateLimited)
			return false
		}
		return true
	}
	if blocked && !s.reg.hasAllocationFrom(tr, sk) {
		s.metrics.authResult(authRateLimited)
		return false
	}

	var username stun.Username
	var realm stun.Realm
	if username.GetFrom(m) != nil || realm.GetFrom(m) != nil || realm.String() != s.cfg.Realm {
		s.authFailed(authMalformed, ip, now)
		s.replyError(w, src, m, stun.CodeBadRequest, nil)
		return false
	}
	user := username.String()
	expiry, id, err := turncred.ParseUsername(user)
	if err != nil {
		s.authFailed(authMalformed, ip, now)
		s.replyUnauthorized(w, src, m)
		return false
	}
	var key stun.MessageIntegrity
	for _, secret := range s.cfg.Secrets {
		k := stun.NewLongTermIntegrity(user, s.cfg.Realm, turncred.Password(secret, user))
		if k.Check(m) == nil {
			key = k
			break
		}
	}
	if key == nil {
		s.authFailed(authBadIntegrity, ip, now)
		s.replyUnauthorized(w, src, m)
		return false
	}
	// A revoked credential is genuine: it does not count against its
	// source's failure budget, which others behind the same address share.
	if s.cfg.Revoked != nil && s.cfg.Revoked(id, expiry) {
		s.metrics.authResult(authRevoked)
		s.replyUnauthorized(w, src, m)
		return false
	}
	// Expiry is checked when the allocation is created: a call that lasts
	// longer than its credential keeps refreshing it.
	if now.After(expiry) && !s.reg.hasAllocation(tr, sk, user) {
		s.authFailed(authExpired, ip, now)
		s.replyUnauthorized(w, src, m)
		return false
	}
	s.metrics.authResult(authOK)
	s.matches.put(matchKey{src: sk, username: user}, key, now)

	if t.Method == stun.MethodCreatePermission || t.Method == stun.MethodChannelBind {
		if reason, denied := s.deniedPeer(m, t.Method == stun.MethodChannelBind); denied {
			s.metrics.peerDeniedFor(reason)
			s.log.Debug("turn: peer denied", "client", src.String(), "reason", reason)
			s.replyError(w, src, m, stun.CodeForbidden, key)
			return false
		}
	}
	return true
}

// deniedPeer checks every XOR-PEER-ADDRESS of m against the peer policy:
// the address alone for a permission, the address and port for a channel
// bind, which relays to that port only.
func (s *Server) deniedPeer(m *stun.Message, withPort bool) (reason string, denied bool) {
	for _, a := range m.Attributes {
		if a.Type != stun.AttrXORPeerAddress {
			continue
		}
		one := &stun.Message{TransactionID: m.TransactionID}
		one.Add(stun.AttrXORPeerAddress, a.Value)
		var peer stun.XORMappedAddress
		if err := peer.GetFromAs(one, stun.AttrXORPeerAddress); err != nil {
			continue // pion answers 400 for an unreadable address
		}
		ip, _ := netip.AddrFromSlice(peer.IP)
		var ok bool
		var why string
		if withPort && peer.Port >= 0 && peer.Port <= 0xFFFF {
			ok, why = PeerAddrAllowed(netip.AddrPortFrom(ip, uint16(peer.Port)), s.cfg.NodePeers, s.cfg.AllowCIDRs, s.cfg.DenyCIDRs)
		} else {
			ok, why = peerIPAllowed(ip, s.cfg.NodePeers, s.cfg.AllowCIDRs, s.cfg.DenyCIDRs)
		}
		if !ok {
			return why, true
		}
	}
	return "", false
}

func (s *Server) authFailed(r authResult, ip netip.Addr, now time.Time) {
	s.metrics.authResult(r)
	s.limiter.fail(ip, now)
}

// replyUnauthorized answers 401 with the realm and the client's nonce, as
// RFC 8489 §9.2.4 asks for a request whose credentials do not verify.
func (s *Server) replyUnauthorized(w replier, to net.Addr, m *stun.Message) {
	setters := []stun.Setter{
		stun.NewTransactionIDSetter(m.TransactionID),
		stun.NewType(m.Type.Method, stun.ClassErrorResponse),
		&stun.ErrorCodeAttribute{Code: stun.CodeUnauthorized},
		stun.NewRealm(s.cfg.Realm),
	}
	var nonce stun.Nonce
	if nonce.GetFrom(m) == nil {
		setters = append(setters, nonce)
	}
	s.send(w, to, setters...)
}

// replyError answers m with an error code, signed with key when the
// request was authenticated.
func (s *Server) replyError(w replier, to net.Addr, m *stun.Message, code stun.ErrorCode, key stun.MessageIntegrity) {
	setters := []stun.Setter{
		stun.NewTransactionIDSetter(m.TransactionID),
		stun.NewType(m.Type.Method, stun.ClassErrorResponse),
		&stun.ErrorCodeAttribute{Code: code},
	}
	if key != nil {
		setters = append(setters, key, stun.Fingerprint)
	}
	s.send(w, to, setters...)
}

func (s *Server) send(w replier, to net.Addr, setters ...stun.Setter) {
	msg, err := stun.Build(setters...)
	if err != nil {
		return
	}
	w.reply(msg.Raw, to)
}
