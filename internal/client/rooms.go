package client

import (
	"context"
	"fmt"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// Join enters the named room, creating it if needed, and returns the room's
// call id: media (StartMedia) and Hangup use it as they use a call's. It
// waits for both the ack and the joined event and takes the joined event
// from the buffer; the member_joined and member_left events that follow
// stay buffered for Next and WaitFor.
func (c *Client) Join(ctx context.Context, room string) (string, error) {
	ack, err := c.Request(ctx, protocol.TypeJoin, &protocol.Join{Room: room})
	if err != nil {
		return "", err
	}
	if ack.CallID == "" {
		return "", ErrNoCallID
	}
	_, err = WaitForType(ctx, c, func(j *protocol.Joined) bool { return j.CallID == ack.CallID })
	if err != nil {
		return "", fmt.Errorf("client: waiting for joined %s: %w", ack.CallID, err)
	}
	return ack.CallID, nil
}
