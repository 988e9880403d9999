//go:build linux

package udpx

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	gsoMaxSegments = 64    // most datagrams in one GSO message (UDP_MAX_SEGMENTS on older kernels)
	gsoMaxBytes    = 65000 // most payload in one GSO message, under IP's 64 KiB
)

// wmsg is one message of a planned sendmmsg: segs datagrams from position
// first of worder and wiov, size bytes each but the last when segs > 1.
type wmsg struct {
	first, segs, size int32
}

// gsoCmsg is a UDP_SEGMENT control message, its value where CMSG_DATA puts
// it on every Linux architecture.
type gsoCmsg struct {
	hdr  unix.Cmsghdr
	size uint16
}

// chain links one destination's datagrams in a batch, through wnext.
type chain struct {
	head, tail int32
}

// reserve sizes the flusher's scratch space for a batch of n datagrams.
// Batches are at most maxQueue long, so it allocates once.
func (c *udpConn) reserve(n int) {
	if cap(c.whdr) >= n {
		return
	}
	size := max(n, c.maxQueue)
	c.whdr = make([]mmsghdr, 0, size)
	c.wiov = make([]unix.Iovec, size)
	c.wmsgs = make([]wmsg, 0, size)
	c.wcmsg = make([]gsoCmsg, size)
	c.worder = make([]int32, size)
	c.wnext = make([]int32, size)
	c.wgroups = make([]chain, 0, size)
	c.wgroupOf = make(map[unix.RawSockaddrInet6]int32, size)
}

// planPlain lays batch out as one message per datagram, in order.
func (c *udpConn) planPlain(batch []outPacket) {
	c.whdr, c.wmsgs = c.whdr[:0], c.wmsgs[:0]
	for i := range batch {
		c.place(batch, i, i)
		c.addMessage(batch, i, 1, 0)
	}
}

// replanPlain replaces the planned messages from the m'th on with one
// message per datagram they carry.
func (c *udpConn) replanPlain(batch []outPacket, m int) {
	first := int(c.wmsgs[m].first)
	c.whdr, c.wmsgs = c.whdr[:m], c.wmsgs[:m]
	for pos := first; pos < len(batch); pos++ {
		c.addMessage(batch, pos, 1, 0)
	}
}

// planGSO lays batch out one destination at a time, each destination's
// datagrams in the order they were written; destinations may be reordered
// relative to each other. Consecutive datagrams to one destination share a
// message while they are as long as its first (the last may be shorter),
// up to gsoMaxSegments and gsoMaxBytes. The message carries the length as
// UDP_SEGMENT, and the kernel cuts it back into those datagrams.
func (c *udpConn) planGSO(batch []outPacket) {
	c.groupByDestination(batch)
	c.whdr, c.wmsgs = c.whdr[:0], c.wmsgs[:0]
	pos := 0
	for _, g := range c.wgroups {
		start := pos
		for i := g.head; i >= 0; i = c.wnext[i] {
			c.place(batch, pos, int(i))
			pos++
		}
		for k := start; k < pos; {
			segs, size := c.gsoRun(batch, c.worder[k:pos])
			c.addMessage(batch, k, segs, size)
			k += segs
		}
	}
}

// groupByDestination chains batch's datagrams by destination into wgroups,
// in the order each destination first appears, each chain in the order its
// datagrams were written.
func (c *udpConn) groupByDestination(batch []outPacket) {
	clear(c.wgroupOf)
	c.wgroups = c.wgroups[:0]
	for i := range batch {
		c.wnext[i] = -1
		g, ok := c.wgroupOf[batch[i].name]
		if !ok {
			c.wgroupOf[batch[i].name] = int32(len(c.wgroups))                    //nolint:gosec // batches are small
			c.wgroups = append(c.wgroups, chain{head: int32(i), tail: int32(i)}) //nolint:gosec // batches are small
			continue
		}
		c.wnext[c.wgroups[g].tail] = int32(i) //nolint:gosec // batches are small
		c.wgroups[g].tail = int32(i)          //nolint:gosec // batches are small
	}
}

// gsoRun returns how many of the datagrams at order, all to one
// destination, one GSO message can carry from the first, and their segment
// size; 1 means the first goes alone.
func (c *udpConn) gsoRun(batch []outPacket, order []int32) (segs, size int) {
	size = len(batch[order[0]].buf)
	if size == 0 || size > c.gsoMax {
		return 1, size
	}
	total := size
	for segs = 1; segs < min(len(order), gsoMaxSegments); segs++ {
		n := len(batch[order[segs]].buf)
		if n == 0 || n > size || total+n > gsoMaxBytes {
			break
		}
		total += n
		if n < size {
			return segs + 1, size // a shorter datagram ends the message
		}
	}
	return segs, size
}

// place puts datagram i of batch at position pos of the planned messages.
func (c *udpConn) place(batch []outPacket, pos, i int) {
	c.worder[pos] = int32(i) //nolint:gosec // batches are small
	iov := &c.wiov[pos]
	iov.Base = nil
	if b := batch[i].buf; len(b) > 0 {
		iov.Base = &b[0]
	}
	iov.SetLen(len(batch[i].buf))
}

// addMessage plans a message of the segs datagrams at position first on,
// a GSO message of size-byte segments when segs > 1.
func (c *udpConn) addMessage(batch []outPacket, first, segs, size int) {
	p := &batch[c.worder[first]]
	var h mmsghdr
	h.hdr.Name = (*byte)(unsafe.Pointer(&p.name))
	h.hdr.Namelen = p.nameLen
	h.hdr.Iov = &c.wiov[first]
	h.hdr.SetIovlen(segs)
	if segs > 1 {
		cm := &c.wcmsg[len(c.whdr)]
		cm.hdr.Level, cm.hdr.Type = unix.SOL_UDP, unix.UDP_SEGMENT
		cm.hdr.SetLen(unix.CmsgLen(2))
		cm.size = uint16(size) //nolint:gosec // at most gsoMaxBytes
		h.hdr.Control = (*byte)(unsafe.Pointer(cm))
		h.hdr.SetControllen(unix.CmsgSpace(2))
	}
	c.whdr = append(c.whdr, h)
	c.wmsgs = append(c.wmsgs, wmsg{first: int32(first), segs: int32(segs), size: int32(size)}) //nolint:gosec // batches are small
}

// gsoRefused reports whether errno, refusing a GSO message m, is about GSO
// rather than the datagrams, which are then to be sent one by one. Errors
// meaning the socket cannot do GSO turn it off for good; a segment too
// long for the path (which a plain datagram would fragment) stops GSO for
// segments that long.
func (c *udpConn) gsoRefused(errno unix.Errno, m wmsg) bool {
	switch errno {
	case unix.EIO, unix.EINVAL, unix.ENOPROTOOPT, unix.EOPNOTSUPP:
		c.gso = false
		return true
	case unix.EMSGSIZE:
		c.gsoMax = min(c.gsoMax, int(m.size)-1)
		return true
	}
	return false
}
