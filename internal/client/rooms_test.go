package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// roomServer answers join like Tandem: the joined event, then the ack, then
// a member_joined for someone who came in after. Room "old" gets the error
// a server without rooms sends.
func roomServer(fc *fakeConn, msg any) {
	switch m := msg.(type) {
	case *protocol.Join:
		if m.Room == "old" {
			fc.send(protocol.TypeError, &protocol.Error{Re: m.ID, Code: protocol.CodeUnknownType, Message: `unknown message type "join"`})
			return
		}
		me := protocol.Party{User: fc.user, Device: "dev"}
		fc.send(protocol.TypeJoined, &protocol.Joined{CallID: "r_1", Room: m.Room, Members: []protocol.Party{me}})
		fc.send(protocol.TypeAck, &protocol.Ack{Re: m.ID, CallID: "r_1"})
		fc.send(protocol.TypeMemberJoined, &protocol.MemberJoined{CallID: "r_1", Member: protocol.Party{User: "bob", Device: "phone"}})
		fc.send(protocol.TypeMemberLeft, &protocol.MemberLeft{CallID: "r_1", User: "bob", Reason: "hangup"})
	}
}

func TestJoinRoom(t *testing.T) {
	fs := newFakeServer(t, roomServer)
	c := dial(t, fs, "alice")
	ctx := testContext(t)

	id, err := c.Join(ctx, "bench-1")
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	if id != "r_1" {
		t.Fatalf("call id = %q, want r_1", id)
	}
	// Media for the room does not take the member events: they are for
	// the application.
	m, err := c.StartMedia(ctx, id, MediaOptions{})
	if err != nil {
		t.Fatalf("StartMedia: %v", err)
	}
	defer m.Close()
	joined, err := WaitForType[*protocol.MemberJoined](ctx, c, nil)
	if err != nil || joined.CallID != "r_1" || joined.Member.User != "bob" {
		t.Fatalf("member_joined = %+v, %v", joined, err)
	}
	left, err := WaitForType[*protocol.MemberLeft](ctx, c, nil)
	if err != nil || left.CallID != "r_1" || left.User != "bob" || left.Reason != "hangup" {
		t.Fatalf("member_left = %+v, %v", left, err)
	}
	// Join took the joined event from the buffer.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if msg, err := c.Next(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %#v, %v; want nothing left", msg, err)
	}
}

func TestJoinUnsupported(t *testing.T) {
	fs := newFakeServer(t, roomServer)
	c := dial(t, fs, "alice")
	_, err := c.Join(testContext(t), "old")
	if !IsCode(err, protocol.CodeUnknownType) {
		t.Fatalf("Join = %v, want ServerError unknown_type", err)
	}
}
