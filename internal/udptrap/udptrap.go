// Package udptrap is a test kit: UDP sockets on loopback that count what
// arrives. Tests name their ports as a client's ICE candidates and check
// that the server never sends them anything.
package udptrap

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Trap is a set of bound UDP sockets.
type Trap struct {
	conns   []*net.UDPConn
	packets atomic.Int64
	wg      sync.WaitGroup
}

// New binds n sockets on 127.0.0.1; they close at the end of the test.
func New(t testing.TB, n int) *Trap {
	t.Helper()
	tr := &Trap{}
	for range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			tr.Close()
			t.Fatal(err)
		}
		tr.conns = append(tr.conns, c)
		tr.wg.Go(func() {
			buf := make([]byte, 2048)
			for {
				if _, _, err := c.ReadFromUDP(buf); err != nil {
					return
				}
				tr.packets.Add(1)
			}
		})
	}
	t.Cleanup(tr.Close)
	return tr
}

// Ports returns the sockets' ports.
func (tr *Trap) Ports() []int {
	out := make([]int, len(tr.conns))
	for i, c := range tr.conns {
		out[i] = c.LocalAddr().(*net.UDPAddr).Port
	}
	return out
}

// Addr returns the i-th socket's address.
func (tr *Trap) Addr(i int) *net.UDPAddr {
	return tr.conns[i].LocalAddr().(*net.UDPAddr) //nolint:forcetypeassert // a UDP socket's address
}

// Packets returns how many datagrams have arrived on any socket.
func (tr *Trap) Packets() int64 { return tr.packets.Load() }

// Candidate returns an ICE host candidate attribute value for the i-th
// socket, as it would follow "a=candidate:" in SDP.
func (tr *Trap) Candidate(i int) string {
	return HostCandidate(i, "127.0.0.1", tr.Ports()[i%len(tr.conns)])
}

// HostCandidate returns a UDP host candidate attribute value with
// foundation n.
func HostCandidate(n int, ip string, port int) string {
	return fmt.Sprintf("%d 1 udp 2130706431 %s %d typ host", n, ip, port)
}

// Close closes the sockets and waits for their readers.
func (tr *Trap) Close() {
	for _, c := range tr.conns {
		_ = c.Close()
	}
	tr.wg.Wait()
}
