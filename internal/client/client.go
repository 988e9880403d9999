package client

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// Connection timing and sizes.
const (
	handshakeTimeout = 10 * time.Second
	writeWait        = 10 * time.Second             // deadline for each write
	readWait         = 60 * time.Second             // the server pings every 20 s
	closeWait        = time.Second                  // for the close frame
	sendQueueLen     = 256                          // outgoing messages
	maxReadBytes     = 4 * protocol.MaxMessageBytes // server SDP may be large
)

// Client is one signed-in device: a WebSocket to Tandem with one reader and
// one writer goroutine. Its methods are safe for concurrent use.
type Client struct {
	connMu  sync.Mutex
	conn    *websocket.Conn // the socket in use; a new one after a reconnect
	log     *slog.Logger
	opts    Options
	welcome *protocol.Welcome

	in         *inbox
	out        chan outMsg
	unsent     chan outMsg   // a message whose write failed, for the next socket
	done       chan struct{} // closed by Close
	writerDone chan struct{} // closed when the client stops sending for good
	wg         sync.WaitGroup
	closeOnce  sync.Once
	reqID      atomic.Uint64
	gen        atomic.Uint64 // counts the sockets after the first (reconnects)

	mu    sync.Mutex
	media map[string]*Media    // by call id
	ice   []protocol.ICEServer // newest ICE servers: welcome's, then each refresh
}

// iceServers returns the newest ICE servers the server handed out.
func (c *Client) iceServers() []protocol.ICEServer {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ice != nil {
		return c.ice
	}
	if c.welcome != nil {
		return c.welcome.ICEServers
	}
	return nil
}

// Dial connects to o.URL, sends hello and waits for welcome. An error reply
// is returned as a *ServerError (e.g. code unauthorized).
func Dial(ctx context.Context, o Options) (*Client, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, w, err := dialConn(ctx, o)
	if err != nil {
		return nil, err
	}
	c := &Client{
		conn:       conn,
		log:        log,
		opts:       o,
		welcome:    w,
		in:         newInbox(),
		out:        make(chan outMsg, sendQueueLen),
		unsent:     make(chan outMsg, 1),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
		media:      make(map[string]*Media),
	}
	c.wg.Add(1)
	go c.serve(conn)
	return c, nil
}

// Welcome returns the server's welcome.
func (c *Client) Welcome() *protocol.Welcome { return c.welcome }

// Next returns the oldest unread server message: one of the types that
// protocol.DecodeServer returns. Once the connection is gone and the buffer
// is empty it returns ErrClosed or an error wrapping ErrDisconnected.
func (c *Client) Next(ctx context.Context) (any, error) {
	return c.in.take(ctx, nil)
}

// WaitFor returns the oldest unread message for which match is true. The
// messages it passes over stay buffered, in order, for later calls. match
// runs with the buffer locked and must not call methods of c.
func (c *Client) WaitFor(ctx context.Context, match func(any) bool) (any, error) {
	return c.in.take(ctx, match)
}

// Discard drops every message received and not yet taken, and reports
// how many there were: for a client that only waits for what it asked.
func (c *Client) Discard() int { return c.in.drop() }

// Close stops all Media, closes the socket and waits for the reader and
// writer to exit.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		// Closing done under mu keeps StartMedia from adding Media after
		// the snapshot.
		c.mu.Lock()
		close(c.done)
		media := make([]*Media, 0, len(c.media))
		for _, m := range c.media {
			media = append(media, m)
		}
		c.mu.Unlock()
		for _, m := range media {
			_ = m.Close()
		}

		// The writer sends the close frame when it sees done; the socket
		// closes once it has (serve), or now if the writer is stuck.
		select {
		case <-c.writerDone:
		case <-time.After(closeWait):
			_ = c.currentConn().Close()
		}
		c.wg.Wait()
	})
	return nil
}

// Drop cuts the socket the way a lost network does, without a close
// frame, and leaves every Media running: the server holds the device's
// calls for its reconnect grace window, for a new Client of the same
// device to resume. The Client is of no further use but must still be
// closed.
func (c *Client) Drop() {
	_ = c.currentConn().UnderlyingConn().Close()
}

// addMedia registers m for its call; there may be one Media per call. The
// call's sdp and ice messages already buffered move to m's backlog, in order.
func (c *Client) addMedia(m *Media) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	if _, ok := c.media[m.callID]; ok {
		return ErrMediaActive
	}
	c.media[m.callID] = m
	m.backlog = c.in.takeAll(func(msg any) bool {
		callID, ok := signalCall(msg)
		return ok && callID == m.callID
	})
	return nil
}

// removeMedia unregisters m if it is still the call's Media.
func (c *Client) removeMedia(m *Media) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.media[m.callID] == m {
		delete(c.media, m.callID)
	}
}
