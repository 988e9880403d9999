//go:build linux

// Package udpx is a UDP socket for relays and media servers: it reads
// with recvmmsg, combines concurrent writes into sendmmsg, and makes its
// system calls without the scheduler's involvement. Linux only; elsewhere
// New returns the socket as it is.
package udpx

import (
	"cmp"
	"encoding/binary"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpConn is a UDP socket tuned for relaying. It reads with recvmmsg, up to
// readBatch datagrams per system call, and hands them out one ReadFrom at a
// time. Writers combine: the first writer sends, and packets written while
// it is in the kernel are queued and sent after it with one sendmmsg, so a
// busy listener makes fewer system calls than it relays packets. Nothing is
// dropped for batching: a writer that finds the queue full sends itself.
//
// A batch with several datagrams to one destination sends them as one UDP
// GSO message where the kernel supports it (see planGSO), and a Filter can
// take datagrams off the read path before ReadFrom returns them.
//
// The socket is non-blocking, so its calls never block in the kernel: they
// are made as raw system calls, without handing the P to the scheduler,
// and wait for readiness through the runtime's poller on EAGAIN. That
// removes the scheduler wake-ups a busy relay otherwise pays per packet.
type udpConn struct {
	*net.UDPConn
	raw    syscall.RawConn
	family uint16 // unix.AF_INET or unix.AF_INET6
	slot   int    // bytes per datagram slot

	rmu   sync.Mutex
	rbuf  []byte
	rname []unix.RawSockaddrInet6
	riov  []unix.Iovec
	rhdr  []mmsghdr
	rn    int // datagrams in the batch
	ri    int // next datagram to hand out
	addrs map[[18]byte]*net.UDPAddr

	filter  atomic.Pointer[filterBox]
	pending *filterBox // consumed datagrams since its last Flush; under rmu

	wmu      sync.Mutex
	flushing bool
	corked   int // Cork calls not yet matched by Uncork
	queue    []outPacket
	spare    []outPacket
	maxQueue int
	dropped  *atomic.Uint64

	// Used only by the one goroutine in flush (see flushing).
	whdr     []mmsghdr
	wiov     []unix.Iovec
	wmsgs    []wmsg
	wcmsg    []gsoCmsg
	worder   []int32
	wnext    []int32
	wgroups  []chain
	wgroupOf map[unix.RawSockaddrInet6]int32
	gso      bool // UDP_SEGMENT works on this socket
	gsoMax   int  // longest segment to try with GSO

	gsoSent atomic.Uint64 // GSO messages the kernel took
}

// filterBox holds a Filter so that it can be stored atomically and told
// apart from a later SetFilter of the same value.
type filterBox struct{ f Filter }

// mmsghdr is struct mmsghdr; Go pads it as C does.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

type outPacket struct {
	buf     []byte
	name    unix.RawSockaddrInet6
	nameLen uint32
}

const (
	sockaddrLen    = uint32(unsafe.Sizeof(unix.RawSockaddrInet6{}))
	addrCacheLimit = 4096
)

// Options size a socket's batches.
type Options struct {
	ReadBatch   int            // most datagrams one recvmmsg takes; default 8
	WriteQueue  int            // most packets queued behind a writer; default 64
	MaxDatagram int            // longest datagram read whole; default 1600
	Dropped     *atomic.Uint64 // counts packets the kernel refused to send; may be nil
	DisableGSO  bool           // never combine datagrams with UDP_SEGMENT
}

// New wraps c.
func New(c *net.UDPConn, o Options) (net.PacketConn, error) {
	readBatch, writeQueue, slotLen := cmp.Or(o.ReadBatch, 8), cmp.Or(o.WriteQueue, 64), cmp.Or(o.MaxDatagram, 1600)
	dropped := o.Dropped
	if dropped == nil {
		dropped = new(atomic.Uint64)
	}
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var sa unix.Sockaddr
	var saErr, gsoErr error
	if err := raw.Control(func(fd uintptr) {
		sa, saErr = unix.Getsockname(int(fd))
		_, gsoErr = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	}); err != nil {
		return nil, err
	}
	if saErr != nil {
		return nil, os.NewSyscallError("getsockname", saErr)
	}
	u := &udpConn{
		UDPConn:  c,
		raw:      raw,
		family:   unix.AF_INET6,
		slot:     slotLen,
		rbuf:     make([]byte, readBatch*slotLen),
		rname:    make([]unix.RawSockaddrInet6, readBatch),
		riov:     make([]unix.Iovec, readBatch),
		rhdr:     make([]mmsghdr, readBatch),
		addrs:    make(map[[18]byte]*net.UDPAddr),
		queue:    make([]outPacket, 0, writeQueue),
		spare:    make([]outPacket, 0, writeQueue),
		maxQueue: writeQueue,
		dropped:  dropped,
		gso:      gsoErr == nil && !o.DisableGSO,
		gsoMax:   gsoMaxBytes,
	}
	if _, ok := sa.(*unix.SockaddrInet4); ok {
		u.family = unix.AF_INET
	}
	for i := range u.rhdr {
		u.riov[i].Base = &u.rbuf[i*slotLen]
		u.riov[i].SetLen(slotLen)
		u.rhdr[i].hdr.Name = (*byte)(unsafe.Pointer(&u.rname[i]))
		u.rhdr[i].hdr.Iov = &u.riov[i]
		u.rhdr[i].hdr.SetIovlen(1)
	}
	return u, nil
}

// SetFilter installs f (nil removes it) on a socket made by New; it reports
// false when c is not one. It is safe while a reader is running: datagrams
// handed out after it returns see f. A filter replaced or removed with
// datagrams pending gets its Flush before the next one does, or before the
// next ReadFrom blocks or returns.
func SetFilter(c net.PacketConn, f Filter) bool {
	u, ok := c.(*udpConn)
	if !ok {
		return false
	}
	if f == nil {
		u.filter.Store(nil)
	} else {
		u.filter.Store(&filterBox{f})
	}
	return true
}

// ReadFrom returns the next datagram the filter declines, receiving a new
// batch when the last one is used up. Like a plain UDP socket it truncates
// a datagram longer than p.
func (c *udpConn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.ri == c.rn {
			c.flushFilter()
			if err := c.receive(); err != nil {
				return 0, nil, err
			}
		}
		i := c.ri
		c.ri++
		b := c.rbuf[i*c.slot : i*c.slot+min(int(c.rhdr[i].n), c.slot)]
		from := c.addrOf(&c.rname[i], c.rhdr[i].hdr.Namelen)
		if c.consume(b, from) {
			continue
		}
		c.flushFilter()
		return copy(p, b), from, nil
	}
}

// consume offers a datagram to the filter, if any, and reports whether it
// took it.
func (c *udpConn) consume(b []byte, from *net.UDPAddr) bool {
	box := c.filter.Load()
	if box == nil {
		return false
	}
	if c.pending != nil && c.pending != box {
		c.flushFilter() // the filter changed: finish the old one's batch
	}
	if !box.f.Consume(b, from) {
		return false
	}
	c.pending = box
	return true
}

// flushFilter calls Flush on the filter that consumed datagrams since its
// last Flush, if any.
func (c *udpConn) flushFilter() {
	if box := c.pending; box != nil {
		c.pending = nil
		box.f.Flush()
	}
}

func (c *udpConn) receive() error {
	for i := range c.rhdr {
		c.rhdr[i].hdr.Namelen = sockaddrLen
		c.rhdr[i].hdr.Flags = 0
		c.rhdr[i].n = 0
	}
	var got int
	var errno unix.Errno
	err := c.raw.Read(func(fd uintptr) bool {
		for {
			r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.rhdr[0])),
				uintptr(len(c.rhdr)), unix.MSG_DONTWAIT, 0, 0)
			switch e {
			case 0:
				got = int(r)
				return true
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			case unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.ENOBUFS, unix.ENOMEM:
				continue // transient; a plain read loop would have died on these
			}
			errno = e
			return true
		}
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return &net.OpError{Op: "read", Net: "udp", Source: c.LocalAddr(), Err: os.NewSyscallError("recvmmsg", errno)}
	}
	c.rn, c.ri = got, 0
	return nil
}

// addrOf returns the source address as a *net.UDPAddr, shared between
// datagrams from the same source; callers must not modify it.
func (c *udpConn) addrOf(name *unix.RawSockaddrInet6, nameLen uint32) *net.UDPAddr {
	var key [18]byte
	var ip net.IP
	var zone string
	switch name.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(name))
		copy(key[:4], sa.Addr[:])
		ip = key[:4]
		*(*uint16)(unsafe.Pointer(&key[16])) = sa.Port
	case unix.AF_INET6:
		if nameLen < sockaddrLen {
			return &net.UDPAddr{}
		}
		copy(key[:], name.Addr[:])
		ip = key[:16]
		*(*uint16)(unsafe.Pointer(&key[16])) = name.Port
		if name.Scope_id != 0 {
			zone = strconv.FormatUint(uint64(name.Scope_id), 10)
			// Scoped addresses are rare; do not cache them under a key
			// that ignores the scope.
			return &net.UDPAddr{IP: append(net.IP(nil), ip...), Port: int(binary.BigEndian.Uint16(key[16:])), Zone: zone}
		}
	default:
		return &net.UDPAddr{}
	}
	if a, ok := c.addrs[key]; ok {
		return a
	}
	if len(c.addrs) >= addrCacheLimit {
		clear(c.addrs)
	}
	a := &net.UDPAddr{IP: append(net.IP(nil), ip...), Port: int(binary.BigEndian.Uint16(key[16:]))}
	c.addrs[key] = a
	return a
}

// WriteTo sends p to addr. When another writer is sending, p is queued and
// sent by that writer; when the queue is full, p is sent at once.
func (c *udpConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: net.InvalidAddrError("not a UDP address")}
	}
	var name unix.RawSockaddrInet6
	nameLen, ok := c.sockaddr(ua, &name)
	if !ok {
		return 0, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: unix.EAFNOSUPPORT}
	}
	c.wmu.Lock()
	if (c.flushing || c.corked > 0) && len(c.queue) < c.maxQueue {
		c.queue = c.queue[:len(c.queue)+1] // reuses the slot's buffer
		q := &c.queue[len(c.queue)-1]
		q.buf = append(q.buf[:0], p...)
		q.name, q.nameLen = name, nameLen
		c.wmu.Unlock()
		return len(p), nil
	}
	if c.flushing || c.corked > 0 {
		// The queue is full: send alongside the flusher rather than drop.
		c.wmu.Unlock()
		n, err := c.sendto(p, &name, nameLen)
		if err != nil {
			return n, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: err}
		}
		return n, nil
	}
	c.flushing = true
	c.wmu.Unlock()
	n, err := c.sendto(p, &name, nameLen)
	c.flush()
	if err != nil {
		return n, &net.OpError{Op: "write", Net: "udp", Source: c.LocalAddr(), Addr: addr, Err: err}
	}
	return n, nil
}

// Cork holds every write, from any goroutine, in the queue until the
// matching Uncork, which sends them all with sendmmsg. A media server
// corks around one packet's fan-out to its subscribers: one system call
// instead of one per subscriber. A full queue is still sent at once.
func (c *udpConn) Cork() {
	c.wmu.Lock()
	c.corked++
	c.wmu.Unlock()
}

// Uncork ends a Cork; the last one sends what was queued, unless a writer
// already in the kernel will.
func (c *udpConn) Uncork() {
	c.wmu.Lock()
	c.corked--
	if c.corked > 0 || c.flushing || len(c.queue) == 0 {
		c.wmu.Unlock()
		return
	}
	c.flushing = true
	c.wmu.Unlock()
	c.flush()
}

// flush sends what was queued while this writer was in the kernel, until
// the queue stays empty.
func (c *udpConn) flush() {
	for {
		c.wmu.Lock()
		if len(c.queue) == 0 || c.corked > 0 {
			c.flushing = false
			c.wmu.Unlock()
			return
		}
		batch := c.queue
		c.queue, c.spare = c.spare[:0], batch
		c.wmu.Unlock()
		c.sendBatch(batch)
	}
}

func (c *udpConn) sendto(p []byte, name *unix.RawSockaddrInet6, nameLen uint32) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	var n int
	var errno unix.Errno
	// The closure takes the address as a number, so that name (on the
	// caller's stack) does not escape and a queued write allocates
	// nothing; KeepAlive keeps it alive across the call.
	nameAddr := uintptr(unsafe.Pointer(name))
	err := c.raw.Write(func(fd uintptr) bool {
		for {
			r, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(ptr), uintptr(len(p)), 0,
				nameAddr, uintptr(nameLen))
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			n, errno = int(r), e
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	runtime.KeepAlive(name)
	if errno != 0 {
		return 0, os.NewSyscallError("sendto", errno)
	}
	return n, nil
}

// sendBatch sends batch with sendmmsg, several datagrams to one
// destination as one GSO message where it can. A datagram the kernel
// refuses is skipped, and the rest are still sent; every datagram not sent
// is counted in dropped.
func (c *udpConn) sendBatch(batch []outPacket) {
	if len(batch) == 1 {
		if _, err := c.sendto(batch[0].buf, &batch[0].name, batch[0].nameLen); err != nil {
			c.dropped.Add(1)
		}
		return
	}
	c.reserve(len(batch))
	if c.gso {
		c.planGSO(batch)
	} else {
		c.planPlain(batch)
	}
	for done := 0; done < len(c.whdr); {
		sent, errno, err := c.sendmmsg(c.whdr[done:])
		if err != nil {
			// The socket is closed or broken: nothing more goes out.
			c.dropped.Add(uint64(len(batch) - int(c.wmsgs[done].first)))
			return
		}
		for _, m := range c.wmsgs[done : done+sent] {
			if m.segs > 1 {
				c.gsoSent.Add(1)
			}
		}
		done += sent
		if errno == 0 {
			continue
		}
		if m := c.wmsgs[done]; m.segs > 1 && c.gsoRefused(errno, m) {
			// Resend this message's datagrams and the rest one by one.
			c.replanPlain(batch, done)
			continue
		}
		c.dropped.Add(uint64(c.wmsgs[done].segs))
		done++ // skip the refused message
	}
}

// sendmmsg sends hdr's messages. It returns how many the kernel took, or
// the error with which it refused the first.
func (c *udpConn) sendmmsg(hdr []mmsghdr) (int, unix.Errno, error) {
	var sent int
	var errno unix.Errno
	err := c.raw.Write(func(fd uintptr) bool {
		for {
			r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&hdr[0])),
				uintptr(len(hdr)), 0, 0, 0)
			switch e {
			case 0:
				sent = int(r)
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			errno = e
			return true
		}
	})
	return sent, errno, err
}

// sockaddr writes a's socket address for this socket's family into name.
func (c *udpConn) sockaddr(a *net.UDPAddr, name *unix.RawSockaddrInet6) (uint32, bool) {
	var port [2]byte
	binary.BigEndian.PutUint16(port[:], uint16(a.Port)) //nolint:gosec // a port fits
	if c.family == unix.AF_INET {
		ip4 := a.IP.To4()
		if ip4 == nil {
			return 0, false
		}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(name))
		sa.Family = unix.AF_INET
		sa.Port = *(*uint16)(unsafe.Pointer(&port[0]))
		copy(sa.Addr[:], ip4)
		return uint32(unsafe.Sizeof(unix.RawSockaddrInet4{})), true
	}
	ip16 := a.IP.To16()
	if ip16 == nil {
		return 0, false
	}
	name.Family = unix.AF_INET6
	name.Port = *(*uint16)(unsafe.Pointer(&port[0]))
	copy(name.Addr[:], ip16)
	if a.Zone != "" {
		if id, err := strconv.ParseUint(a.Zone, 10, 32); err == nil {
			name.Scope_id = uint32(id)
		} else if ifi, err := net.InterfaceByName(a.Zone); err == nil {
			name.Scope_id = uint32(ifi.Index) //nolint:gosec // interface indexes are small
		}
	}
	return sockaddrLen, true
}
