// Package client is a Go client for Tandem: it speaks the signaling protocol
// (docs/protocol.md) over a WebSocket and exchanges real media with the SFU
// over two pion PeerConnections per call leg. Integration tests and the
// load-test tool use it in place of a browser.
//
// A Client keeps every server message it receives in one ordered buffer;
// Next and WaitFor take messages from it. The only messages that bypass the
// buffer are the sdp and ice messages of a call that has active Media: those
// go to the Media, which answers them by itself.
//
// Media works across real networks: it gathers on every interface, IPv4
// and IPv6, uses the STUN and TURN servers the server names (TURN over
// UDP, TCP or TLS), and restarts ICE when the host's addresses change.
// Tests and the load tool, which run everything on one machine, opt into
// Options.LoopbackOnly, and the synthetic sources of MediaOptions (fake
// audio and video, load sources, tags, pinned ports) are theirs; the
// desktop agent publishes real frames through MediaOptions.ScreenTrack.
package client
