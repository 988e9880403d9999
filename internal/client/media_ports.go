package client

import (
	"fmt"

	"github.com/pion/webrtc/v4"
)

// PortRange is an inclusive range of local UDP ports. The zero value means
// any port the kernel picks.
type PortRange struct {
	Min, Max uint16
}

// set reports whether r restricts ports at all.
func (r PortRange) set() bool { return r != PortRange{} }

// check rejects a range that is half set or upside down.
func (r PortRange) check() error {
	if r.set() && (r.Min == 0 || r.Max < r.Min) {
		return fmt.Errorf("%w: port range %d–%d", ErrMediaOptions, r.Min, r.Max)
	}
	return nil
}

// apply makes ICE bind its UDP sockets in r, so that everything the SFU
// sends to this PeerConnection has a destination port in r: a test can
// shape that traffic (tc, nftables) without touching anything else.
func (r PortRange) apply(se *webrtc.SettingEngine) error {
	if !r.set() {
		return nil
	}
	if err := se.SetEphemeralUDPPortRange(r.Min, r.Max); err != nil {
		return fmt.Errorf("ice port range %d–%d: %w", r.Min, r.Max, err)
	}
	return nil
}
