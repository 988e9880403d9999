package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, fs *fakeServer, token string) *Client {
	t.Helper()
	c, err := Dial(testContext(t), Options{URL: fs.url(), Token: token, LoopbackOnly: true})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// callServer acks invites after sending events that the client must keep,
// and refuses invites to "offline".
func callServer(fc *fakeConn, msg any) {
	switch m := msg.(type) {
	case *protocol.Invite:
		if m.To == "offline" {
			fc.send(protocol.TypeError, &protocol.Error{Re: m.ID, Code: protocol.CodeUserOffline, Message: "offline"})
			return
		}
		fc.send(protocol.TypeAck, &protocol.Ack{Re: "someone-else", CallID: "c_other"})
		fc.send(protocol.TypeMedia, &protocol.Media{CallID: "c_1", User: m.To, Audio: true})
		fc.send(protocol.TypeAck, &protocol.Ack{Re: m.ID, CallID: "c_1"})
		fc.send(protocol.TypeRinging, &protocol.RingingEvent{CallID: "c_1", Device: "tablet"})
	case *protocol.Accept:
		fc.send(protocol.TypeAck, &protocol.Ack{Re: m.ID})
		fc.send(protocol.TypeAccepted, &protocol.Accepted{CallID: m.CallID, By: protocol.Party{User: fc.user, Device: "dev"}})
	case *protocol.CallRef:
		switch m.Type {
		case protocol.TypeHangup:
			fc.send(protocol.TypeError, &protocol.Error{Re: m.ID, Code: protocol.CodeNotInCall, Message: "not in call", CallID: m.CallID})
		case protocol.TypeDecline:
			fc.send(protocol.TypeAck, &protocol.Ack{Re: m.ID})
		case protocol.TypeRinging:
			fc.send(protocol.TypeRinging, &protocol.RingingEvent{CallID: m.CallID, Device: "echo"})
		}
	case *protocol.Header: // ping
		fc.send(protocol.TypePong, &protocol.Header{})
	}
}

func TestDialWelcome(t *testing.T) {
	fs := newFakeServer(t, callServer)
	c := dial(t, fs, "alice")
	w := c.Welcome()
	if w == nil || w.User != "alice" || w.SessionID != "s_1" || w.RingTimeoutMS != 45000 {
		t.Fatalf("Welcome = %+v", w)
	}
}

func TestDialUnauthorized(t *testing.T) {
	fs := newFakeServer(t, callServer)
	c, err := Dial(testContext(t), Options{URL: fs.url(), Token: "bad"})
	if err == nil {
		_ = c.Close()
		t.Fatal("Dial succeeded with a bad token")
	}
	var se *ServerError
	if !errors.As(err, &se) || se.Code != protocol.CodeUnauthorized || se.Message != "bad token" {
		t.Fatalf("err = %v, want ServerError unauthorized", err)
	}
	if !IsCode(err, protocol.CodeUnauthorized) {
		t.Fatal("IsCode(unauthorized) = false")
	}
}

func TestDialNoServer(t *testing.T) {
	fs := newFakeServer(t, nil)
	u := fs.url()
	fs.stop()
	if _, err := Dial(testContext(t), Options{URL: u, Token: "alice"}); err == nil {
		t.Fatal("Dial to a stopped server succeeded")
	}
}

func TestInviteMatchesAckByRe(t *testing.T) {
	fs := newFakeServer(t, callServer)
	c := dial(t, fs, "alice")
	ctx := testContext(t)

	id, err := c.Invite(ctx, "bob", true)
	if err != nil {
		t.Fatalf("Invite: %v", err)
	}
	if id != "c_1" {
		t.Fatalf("call id = %q, want c_1 (the ack for another request was taken)", id)
	}
	// The messages around the ack stay buffered, in order.
	want := []string{"ack:someone-else", "media:bob", "ringing:tablet"}
	for _, w := range want {
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if got := describe(m); got != w {
			t.Fatalf("Next = %s, want %s", got, w)
		}
	}
}

func TestRequestErrorReply(t *testing.T) {
	fs := newFakeServer(t, callServer)
	c := dial(t, fs, "alice")
	ctx := testContext(t)

	_, err := c.Invite(ctx, "offline", false)
	var se *ServerError
	if !errors.As(err, &se) || se.Code != protocol.CodeUserOffline || se.Re == "" {
		t.Fatalf("Invite err = %v, want ServerError user_offline with re", err)
	}
	err = c.Hangup(ctx, "c_9")
	if !IsCode(err, protocol.CodeNotInCall) {
		t.Fatalf("Hangup err = %v, want not_in_call", err)
	}
	if err := c.Decline(ctx, "c_9"); err != nil {
		t.Fatalf("Decline: %v", err)
	}
}

func TestAcceptLeavesAcceptedEvent(t *testing.T) {
	fs := newFakeServer(t, callServer)
	c := dial(t, fs, "bob")
	ctx := testContext(t)

	if err := c.Accept(ctx, "c_1", false); err != nil {
		t.Fatalf("Accept: %v", err)
	}
	m, err := c.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if a, ok := m.(*protocol.Accepted); !ok || a.CallID != "c_1" || a.By.User != "bob" {
		t.Fatalf("Next = %#v, want accepted", m)
	}
}

func TestWaitForKeepsOthersInOrder(t *testing.T) {
	fs := newFakeServer(t, func(fc *fakeConn, msg any) {
		if _, ok := msg.(*protocol.Header); !ok {
			return
		}
		for _, d := range []string{"d1", "d2", "d3", "d4", "d5"} {
			fc.send(protocol.TypeRinging, &protocol.RingingEvent{CallID: "c_1", Device: d})
		}
	})
	c := dial(t, fs, "alice")
	ctx := testContext(t)

	if err := c.Send(ctx, protocol.TypePing, &protocol.Header{}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m, err := c.WaitFor(ctx, func(m any) bool {
		r, ok := m.(*protocol.RingingEvent)
		return ok && r.Device == "d3"
	})
	if err != nil || describe(m) != "ringing:d3" {
		t.Fatalf("WaitFor = %v, %v; want ringing:d3", describe(m), err)
	}
	for _, w := range []string{"ringing:d1", "ringing:d2", "ringing:d4", "ringing:d5"} {
		m, err := c.Next(ctx)
		if err != nil || describe(m) != w {
			t.Fatalf("Next = %s, %v; want %s", describe(m), err, w)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if m, err := c.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next on an empty buffer = %s, %v; want deadline exceeded", describe(m), err)
	}
}

func TestRingingIsFireAndForget(t *testing.T) {
	fs := newFakeServer(t, callServer)
	c := dial(t, fs, "bob")
	ctx := testContext(t)
	if err := c.Ringing(ctx, "c_5"); err != nil {
		t.Fatalf("Ringing: %v", err)
	}
	m, err := c.Next(ctx)
	if err != nil || describe(m) != "ringing:echo" {
		t.Fatalf("Next = %s, %v", describe(m), err)
	}
}

func TestServerCloseEndsNext(t *testing.T) {
	fs := newFakeServer(t, func(fc *fakeConn, msg any) {
		fc.send(protocol.TypeError, &protocol.Error{Code: protocol.CodeReplaced, Message: "replaced"})
		fc.close(4009, "replaced")
	})
	c := dial(t, fs, "alice")
	ctx := testContext(t)
	if err := c.Send(ctx, protocol.TypePing, &protocol.Header{}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	m, err := c.Next(ctx)
	if e, ok := m.(*protocol.Error); err != nil || !ok || e.Code != protocol.CodeReplaced {
		t.Fatalf("Next = %#v, %v; want error replaced", m, err)
	}
	_, err = c.Next(ctx)
	var ce *websocket.CloseError
	if !errors.Is(err, ErrDisconnected) || !errors.As(err, &ce) || ce.Code != 4009 {
		t.Fatalf("Next err = %v, want ErrDisconnected with close 4009", err)
	}
	if err := c.Send(ctx, protocol.TypePing, &protocol.Header{}); err == nil {
		// The write may still succeed into the kernel buffer once; the
		// writer then fails and later sends must fail.
		deadline := time.Now().Add(5 * time.Second)
		for c.Send(ctx, protocol.TypePing, &protocol.Header{}) == nil {
			if time.Now().After(deadline) {
				t.Fatal("Send keeps succeeding on a closed connection")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestClosedClient(t *testing.T) {
	fs := newFakeServer(t, callServer)
	c := dial(t, fs, "alice")
	ctx := testContext(t)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.Send(ctx, protocol.TypePing, &protocol.Header{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
	if _, err := c.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close = %v, want ErrClosed", err)
	}
	if _, err := c.StartMedia(ctx, "c_1", MediaOptions{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("StartMedia after Close = %v, want ErrClosed", err)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	leaks := testkit.LeakCheck(t, 0)
	fs := newFakeServer(t, callServer)
	ctx := testContext(t)
	var clients []*Client
	for _, u := range []string{"alice", "bob", "carol"} {
		c, err := Dial(ctx, Options{URL: fs.url(), Token: u, LoopbackOnly: true})
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		if _, err := c.Invite(ctx, "dave", false); err != nil {
			t.Fatalf("Invite: %v", err)
		}
		clients = append(clients, c)
	}
	// One waiter is blocked when Close comes.
	waitErr := make(chan error, 1)
	go func() {
		_, err := clients[0].WaitFor(ctx, func(any) bool { return false })
		waitErr <- err
	}()
	for _, c := range clients {
		if err := c.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if err := <-waitErr; !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitFor during Close = %v, want ErrClosed", err)
	}
	fs.stop()
	leaks()
}

func TestRequestKeepsOwnID(t *testing.T) {
	c := &Client{}
	id, b, err := c.withID([]byte(`{"v":1,"type":"invite","to":"bob"}`))
	if err != nil || id != "r1" || string(b) != `{"id":"r1","v":1,"type":"invite","to":"bob"}` {
		t.Fatalf("withID = %q, %s, %v", id, b, err)
	}
	id, b, err = c.withID([]byte(`{"v":1,"type":"invite","id":"mine"}`))
	if err != nil || id != "mine" || string(b) != `{"v":1,"type":"invite","id":"mine"}` {
		t.Fatalf("withID = %q, %s, %v", id, b, err)
	}
}

// describe names a server message briefly for comparisons.
func describe(m any) string {
	switch v := m.(type) {
	case *protocol.Ack:
		return "ack:" + v.Re
	case *protocol.Media:
		return "media:" + v.User
	case *protocol.RingingEvent:
		return "ringing:" + v.Device
	case *protocol.Error:
		return "error:" + v.Code
	case nil:
		return "<nil>"
	}
	return "other"
}
