package client

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// Send encodes m as msgType and queues it for the writer. It waits while the
// queue is full, until ctx is done or the connection is gone.
func (c *Client) Send(ctx context.Context, msgType string, m protocol.EncodedMessage) error {
	b, err := protocol.Encode(msgType, m)
	if err != nil {
		return fmt.Errorf("client: encode %s: %w", msgType, err)
	}
	if err := c.enqueue(ctx.Done(), b); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("client: send %s: %w", msgType, ctx.Err())
		}
		return fmt.Errorf("client: send %s: %w", msgType, err)
	}
	return nil
}

// enqueue queues b, waiting until stop is closed. With a nil stop it does
// not wait and fails with ErrQueueFull when the queue is full.
func (c *Client) enqueue(stop <-chan struct{}, b []byte) error {
	return c.enqueueMsg(stop, outMsg{b: b})
}

// outMsg is a message queued for the socket. sent, when set, is called by
// the writer once the message is written, with the generation of the
// socket it went out on (Client.gen).
type outMsg struct {
	b    []byte
	sent func(gen uint64)
}

func (c *Client) enqueueMsg(stop <-chan struct{}, m outMsg) error {
	select {
	case <-c.done:
		return ErrClosed
	default:
	}
	select {
	case <-c.writerDone:
		return ErrDisconnected
	default:
	}
	if stop == nil {
		select {
		case c.out <- m:
			return nil
		default:
			return ErrQueueFull
		}
	}
	select {
	case c.out <- m:
		return nil
	case <-c.done:
		return ErrClosed
	case <-c.writerDone:
		return ErrDisconnected
	case <-stop:
		return context.Canceled
	}
}

// Request sends m with a fresh request id and waits for the ack or error
// carrying that id back in re. An error reply is returned as *ServerError.
// If m already has an id, that id is used. Next does not return the reply
// while Request waits for it, so one goroutine may read messages while
// others make requests.
func (c *Client) Request(ctx context.Context, msgType string, m protocol.EncodedMessage) (*protocol.Ack, error) {
	b, err := protocol.Encode(msgType, m)
	if err != nil {
		return nil, fmt.Errorf("client: encode %s: %w", msgType, err)
	}
	id, b, err := c.withID(b)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", msgType, err)
	}
	// The reply is this call's, even while another goroutine reads every
	// message with Next.
	c.in.claim(id)
	defer c.in.unclaim(id)
	if err := c.enqueue(ctx.Done(), b); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("client: send %s: %w", msgType, err)
	}
	reply, err := c.WaitFor(ctx, func(m any) bool {
		switch r := m.(type) {
		case *protocol.Ack:
			return r.Re == id
		case *protocol.Error:
			return r.Re == id
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("client: waiting for reply to %s %s: %w", msgType, id, err)
	}
	if e, ok := reply.(*protocol.Error); ok {
		return nil, newServerError(e)
	}
	return reply.(*protocol.Ack), nil
}

// withID returns the request id of the encoded message b, giving it a fresh
// one if it has none. Encoded messages are JSON objects, so the id can be
// put in front of the other fields.
func (c *Client) withID(b []byte) (string, []byte, error) {
	var h protocol.Header
	if err := json.Unmarshal(b, &h); err != nil {
		return "", nil, fmt.Errorf("reading header: %w", err)
	}
	if h.ID != "" {
		return h.ID, b, nil
	}
	id := "r" + strconv.FormatUint(c.reqID.Add(1), 10)
	out := make([]byte, 0, len(b)+len(id)+8)
	out = append(out, `{"id":"`...)
	out = append(out, id...)
	out = append(out, `",`...)
	out = append(out, b[1:]...)
	return id, out, nil
}
