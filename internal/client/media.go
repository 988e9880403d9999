package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// mediaEventQueue bounds the sdp and ice messages waiting for a Media; the
// client's reader waits when it is full.
const mediaEventQueue = 64

// Media is the media side of one call leg: a "pub" PeerConnection carrying
// synthetic tracks to the SFU, and a "sub" PeerConnection receiving the other
// members' tracks. It answers the server's sdp and ice messages by itself.
type Media struct {
	c      *Client
	callID string
	log    *slog.Logger

	pub, sub       *webrtc.PeerConnection // pub is nil when nothing is published
	pubTrickle     *trickle
	subTrickle     *trickle
	backlog        []any                                 // sdp and ice buffered before StartMedia; loop only
	restartPending bool                                  // restart ICE when the pub answer comes; loop only
	pubOfferGen    atomic.Uint64                         // the client's socket generation the last pub offer went out on
	bwe            atomic.Pointer[cc.BandwidthEstimator] // pub's, with MediaOptions.EstimateBandwidth
	screen         *webrtc.RTPSender                     // the screen share's sender (MediaOptions.Screen)
	assistDC       *webrtc.DataChannel                   // MediaOptions.Assist
	assistOpen     <-chan struct{}                       // closed when assistDC opens
	hostNet        *hostNet                              // interfaces ICE gathers on, with MediaOptions.Network
	events         chan any                              // *protocol.SDP and *protocol.ICE from the server
	done           chan struct{}                         // closed by Close
	pubConnected   chan struct{}                         // closed when pub first connects
	connOnce       sync.Once
	forceKey       atomic.Bool // the next video frame is a keyframe
	sim            *simulcast  // set by publish with MediaOptions.Simulcast
	onRTP          func(RemoteTrack, *rtp.Packet, time.Time)
	count          counters
	nacks          *nackCounter // on "sub"
	wg             sync.WaitGroup
	closeOnce      sync.Once

	mu      sync.Mutex
	closed  bool
	tracks  []RemoteTrack
	quality []*trackQuality // one per track, same order
	err     error
}

// StartMedia sets up media for a call: it builds both PeerConnections,
// publishes the tracks o asks for and sends the "pub" offer. From then on
// the call's sdp and ice messages go to the Media instead of Next; those
// already buffered are taken from the buffer and handled first. The caller
// may start media right after the invite's ack, the callee after accepted.
func (c *Client) StartMedia(ctx context.Context, callID string, o MediaOptions) (*Media, error) {
	m, err := c.newMedia(callID, o)
	if err != nil {
		return nil, fmt.Errorf("client: start media: %w", err)
	}
	if err := c.addMedia(m); err != nil {
		_ = m.Close()
		return nil, fmt.Errorf("client: start media: %w", err)
	}
	m.goTracked(m.loop)
	if m.pub != nil {
		if err := m.offer(ctx); err != nil {
			_ = m.Close()
			return nil, fmt.Errorf("client: start media: %w", err)
		}
	}
	if m.hostNet != nil && m.pub != nil {
		m.goTracked(func() { m.watchNetwork(o.Network) })
	}
	return m, nil
}

// newMedia builds the PeerConnections and the publishing side.
func (c *Client) newMedia(callID string, o MediaOptions) (*Media, error) {
	if err := checkMediaOptions(o); err != nil {
		return nil, err
	}
	m := &Media{
		c:            c,
		callID:       callID,
		log:          c.log.With("user", c.welcome.User, "device", c.welcome.Device, "call", callID),
		events:       make(chan any, mediaEventQueue),
		done:         make(chan struct{}),
		pubConnected: make(chan struct{}),
		onRTP:        o.OnRTP,
		nacks:        newNACKCounter(),
	}
	servers := m.iceServers()
	var err error
	loopback := c.opts.LoopbackOnly && o.Network == nil
	if !loopback {
		if m.hostNet, err = newHostNet(); err != nil {
			return nil, fmt.Errorf("list network interfaces: %w", err)
		}
	}
	local := serverOnThisHost(c.opts.URL)
	subSettings := pcSettings{ports: o.ReceivePorts, noNACK: o.DisableNACK, nacks: m.nacks, net: o.Network, loopback: loopback, serverLocal: local, hostNet: m.hostNet, impair: c.opts.Impair}
	if m.sub, err = newPeerConnection(m.log.With("pc", protocol.PCSub), m.pcConfig(servers), subSettings); err != nil {
		return nil, err
	}
	m.subTrickle = newTrickle(m, protocol.PCSub)
	m.sub.OnICECandidate(m.subTrickle.onCandidate)
	m.sub.OnTrack(m.onTrack)
	m.sub.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		m.log.Debug("sub connection state", "state", s.String())
	})
	if !o.Audio && !o.Video && !o.ReceiveOnly && !o.Screen && o.ScreenTrack == nil && !o.Assist {
		return m, nil
	}

	pubSettings := pcSettings{net: o.Network, loopback: loopback, serverLocal: local, hostNet: m.hostNet, impair: c.opts.Impair}
	if o.EstimateBandwidth {
		pubSettings.bwe = func(e cc.BandwidthEstimator) { m.bwe.Store(&e) }
	}
	if m.pub, err = newPeerConnection(m.log.With("pc", protocol.PCPub), m.pcConfig(servers), pubSettings); err != nil {
		_ = m.sub.Close()
		return nil, err
	}
	m.pubTrickle = newTrickle(m, protocol.PCPub)
	m.pub.OnICECandidate(m.pubTrickle.onCandidate)
	m.pub.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		m.log.Debug("pub connection state", "state", s.String())
		if s == webrtc.PeerConnectionStateConnected {
			m.connOnce.Do(func() { close(m.pubConnected) })
		}
	})
	if o.ReceiveOnly {
		_, err = m.pub.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		if err != nil {
			err = fmt.Errorf("add receive-only transceiver: %w", err)
		}
	} else {
		err = m.publish(o)
	}
	if err == nil && o.Assist {
		err = m.openAssist(o.OnAssist)
	}
	if err != nil {
		_ = m.pub.Close()
		_ = m.sub.Close()
		return nil, err
	}
	return m, nil
}

// pcConfig is the PeerConnection configuration for this client's options.
func (m *Media) pcConfig(servers []webrtc.ICEServer) webrtc.Configuration {
	cfg := webrtc.Configuration{ICEServers: servers}
	if m.c.opts.RelayOnly {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	return cfg
}

// iceServers returns the welcome's servers, unless the client is
// LoopbackOnly without UseICEServers.
func (m *Media) iceServers() []webrtc.ICEServer {
	if m.c.opts.LoopbackOnly && !m.c.opts.UseICEServers {
		return nil
	}
	servers := m.c.iceServers()
	out := make([]webrtc.ICEServer, 0, len(servers))
	for _, s := range servers {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return out
}

// offer creates and sends a "pub" offer.
func (m *Media) offer(ctx context.Context) error {
	offer, err := m.pub.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("create pub offer: %w", err)
	}
	if err := m.pub.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("set pub offer: %w", err)
	}
	if err := m.sendPubOffer(offer.SDP); err != nil {
		return err
	}
	m.pubTrickle.release()
	return nil
}

// TargetBitrate is what send-side congestion control estimates the path
// to the server carries, in bit/s; 0 without MediaOptions.EstimateBandwidth
// or before pub connects.
func (m *Media) TargetBitrate() int {
	e := m.bwe.Load()
	if e == nil {
		return 0
	}
	return (*e).GetTargetBitrate()
}

// CallID returns the call this Media belongs to.
func (m *Media) CallID() string { return m.callID }

// Err returns the first error met while handling the server's sdp and ice
// messages, or nil.
func (m *Media) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// fail records err as the Media's error unless one is already recorded.
func (m *Media) fail(err error) {
	m.log.Warn("media signaling failed", "err", err)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err == nil {
		m.err = err
	}
}

// Close stops the pacers, closes both PeerConnections and waits for every
// goroutine of the Media. Later sdp and ice messages of the call go to the
// client's buffer again.
func (m *Media) Close() error {
	var err error
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		m.mu.Unlock()
		close(m.done)
		m.c.removeMedia(m)
		if m.pub != nil {
			err = m.pub.Close()
		}
		err = errors.Join(err, m.sub.Close())
		m.wg.Wait()
		if err != nil {
			err = fmt.Errorf("client: close media: %w", err)
		}
	})
	return err
}

// goTracked runs f on a goroutine that Close waits for, unless the Media is
// already closed.
func (m *Media) goTracked(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
}

// serverOnThisHost reports whether the signaling URL names a loopback
// host, so that the server's media is on this machine too.
func serverOnThisHost(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if ip := net.ParseIP(h); ip != nil {
		return ip.IsLoopback()
	}
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}
