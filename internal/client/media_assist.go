package client

import (
	"context"
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/assistwire"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// assistLabel is the data channel assistance events travel on.
const assistLabel = "assist"

// Assist starts remote assistance in a call. helped names the member
// whose screen is shared: the other member (this device helps and asks
// for grants, view at least) or this user (it invites the other member to
// help, granting grants at once).
func (c *Client) Assist(ctx context.Context, callID, helped string, grants ...string) error {
	_, err := c.Request(ctx, protocol.TypeAssist, &protocol.Assist{CallID: callID, Helped: helped, Grants: nonNil(grants)})
	return err
}

// AssistRequest asks, as the helper, for more grants.
func (c *Client) AssistRequest(ctx context.Context, callID string, grants ...string) error {
	_, err := c.Request(ctx, protocol.TypeAssistRequest, &protocol.Assist{CallID: callID, Grants: nonNil(grants)})
	return err
}

// AssistGrant sets, as the device being helped, everything granted; no
// grants revokes them all.
func (c *Client) AssistGrant(ctx context.Context, callID string, grants ...string) error {
	_, err := c.Request(ctx, protocol.TypeAssistGrant, &protocol.Assist{CallID: callID, Grants: nonNil(grants)})
	return err
}

// AssistEnd ends the assistance; the call goes on.
func (c *Client) AssistEnd(ctx context.Context, callID string) error {
	_, err := c.Request(ctx, protocol.TypeAssistEnd, &protocol.CallRef{CallID: callID})
	return err
}

// SendClipboard sends text copied on this device to the other side of
// the call's assistance, which may paste it; refused unless the clipboard
// grant is given.
func (c *Client) SendClipboard(ctx context.Context, callID, text string) error {
	_, err := c.Request(ctx, protocol.TypeAssistClipboard, &protocol.Clipboard{CallID: callID, Text: text})
	return err
}

// SendScreens tells the helper, from the device being helped, what it
// can be shown (m.Screens) and what it is shown (m.Shown).
func (c *Client) SendScreens(ctx context.Context, m *protocol.AssistScreens) error {
	_, err := c.Request(ctx, protocol.TypeAssistScreens, m)
	return err
}

// PickScreen asks, as the helper, to be shown screen i of the helped
// device's list (its last assist_screens).
func (c *Client) PickScreen(ctx context.Context, callID string, i int) error {
	_, err := c.Request(ctx, protocol.TypeAssistScreen, &protocol.AssistPick{CallID: callID, Screen: i})
	return err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// openAssist creates the "assist" data channel on pub, before the first
// offer, and delivers what arrives on it to on.
func (m *Media) openAssist(on func([]assistwire.Event)) error {
	dc, err := m.pub.CreateDataChannel(assistLabel, nil)
	if err != nil {
		return fmt.Errorf("assist data channel: %w", err)
	}
	m.assistDC = dc
	opened := make(chan struct{})
	m.assistOpen = opened
	dc.OnOpen(func() { close(opened) })
	dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		events, drops, err := assistwire.Decode(msg.Data, nil)
		if err != nil || drops.Total() > 0 {
			m.count.assistMalformed.Add(1)
		}
		m.count.assistReceived.Add(uint64(len(events)))
		if on != nil && len(events) > 0 {
			on(events)
		}
	})
	return nil
}

// SendAssist sends assistance events to the device being helped, through
// the server, which forwards only what this user is granted. It waits
// until the data channel is open (MediaOptions.Assist).
func (m *Media) SendAssist(ctx context.Context, events ...assistwire.Event) error {
	b, err := assistwire.AppendMessage(nil, events...)
	if err != nil {
		return fmt.Errorf("client: send assist: %w", err)
	}
	return m.SendAssistBytes(ctx, b)
}

// SendAssistBytes sends b as one message on the assist data channel, as
// it is: for showing what the server does with malformed input.
func (m *Media) SendAssistBytes(ctx context.Context, b []byte) error {
	if m.assistDC == nil {
		return fmt.Errorf("client: send assist: %w: no assist data channel (MediaOptions.Assist)", ErrMediaOptions)
	}
	select {
	case <-m.assistOpen:
	case <-m.done:
		return fmt.Errorf("client: send assist: %w", ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("client: send assist: %w", ctx.Err())
	}
	return m.assistDC.Send(b)
}

// KeyframeRequested reports, once, that the server asked for a keyframe
// (PLI or FIR) since the last call: the next frame of a ScreenTrack should
// be one.
func (m *Media) KeyframeRequested() bool { return m.forceKey.Swap(false) }

// markSlides adds RFC 4796's a=content:slides to the offer's section of
// the screen share (MediaOptions.Screen), which is how the server tells a
// screen from a camera.
func (m *Media) markSlides(offer string) string {
	if m.screen == nil {
		return offer
	}
	var mid string
	for _, tr := range m.pub.GetTransceivers() {
		if tr.Sender() == m.screen {
			mid = tr.Mid()
		}
	}
	if mid == "" {
		return offer
	}
	lines := strings.SplitAfter(offer, "\n")
	var out strings.Builder
	for _, l := range lines {
		out.WriteString(l)
		if strings.TrimRight(l, "\r\n") == "a=mid:"+mid {
			out.WriteString("a=content:slides\r\n")
		}
	}
	return out.String()
}
