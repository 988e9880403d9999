package test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// Group calls, rooms and push-to-talk in real browsers. Three Chromiums at
// once are heavy for a small machine, so the pages ask for a small camera
// picture (?lite=1) and the timeouts are generous.

// userStats is what a browser receives from one remote user
// (window.tandem.remoteStats()).
type userStats struct {
	FramesDecoded float64 `json:"framesDecoded"`
	VideoBytes    float64 `json:"videoBytes"`
	AudioBytes    float64 `json:"audioBytes"`
	AudioPackets  float64 `json:"audioPackets"`
}

func (b *browser) remoteStats() map[string]userStats {
	b.t.Helper()
	raw := eval[string](b, `window.tandem.remoteStats().then(s => JSON.stringify(s))`)
	out := map[string]userStats{}
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		b.t.Fatalf("%s: remote stats %q: %v", b.name, raw, err)
	}
	return out
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.textContent : '' })()`, sel))
}

// jsList renders users as a JavaScript array literal.
func jsList(users []string) string {
	if users == nil {
		users = []string{}
	}
	q, _ := json.Marshal(users)
	return string(q)
}

// joinRoom joins a room from the home screen.
func (b *browser) joinRoom(room string, ptt bool) {
	b.t.Helper()
	// As a person waits for "Online": before it, the page says to try again.
	b.waitJS("connected", `window.tandem.connected`, 15*time.Second)
	b.setValue("#room-name", room)
	eval[bool](b, fmt.Sprintf(`(() => { document.querySelector('#room-ptt').checked = %t; return true })()`, ptt))
	b.click("#join-room")
	b.state("in-call", 30*time.Second)
}

// hasMembers waits until the page lists exactly users as the others in the call.
func (b *browser) hasMembers(users ...string) {
	b.t.Helper()
	want := slices.Sorted(slices.Values(users))
	b.waitJS(fmt.Sprintf("members %v", want), fmt.Sprintf(`JSON.stringify([...window.tandem.members].sort()) === JSON.stringify(%s)`, jsList(want)), 20*time.Second)
}

// watchesEveryone checks what a person sees on b: one video tile per other
// member showing pictures, with frames decoded from each of them and still
// coming.
func (b *browser) watchesEveryone(users ...string) {
	b.t.Helper()
	b.hasMembers(users...)
	b.waitJS(fmt.Sprintf("video decoded from %v", users), fmt.Sprintf(
		`window.tandem.remoteStats().then(s => %s.every(u => s[u] && s[u].framesDecoded > 10))`, jsList(users)), 60*time.Second)
	before := b.remoteStats()
	conds := make([]string, 0, len(users))
	for _, u := range users {
		conds = append(conds, fmt.Sprintf(`s[%q] && s[%q].framesDecoded > %f`, u, u, before[u].FramesDecoded+15))
	}
	b.waitJS(fmt.Sprintf("video from %v keeps coming", users), `window.tandem.remoteStats().then(s => `+strings.Join(conds, " && ")+`)`, 30*time.Second)
	for _, u := range users {
		b.waitJS(u+"'s tile shows video", fmt.Sprintf(`!!document.querySelector('#tiles .tile[data-user=%q]:not(.no-video)')`, u), 10*time.Second)
	}
	if n := eval[int](b, `document.querySelectorAll('#tiles .tile').length`); n != len(users) {
		b.t.Errorf("%s: %d tiles on screen, want %d (%v)", b.name, n, len(users), users)
	}
	after := b.remoteStats()
	b.t.Logf("%s: frames decoded %v", b.name, framesOf(after, users))
}

func framesOf(s map[string]userStats, users []string) map[string]float64 {
	out := map[string]float64{}
	for _, u := range users {
		out[u] = s[u].FramesDecoded
	}
	return out
}

// sawNotice waits for a short notice (toast) containing text.
func (b *browser) sawNotice(text string) {
	b.t.Helper()
	b.waitJS(fmt.Sprintf("notice %q", text), fmt.Sprintf(`!document.querySelector('#toast').hidden && document.querySelector('#toast').textContent.includes(%q)`, text), 10*time.Second)
}

// TestBrowserThreeInARoom: three people join the room "family" (two from
// the home screen, one through a shared room link); each sees and decodes
// the other two. When Bob leaves, his tile goes away for the others, they
// are told, and they keep seeing each other.
func TestBrowserThreeInARoom(t *testing.T) {
	ts := startServer(t, nil)
	url := ts.URL() + "/?lite=1"
	alice := newBrowser(t, "alice")
	bob := newBrowser(t, "bob")
	carol := newBrowser(t, "carol")

	alice.signIn(url, "alice", "laptop")
	alice.joinRoom("family", false)
	alice.waitJS("alone in the room", `window.tandem.room === 'family' && window.tandem.members.length === 0`, 5*time.Second)
	bob.signIn(url, "bob", "phone")
	bob.joinRoom("family", false)
	carol.submitSignIn(url+"&room=family", "carol", "tablet")
	carol.state("in-call", 30*time.Second)
	if r := eval[string](carol, `window.tandem.room`); r != "family" {
		t.Fatalf("carol's room link took her to %q", r)
	}

	all := []string{"alice", "bob", "carol"}
	for _, b := range []*browser{alice, bob, carol} {
		b.watchesEveryone(others(all, b.name)...)
		if got := b.text("#call-peer"); got != "family" {
			t.Errorf("%s: call screen titled %q, want the room's name", b.name, got)
		}
	}

	bob.click("#hangup")
	bob.state("idle", 15*time.Second)
	if r := eval[string](bob, `window.tandem.lastEnded ? window.tandem.lastEnded.reason : ''`); r != "completed" {
		t.Errorf("bob left with %q, want completed", r)
	}
	for _, b := range []*browser{alice, carol} {
		b.sawNotice("bob left family")
		b.waitJS("bob's tile gone", `!document.querySelector('#tiles .tile[data-user="bob"]')`, 10*time.Second)
		b.state("in-call", time.Second)
	}
	alice.watchesEveryone("carol")
	carol.watchesEveryone("alice")
}

// TestBrowserAddPersonToCall: Alice calls Bob, then adds Carol from the
// call screen. Carol is told who else is in the call, answers, and all
// three decode the other two. When Carol hangs up, only she leaves.
func TestBrowserAddPersonToCall(t *testing.T) {
	ts := startServer(t, nil)
	url := ts.URL() + "/?lite=1"
	alice, bob := browserCall(t, url)
	carol := newBrowser(t, "carol")
	carol.signIn(url, "carol", "laptop")

	alice.click("#add")
	alice.setValue("#add-to", "carol")
	alice.click("#add-person")
	alice.waitJS("carol's tile while she is called", `!!document.querySelector('#tiles .tile.invited[data-user="carol"]')`, 10*time.Second)

	carol.state("ringing", 15*time.Second)
	if got, want := carol.text("#incoming-kind"), "alice invites you to a call with bob"; got != want {
		t.Errorf("carol's incoming screen says %q, want %q", got, want)
	}
	carol.click("#accept")
	carol.state("in-call", 20*time.Second)
	alice.sawNotice("carol joined the call")

	all := []string{"alice", "bob", "carol"}
	for _, b := range []*browser{alice, bob, carol} {
		b.watchesEveryone(others(all, b.name)...)
	}
	if got := alice.text("#call-peer"); got != "bob and carol" {
		t.Errorf("alice's call screen titled %q, want %q", got, "bob and carol")
	}

	carol.click("#hangup")
	carol.state("idle", 15*time.Second)
	for _, b := range []*browser{alice, bob} {
		b.sawNotice("carol left the call")
		b.waitJS("carol's tile gone", `!document.querySelector('#tiles .tile[data-user="carol"]')`, 10*time.Second)
		b.state("in-call", time.Second)
	}
	alice.watchesEveryone("bob")
	bob.watchesEveryone("alice")
}

// pttPress holds (down=true) or lets go of the "Hold to talk" button with
// the mouse.
func (b *browser) pttPress(down bool) {
	b.t.Helper()
	b.waitJS("hold-to-talk button", `(() => { const e = document.querySelector('#ptt'); return !!e && e.offsetParent !== null })()`, 10*time.Second)
	raw := eval[string](b, `(() => { const r = document.querySelector('#ptt').getBoundingClientRect(); return JSON.stringify([r.x + r.width / 2, r.y + r.height / 2]) })()`)
	var xy [2]float64
	if err := json.Unmarshal([]byte(raw), &xy); err != nil {
		b.t.Fatal(err)
	}
	typ := chromedp.MouseReleased
	if down {
		typ = chromedp.MousePressed
	}
	b.do(5*time.Second, chromedp.MouseEvent(typ, xy[0], xy[1], chromedp.ButtonLeft, chromedp.ClickCount(1)))
}

// spaceKey presses (down=true) or releases the space bar.
func (b *browser) spaceKey(down bool) {
	b.t.Helper()
	typ := input.DispatchKeyEventTypeKeyUp
	if down {
		typ = input.DispatchKeyEventTypeKeyDown
	}
	b.do(5*time.Second, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, input.DispatchKeyEvent, input.DispatchKeyEventParams{
			Type: typ, Key: " ", Code: "Space", WindowsVirtualKeyCode: 32, NativeVirtualKeyCode: 32,
		})
		return err
	}))
}

// floorIs waits until every browser shows holder with the floor and queue waiting.
func floorIs(t *testing.T, holder string, queue []string, bs ...*browser) {
	t.Helper()
	for _, b := range bs {
		b.waitJS(fmt.Sprintf("floor held by %q, queue %v", holder, queue), fmt.Sprintf(
			`(() => { const f = window.tandem.floor; return !!f && f.holder === %q && JSON.stringify(f.queue) === JSON.stringify(%s) })()`,
			holder, jsList(queue)), 15*time.Second)
	}
}

// audioSentJS is how many audio bytes the page's microphone has sent to
// the server.
const audioSentJS = `(async () => {
	const pc = window.tandem.pcs && window.tandem.pcs.pub;
	if (!pc) return 0;
	let n = 0;
	(await pc.getStats()).forEach(s => { if (s.type === 'outbound-rtp' && (s.kind || s.mediaType) === 'audio') n += s.bytesSent || 0; });
	return n;
})()`

// sends waits until b's microphone has sent min more audio bytes than it
// had when sent was measured.
func (b *browser) sends(sent, min float64) {
	b.t.Helper()
	b.waitJS("microphone sending", fmt.Sprintf(`%s.then(n => n > %f)`, audioSentJS, sent+min), 15*time.Second)
}

// heard holds how many audio bytes each listener has received from each talker.
type heard map[*browser]map[string]userStats

func listen(bs ...*browser) heard {
	h := heard{}
	for _, b := range bs {
		h[b] = b.remoteStats()
	}
	return h
}

// hears waits until listener has received at least min more audio bytes
// from talker than at since.
func (b *browser) hears(talker string, since heard, min float64) {
	b.t.Helper()
	b.waitJS(fmt.Sprintf("hearing %s", talker), fmt.Sprintf(
		`window.tandem.remoteStats().then(s => !!s[%q] && s[%q].audioBytes > %f)`, talker, talker, since[b][talker].AudioBytes+min), 20*time.Second)
}

// silent checks that no listener received more than a trickle of audio
// from talker since the sample.
func silent(t *testing.T, talker string, since heard, listeners ...*browser) {
	t.Helper()
	for _, b := range listeners {
		now := b.remoteStats()
		d := now[talker].AudioBytes - since[b][talker].AudioBytes
		if d > 1000 {
			t.Errorf("%s heard %.0f bytes of %s's audio without %s holding the floor", b.name, d, talker, talker)
		}
		got := map[string]float64{}
		for u, st := range now {
			got[u] = st.AudioBytes - since[b][u].AudioBytes
		}
		t.Logf("%s: audio bytes received meanwhile %v", b.name, got)
	}
}

// TestBrowserPushToTalk: three people in the walkie-talkie room "walkie".
// Everyone's microphone is published, but only the floor holder is heard:
// while Alice holds "Hold to talk", Bob and Carol hear her and nobody hears
// Carol (who waits in the queue); after Alice lets go, Bob talks with the
// space bar, is heard, and Alice no longer is.
func TestBrowserPushToTalk(t *testing.T) {
	ts := startServer(t, nil)
	url := ts.URL() + "/?lite=1"
	alice := newBrowser(t, "alice")
	bob := newBrowser(t, "bob")
	carol := newBrowser(t, "carol")
	everyone := []*browser{alice, bob, carol}
	all := []string{"alice", "bob", "carol"}
	for _, b := range everyone {
		b.signIn(url, b.name, "radio")
		b.joinRoom("walkie", true)
		b.waitJS("walkie-talkie room", `window.tandem.mode === 'ptt' && document.querySelector('#ptt').offsetParent !== null`, 10*time.Second)
	}
	for _, b := range everyone {
		b.hasMembers(others(all, b.name)...)
		b.waitJS("tracks from both others", fmt.Sprintf(`window.tandem.remoteStats().then(s => %s.every(u => !!s[u]))`, jsList(others(all, b.name))), 40*time.Second)
	}
	floorIs(t, "", nil, everyone...)

	// Alice talks; Carol asks too and waits in the queue.
	alice.pttPress(true)
	floorIs(t, "alice", nil, everyone...)
	if got := bob.text("#floor-text"); got != "alice is talking" {
		t.Errorf("bob's screen says %q, want %q", got, "alice is talking")
	}
	bob.waitJS("alice's tile marked talking", `!!document.querySelector('#tiles .tile.talking[data-user="alice"]')`, 5*time.Second)
	carol.pttPress(true)
	floorIs(t, "alice", []string{"carol"}, everyone...)
	if got := bob.text("#floor-queue"); got != "Next: carol" {
		t.Errorf("bob's screen shows the queue as %q", got)
	}

	carolSent := eval[float64](carol, audioSentJS)
	since := listen(everyone...)
	bob.hears("alice", since, 6000)
	carol.hears("alice", since, 6000)
	carol.sends(carolSent, 6000)          // Carol's microphone is live all along...
	silent(t, "carol", since, alice, bob) // ...but nobody hears her.

	carol.pttPress(false)
	floorIs(t, "alice", nil, everyone...)
	alice.pttPress(false)
	floorIs(t, "", nil, everyone...)

	// Bob talks with the space bar.
	bob.spaceKey(true)
	floorIs(t, "bob", nil, everyone...)
	time.Sleep(300 * time.Millisecond) // let Alice's last packets land
	aliceSent := eval[float64](alice, audioSentJS)
	since = listen(everyone...)
	alice.hears("bob", since, 6000)
	carol.hears("bob", since, 6000)
	alice.sends(aliceSent, 6000)
	silent(t, "alice", since, bob, carol)
	silent(t, "carol", since, alice, bob)
	bob.spaceKey(false)
	floorIs(t, "", nil, everyone...)
	bob.state("in-call", time.Second) // the space bar did not press a focused button (hang up)
}
