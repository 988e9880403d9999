package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/testkit"
)

// whipPage is a page of another origin than the server with a plain
// fetch-based WHIP and WHEP client, as a third-party site would have.
const whipPage = `<!doctype html>
<meta charset="utf-8">
<title>WHIP/WHEP client</title>
<video id="v" autoplay muted playsinline></video>
<script>
async function gathered(pc) {
  if (pc.iceGatheringState === 'complete') return;
  await new Promise(done => {
    const t = setTimeout(done, 3000);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(t); done(); }
    });
  });
}
async function post(url, token, sdp) {
  const res = await fetch(url, {method: 'POST', body: sdp,
    headers: {'Content-Type': 'application/sdp', 'Authorization': 'Bearer ' + token}});
  return {status: res.status, body: await res.text(), location: res.headers.get('Location'),
    etag: res.headers.get('ETag'), link: res.headers.get('Link')};
}
async function start(pc, url, token, retry) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  let r;
  for (let i = 0; i < 100; i++) {
    r = await post(url, token, pc.localDescription.sdp);
    if (!(retry && r.status === 409)) break;
    await new Promise(ok => setTimeout(ok, 200));
  }
  if (r.status === 201) {
    await pc.setRemoteDescription({type: 'answer', sdp: r.body});
    window.session = new URL(r.location, url).href;
  }
  window.pc = pc;
  return JSON.stringify({status: r.status, location: r.location || '', etag: r.etag || '', link: r.link || '',
    error: r.status === 201 ? '' : r.body});
}
window.whip = async (url, token) => {
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 640, height: 360}, audio: true});
  const pc = new RTCPeerConnection();
  for (const t of stream.getTracks()) pc.addTransceiver(t, {direction: 'sendonly', streams: [stream]});
  return start(pc, url, token, false);
};
window.whep = async (url, token) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', {direction: 'recvonly'});
  pc.addTransceiver('audio', {direction: 'recvonly'});
  const v = document.getElementById('v');
  v.srcObject = new MediaStream();
  pc.ontrack = e => v.srcObject.addTrack(e.track);
  return start(pc, url, token, true);
};
window.received = async () => {
  const out = {framesDecoded: 0, audioPackets: 0, width: document.getElementById('v').videoWidth};
  (await window.pc.getStats()).forEach(s => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'video') out.framesDecoded = s.framesDecoded || 0;
    if (s.kind === 'audio') out.audioPackets = s.packetsReceived || 0;
  });
  return JSON.stringify(out);
};
window.end = async token => (await fetch(window.session, {method: 'DELETE', headers: {'Authorization': 'Bearer ' + token}})).status;
</script>
`

type whipResult struct {
	Status   int    `json:"status"`
	Location string `json:"location"`
	ETag     string `json:"etag"`
	Link     string `json:"link"`
	Error    string `json:"error"`
}

func evalJSON[T any](b *browser, js string) T {
	b.t.Helper()
	raw := eval[string](b, js)
	var v T
	if err := json.Unmarshal([]byte(raw), &v); err != nil {
		b.t.Fatalf("%s: %s: %q: %v", b.name, js, raw, err)
	}
	return v
}

// TestBrowserWHIPToWHEP: one browser page publishes its camera over WHIP
// and another plays it over WHEP, both from a page on another origin than
// the server (so CORS must work), and the player decodes the video.
func TestBrowserWHIPToWHEP(t *testing.T) {
	ts := startServer(t, nil)
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, whipPage)
	}))
	defer pages.Close()
	if strings.HasPrefix(ts.URL(), pages.URL) || pages.URL == ts.URL() {
		t.Fatalf("page origin %s is the server's %s", pages.URL, ts.URL())
	}
	pubTok := ts.grantToken(t, "camera", []string{"browser-show"}, auth.GrantPublish)
	subTok := ts.grantToken(t, "screen", []string{"browser-show"}, auth.GrantSubscribe)

	pub := newBrowser(t, "publisher")
	view := newBrowser(t, "viewer")
	for _, b := range []*browser{pub, view} {
		b.do(20*time.Second, chromedp.Navigate(pages.URL+"/"))
		b.waitJS("client loaded", `typeof window.whip === 'function'`, 10*time.Second)
	}

	r := evalJSON[whipResult](pub, fmt.Sprintf(`whip(%q, %q)`, ts.URL()+"/whip/browser-show", pubTok))
	if r.Status != http.StatusCreated {
		t.Fatalf("WHIP from the page: %+v", r)
	}
	// Only exposed headers are readable across origins.
	if !strings.HasPrefix(r.Location, "/whip/browser-show/") || r.ETag == "" || !strings.Contains(r.Link, `rel="ice-server"`) {
		t.Errorf("WHIP headers seen by the page: %+v", r)
	}

	r = evalJSON[whipResult](view, fmt.Sprintf(`whep(%q, %q)`, ts.URL()+"/whep/browser-show", subTok))
	if r.Status != http.StatusCreated {
		t.Fatalf("WHEP from the page: %+v", r)
	}
	view.waitJS("decoded video and received audio", `received().then(s => { s = JSON.parse(s); return s.framesDecoded > 30 && s.width > 0 && s.audioPackets > 50 })`, 40*time.Second)
	got := evalJSON[struct {
		FramesDecoded float64 `json:"framesDecoded"`
		AudioPackets  float64 `json:"audioPackets"`
		Width         float64 `json:"width"`
	}](view, `received()`)
	t.Logf("viewer: %.0f frames decoded at width %.0f, %.0f audio packets", got.FramesDecoded, got.Width, got.AudioPackets)

	for _, c := range []struct {
		b   *browser
		tok string
	}{{view, subTok}, {pub, pubTok}} {
		if st := eval[float64](c.b, fmt.Sprintf(`end(%q)`, c.tok)); st != http.StatusOK {
			t.Errorf("%s: DELETE from the page: %v", c.b.name, st)
		}
	}
	if n := ts.whipSessions(t, "whip"); n != "0" {
		t.Errorf("whip sessions after DELETE: %s", n)
	}
}

// TestBrowserWHEPWatchersShown: Alice is in the room "stage" in the web
// client; a WHEP player starts playing it. Her call screen says "1
// watching" while it plays, and nothing once it has stopped.
func TestBrowserWHEPWatchersShown(t *testing.T) {
	ts := startServer(t, nil)
	alice := newBrowser(t, "alice")
	alice.signIn(ts.URL()+"/?lite=1", "alice", "laptop")
	alice.joinRoom("stage", false)
	if eval[bool](alice, `!document.querySelector('#call-watchers').hidden`) {
		t.Error("the call screen shows watchers before any")
	}

	ts.waitVideoPublished(t, eval[string](alice, `window.tandem.callId`), "alice")
	viewTok := ts.grantToken(t, "viewer", []string{"stage"}, auth.GrantSubscribe)
	view := newWHEPReceiver(t)
	loc, _ := ts.whepPlay(t, view, "stage", viewTok)
	alice.waitJS(`"1 watching" on the call screen`, `(() => { const e = document.querySelector('#call-watchers');
		return !e.hidden && e.offsetParent !== null && e.textContent === '1 watching' && window.tandem.watchers === 1 })()`, 15*time.Second)
	testkit.Eventually(t, 20*time.Second, "the player receiving Alice's camera", func() bool { return view.video.Load() > 25 })

	resp, body := whipReq(t, http.MethodDelete, loc, viewTok, "", "")
	wantStatus(t, "DELETE", resp, body, http.StatusOK)
	alice.waitJS("the watchers gone from the call screen", `document.querySelector('#call-watchers').hidden && window.tandem.watchers === 0`, 15*time.Second)
}
