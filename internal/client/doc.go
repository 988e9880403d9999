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
// Media only ever uses loopback addresses: it gathers host candidates on
// 127.0.0.0/8 and drops remote candidates outside it.
package client
