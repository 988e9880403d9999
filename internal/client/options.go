package client

import (
	"log/slog"
	"time"

	"github.com/pion/rtp"
)

// Options configures Dial.
type Options struct {
	// URL is the signaling endpoint, e.g. ws://127.0.0.1:8080/ws.
	URL string
	// Token is the access token sent in hello.
	Token string
	// Logger receives the client's and pion's logs; nil discards them.
	Logger *slog.Logger
	// UseICEServers makes Media use the STUN/TURN servers from welcome.
	// By default Media uses none and relies on loopback host candidates.
	UseICEServers bool
	// RelayOnly makes Media use relay (TURN) candidates only; it implies
	// nothing about UseICEServers, which must be set too.
	RelayOnly bool
}

// MediaOptions says which synthetic tracks Media publishes on "pub".
type MediaOptions struct {
	// Audio publishes an Opus track: one fake 20 ms frame every 20 ms.
	Audio bool
	// Video publishes a VP8 track: fake frames at 30 fps, a keyframe first,
	// every 30th frame, and after each PLI or FIR.
	Video bool
	// ReceiveOnly publishes nothing but still offers on "pub", with one
	// receive-only audio section: the server creates a member's media leg
	// on its first pub offer and only then offers the others' tracks on
	// "sub". Without Audio, Video or ReceiveOnly no pub offer is sent.
	ReceiveOnly bool

	// VideoBitrate, when positive, makes the video track a load source:
	// frames of VideoBitrate/30 bits, split into RTP packets of at most
	// MaxLoadPayload bytes, each carrying its send time (see SentAt).
	VideoBitrate int
	// AudioFrameBytes, when positive, makes the audio track a load source:
	// 20 ms Opus packets of that many bytes (at least MinLoadAudioBytes),
	// each carrying its send time.
	AudioFrameBytes int

	// OnRTP, when set, is called with every media packet received on
	// "sub" and the time it was read, on the goroutine reading that track.
	// It must return quickly and must not call methods of the Client or
	// the Media.
	OnRTP func(t RemoteTrack, p *rtp.Packet, at time.Time)
}
