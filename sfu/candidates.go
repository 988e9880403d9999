package sfu

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Client ICE candidates.
//
// A candidate is an address the client says it can be reached at; anybody
// can name any address. An ICE agent sends connectivity checks to every
// remote candidate it is given, so a client could aim the SFU's media port
// at a third party: a few candidates naming someone else's ports were
// enough for hundreds of STUN requests. The SFU therefore never gives pion
// a client's candidates, neither trickled nor inside an offer or answer.
// Its full ICE agent learns each client address from the client's own
// checks (a peer-reflexive candidate, RFC 8445 §7.3.1.3), which carry the
// ICE credentials of the SFU's answer or offer, and sends a check back
// before it uses the pair: an address is contacted only after it
// contacted the SFU, once per check it sent, and media goes only where a
// check was answered, so not even a client that spoofs its source address
// can turn the media toward someone else. This fits Tandem: the server has
// a public (or 1:1 NAT) address that clients always reach first, and that
// is all ICE needs from them. (An ICE-lite agent would also never check a
// named address, but it takes a nominated pair without checking it, which
// a client that spoofs source addresses could point at a victim.)
// A description saying a=ice-lite is refused: a lite client never checks,
// so it could not connect.
//
// Candidates are still screened and capped, so that a client sending
// nonsense or a flood hears so:
//
//   - malformed ones are refused with ErrBadCandidate;
//   - unusable ones are dropped and counted: mDNS names (.local, which the
//     SFU does not resolve), transports the SFU does not listen on (TCP),
//     and addresses no client has: unspecified, multicast, broadcast,
//     link-local, port 0, and loopback unless the SFU's own media address
//     is loopback;
//   - past maxRemoteCandidates distinct usable candidates in one ICE
//     generation (the remote ufrag) of one PeerConnection, more are refused
//     with ErrTooManyCandidates.

// maxRemoteCandidates bounds the distinct usable candidates one
// PeerConnection keeps per ICE generation. A client offers one candidate
// per address, transport and type: host candidates for each of its
// addresses, a server-reflexive one per NAT mapping, a relay one per TURN
// transport (this server offers three). A phone offers a handful, a
// multi-homed desktop with a VPN and both address families about twenty;
// TCP and mDNS candidates, dropped, do not count. 32 leaves room for that;
// the SFU learns addresses from the client's checks anyway, so a client
// whose extra candidates are refused still connects.
const maxRemoteCandidates = 32

// dropReason says why a candidate is not used.
type dropReason int

const (
	keepCandidate dropReason = iota
	dropMalformed            // does not parse
	dropMDNS                 // a .local name: the SFU does not resolve mDNS
	dropTransport            // TCP: the SFU listens on UDP only
	dropAddress              // no client's address (see usableAddr)
	dropOverLimit            // past maxRemoteCandidates
	numDropReasons
)

// CandidateDrops counts client ICE candidates the SFU did not use, by
// reason.
type CandidateDrops struct {
	// Malformed candidates did not parse; they were refused with an error.
	Malformed uint64
	// MDNS candidates named a .local host, which the SFU does not resolve.
	MDNS uint64
	// Transport candidates were TCP; the SFU takes media over UDP only.
	Transport uint64
	// Address candidates named an unspecified, multicast, broadcast,
	// link-local or (on a server not on loopback) loopback address, or port 0.
	Address uint64
	// OverLimit candidates came past the per-connection limit and were
	// refused with an error.
	OverLimit uint64
}

// candidatePolicy screens one SFU's client candidates and counts what it
// drops.
type candidatePolicy struct {
	// loopback: the SFU's media address is loopback, so clients on the
	// same host have loopback candidates and nothing else.
	loopback bool
	drops    [numDropReasons]atomic.Uint64
}

func (cp *candidatePolicy) count(why dropReason, n int) {
	if why != keepCandidate && n > 0 {
		cp.drops[why].Add(uint64(n))
	}
}

// totals returns the drop counters.
func (cp *candidatePolicy) totals() CandidateDrops {
	return CandidateDrops{
		Malformed: cp.drops[dropMalformed].Load(),
		MDNS:      cp.drops[dropMDNS].Load(),
		Transport: cp.drops[dropTransport].Load(),
		Address:   cp.drops[dropAddress].Load(),
		OverLimit: cp.drops[dropOverLimit].Load(),
	}
}

// check screens one candidate attribute value ("candidate:" prefix
// optional). For a usable one it returns the key that identifies it
// within an ICE generation and the ufrag it names, if it does; otherwise
// why it is not used, and for a malformed one the parse error. It counts
// nothing.
func (cp *candidatePolicy) check(value string) (key, ufrag string, why dropReason, err error) {
	c, err := ice.UnmarshalCandidate(value)
	if err != nil {
		return "", "", dropMalformed, err
	}
	if ext, ok := c.GetExtension("ufrag"); ok {
		ufrag = ext.Value
	}
	host := c.Address()
	if strings.HasSuffix(host, ".local") || strings.HasSuffix(host, ".invalid") {
		return "", "", dropMDNS, nil
	}
	if c.NetworkType().IsTCP() || c.TCPType() != ice.TCPTypeUnspecified {
		return "", "", dropTransport, nil
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		// pion parses non-host candidates' addresses as IPs already; a
		// host name anywhere else is no address the SFU would use.
		return "", "", dropMalformed, fmt.Errorf("address %q is not an IP address", host)
	}
	if !cp.usableAddr(addr.Unmap(), c.Port()) {
		return "", "", dropAddress, nil
	}
	key = c.Type().String() + " " + net.JoinHostPort(addr.Unmap().String(), strconv.Itoa(c.Port()))
	return key, ufrag, keepCandidate, nil
}

// usableAddr reports whether a client could be at addr:port.
func (cp *candidatePolicy) usableAddr(addr netip.Addr, port int) bool {
	switch {
	case port <= 0 || port > 65535,
		!addr.IsValid(), addr.IsUnspecified(), addr.IsMulticast(),
		addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}),
		addr.IsLinkLocalUnicast(),
		addr.IsLoopback() && !cp.loopback:
		return false
	}
	return true
}

// screened is what screening a batch of candidates left: the usable
// ones, and how many were dropped for each reason.
type screened struct {
	keep  []screenedCandidate
	drops [numDropReasons]int
}

// screenedCandidate is a usable candidate, or an empty one (end of
// candidates, key ""), with its key and the ufrag it names.
type screenedCandidate struct {
	key, ufrag string // key "" is the end of candidates
}

// distinct returns how many distinct usable candidates s holds.
func (s *screened) distinct() int {
	seen := make(map[string]struct{}, len(s.keep))
	for _, k := range s.keep {
		if k.key != "" {
			seen[k.key] = struct{}{}
		}
	}
	return len(seen)
}

// screen checks trickled candidates. An empty candidate (end of
// candidates) is kept. A malformed one fails the whole batch with
// ErrBadCandidate.
func (cp *candidatePolicy) screen(name string, cs []webrtc.ICECandidateInit) (screened, error) {
	var s screened
	for _, c := range cs {
		if c.Candidate == "" {
			s.keep = append(s.keep, screenedCandidate{})
			continue
		}
		key, ufrag, why, err := cp.check(c.Candidate)
		if why == dropMalformed {
			cp.count(dropMalformed, 1)
			return screened{}, fmt.Errorf("%w: %s: %q: %w", ErrBadCandidate, name, c.Candidate, err)
		}
		if why != keepCandidate {
			s.drops[why]++
			continue
		}
		s.keep = append(s.keep, screenedCandidate{key: key, ufrag: ufrag})
	}
	return s, nil
}

// commit counts what screening dropped.
func (cp *candidatePolicy) commit(s *screened) {
	for why, n := range s.drops {
		cp.count(dropReason(why), n)
	}
}

// screenSDP checks the candidates of a client's offer or answer d, whose
// text is desc: a malformed one refuses the description. It returns the
// text without any candidate (pion is never given one) and the keys of the
// usable ones, for the caller's limit; it commits the drops once the
// description is used.
func (cp *candidatePolicy) screenSDP(desc string, d *sdp.SessionDescription) (string, screened, error) {
	var s screened
	any := false
	walk := func(attrs []sdp.Attribute) error {
		for _, a := range attrs {
			if !a.IsICECandidate() {
				continue
			}
			any = true
			key, _, why, err := cp.check(a.Value)
			switch why {
			case keepCandidate:
				s.keep = append(s.keep, screenedCandidate{key: key})
			case dropMalformed:
				cp.count(dropMalformed, 1)
				return fmt.Errorf("%w: %w: %q: %w", ErrBadSDP, ErrBadCandidate, a.Value, err)
			default:
				s.drops[why]++
			}
		}
		return nil
	}
	if err := walk(d.Attributes); err != nil {
		return "", screened{}, err
	}
	for _, m := range d.MediaDescriptions {
		if err := walk(m.Attributes); err != nil {
			return "", screened{}, err
		}
	}
	if !any {
		return desc, s, nil
	}
	clean := withoutCandidates(desc)
	// What pion will parse must hold no candidate: check the result as it
	// will see it.
	var again sdp.SessionDescription
	if err := again.UnmarshalString(clean); err != nil {
		return "", screened{}, fmt.Errorf("%w: %w", ErrBadSDP, err)
	}
	for _, attrs := range append([][]sdp.Attribute{again.Attributes}, mediaAttributes(&again)...) {
		for _, a := range attrs {
			if a.IsICECandidate() {
				return "", screened{}, fmt.Errorf("%w: %w: cannot remove candidate %q", ErrBadSDP, ErrBadCandidate, a.Value)
			}
		}
	}
	return clean, s, nil
}

func mediaAttributes(d *sdp.SessionDescription) [][]sdp.Attribute {
	out := make([][]sdp.Attribute, 0, len(d.MediaDescriptions))
	for _, m := range d.MediaDescriptions {
		out = append(out, m.Attributes)
	}
	return out
}

// withoutCandidates returns desc without its a=candidate lines.
func withoutCandidates(desc string) string {
	var b strings.Builder
	b.Grow(len(desc))
	for _, line := range strings.SplitAfter(desc, "\n") {
		if strings.HasPrefix(strings.TrimLeft(line, " \t"), "a=candidate:") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}
