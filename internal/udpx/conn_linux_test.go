//go:build linux

package udpx

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
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

// newTestConn is newTestUDPConn with all of Options.
func newTestConn(tb testing.TB, network, addr string, o Options) *udpConn {
	tb.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		tb.Skipf("listen %s %s: %v", network, addr, err)
	}
	_ = c.(*net.UDPConn).SetReadBuffer(4 << 20)
	pc, err := New(c.(*net.UDPConn), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = pc.Close() })
	return pc.(*udpConn)
}

// newReceiver is a plain UDP socket on the loopback address of network.
func newReceiver(tb testing.TB, network string) *net.UDPConn {
	tb.Helper()
	ip := net.IPv4(127, 0, 0, 1)
	if network == "udp6" {
		ip = net.IPv6loopback
	}
	r, err := net.ListenUDP(network, &net.UDPAddr{IP: ip})
	if err != nil {
		tb.Skipf("listen %s: %v", network, err)
	}
	_ = r.SetReadBuffer(4 << 20)
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

// kernelHasGSO reports whether UDP sockets take UDP_SEGMENT, asking the
// kernel directly rather than trusting New's probe.
func kernelHasGSO(t *testing.T) bool {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	_, err = unix.GetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	return err == nil
}

// markFilter consumes datagrams starting with 'F', recording them, and
// checks that Flush follows consumption.
type markFilter struct {
	t          *testing.T
	consumed   [][]byte
	from       []string
	sinceFlush int
	flushes    int
	flushed    chan struct{} // signalled on every Flush, if not nil
}

func (f *markFilter) Consume(b []byte, from *net.UDPAddr) bool {
	if len(b) == 0 || b[0] != 'F' {
		return false
	}
	f.consumed = append(f.consumed, append([]byte(nil), b...))
	f.from = append(f.from, from.String())
	f.sinceFlush++
	return true
}

func (f *markFilter) Flush() {
	if f.sinceFlush == 0 {
		f.t.Error("Flush with nothing consumed since the last Flush")
	}
	f.sinceFlush = 0
	f.flushes++
	if f.flushed != nil {
		select {
		case f.flushed <- struct{}{}:
		default:
		}
	}
}

// ReadFrom returns exactly the datagrams the filter declines, in order;
// the filter sees the others, whole, with their source, and is flushed
// before a declined datagram is returned and before the reader blocks.
func TestUDPConnFilter(t *testing.T) {
	c := newTestConn(t, "udp4", "127.0.0.1:0", Options{ReadBatch: 8})
	if SetFilter(newReceiver(t, "udp4"), &markFilter{}) {
		t.Fatal("SetFilter took a plain *net.UDPConn")
	}
	f := &markFilter{t: t, flushed: make(chan struct{}, 1)}
	if !SetFilter(c, f) {
		t.Fatal("SetFilter refused a udpx socket")
	}
	s := newReceiver(t, "udp4")
	// Every third datagram is marked, and so is a run of 20 that fills
	// whole batches; the last is not, so all marked ones precede it.
	const n = 100
	var want, wantConsumed [][]byte
	for i := range n {
		msg := fmt.Appendf(nil, "x%03d:%s", i, bytes.Repeat([]byte{byte(i)}, i))
		if (i%3 == 0 || (i >= 40 && i < 60)) && i != n-1 {
			msg[0] = 'F'
			wantConsumed = append(wantConsumed, msg)
		} else {
			want = append(want, msg)
		}
		if _, err := s.WriteTo(msg, c.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 1600)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i, w := range want {
		k, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if !bytes.Equal(buf[:k], w) {
			t.Fatalf("read %d: got %q, want %q", i, buf[:k], w)
		}
		if from.String() != s.LocalAddr().String() {
			t.Fatalf("read %d: from %v, want %v", i, from, s.LocalAddr())
		}
		if f.sinceFlush != 0 {
			t.Fatalf("read %d returned with %d consumed datagrams not flushed", i, f.sinceFlush)
		}
	}
	if len(f.consumed) != len(wantConsumed) {
		t.Fatalf("filter consumed %d datagrams, want %d", len(f.consumed), len(wantConsumed))
	}
	for i, w := range wantConsumed {
		if !bytes.Equal(f.consumed[i], w) || f.from[i] != s.LocalAddr().String() {
			t.Fatalf("consumed %d: %q from %s, want %q from %s", i, f.consumed[i], f.from[i], w, s.LocalAddr())
		}
	}
	if f.flushes == 0 {
		t.Fatal("Flush never called")
	}

	// Marked datagrams alone: the reader flushes before it blocks.
	flushes := f.flushes
	done := make(chan error, 1)
	go func() {
		k, _, err := c.ReadFrom(buf)
		if err == nil && string(buf[:k]) != "last" {
			err = fmt.Errorf("got %q, want %q", buf[:k], "last")
		}
		done <- err
	}()
	for range 3 {
		_, _ = s.WriteTo([]byte("Fmore"), c.LocalAddr())
	}
	select {
	case <-f.flushed:
	case <-time.After(5 * time.Second):
		t.Fatal("no Flush while the reader waits for more")
	}
	_, _ = s.WriteTo([]byte("last"), c.LocalAddr())
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f.flushes <= flushes || len(f.consumed) != len(wantConsumed)+3 {
		t.Fatalf("flushes %d -> %d, consumed %d; want more flushes and %d consumed", flushes, f.flushes, len(f.consumed), len(wantConsumed)+3)
	}

	// Without the filter every datagram is returned.
	SetFilter(c, nil)
	_, _ = s.WriteTo([]byte("Fkept"), c.LocalAddr())
	if k, _, err := c.ReadFrom(buf); err != nil || string(buf[:k]) != "Fkept" {
		t.Fatalf("without filter: got %q, %v", buf[:k], err)
	}
}

// echoFilter relays marked datagrams to a peer from inside the read path,
// corking on the first one of a batch and uncorking in Flush, as a relay
// does.
type echoFilter struct {
	c      *udpConn
	to     net.Addr
	corked bool
	errs   []error
}

func (f *echoFilter) Consume(b []byte, _ *net.UDPAddr) bool {
	if len(b) == 0 || b[0] != 'F' {
		return false
	}
	if !f.corked {
		f.c.Cork()
		f.corked = true
	}
	if _, err := f.c.WriteTo(b, f.to); err != nil {
		f.errs = append(f.errs, err)
	}
	return true
}

func (f *echoFilter) Flush() {
	if f.corked {
		f.corked = false
		f.c.Uncork()
	}
}

// A filter writing to its own socket, corked, from Consume and Flush does
// not deadlock, and everything it wrote arrives in order.
func TestUDPConnFilterWrites(t *testing.T) {
	c := newTestConn(t, "udp4", "127.0.0.1:0", Options{ReadBatch: 8})
	peer := newReceiver(t, "udp4")
	f := &echoFilter{c: c, to: peer.LocalAddr()}
	SetFilter(c, f)
	s := newReceiver(t, "udp4")
	const n = 50
	for i := range n {
		_, _ = s.WriteTo(fmt.Appendf(nil, "F%03d", i), c.LocalAddr())
	}
	_, _ = s.WriteTo([]byte("end"), c.LocalAddr())
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 100)
		k, _, err := c.ReadFrom(buf)
		if err == nil && string(buf[:k]) != "end" {
			err = fmt.Errorf("got %q, want %q", buf[:k], "end")
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFrom deadlocked with a filter that writes")
	}
	if len(f.errs) > 0 {
		t.Fatalf("filter writes failed: %v", f.errs)
	}
	buf := make([]byte, 100)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range n {
		k, err := peer.Read(buf)
		if err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
		if want := fmt.Sprintf("F%03d", i); string(buf[:k]) != want {
			t.Fatalf("echo %d: got %q, want %q", i, buf[:k], want)
		}
	}
	if kernelHasGSO(t) && c.gsoSent.Load() == 0 {
		t.Fatal("echoes to one peer were never combined with GSO")
	}
}

// countFilter consumes everything but "pass"; it is used across
// goroutines, so it counts atomically.
type countFilter struct{ consumed, flushes atomic.Int64 }

func (f *countFilter) Consume(b []byte, _ *net.UDPAddr) bool {
	if string(b) == "pass" {
		return false
	}
	f.consumed.Add(1)
	return true
}

func (f *countFilter) Flush() { f.flushes.Add(1) }

// A filter installed while a reader is blocked applies to what arrives
// next.
func TestUDPConnSetFilterWhileReading(t *testing.T) {
	c := newTestConn(t, "udp4", "127.0.0.1:0", Options{ReadBatch: 8})
	s := newReceiver(t, "udp4")
	done := make(chan string, 1)
	go func() {
		buf := make([]byte, 100)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, _, err := c.ReadFrom(buf)
		if err != nil {
			done <- err.Error()
			return
		}
		done <- string(buf[:k])
	}()
	time.Sleep(20 * time.Millisecond)
	f := new(countFilter)
	SetFilter(c, f)
	_, _ = s.WriteTo([]byte("eaten"), c.LocalAddr())
	_, _ = s.WriteTo([]byte("pass"), c.LocalAddr())
	if got := <-done; got != "pass" {
		t.Fatalf("got %q, want %q", got, "pass")
	}
	if f.consumed.Load() != 1 || f.flushes.Load() != 1 {
		t.Fatalf("consumed %d, flushed %d; want 1, 1", f.consumed.Load(), f.flushes.Load())
	}
}

// planGSO groups each destination's datagrams, in order, into messages
// whose datagrams all have the first one's size but the last, which may be
// shorter, within the segment and byte limits; it allocates nothing.
func TestGSOPlan(t *testing.T) {
	if off, space := unsafe.Offsetof(gsoCmsg{}.size), unsafe.Sizeof(gsoCmsg{}); off != uintptr(unix.CmsgLen(0)) || space > uintptr(unix.CmsgSpace(2)) {
		t.Fatalf("gsoCmsg: value at %d, size %d; want %d, at most %d", off, space, unix.CmsgLen(0), unix.CmsgSpace(2))
	}
	c := &udpConn{maxQueue: 256, gso: true, gsoMax: gsoMaxBytes}
	packet := func(dest, size int) outPacket {
		p := outPacket{buf: make([]byte, size), nameLen: sockaddrLen}
		p.name.Family = unix.AF_INET6
		p.name.Port = uint16(dest)
		return p
	}
	// Destinations interleaved; want lists each message's segments.
	sizes := map[int][]int{
		1: {1200, 1200, 1200, 1200, 1200},
		2: {1200, 1200, 1200, 1200, 700},
		3: {800, 800, 300, 800, 900, 900, 100},
		4: {0, 500, 500},
		5: {600},
	}
	want := map[int][]int{1: {5}, 2: {5}, 3: {3, 1, 3}, 4: {1, 2}, 5: {1}}
	var batch []outPacket
	for k := 0; ; k++ {
		added := false
		for d := 1; d <= 5; d++ {
			if k < len(sizes[d]) {
				batch = append(batch, packet(d, sizes[d][k]))
				added = true
			}
		}
		if !added {
			break
		}
	}
	c.reserve(len(batch))
	c.planGSO(batch)
	got := map[int][]int{}
	for _, m := range c.wmsgs {
		d := int(batch[c.worder[m.first]].name.Port)
		got[d] = append(got[d], int(m.segs))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("messages per destination %v, want %v", got, want)
	}
	checkPlan(t, c, batch)
	if a := testing.AllocsPerRun(100, func() { c.planGSO(batch) }); a != 0 {
		t.Fatalf("planGSO allocates %v times per batch", a)
	}

	// Random batches keep the rules.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		batch = batch[:0]
		for range 1 + rng.IntN(256) {
			size := 1400
			switch rng.IntN(4) {
			case 0:
				size = rng.IntN(1500)
			case 1:
				size = 10
			}
			batch = append(batch, packet(rng.IntN(4), size))
		}
		c.reserve(len(batch))
		c.planGSO(batch)
		checkPlan(t, c, batch)
	}
}

// checkPlan checks the planned messages against the rules of planGSO.
func checkPlan(t *testing.T, c *udpConn, batch []outPacket) {
	t.Helper()
	seen := make([]bool, len(batch))
	last := map[unix.RawSockaddrInet6]int{}
	pos := 0
	for mi, m := range c.wmsgs {
		if int(m.first) != pos || m.segs < 1 || m.segs > gsoMaxSegments {
			t.Fatalf("message %d: first %d segs %d at position %d", mi, m.first, m.segs, pos)
		}
		h := c.whdr[mi].hdr
		if (h.Control != nil) != (m.segs > 1) {
			t.Fatalf("message %d of %d datagrams: control %v", mi, m.segs, h.Control)
		}
		total := 0
		for s := range int(m.segs) {
			i := int(c.worder[pos])
			p := &batch[i]
			if seen[i] {
				t.Fatalf("datagram %d planned twice", i)
			}
			seen[i] = true
			if j, ok := last[p.name]; ok && j > i {
				t.Fatalf("datagram %d planned after %d to the same destination", i, j)
			}
			last[p.name] = i
			if p.name != batch[c.worder[m.first]].name {
				t.Fatalf("message %d mixes destinations", mi)
			}
			if uint64(c.wiov[pos].Len) != uint64(len(p.buf)) { // Len is narrower on 32-bit
				t.Fatalf("iovec %d: length %d, want %d", pos, c.wiov[pos].Len, len(p.buf))
			}
			n := len(p.buf)
			if m.segs > 1 && (n == 0 || n > int(m.size) || (n < int(m.size) && s != int(m.segs)-1)) {
				t.Fatalf("message %d: segment %d of %d bytes with gso_size %d", mi, s, n, m.size)
			}
			total += n
			pos++
		}
		if m.segs > 1 && total > gsoMaxBytes {
			t.Fatalf("message %d carries %d bytes", mi, total)
		}
	}
	if pos != len(batch) {
		t.Fatalf("planned %d of %d datagrams", pos, len(batch))
	}
}

// gsoCase is a corked batch to several receivers: datagram sizes per
// receiver, and how many GSO messages planGSO makes of it.
var gsoCase = struct {
	sizes   [][]int
	gsoMsgs uint64
}{
	sizes: [][]int{
		{1200, 1200, 1200, 1200, 1200},      // one message
		{1200, 1200, 1200, 1200, 700},       // one, the last shorter
		{800, 800, 300, 800, 900, 900, 100}, // two and a plain datagram
		repeatInt(10, 70),                   // two: at most 64 segments
		repeatInt(1400, 50),                 // two: at most 65000 bytes
		{0, 500, 500},                       // an empty datagram alone, then one
	},
	gsoMsgs: 1 + 1 + 2 + 2 + 2 + 1,
}

func repeatInt(v, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// A corked batch to several receivers arrives at each whole and in order,
// with GSO (which must then be used, if the kernel has it) and without.
func TestUDPConnGSO(t *testing.T) {
	hasGSO := kernelHasGSO(t)
	for _, network := range []string{"udp4", "udp6"} {
		for _, disable := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/DisableGSO=%v", network, disable), func(t *testing.T) {
				addr := "127.0.0.1:0"
				if network == "udp6" {
					addr = "[::1]:0"
				}
				var dropped atomic.Uint64
				c := newTestConn(t, network, addr, Options{WriteQueue: 256, DisableGSO: disable, Dropped: &dropped})
				if disable && c.gso {
					t.Fatal("GSO on despite DisableGSO")
				}
				sendCorked(t, c, network, gsoCase.sizes)
				if d := dropped.Load(); d != 0 {
					t.Fatalf("%d dropped", d)
				}
				switch got := c.gsoSent.Load(); {
				case disable && got != 0:
					t.Fatalf("%d GSO messages with GSO disabled", got)
				case !disable && hasGSO && got != gsoCase.gsoMsgs:
					t.Fatalf("%d GSO messages sent, want %d", got, gsoCase.gsoMsgs)
				case !disable && !hasGSO:
					t.Log("kernel lacks UDP_SEGMENT; GSO not checked")
				}
			})
		}
	}
}

// sendCorked writes datagrams of sizes[r] to receiver r, interleaving
// receivers, between Cork and Uncork, and checks that each receiver gets
// exactly its datagrams, in order.
func sendCorked(t *testing.T, c *udpConn, network string, sizes [][]int) {
	t.Helper()
	recvs := make([]*net.UDPConn, len(sizes))
	want := make([][][]byte, len(sizes))
	for r := range recvs {
		recvs[r] = newReceiver(t, network)
		for k, n := range sizes[r] {
			msg := make([]byte, n)
			for j := range msg {
				msg[j] = byte(r*31 + k*7 + j)
			}
			want[r] = append(want[r], msg)
		}
	}
	c.Cork()
	for k := 0; ; k++ {
		wrote := false
		for r, msgs := range want {
			if k < len(msgs) {
				if _, err := c.WriteTo(msgs[k], recvs[r].LocalAddr()); err != nil {
					t.Fatal(err)
				}
				wrote = true
			}
		}
		if !wrote {
			break
		}
	}
	c.Uncork()
	buf := make([]byte, 70000)
	for r, recv := range recvs {
		_ = recv.SetReadDeadline(time.Now().Add(5 * time.Second))
		for k, w := range want[r] {
			n, err := recv.Read(buf)
			if err != nil {
				t.Fatalf("receiver %d, datagram %d of %d: %v", r, k, len(want[r]), err)
			}
			if !bytes.Equal(buf[:n], w) {
				t.Fatalf("receiver %d, datagram %d: got %d bytes, want %d (or different bytes)", r, k, n, len(w))
			}
		}
		_ = recv.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if n, err := recv.Read(buf); err == nil {
			t.Fatalf("receiver %d: extra datagram of %d bytes", r, n)
		}
	}
}

// When the kernel refuses GSO on a socket (here: UDP checksums off), the
// datagrams are resent one by one and GSO stays off.
func TestUDPConnGSOFallback(t *testing.T) {
	if !kernelHasGSO(t) {
		t.Skip("kernel lacks UDP_SEGMENT")
	}
	var dropped atomic.Uint64
	c := newTestConn(t, "udp4", "127.0.0.1:0", Options{WriteQueue: 256, Dropped: &dropped})
	var serr error
	if err := c.raw.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) }); err != nil || serr != nil {
		t.Skipf("SO_NO_CHECK: %v %v", err, serr)
	}
	sendCorked(t, c, "udp4", gsoCase.sizes)
	if c.gso || c.gsoSent.Load() != 0 {
		t.Fatalf("GSO still on (%d messages sent) after the kernel refused it", c.gsoSent.Load())
	}
	if d := dropped.Load(); d != 0 {
		t.Fatalf("%d dropped", d)
	}
	sendCorked(t, c, "udp4", gsoCase.sizes)
}

// A datagram the kernel refuses in a corked batch is skipped and counted
// once; the others, before and after it, still arrive.
func TestUDPConnCorkRefused(t *testing.T) {
	for _, disable := range []bool{false, true} {
		t.Run(fmt.Sprintf("DisableGSO=%v", disable), func(t *testing.T) {
			var dropped atomic.Uint64
			c := newTestConn(t, "udp4", "127.0.0.1:0", Options{WriteQueue: 16, DisableGSO: disable, Dropped: &dropped})
			recv := newReceiver(t, "udp4")
			c.Cork()
			for i := range 6 {
				msg := bytes.Repeat([]byte{byte(i)}, 100)
				if i == 3 {
					msg = make([]byte, 70000) // longer than UDP allows
				}
				if _, err := c.WriteTo(msg, recv.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}
			c.Uncork()
			buf := make([]byte, 200)
			_ = recv.SetReadDeadline(time.Now().Add(5 * time.Second))
			for _, i := range []byte{0, 1, 2, 4, 5} {
				n, err := recv.Read(buf)
				if err != nil || n != 100 || buf[0] != i {
					t.Fatalf("want datagram %d: got %d bytes starting %v, %v", i, n, buf[:min(n, 1)], err)
				}
			}
			if d := dropped.Load(); d != 1 {
				t.Fatalf("%d dropped, want 1", d)
			}
		})
	}
}

// BenchmarkCorkedFanout sends 4 packets of 1000 bytes to each of 20
// receivers per corked batch, as a media server relaying a burst, with and
// without GSO.
func BenchmarkCorkedFanout(b *testing.B) {
	const dests, each = 20, 4
	for _, disable := range []bool{false, true} {
		name := "gso"
		if disable {
			name = "nogso"
		}
		b.Run(name, func(b *testing.B) {
			c := newTestConn(b, "udp4", "127.0.0.1:0", Options{WriteQueue: 128, DisableGSO: disable})
			if !disable && !c.gso {
				b.Skip("kernel lacks UDP_SEGMENT")
			}
			addrs := make([]net.Addr, dests)
			var wg sync.WaitGroup
			b.Cleanup(wg.Wait) // runs last, after the receivers close
			for i := range addrs {
				r := newReceiver(b, "udp4")
				addrs[i] = r.LocalAddr()
				wg.Go(func() {
					buf := make([]byte, 2000)
					for {
						if _, err := r.Read(buf); err != nil {
							return
						}
					}
				})
			}
			msg := make([]byte, 1000)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				c.Cork()
				for range each {
					for _, a := range addrs {
						if _, err := c.WriteTo(msg, a); err != nil {
							b.Fatal(err)
						}
					}
				}
				c.Uncork()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*dests*each), "ns/datagram")
		})
	}
}
