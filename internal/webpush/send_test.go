package webpush_test

import (
	"context"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/testkit/pushsvc"
	"github.com/tandemcall/tandem/internal/webpush"
)

// TestSendToAPushService: a push reaches a push service that checks the
// VAPID signature and decrypts as the browser does, with its urgency,
// TTL and topic; a subscription the service no longer has is gone.
func TestSendToAPushService(t *testing.T) {
	svc := pushsvc.Start(t)
	keys, _ := webpush.NewKeys()
	p := &webpush.Sender{Keys: keys, Subject: "mailto:ops@example.org"}
	sub := svc.Subscribe(keys.PublicKey())
	r, err := p.Send(context.Background(), sub.Subscription, webpush.Message{Payload: []byte("ring"), TTL: 45 * time.Second, Urgency: "high", Topic: "call-c1"})
	if err != nil || r.Status != 201 {
		t.Fatalf("send: %+v, %v", r, err)
	}
	got := svc.Pushes(sub)
	if len(got) != 1 || string(got[0].Payload) != "ring" || got[0].Urgency != "high" || got[0].TTL != 45 || got[0].Topic != "call-c1" {
		t.Fatalf("the service got %+v", got)
	}
	// Signed with another key than the subscription was made for: refused.
	other, _ := webpush.NewKeys()
	if _, err := (&webpush.Sender{Keys: other, Subject: "mailto:x@example.org"}).Send(context.Background(), sub.Subscription, webpush.Message{Payload: []byte("x")}); err == nil {
		t.Fatal("a push signed with another key was accepted")
	}
	svc.Set(sub, 410, nil)
	if r, _ := p.Send(context.Background(), sub.Subscription, webpush.Message{Payload: []byte("x")}); !r.Gone {
		t.Fatalf("a 410 is not gone: %+v", r)
	}
}
