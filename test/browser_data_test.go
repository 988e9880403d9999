package test

import (
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/signaling/protocol"
)

// TestBrowserMyData: Alice, signed in in a browser, downloads her data
// from "Your data" and finds the call her phone made; she erases it,
// confirming once: the page signs her out saying why, her phone (another
// device, still signed in) is signed out with token_revoked, and Bob can
// no longer reach anyone called alice.
func TestBrowserMyData(t *testing.T) {
	ts := startServer(t, nil)
	url := ts.URL() + "/"
	laptop := newBrowser(t, "alice-laptop")
	laptop.signIn(url, "alice", "laptop")

	ctx := testCtx(t, 60*time.Second)
	phone, bob := ts.dial(t, "alice", "phone"), ts.dial(t, "bob", "phone")
	id, err := phone.Invite(ctx, "bob", false)
	if err != nil {
		t.Fatal(err)
	}
	waitType(t, bob, func(m *protocol.Incoming) bool { return m.CallID == id })
	if err := bob.Decline(ctx, id); err != nil {
		t.Fatal(err)
	}
	ended(t, phone, id)
	laptop.state("idle", 10*time.Second) // the laptop rang too, then stopped

	laptop.click("#my-data-box summary")
	laptop.click("#export-data")
	laptop.waitJS("the archive", `!!window.tandem.lastExport`, 15*time.Second)
	if got := eval[string](laptop, `window.tandem.lastExport.calls.map(c => c.call_id).join(',')`); got != id {
		t.Errorf("the downloaded archive has calls %q, want %s", got, id)
	}
	if s := eval[string](laptop, `document.querySelector('#my-data-status').textContent`); !strings.Contains(s, "1 call") {
		t.Errorf("after the download the page says %q", s)
	}

	laptop.click("#erase-data")
	laptop.waitJS("the confirmation", `!document.querySelector('#erase-confirm-row').hidden`, 5*time.Second)
	laptop.click("#erase-confirm")
	laptop.waitJS("signed out", `window.tandem.user === null`, 15*time.Second)
	if s := eval[string](laptop, `(document.querySelector('#signin-error').textContent || '') + (document.querySelector('#notoken-text') || {}).textContent`); !strings.Contains(s, "erased") {
		t.Errorf("after the erasure the page says %q", s)
	}
	waitType(t, phone, func(m *protocol.Error) bool { return m.Code == protocol.CodeTokenRevoked })
	if _, err := bob.Invite(ctx, "alice", false); err == nil || !strings.Contains(err.Error(), protocol.CodeUserUnknown) {
		t.Errorf("calling alice after her erasure: %v, want %s", err, protocol.CodeUserUnknown)
	}
}
