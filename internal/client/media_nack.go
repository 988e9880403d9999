package client

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// nackForget is how long a NACKed packet is waited for; later it is no
// longer counted as a retransmission when it arrives, and the entry goes.
const nackForget = 2 * time.Second

// nackCounter is an interceptor on "sub" that counts the NACKs pion's
// generator sends and the NACKed packets that arrive afterwards: on
// loopback nothing reorders packets, so a packet arriving after a NACK
// asked for it is the SFU's retransmission. It must come before the NACK
// generator in the registry, so that the generator writes through it.
type nackCounter struct {
	interceptor.NoOp

	nacks    atomic.Uint64 // NACK messages sent
	nacked   atomic.Uint64 // distinct packets asked for
	repaired atomic.Uint64 // asked-for packets that arrived

	mu      sync.Mutex
	waiting map[uint32]map[uint16]time.Time // media SSRC → sequence number → first NACK
}

var _ interceptor.Interceptor = (*nackCounter)(nil)

func newNACKCounter() *nackCounter {
	return &nackCounter{waiting: make(map[uint32]map[uint16]time.Time)}
}

// nackCounterFactory hands the registry one existing counter: each
// PeerConnection has its own API, so it is built once.
type nackCounterFactory struct{ c *nackCounter }

func (f nackCounterFactory) NewInterceptor(string) (interceptor.Interceptor, error) { return f.c, nil }

// BindRTCPWriter records the packets each outgoing NACK asks for.
func (n *nackCounter) BindRTCPWriter(writer interceptor.RTCPWriter) interceptor.RTCPWriter {
	return interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, attrs interceptor.Attributes) (int, error) {
		for _, p := range pkts {
			if nack, ok := p.(*rtcp.TransportLayerNack); ok {
				n.sent(nack, time.Now())
			}
		}
		return writer.Write(pkts, attrs)
	})
}

// sent records one NACK; a packet asked for again keeps its first time.
func (n *nackCounter) sent(nack *rtcp.TransportLayerNack, now time.Time) {
	n.nacks.Add(1)
	n.mu.Lock()
	defer n.mu.Unlock()
	w := n.waiting[nack.MediaSSRC]
	if w == nil {
		w = make(map[uint16]time.Time)
		n.waiting[nack.MediaSSRC] = w
	}
	for seq, at := range w {
		if now.Sub(at) > nackForget {
			delete(w, seq)
		}
	}
	for _, pair := range nack.Nacks {
		for _, seq := range pair.PacketList() {
			if _, ok := w[seq]; !ok {
				w[seq] = now
				n.nacked.Add(1)
			}
		}
	}
}

// BindRemoteStream counts incoming packets that a NACK asked for.
func (n *nackCounter) BindRemoteStream(info *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	ssrc := info.SSRC
	return interceptor.RTPReaderFunc(func(b []byte, attrs interceptor.Attributes) (int, interceptor.Attributes, error) {
		i, attrs, err := reader.Read(b, attrs)
		if err != nil {
			return 0, nil, err
		}
		if attrs == nil {
			attrs = make(interceptor.Attributes)
		}
		header, err := attrs.GetRTPHeader(b[:i])
		if err != nil {
			return 0, nil, err
		}
		n.arrived(ssrc, header.SequenceNumber)
		return i, attrs, nil
	})
}

func (n *nackCounter) arrived(ssrc uint32, seq uint16) {
	n.mu.Lock()
	defer n.mu.Unlock()
	w := n.waiting[ssrc]
	if _, ok := w[seq]; ok {
		delete(w, seq)
		n.repaired.Add(1)
	}
}

// UnbindRemoteStream forgets the stream's waiting packets.
func (n *nackCounter) UnbindRemoteStream(info *interceptor.StreamInfo) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.waiting, info.SSRC)
}
