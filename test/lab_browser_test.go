package test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestLabBrowsersCall: two people call each other from Chromium in the
// field — Alice at home behind a symmetric NAT, Bob at a hotel whose
// firewall lets out only TCP 443. Both see and hear each other; Alice's
// media goes straight to the server, Bob's through TURN over TLS on 443,
// as their browsers' selected candidate pairs show.
func TestLabBrowsersCall(t *testing.T) {
	if !inPrivateNetns(t, "nft", "nsenter", "unshare", "sysctl") {
		return
	}
	l := newLab(t)
	ts := l.startServer(nil)
	aliceHome, hotel := l.home("alice", natSymmetric), l.home("hotel", natTCP443)
	alice, bob := l.browserIn(aliceHome, "alice"), l.browserIn(hotel, "bob")
	alice.do(20*time.Second, chromedp.Navigate("https://"+labServerIP+"/#token="+ts.token(t, "alice", "laptop")))
	bob.do(20*time.Second, chromedp.Navigate("https://"+labServerIP+"/#token="+ts.token(t, "bob", "phone")))
	alice.state("idle", 20*time.Second)
	bob.state("idle", 20*time.Second)

	alice.setValue("#call-to", "bob")
	alice.click("#call-video")
	bob.state("ringing", 20*time.Second)
	invited := time.Now()
	bob.click("#accept")
	alice.state("in-call", 20*time.Second)
	for _, b := range []*browser{alice, bob} {
		b.waitJS("decoded video and received audio", `window.tandem.stats().then(s => s.framesDecoded > 30 && s.audioPacketsReceived > 50)`, 40*time.Second)
	}
	t.Logf("answer to both decoding 30 frames: %v", time.Since(invited).Round(10*time.Millisecond))

	type path struct {
		Local, Remote, RelayProtocol string
	}
	paths := func(b *browser) map[string]path {
		var p map[string]path
		if err := json.Unmarshal([]byte(eval[string](b, `window.tandem.paths().then(p => JSON.stringify(p))`)), &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, pc := range []string{"pub", "sub"} {
		if p := paths(alice)[pc]; p.Local == "" || p.Local == "relay" {
			t.Errorf("Alice's %s went %+v, want straight to the server", pc, p)
		}
		if p := paths(bob)[pc]; p.Local != "relay" || p.RelayProtocol != "tls" {
			t.Errorf("Bob's %s went %+v, want through TURN over TLS", pc, p)
		}
	}
	t.Logf("Alice: %+v; Bob: %+v", paths(alice), paths(bob))
	alice.click("#hangup")
	bob.state("idle", 20*time.Second)
}
