package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// start runs the reader and writer goroutines.
func (c *Client) start() {
	c.conn.SetReadLimit(maxReadBytes)
	_ = c.conn.SetReadDeadline(time.Now().Add(readWait))
	c.conn.SetPingHandler(func(data string) error {
		_ = c.conn.SetReadDeadline(time.Now().Add(readWait))
		err := c.conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	c.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
}

// readLoop decodes server messages and routes them to Media or the buffer.
func (c *Client) readLoop() {
	defer c.wg.Done()
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			c.in.fail(c.readError(err))
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(readWait))
		msg, err := protocol.DecodeServer(data)
		if err != nil {
			c.log.Warn("undecodable server message", "err", err)
			continue
		}
		if err := c.dispatch(msg); err != nil {
			c.in.fail(err)
			_ = c.conn.Close()
			return
		}
	}
}

// readError tells a local Close from a lost connection.
func (c *Client) readError(err error) error {
	select {
	case <-c.done:
		return ErrClosed
	default:
		return fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
}

// dispatch hands sdp and ice messages of a call with active Media to it and
// buffers every other message. The lookup and the push happen under c.mu,
// so that StartMedia sees each message either in the buffer or not at all.
func (c *Client) dispatch(msg any) error {
	if m, ok := msg.(*protocol.ICEServers); ok {
		// Fresh TURN credentials: used by PeerConnections made from now on.
		c.mu.Lock()
		c.ice = m.ICEServers
		c.mu.Unlock()
	}
	callID, ok := signalCall(msg)
	c.mu.Lock()
	var md *Media
	if ok {
		md = c.media[callID]
	}
	if md == nil {
		err := c.in.push(msg)
		c.mu.Unlock()
		return err
	}
	c.mu.Unlock()
	md.deliver(msg, c.done)
	return nil
}

// signalCall returns the call of an sdp, ice or layers message; ok is false for any
// other message. Call and room events (accepted, joined, member_joined,
// member_left, ended, media) carry a call id too, but they are for the
// application, not the Media: they stay in the buffer even while the call
// has Media.
func signalCall(msg any) (callID string, ok bool) {
	switch m := msg.(type) {
	case *protocol.SDP:
		return m.CallID, true
	case *protocol.ICE:
		return m.CallID, true
	case *protocol.Layers:
		return m.CallID, true
	}
	return "", false
}

// writeLoop writes queued messages, each with a deadline, until Close. A
// failed write closes the socket, which also ends the reader, and later
// sends fail at once.
func (c *Client) writeLoop() {
	defer c.wg.Done()
	defer close(c.writerDone)
	for {
		select {
		case <-c.done:
			return
		case b := <-c.out:
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
				c.log.Warn("write failed", "err", err)
				_ = c.conn.Close()
				return
			}
		}
	}
}
