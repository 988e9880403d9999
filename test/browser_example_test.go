package test

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserExampleCallPage: the example page (web/examples/call.html),
// built on the client library alone, places and receives a call: two
// browsers sign in there, one calls the other, the other answers, and each
// decodes the other's video; a hang-up ends it on both.
func TestBrowserExampleCallPage(t *testing.T) {
	ts := startServer(t, nil)
	url := ts.URL() + "/examples/call.html"
	ann, ben := newBrowser(t, "ann-example"), newBrowser(t, "ben-example")
	for _, p := range []struct {
		b    *browser
		user string
	}{{ann, "ann"}, {ben, "ben"}} {
		p.b.do(20*time.Second, chromedp.Navigate(url))
		p.b.waitJS("the sign-in form", `!!document.querySelector('#user')`, 15*time.Second)
		p.b.setValue("#user", p.user)
		p.b.click("#signin button")
		p.b.waitJS("signed in", `document.body.dataset.status === 'Signed in as `+p.user+`'`, 15*time.Second)
	}
	ann.setValue("#to", "ben")
	ann.click("#dial button")
	ben.waitJS("the call ringing", `document.body.dataset.status === 'ann is calling'`, 15*time.Second)
	ben.click("#answer")
	ann.waitJS("in the call", `document.body.dataset.status === 'In a call with ben'`, 15*time.Second)
	ann.waitJS("Ben's video", `window.exampleFrames > 30`, 30*time.Second)
	ben.waitJS("Ann's video", `window.exampleFrames > 30`, 30*time.Second)
	ben.click("#hangup")
	ann.waitJS("the call ended", `document.body.dataset.status === 'Call ended (completed)'`, 15*time.Second)
	ben.waitJS("the call ended here", `document.body.dataset.status === 'You hung up'`, 5*time.Second)
}
