package client

import (
	"net"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// counters are a Media's packet counts, updated by its goroutines.
type counters struct {
	audioRecv, audioBytes, audioSent atomic.Uint64
	videoRecv, videoBytes, videoSent atomic.Uint64
	keyframesSent, keyframesRecv     atomic.Uint64
	plis                             atomic.Uint64
	subOffers                        atomic.Uint64
	iceRestarts                      atomic.Uint64
	assistReceived, assistMalformed  atomic.Uint64
}

// KindStats counts one kind of media (audio or video).
type KindStats struct {
	PacketsReceived uint64 // summed over all remote tracks of this kind
	BytesReceived   uint64 // RTP payload bytes
	PacketsSent     uint64 // RTP packets: one per frame unless a load source
}

// MediaStats is a snapshot of a Media's counters.
type MediaStats struct {
	Audio KindStats
	Video KindStats
	// KeyframesSent counts the VP8 keyframes published.
	KeyframesSent uint64
	// KeyframesReceived counts packets starting a VP8 keyframe on "sub".
	KeyframesReceived uint64
	// PLIsReceived counts PLI and FIR packets received for our video.
	PLIsReceived uint64
	// NACKsSent counts the NACK messages "sub" sent, PacketsNACKed the
	// distinct packets they asked for, and RetransmissionsReceived the
	// asked-for packets that then arrived (within a few seconds).
	NACKsSent               uint64
	PacketsNACKed           uint64
	RetransmissionsReceived uint64
	// SubOffers counts the server's offers on "sub": one per
	// (re)negotiation of what this leg receives.
	SubOffers uint64
	// ICERestarts counts the ICE restarts this leg started on "pub".
	ICERestarts uint64
	// AssistReceived counts the assistance events that arrived on the
	// "assist" data channel; AssistMalformed the messages that did not
	// decode cleanly.
	AssistReceived, AssistMalformed uint64
	// RemoteTracks lists every track seen on "sub", in order of arrival.
	RemoteTracks []RemoteTrack
}

// Stats returns the current counters.
func (m *Media) Stats() MediaStats {
	c := &m.count
	s := MediaStats{
		Audio:             KindStats{c.audioRecv.Load(), c.audioBytes.Load(), c.audioSent.Load()},
		Video:             KindStats{c.videoRecv.Load(), c.videoBytes.Load(), c.videoSent.Load()},
		KeyframesSent:     c.keyframesSent.Load(),
		KeyframesReceived: c.keyframesRecv.Load(),
		PLIsReceived:      c.plis.Load(),
		SubOffers:         c.subOffers.Load(),
		ICERestarts:       c.iceRestarts.Load(),
		AssistReceived:    c.assistReceived.Load(),
		AssistMalformed:   c.assistMalformed.Load(),

		NACKsSent:               m.nacks.nacks.Load(),
		PacketsNACKed:           m.nacks.nacked.Load(),
		RetransmissionsReceived: m.nacks.repaired.Load(),
	}
	m.mu.Lock()
	s.RemoteTracks = slices.Clone(m.tracks)
	m.mu.Unlock()
	return s
}

// RemoteStreams returns the distinct stream ids (user ids) of the remote
// tracks seen so far, sorted.
func (m *Media) RemoteStreams() []string {
	m.mu.Lock()
	ids := make([]string, 0, len(m.tracks))
	for _, t := range m.tracks {
		ids = append(ids, t.StreamID)
	}
	m.mu.Unlock()
	slices.Sort(ids)
	return slices.Compact(ids)
}

// Path is the candidate pair one PeerConnection's media goes over.
type Path struct {
	// Local and Remote are the candidates' types: host, srflx, prflx or
	// relay. A relay path goes through a TURN server.
	Local, Remote string
	// LocalAddr and RemoteAddr are the candidates' addresses (ip:port).
	LocalAddr, RemoteAddr string
}

func (p Path) String() string {
	return p.Local + " " + p.LocalAddr + " → " + p.Remote + " " + p.RemoteAddr
}

// Paths returns the candidate pair each PeerConnection ("pub", "sub")
// has selected; one not yet connected is absent.
func (m *Media) Paths() map[string]Path {
	out := map[string]Path{}
	for name, pc := range map[string]*webrtc.PeerConnection{protocol.PCPub: m.pub, protocol.PCSub: m.sub} {
		if pc == nil {
			continue
		}
		dtls := pc.SCTP().Transport()
		if dtls == nil {
			continue
		}
		pair, err := dtls.ICETransport().GetSelectedCandidatePair()
		if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil {
			continue
		}
		out[name] = Path{
			Local: pair.Local.Typ.String(), Remote: pair.Remote.Typ.String(),
			LocalAddr:  net.JoinHostPort(pair.Local.Address, strconv.Itoa(int(pair.Local.Port))),
			RemoteAddr: net.JoinHostPort(pair.Remote.Address, strconv.Itoa(int(pair.Remote.Port))),
		}
	}
	return out
}
