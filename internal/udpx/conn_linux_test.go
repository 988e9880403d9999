//go:build linux

package udpx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestUDPConn(t *testing.T, network, addr string, batch, queue int) (*udpConn, *atomic.Uint64) {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	var dropped atomic.Uint64
	pc, err := New(c.(*net.UDPConn), Options{ReadBatch: batch, WriteQueue: queue, Dropped: &dropped})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc.(*udpConn), &dropped
}

// Datagrams from several senders arrive whole, in order per sender, each
// with its sender's address, across many recvmmsg batches.
func TestUDPConnBatchedReads(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{
		{"udp4", "127.0.0.1:0"},
		{"udp6", "[::1]:0"},
		{"udp", "[::]:0"}, // dual stack: IPv4 senders appear as mapped addresses
	} {
		t.Run(tc.addr, func(t *testing.T) {
			c, _ := newTestUDPConn(t, tc.network, tc.addr, 8, 8)
			port := c.LocalAddr().(*net.UDPAddr).Port
			target := &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: port}
			sendNet := "udp4"
			if tc.network == "udp6" {
				target.IP, sendNet = net.IPv6loopback, "udp6"
			}
			const senders, each = 4, 200
			conns := make([]net.PacketConn, senders)
			for i := range conns {
				s, err := net.ListenPacket(sendNet, net.JoinHostPort(target.IP.String(), "0"))
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				conns[i] = s
			}
			// Rounds of 4 messages per sender: each round arrives at once
			// (several recvmmsg batches' worth), and the next is sent only
			// once it was read, so a slow reader never overflows the
			// socket buffer.
			const round = 4
			drained := make(chan struct{}, 1)
			go func() {
				for k := range each {
					for i, s := range conns {
						msg := fmt.Appendf(nil, "%d:%d:%s", i, k, bytes.Repeat([]byte{'x'}, k))
						_, _ = s.WriteTo(msg, target)
					}
					if (k+1)%round == 0 && k+1 < each {
						select {
						case <-drained:
						case <-time.After(10 * time.Second):
							return
						}
					}
				}
			}()
			next := make([]int, senders)
			buf := make([]byte, 1600)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for r := range senders * each {
				if r > 0 && r%(senders*round) == 0 {
					drained <- struct{}{}
				}
				n, from, err := c.ReadFrom(buf)
				if err != nil {
					t.Fatalf("read: %v (next %v)", err, next)
				}
				var i, k int
				if _, err := fmt.Sscanf(string(buf[:n]), "%d:%d:", &i, &k); err != nil {
					t.Fatalf("garbled datagram %q", buf[:n])
				}
				if k != next[i] {
					t.Fatalf("sender %d: got message %d, want %d", i, k, next[i])
				}
				next[i]++
				want := conns[i].LocalAddr().(*net.UDPAddr)
				got := from.(*net.UDPAddr)
				if !got.IP.Equal(want.IP) || got.Port != want.Port {
					t.Fatalf("sender %d: from %v, want %v", i, got, want)
				}
				if wantLen := len(fmt.Sprintf("%d:%d:", i, k)) + k; n != wantLen {
					t.Fatalf("length %d, want %d", n, wantLen)
				}
			}
		})
	}
}

// A datagram longer than the caller's buffer is truncated, as a plain UDP
// socket does, and the next datagram is unaffected.
func TestUDPConnTruncates(t *testing.T) {
	c, _ := newTestUDPConn(t, "udp4", "127.0.0.1:0", 4, 4)
	s, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, _ = s.WriteTo(bytes.Repeat([]byte{'a'}, 100), c.LocalAddr())
	_, _ = s.WriteTo([]byte("next"), c.LocalAddr())
	buf := make([]byte, 10)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := c.ReadFrom(buf); err != nil || n != 10 {
		t.Fatalf("got %d, %v; want 10 bytes", n, err)
	}
	if n, _, err := c.ReadFrom(buf); err != nil || string(buf[:n]) != "next" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
}

// Many goroutines writing at once lose nothing: packets queued behind the
// writer in the kernel are sent by it, and a full queue sends directly.
func TestUDPConnCombinedWrites(t *testing.T) {
	c, dropped := newTestUDPConn(t, "udp4", "127.0.0.1:0", 4, 4)
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	_ = recv.SetReadBuffer(8 << 20)
	const writers, each = 8, 500
	seen := make(chan [2]int, writers*each)
	// Writers stay at most inFlight packets ahead of the reader, so the
	// receiving socket's buffer never overflows however slow the reader.
	const inFlight = 100
	var sent, read atomic.Int64
	go func() {
		buf := make([]byte, 2000)
		for {
			n, err := recv.Read(buf)
			if err != nil {
				close(seen)
				return
			}
			if n != 1000 {
				continue
			}
			read.Add(1)
			seen <- [2]int{int(binary.BigEndian.Uint32(buf)), int(binary.BigEndian.Uint32(buf[4:]))}
		}
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			msg := make([]byte, 1000)
			for k := range each {
				for deadline := time.Now().Add(10 * time.Second); sent.Load()-read.Load() > inFlight && time.Now().Before(deadline); {
					time.Sleep(50 * time.Microsecond)
				}
				sent.Add(1)
				binary.BigEndian.PutUint32(msg, uint32(w))
				binary.BigEndian.PutUint32(msg[4:], uint32(k))
				if _, err := c.WriteTo(msg, recv.LocalAddr()); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	got := map[[2]int]bool{}
	timeout := time.After(10 * time.Second)
	for len(got) < writers*each {
		select {
		case p := <-seen:
			got[p] = true
		case <-timeout:
			t.Fatalf("received %d of %d distinct packets; %d dropped", len(got), writers*each, dropped.Load())
		}
	}
	if d := dropped.Load(); d != 0 {
		t.Fatalf("%d packets dropped", d)
	}
}

// Writes to an address of the wrong family or a non-UDP address fail
// clearly; the socket keeps working.
func TestUDPConnWriteErrors(t *testing.T) {
	c, _ := newTestUDPConn(t, "udp4", "127.0.0.1:0", 4, 4)
	if _, err := c.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv6loopback, Port: 9}); err == nil {
		t.Fatal("IPv6 destination on an IPv4 socket: no error")
	}
	if _, err := c.WriteTo([]byte("x"), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); err == nil {
		t.Fatal("TCP address: no error")
	}
	if _, err := c.WriteTo([]byte("ok"), c.LocalAddr()); err != nil {
		t.Fatalf("write to self: %v", err)
	}
	buf := make([]byte, 10)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := c.ReadFrom(buf); err != nil || string(buf[:n]) != "ok" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
}

// Close wakes a blocked reader with net.ErrClosed, and deadlines work.
func TestUDPConnCloseAndDeadline(t *testing.T) {
	c, _ := newTestUDPConn(t, "udp4", "127.0.0.1:0", 4, 4)
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var ne net.Error
	if _, _, err := c.ReadFrom(make([]byte, 10)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("deadline: got %v, want a timeout", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 10))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	_ = c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("got %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFrom still blocked after Close")
	}
}

// Corked writes wait for the matching Uncork and then all arrive, in order,
// from one sendmmsg; nested corks send at the outermost Uncork; more than
// the queue holds is sent at once rather than dropped.
func TestUDPConnCork(t *testing.T) {
	c, dropped := newTestUDPConn(t, "udp4", "127.0.0.1:0", 4, 8)
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	readAll := func(want int) []byte {
		t.Helper()
		var got []byte
		buf := make([]byte, 100)
		_ = recv.SetReadDeadline(time.Now().Add(2 * time.Second))
		for len(got) < want {
			n, err := recv.Read(buf)
			if err != nil {
				t.Fatalf("read after %d of %d: %v", len(got), want, err)
			}
			got = append(got, buf[:n]...)
		}
		return got
	}
	nothingYet := func() {
		t.Helper()
		_ = recv.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if n, err := recv.Read(make([]byte, 100)); err == nil {
			t.Fatalf("received %d bytes while corked", n)
		}
	}

	c.Cork()
	c.Cork()
	for i := range 5 {
		if _, err := c.WriteTo([]byte{byte(i)}, recv.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	nothingYet()
	c.Uncork()
	nothingYet()
	c.Uncork()
	if got := readAll(5); !bytes.Equal(got, []byte{0, 1, 2, 3, 4}) {
		t.Fatalf("received %v, want 0..4 in order", got)
	}

	// Twelve writes into a queue of eight: the last four go out at once.
	c.Cork()
	for i := range 12 {
		if _, err := c.WriteTo([]byte{byte(i)}, recv.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	early := readAll(4)
	c.Uncork()
	if got := append(early, readAll(8)...); len(got) != 12 {
		t.Fatalf("received %d datagrams, want 12", len(got))
	}
	if d := dropped.Load(); d != 0 {
		t.Fatalf("%d dropped", d)
	}
}
