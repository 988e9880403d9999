package client

import "log/slog"

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
}
