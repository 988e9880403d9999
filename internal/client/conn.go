package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// Reconnecting (Options.Reconnect).
const (
	// reconnectMin and reconnectMax bound the wait between dials while
	// the server cannot be reached: it doubles from the first to the
	// second, as the web client's does.
	reconnectMin = 250 * time.Millisecond
	reconnectMax = 2 * time.Second
	// addrPoll is how often a reconnecting client checks that the address
	// its socket leaves from is still the host's.
	addrPoll = 250 * time.Millisecond
)

// currentConn is the socket in use (the last one, once closed).
func (c *Client) currentConn() *websocket.Conn {
	c.connMu.Lock()
	defer c.connMu.Unlock()
	return c.conn
}

// dialConn opens a socket, sends hello and reads until welcome. An error
// reply is returned as a *ServerError.
func dialConn(ctx context.Context, o Options) (*websocket.Conn, *protocol.Welcome, error) {
	d := websocket.Dialer{HandshakeTimeout: handshakeTimeout}
	if im := o.Impair; im != nil {
		d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			c, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &impairedConn{Conn: c, im: im}, nil
		}
	}
	conn, resp, err := d.DialContext(ctx, o.URL, nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("client: dial %s: %w", o.URL, err)
	}
	w, err := hello(ctx, conn, o.Token)
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, w, nil
}

// hello sends hello on a new socket and waits for welcome or an error,
// before the socket's reader and writer start.
func hello(ctx context.Context, conn *websocket.Conn, token string) (*protocol.Welcome, error) {
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	b, err := protocol.Encode(protocol.TypeHello, &protocol.Hello{Token: token})
	if err != nil {
		return nil, fmt.Errorf("client: hello: %w", err)
	}
	_ = conn.SetWriteDeadline(deadline)
	if err := conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return nil, fmt.Errorf("client: hello: %w", err)
	}
	conn.SetReadLimit(maxReadBytes)
	_ = conn.SetReadDeadline(deadline)
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return nil, fmt.Errorf("client: waiting for welcome: %w", err)
		}
		msg, err := protocol.DecodeServer(data)
		if err != nil {
			continue
		}
		switch m := msg.(type) {
		case *protocol.Welcome:
			return m, nil
		case *protocol.Error:
			return nil, newServerError(m)
		}
	}
}

// serve runs the sockets: the first until it fails, then, with
// Options.Reconnect, each new one the server lets it open. When it ends,
// the inbox fails and sends fail.
func (c *Client) serve(conn *websocket.Conn) {
	defer c.wg.Done()
	defer close(c.writerDone)
	for {
		err := c.runConn(conn)
		select {
		case <-c.done:
			c.in.fail(ErrClosed)
			return
		default:
		}
		err = fmt.Errorf("%w: %w", ErrDisconnected, err)
		if !c.opts.Reconnect || errors.Is(err, ErrBufferFull) {
			c.in.fail(err)
			return
		}
		c.log.Info("signaling lost; reconnecting", "err", err)
		if conn, err = c.redial(); err != nil {
			c.in.fail(err)
			return
		}
	}
}

// redial dials until a socket is signed in, Close is called, or the
// server refuses the device (its token revoked or expired).
func (c *Client) redial() (*websocket.Conn, error) {
	wait := reconnectMin
	for {
		ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
		go func() {
			select {
			case <-c.done:
				cancel()
			case <-ctx.Done():
			}
		}()
		conn, w, err := dialConn(ctx, c.opts)
		cancel()
		select {
		case <-c.done:
			if conn != nil {
				_ = conn.Close()
			}
			return nil, ErrClosed
		default:
		}
		if err == nil {
			c.log.Info("signaling back", "session", w.SessionID)
			c.connMu.Lock()
			c.conn = conn
			c.gen.Add(1)
			c.connMu.Unlock()
			return conn, nil
		}
		var se *ServerError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: signing in again: %w", ErrDisconnected, err)
		}
		c.log.Debug("reconnect failed", "err", err, "retry_in", wait)
		select {
		case <-c.done:
			return nil, ErrClosed
		case <-time.After(wait):
		}
		wait = min(2*wait, reconnectMax)
	}
}

// runConn serves one socket: a reader here, a writer beside it. It
// returns the error that ended it once both have stopped.
func (c *Client) runConn(conn *websocket.Conn) error {
	conn.SetReadLimit(maxReadBytes)
	_ = conn.SetReadDeadline(time.Now().Add(readWait))
	conn.SetPingHandler(func(data string) error {
		_ = conn.SetReadDeadline(time.Now().Add(readWait))
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	stop := make(chan struct{})
	writer := make(chan struct{})
	gen := c.gen.Load()
	go func() {
		defer close(writer)
		c.writeLoop(conn, gen, stop)
	}()
	if c.opts.Reconnect {
		go c.watchAddr(conn, stop)
	}
	err := c.readLoop(conn)
	close(stop)
	_ = conn.Close()
	<-writer
	return err
}

// readLoop decodes server messages and routes them to Media or the buffer,
// until the socket fails.
func (c *Client) readLoop(conn *websocket.Conn) error {
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(readWait))
		msg, err := protocol.DecodeServer(data)
		if err != nil {
			c.log.Warn("undecodable server message", "err", err)
			continue
		}
		if err := c.dispatch(msg); err != nil {
			return err
		}
	}
}

// dispatch hands sdp and ice messages of a call with active Media to it and
// buffers every other message. The lookup and the push happen under c.mu,
// so that StartMedia sees each message either in the buffer or not at all.
func (c *Client) dispatch(msg any) error {
	switch m := msg.(type) {
	case *protocol.ICEServers:
		// Fresh TURN credentials: used by PeerConnections made from now on.
		c.mu.Lock()
		c.ice = m.ICEServers
		c.mu.Unlock()
	case *protocol.Resumed:
		c.resumed(m)
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

// resumed restarts ICE on a call's Media when a new socket took the call
// over: the socket was most likely lost because the network changed, and
// the media path with it.
func (c *Client) resumed(m *protocol.Resumed) {
	c.mu.Lock()
	md := c.media[m.CallID]
	c.mu.Unlock()
	if md == nil || md.pub == nil {
		return
	}
	if m.Rejoin {
		// Another node took the call over and has none of its media:
		// restarting ICE cannot help. The application closes this Media
		// and starts one anew (the agent does, session.rejoin).
		c.log.Info("the call moved to another node; its media must start anew", "call", m.CallID)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := md.restart(ctx, true); err != nil {
			c.log.Warn("ice restart after reconnecting failed", "call", m.CallID, "err", err)
		}
	}()
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

// writeLoop writes queued messages, each with a deadline, until stop or
// Close (then it sends the close frame). A failed write closes the socket,
// which also ends the reader; the message that failed is kept for the
// next socket.
func (c *Client) writeLoop(conn *websocket.Conn, gen uint64, stop <-chan struct{}) {
	for {
		var m outMsg
		select {
		case <-c.done:
			msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
			err := conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait))
			if err != nil && !errors.Is(err, websocket.ErrCloseSent) {
				c.log.Debug("close frame not sent", "err", err)
			}
			return
		case <-stop:
			return
		case m = <-c.unsent:
		case m = <-c.out:
		}
		_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
		if err := conn.WriteMessage(websocket.TextMessage, m.b); err != nil {
			c.log.Warn("write failed", "err", err)
			select {
			case c.unsent <- m:
			default:
			}
			_ = conn.Close()
			return
		}
		if m.sent != nil {
			m.sent(gen)
		}
	}
}

// watchAddr closes the socket when the address it leaves from is no
// longer the host's, as when a laptop leaves one network for another: the
// old connection would otherwise take minutes to fail.
func (c *Client) watchAddr(conn *websocket.Conn, stop <-chan struct{}) {
	local, ok := conn.UnderlyingConn().LocalAddr().(*net.TCPAddr)
	if !ok || local.IP.IsLoopback() {
		return
	}
	t := time.NewTicker(addrPoll)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if !hostHas(local.IP) {
			c.log.Info("the address signaling left from is gone; reconnecting", "addr", local.IP)
			_ = conn.UnderlyingConn().Close()
			return
		}
	}
}

// hostHas reports whether ip is one of the host's addresses; on error it
// says yes, so that nothing is closed for want of an answer.
func hostHas(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}
