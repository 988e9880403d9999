//go:build !linux

package turn

import (
	"net"
	"sync/atomic"
)

// newUDPConn returns c as it is: batched I/O is Linux-only.
func newUDPConn(c *net.UDPConn, _, _ int, _ *atomic.Uint64) (net.PacketConn, error) {
	return c, nil
}
