package client

import (
	"log/slog"
	"net"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/assistwire"
)

// Options configures Dial.
type Options struct {
	// URL is the signaling endpoint, e.g. ws://127.0.0.1:8080/ws.
	URL string
	// Token is the access token sent in hello.
	Token string
	// Logger receives the client's and pion's logs; nil discards them.
	Logger *slog.Logger
	// RelayOnly makes Media use relay (TURN) candidates only.
	RelayOnly bool
	// Reconnect keeps the device signed in: when its socket fails, or the
	// address it left from goes (the network changed), the client dials
	// again until the server takes it back (or refuses the token), and the
	// server resumes its calls on the new socket; each call's Media then
	// restarts ICE. Without it a lost socket ends the Client: Next fails
	// with ErrDisconnected.
	Reconnect bool

	// LoopbackOnly is for tests and the load tool, which run client and
	// server on one machine: Media gathers host candidates on 127.0.0.0/8
	// only (or on MediaOptions.Network), drops remote candidates outside
	// it, and uses the server's STUN/TURN servers only with
	// UseICEServers. Without it Media is a client for real networks: it
	// gathers on every interface, IPv4 and IPv6, uses the STUN and TURN
	// servers the server names, takes every candidate the server sends,
	// and restarts ICE by itself when the host's addresses change.
	LoopbackOnly bool
	// UseICEServers, with LoopbackOnly, makes Media use the STUN/TURN
	// servers from welcome all the same.
	UseICEServers bool
	// Impair, when set, makes the device's link worse for as long as its
	// settings say, on the signaling socket and on every PeerConnection
	// of its Media (Impairment). For tests and the load tool.
	Impair *Impairment
}

// MediaOptions says what Media publishes on "pub" and how it receives.
// The first group is for any client; the second is for tests and the load
// tool: synthetic sources, tags that tell legs apart, pinned ports and
// measurement hooks.
type MediaOptions struct {
	// ScreenTrack, when set, is published as the screen share instead of
	// synthetic frames: the caller writes its samples, asking
	// Media.KeyframeRequested before each frame.
	ScreenTrack *webrtc.TrackLocalStaticSample
	// Assist opens the "assist" data channel on pub, for sending
	// assistance events (Media.SendAssist) as a helper, or receiving them
	// (OnAssist) as the device being helped.
	Assist bool
	// OnAssist, when set, is called with the events of each assistance
	// message received, on the data channel's goroutine.
	OnAssist func(events []assistwire.Event)
	// EstimateBandwidth runs send-side congestion control on pub (the
	// server's transport-wide CC feedback, Google's estimator):
	// Media.TargetBitrate then says what the path to the server carries,
	// for a sender that encodes its own frames (ScreenTrack) to follow.
	EstimateBandwidth bool
	// ReceiveOnly publishes nothing but still offers on "pub", with one
	// receive-only audio section: the server creates a member's media leg
	// on its first pub offer and only then offers the others' tracks on
	// "sub". Without Audio, Video or ReceiveOnly no pub offer is sent.
	ReceiveOnly bool

	// For tests and the load tool.

	// Network, when set, makes both PeerConnections gather candidates on
	// the local addresses inside it only, and the Media watches those
	// addresses: when they change, as on a phone moving from Wi-Fi to
	// cellular, it restarts ICE by itself (see RestartICE). For tests
	// that give the client an address in a network namespace of their
	// own and then change it; without it a client that is not
	// LoopbackOnly gathers on, and watches, every address it has.
	Network *net.IPNet
	// Audio publishes an Opus track: one fake 20 ms frame every 20 ms.
	Audio bool
	// Video publishes a VP8 track: fake frames at 30 fps, a keyframe first,
	// every 30th frame, and after each PLI or FIR.
	Video bool
	// VideoBitrate, when positive, makes the video track a load source:
	// frames of VideoBitrate/30 bits, split into RTP packets of at most
	// MaxLoadPayload bytes, each carrying its send time (see SentAt).
	VideoBitrate int
	// Simulcast, with VideoBitrate, publishes the video as three
	// simulcast layers, rids "q", "h" and "f", of 320×180, 640×360 and
	// 1280×720 (in their keyframe headers) at about a tenth, a third and
	// all of VideoBitrate. The client stops sending a layer while the
	// server's layers message says nobody receives it.
	Simulcast bool
	// AudioFrameBytes, when positive, makes the audio track a load source:
	// 20 ms Opus packets of that many bytes (at least MinLoadAudioBytes),
	// each carrying its send time.
	AudioFrameBytes int
	// Screen publishes a second synthetic VP8 track, marked as a screen
	// share (a=content:slides in the offer), as the device being helped
	// in a remote assistance does. Its frames end with ScreenTag.
	Screen    bool
	ScreenTag byte
	// Tag, when not 0, ends every published audio and video frame (not
	// load sources): a receiver tells this leg's media from another's by
	// the last payload byte of a frame's last packet, as a handoff test
	// needs.
	Tag byte
	// ReceivePorts, when set, makes "sub" bind its ICE sockets to local
	// UDP ports in this range, so that a test can impair what the SFU
	// sends to this leg alone (tc or nftables matching the destination
	// port). Pick a range outside the kernel's ephemeral ports
	// (net.ipv4.ip_local_port_range, 32768–60999 by default) so that no
	// other socket lands in it.
	ReceivePorts PortRange
	// DisableNACK makes "sub" never ask for retransmissions: lost video
	// packets stay lost. For measuring what NACK recovers.
	DisableNACK bool
	// OnRTP, when set, is called with every media packet received on
	// "sub" and the time it was read, on the goroutine reading that track.
	// It must return quickly and must not call methods of the Client or
	// the Media.
	OnRTP func(t RemoteTrack, p *rtp.Packet, at time.Time)
}
