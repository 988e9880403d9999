package client

import (
	"context"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// Invite calls user to and returns the new call's id from the ack.
func (c *Client) Invite(ctx context.Context, to string, video bool) (string, error) {
	ack, err := c.Request(ctx, protocol.TypeInvite, &protocol.Invite{To: to, Video: video})
	if err != nil {
		return "", err
	}
	if ack.CallID == "" {
		return "", ErrNoCallID
	}
	return ack.CallID, nil
}

// Ringing tells the caller that this device shows the call. It is not
// acknowledged.
func (c *Client) Ringing(ctx context.Context, callID string) error {
	return c.Send(ctx, protocol.TypeRinging, &protocol.CallRef{CallID: callID})
}

// Accept answers a call on this device; endCurrent ends this user's current
// call first (call waiting). The accepted event that follows stays in the
// buffer for Next or WaitFor.
func (c *Client) Accept(ctx context.Context, callID string, endCurrent bool) error {
	_, err := c.Request(ctx, protocol.TypeAccept, &protocol.Accept{CallID: callID, EndCurrent: endCurrent})
	return err
}

// Decline refuses a ringing call and waits for the server's reply.
func (c *Client) Decline(ctx context.Context, callID string) error {
	_, err := c.Request(ctx, protocol.TypeDecline, &protocol.CallRef{CallID: callID})
	return err
}

// Hangup leaves or cancels a call and waits for the server's reply.
func (c *Client) Hangup(ctx context.Context, callID string) error {
	_, err := c.Request(ctx, protocol.TypeHangup, &protocol.CallRef{CallID: callID})
	return err
}

// Listen adds this device to the user's call as a second, receive-only
// leg while the call stays where it is, and waits for the server's reply.
// A handoff message with state "started" and Listen follows: start media
// with MediaOptions.ReceiveOnly then. Hangup stops listening.
func (c *Client) Listen(ctx context.Context, callID string) error {
	_, err := c.Request(ctx, protocol.TypeHandoff, &protocol.Handoff{CallID: callID, Listen: true})
	return err
}

// Handoff pulls the call to this device (device "") or pushes it from this
// device to the user's device named device, and waits for the server's
// reply. After a pull, the server's handoff message with state "started"
// follows: start media for the call then, and the call moves here once its
// media flows (state "done"), or stays where it was ("failed").
func (c *Client) Handoff(ctx context.Context, callID, device string) error {
	_, err := c.Request(ctx, protocol.TypeHandoff, &protocol.Handoff{CallID: callID, Device: device})
	return err
}
