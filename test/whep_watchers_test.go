package test

import (
	"net/http"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/sfu"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// Tags ending the frames of each source, as a receiver tells them apart.
const (
	bobCameraTag   = 0x0b
	aliceScreenTag = 0x5c
)

// watchersIs waits until c is told that n WHEP players watch callID.
func watchersIs(t *testing.T, callID string, n int, cs ...*client.Client) {
	t.Helper()
	for _, c := range cs {
		waitType(t, c, func(m *protocol.Watchers) bool { return m.CallID == callID && m.WHEP == n })
	}
}

// waitVideoPublished waits until the SFU forwards a video of user's in the
// call's room: a WHEP player arriving earlier would not get it.
func (ts *testServer) waitVideoPublished(t *testing.T, callID, user string) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, user+"'s video published", func() bool {
		room := ts.SFU().LookupRoom(sfu.RoomID(callID))
		if room == nil {
			return false
		}
		for _, p := range room.Participants() {
			for _, tr := range p.Tracks {
				if p.StreamID == user && tr.Kind == "video" {
					return true
				}
			}
		}
		return false
	})
}

// TestWHEPNeverPlaysAssistScreen: Bob helps Alice in the room "help";
// she shares her screen and grants him view. WHEP players of the room,
// one that came before her screen and one after it (when it is the video
// published last), get Bob's camera and never a frame of her screen,
// also not when she revokes and grants view again. Alice and Bob are told
// how many players watch as each one comes and goes, and Carol, joining
// the room while one watches, is told at once.
func TestWHEPNeverPlaysAssistScreen(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t, 90*time.Second)
	alice, bob := ts.dial(t, "alice", "laptop"), ts.dial(t, "bob", "phone")
	id, err := bob.Join(ctx, "help")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Join(ctx, "help"); err != nil {
		t.Fatal(err)
	}
	var atBob arrivals
	if _, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, Tag: bobCameraTag, OnRTP: atBob.onRTP}); err != nil {
		t.Fatal(err)
	}
	ts.waitVideoPublished(t, id, "bob")
	viewTok := ts.grantToken(t, "viewer", []string{"help"}, auth.GrantSubscribe)

	// A player arrives before any screen is shared.
	early := newWHEPReceiver(t)
	ts.whepPlay(t, early, "help", viewTok)
	watchersIs(t, id, 1, alice, bob)

	// Alice shares her screen and asks Bob to help, granting view.
	if _, err := alice.StartMedia(ctx, id, client.MediaOptions{Audio: true, Screen: true, ScreenTag: aliceScreenTag, Assist: true}); err != nil {
		t.Fatal(err)
	}
	if err := alice.Assist(ctx, id, "alice", protocol.AssistView); err != nil {
		t.Fatal(err)
	}
	screenAtBob := func() int {
		atBob.mu.Lock()
		defer atBob.mu.Unlock()
		n := 0
		for _, a := range atBob.video {
			if a.tag == aliceScreenTag {
				n++
			}
		}
		return n
	}
	testkit.Eventually(t, 20*time.Second, "Bob seeing Alice's screen", func() bool { return screenAtBob() > 10 })

	// A player arrives now that her screen is the video published last.
	late := newWHEPReceiver(t)
	lateURL, _ := ts.whepPlay(t, late, "help", viewTok)
	watchersIs(t, id, 2, alice, bob)
	testkit.Eventually(t, 20*time.Second, "both players receiving video", func() bool {
		return early.video.Load() > 50 && late.video.Load() > 50
	})

	// Alice revokes view and grants it again: still nothing for players.
	if err := alice.AssistGrant(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := alice.AssistGrant(ctx, id, protocol.AssistView); err != nil {
		t.Fatal(err)
	}
	waitType(t, bob, func(m *protocol.AssistState) bool { return m.Reason == protocol.AssistGranted && len(m.Granted) == 1 })
	seen, before := screenAtBob(), late.video.Load()
	testkit.Eventually(t, 20*time.Second, "Bob seeing her screen again, and the players video", func() bool {
		return screenAtBob() > seen+25 && late.video.Load() > before+50
	})
	for name, r := range map[string]*whepReceiver{"early": early, "late": late} {
		if n := r.frames[aliceScreenTag].Load(); n != 0 {
			t.Errorf("the %s WHEP player received %d frames of Alice's screen", name, n)
		}
		if n := r.frames[bobCameraTag].Load(); n < 25 {
			t.Errorf("the %s WHEP player received %d frames of Bob's camera, want it playing", name, n)
		}
	}

	// Carol joins while two watch: she is told at once.
	carol := ts.dial(t, "carol", "tablet")
	if _, err := carol.Join(ctx, "help"); err != nil {
		t.Fatal(err)
	}
	watchersIs(t, id, 2, carol)

	// One player leaves by DELETE, the other by closing its connection.
	resp, body := whipReq(t, http.MethodDelete, lateURL, viewTok, "", "")
	wantStatus(t, "DELETE", resp, body, http.StatusOK)
	watchersIs(t, id, 1, alice, bob, carol)
	_ = early.pc.Close()
	watchersIs(t, id, 0, alice, bob, carol)
}
