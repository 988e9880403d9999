//go:build !linux

// Package udpx is a UDP socket for relays and media servers; batching is
// Linux-only, so elsewhere New returns the socket as it is.
package udpx

import (
	"net"
	"sync/atomic"
)

// Options size a socket's batches.
type Options struct {
	ReadBatch   int
	WriteQueue  int
	MaxDatagram int
	Dropped     *atomic.Uint64
	DisableGSO  bool
}

// New returns c as it is.
func New(c *net.UDPConn, _ Options) (net.PacketConn, error) { return c, nil }

// SetFilter reports false: filters need the Linux socket.
func SetFilter(net.PacketConn, Filter) bool { return false }
