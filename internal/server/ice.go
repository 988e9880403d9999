package server

import (
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/tandemcall/tandem/internal/turncred"
	"github.com/tandemcall/tandem/signaling"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// turnEndpoints are the embedded TURN server's client-facing ports; zero
// means that transport is off.
type turnEndpoints struct {
	host                      string // configured public host; "" = the request's host
	udpPort, tcpPort, tlsPort int
	secret                    []byte
	ttl                       time.Duration
	now                       func() time.Time
}

// iceProvider hands each device the configured ICE servers plus, when the
// embedded TURN server runs, STUN and TURN on it with fresh credentials,
// refreshed at half their lifetime.
func iceProvider(static []protocol.ICEServer, t *turnEndpoints) signaling.ICEProvider {
	return func(user, host string) ([]protocol.ICEServer, time.Duration) {
		out := slices.Clone(static)
		if t == nil {
			return out, 0
		}
		h := t.host
		if h == "" {
			h = host
		}
		hp := func(port int) string { return net.JoinHostPort(h, fmt.Sprint(port)) }
		var stun, turn []string
		if t.udpPort != 0 {
			stun = append(stun, "stun:"+hp(t.udpPort))
			turn = append(turn, "turn:"+hp(t.udpPort)+"?transport=udp")
		}
		if t.tcpPort != 0 {
			turn = append(turn, "turn:"+hp(t.tcpPort)+"?transport=tcp")
		}
		if t.tlsPort != 0 {
			turn = append(turn, "turns:"+hp(t.tlsPort)+"?transport=tcp")
		}
		if len(stun) > 0 {
			out = append(out, protocol.ICEServer{URLs: stun})
		}
		if len(turn) > 0 {
			name, pass, _ := turncred.Mint(t.secret, user, t.now(), t.ttl)
			out = append(out, protocol.ICEServer{URLs: turn, Username: name, Credential: pass})
		}
		return out, t.ttl / 2
	}
}
