package client

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/transport/v4"
	"github.com/pion/transport/v4/stdnet"
	"github.com/pion/webrtc/v4"
)

// Codec payload types offered on "pub"; the SFU may answer with its own.
const (
	opusPayloadType = 111
	vp8PayloadType  = 96
)

// relayAcceptanceWait is how long a real client waits for a direct path
// before it takes a relayed one.
const relayAcceptanceWait = 500 * time.Millisecond

// maxNACKsPerPacket is how often "sub" asks for one lost packet.
const maxNACKsPerPacket = 10

// pcSettings are what one PeerConnection's API may differ in.
type pcSettings struct {
	ports  PortRange    // local ICE ports; zero for any
	noNACK bool         // never ask for retransmissions
	nacks  *nackCounter // counts NACKs and retransmissions; nil for none
	net    *net.IPNet   // local addresses to gather on; nil for all (or loopback)
	// loopback gathers on 127.0.0.0/8 only, when net is nil.
	loopback bool
	// serverLocal, for a client that is not loopback-only, is a server on
	// this machine: loopback addresses are worth gathering on too.
	serverLocal bool
	// hostNet, unless loopback, is the host's interfaces as ICE sees
	// them; pion lists them once, so a network change needs
	// UpdateInterfaces.
	hostNet *hostNet
	// bwe, when set, runs send-side congestion control (transport-wide CC
	// feedback into Google's estimator) and is given the estimator.
	bwe func(cc.BandwidthEstimator)
	// impair, when set, loses and delays the PeerConnection's datagrams
	// (Options.Impair).
	impair *Impairment
}

// Send-side bandwidth estimation (MediaOptions.EstimateBandwidth).
const (
	bweInitial = 1_000_000 // bit/s, before any feedback
	bweMin     = 100_000
	bweMax     = 8_000_000
)

// newAPI builds a pion API for one PeerConnection: Opus and VP8 only, NACK
// and RTCP report interceptors, and ICE over UDP on the addresses s allows.
func newAPI(log *slog.Logger, s pcSettings) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1",
		},
		PayloadType: opusPayloadType,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("register opus: %w", err)
	}
	videoFeedback := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	if s.bwe != nil {
		videoFeedback = append(videoFeedback, webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC})
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: videoFeedback,
		},
		PayloadType: vp8PayloadType,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("register vp8: %w", err)
	}
	// mid and rid header extensions, which simulcast publishing needs.
	if err := webrtc.ConfigureSimulcastExtensionHeaders(me); err != nil {
		return nil, fmt.Errorf("simulcast extensions: %w", err)
	}

	ir := &interceptor.Registry{}
	if s.nacks != nil {
		// Before the NACK generator, which then writes through it.
		ir.Add(nackCounterFactory{s.nacks})
	}
	if !s.noNACK {
		// Like a browser, give a packet up after ten requests (libwebrtc's
		// limit): by then the sender has no copy, and asking again only
		// loads the link. pion asks until the packet leaves its window.
		gen := []nack.GeneratorOption{nack.GeneratorMaxNacksPerPacket(maxNACKsPerPacket)}
		if err := webrtc.ConfigureNackWithOptions(me, ir, gen); err != nil {
			return nil, fmt.Errorf("configure nack: %w", err)
		}
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, fmt.Errorf("configure rtcp reports: %w", err)
	}
	if s.bwe != nil {
		// Google congestion control on the server's transport-wide CC
		// feedback. No pacer: a frame goes out whole, and the sender
		// follows the estimate by encoding at it.
		f, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
			return gcc.NewSendSideBWE(gcc.SendSideBWEInitialBitrate(bweInitial), gcc.SendSideBWEMinBitrate(bweMin),
				gcc.SendSideBWEMaxBitrate(bweMax), gcc.SendSideBWEPacer(gcc.NewNoOpPacer()))
		})
		if err != nil {
			return nil, fmt.Errorf("congestion control: %w", err)
		}
		f.OnNewPeerConnection(func(_ string, e cc.BandwidthEstimator) { s.bwe(e) })
		ir.Add(f)
		if err := webrtc.ConfigureTWCCHeaderExtensionSender(me, ir); err != nil {
			return nil, fmt.Errorf("transport-wide cc: %w", err)
		}
	}

	se := webrtc.SettingEngine{LoggerFactory: pionLogs(log)}
	// The server is ICE-lite, and pion answering a lite offer (the sub
	// PC's) takes the DTLS server role by default. Take the client role,
	// as browsers do: the server's direct SRTP output needs to be the DTLS
	// server.
	if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleClient); err != nil {
		return nil, fmt.Errorf("dtls role: %w", err)
	}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	switch {
	case s.net != nil:
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
		se.SetIPFilter(s.net.Contains)
		se.SetNet(s.hostNet)
	case s.loopback:
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	default:
		// Every address a peer elsewhere could reach: IPv4 and IPv6, but
		// not IPv6 link-local ones, which name no route, and loopback only
		// for a server on this machine.
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
		se.SetIncludeLoopbackCandidate(s.serverLocal)
		se.SetIPFilter(func(ip net.IP) bool { return gatherable(ip) && (s.serverLocal || !ip.IsLoopback()) })
		// pion waits 2 s before it nominates a relayed pair, in case a
		// direct one proves itself; the server already holds relayed
		// checks back (sfu/relaycheck.go), and a client behind a firewall
		// that only lets TLS out would wait for nothing.
		se.SetRelayAcceptanceMinWait(relayAcceptanceWait)
		if s.hostNet != nil {
			se.SetNet(s.hostNet)
		}
	}
	if err := s.ports.apply(&se); err != nil {
		return nil, err
	}
	if s.impair != nil {
		var base transport.Net
		if s.hostNet != nil {
			base = s.hostNet
		}
		n, err := impairNet(base, s.impair)
		if err != nil {
			return nil, err
		}
		se.SetNet(n)
	}

	return webrtc.NewAPI(
		webrtc.WithMediaEngine(me),
		webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(se),
	), nil
}

// newPeerConnection builds a PeerConnection on its own API, so that each
// has its own interceptors.
func newPeerConnection(log *slog.Logger, cfg webrtc.Configuration, s pcSettings) (*webrtc.PeerConnection, error) {
	api, err := newAPI(log, s)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(cfg)
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	return pc, nil
}

// gatherable reports whether a real client gathers candidates on ip.
func gatherable(ip net.IP) bool {
	return !ip.IsLinkLocalUnicast() && !ip.IsUnspecified() && !ip.IsMulticast()
}

// turnDialTimeout bounds a TCP connection to a TURN server. pion dials
// TURN over TCP and TLS without a deadline and waits for that dial when
// the PeerConnection closes: behind a firewall that drops what it does not
// allow (as many do, rather than refuse), closing a call took the kernel's
// two minutes of SYN retries.
const turnDialTimeout = 5 * time.Second

// hostNet is the host's network as ICE sees it, with TCP dials bounded.
type hostNet struct{ *stdnet.Net }

func newHostNet() (*hostNet, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &hostNet{n}, nil
}

// DialTCP implements transport.Net with a timeout.
func (n *hostNet) DialTCP(network string, laddr, raddr *net.TCPAddr) (transport.TCPConn, error) {
	d := net.Dialer{Timeout: turnDialTimeout}
	if laddr != nil {
		d.LocalAddr = laddr
	}
	c, err := d.Dial(network, raddr.String())
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil //nolint:forcetypeassert // a TCP dial gives a *net.TCPConn
}
