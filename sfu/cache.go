package sfu

import "sync"

// cacheSlots is how many packets a video layer keeps for retransmission:
// about 1.5 s of a 1.5 Mbit/s layer, longer than a NACK takes to arrive.
const cacheSlots = 256

// cacheSlotSize is the largest packet kept; larger ones (rare: browsers
// packetize under 1200 bytes) are not retransmitted.
const cacheSlotSize = 1500

// packetCache keeps the last cacheSlots packets of one published layer,
// indexed by sequence number, so that NACKs from any number of subscribers
// are answered from one copy. One goroutine (the layer's reader) writes;
// any subscriber's RTCP reader may read.
type packetCache struct {
	mu   sync.Mutex
	buf  []byte // cacheSlots × cacheSlotSize, allocated on first use
	seqs [cacheSlots]uint16
	lens [cacheSlots]uint16 // 0 = empty
}

// put stores a copy of one RTP packet.
func (c *packetCache) put(seq uint16, pkt []byte) {
	if len(pkt) > cacheSlotSize {
		return
	}
	i := int(seq) % cacheSlots
	c.mu.Lock()
	if c.buf == nil {
		c.buf = make([]byte, cacheSlots*cacheSlotSize)
	}
	copy(c.buf[i*cacheSlotSize:], pkt)
	c.seqs[i] = seq
	c.lens[i] = uint16(len(pkt))
	c.mu.Unlock()
}

// get copies the packet with sequence number seq into dst and returns it,
// or nil if it is no longer (or never was) cached.
func (c *packetCache) get(seq uint16, dst []byte) []byte {
	i := int(seq) % cacheSlots
	c.mu.Lock()
	defer c.mu.Unlock()
	n := int(c.lens[i])
	if n == 0 || c.seqs[i] != seq || len(dst) < n {
		return nil
	}
	return dst[:copy(dst, c.buf[i*cacheSlotSize:i*cacheSlotSize+n])]
}
