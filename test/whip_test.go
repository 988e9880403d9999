package test

import (
	"io"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/sdpfrag"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/internal/testkit/pionpc"
	"github.com/tandemcall/tandem/internal/whiptest"
	"github.com/tandemcall/tandem/sfu"
)

// whipPC builds a pion PeerConnection the way a third-party WHIP client
// would: pion's default codecs and interceptors, here restricted to UDP
// over loopback.
func whipPC(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	return pionpc.New(t, pionpc.Options{})
}

// newWHIPSender returns a WHIP publisher on its own pion PeerConnection.
func newWHIPSender(t *testing.T) *whiptest.Publisher {
	t.Helper()
	return whiptest.NewPublisher(t, whipPC(t))
}

// whepReceiver plays over WHEP on a pion PeerConnection and counts what
// arrives: packets by kind, and video frames by the last byte of their
// last packet (the tag of client.MediaOptions).
type whepReceiver struct {
	pc           *webrtc.PeerConnection
	audio, video atomic.Int64
	frames       [256]atomic.Int64 // video frames by tag
	streams      sync.Map          // stream id → true
	wg           sync.WaitGroup
}

func newWHEPReceiver(t *testing.T) *whepReceiver {
	t.Helper()
	r := &whepReceiver{pc: whipPC(t)}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := r.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	r.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		r.streams.Store(tr.StreamID(), true)
		n := &r.audio
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			n = &r.video
		}
		r.wg.Go(func() {
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				n.Add(1)
				if tr.Kind() == webrtc.RTPCodecTypeVideo && p.Marker && len(p.Payload) > 0 {
					r.frames[p.Payload[len(p.Payload)-1]].Add(1)
				}
			}
		})
	})
	t.Cleanup(func() { _ = r.pc.Close(); r.wg.Wait() })
	return r
}

// whipReq sends one request to a WHIP or WHEP URL and returns the response
// with its body read.
func whipReq(t *testing.T, method, url, token, ctype, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func wantStatus(t *testing.T, what string, resp *http.Response, body string, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s: status %d, want %d: %s", what, resp.StatusCode, status, strings.TrimSpace(body))
	}
}

// grantToken mints a token for user with grants, whose publish and
// subscribe grants hold in rooms (none if nil).
func (ts *testServer) grantToken(t *testing.T, user string, rooms []string, grants ...string) string {
	t.Helper()
	tok, _, err := ts.Authority().Mint(user, "whip", grants, time.Hour, auth.WithRooms(rooms...))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// whipPublish publishes s into room and returns the session URL and ETag.
func (ts *testServer) whipPublish(t *testing.T, s *whiptest.Publisher, room, token string) (loc, etag string) {
	t.Helper()
	resp, body := whipReq(t, http.MethodPost, ts.URL()+"/whip/"+room, token, "application/sdp", whiptest.Offer(t, s.PC, nil))
	wantStatus(t, "WHIP POST", resp, body, http.StatusCreated)
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Errorf("WHIP answer Content-Type %q", ct)
	}
	loc, etag = resp.Header.Get("Location"), resp.Header.Get("ETag")
	if !regexp.MustCompile(`^/whip/`+regexp.QuoteMeta(room)+`/[a-z2-7]{26}$`).MatchString(loc) || etag == "" {
		t.Fatalf("Location %q, ETag %q", loc, etag)
	}
	if err := s.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatal(err)
	}
	s.Start()
	// A WHEP player gets what is published when it arrives, and nothing
	// added later: wait until both tracks are.
	sfuRoom := "whip:" + room
	if id, ok := ts.Hub().RoomCallID(room); ok {
		sfuRoom = id
	}
	leg := "whip-" + path.Base(loc)
	testkit.Eventually(t, 20*time.Second, "the WHIP tracks published", func() bool {
		r := ts.SFU().LookupRoom(sfu.RoomID(sfuRoom))
		if r == nil {
			return false
		}
		for _, p := range r.Participants() {
			if p.ID == sfu.LegID(leg) {
				return len(p.Tracks) == 2
			}
		}
		return false
	})
	return ts.URL() + loc, etag
}

// whepPlay plays room on r, retrying while nothing is published (409).
func (ts *testServer) whepPlay(t *testing.T, r *whepReceiver, room, token string) (loc, etag string) {
	t.Helper()
	offer := whiptest.Offer(t, r.pc, nil)
	var resp *http.Response
	var body string
	testkit.Eventually(t, 10*time.Second, "something published in "+room, func() bool {
		resp, body = whipReq(t, http.MethodPost, ts.URL()+"/whep/"+room, token, "application/sdp", offer)
		return resp.StatusCode != http.StatusConflict
	})
	wantStatus(t, "WHEP POST", resp, body, http.StatusCreated)
	if err := r.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatal(err)
	}
	return ts.URL() + resp.Header.Get("Location"), resp.Header.Get("ETag")
}

// whipSessions reads the tandem_whip_sessions gauge of kind from /metrics.
func (ts *testServer) whipSessions(t *testing.T, kind string) string {
	t.Helper()
	resp, body := whipReq(t, http.MethodGet, ts.URL()+"/metrics", "", "", "")
	wantStatus(t, "metrics", resp, body, http.StatusOK)
	m := regexp.MustCompile(`(?m)^tandem_whip_sessions\{kind="` + kind + `"\} (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no tandem_whip_sessions for %s in metrics", kind)
	}
	return m[1]
}

// iceCreds returns the first ice-ufrag and ice-pwd of a description.
func iceCreds(desc string) (ufrag, pwd string) {
	if m := regexp.MustCompile(`a=ice-ufrag:(\S+)`).FindStringSubmatch(desc); m != nil {
		ufrag = m[1]
	}
	if m := regexp.MustCompile(`a=ice-pwd:(\S+)`).FindStringSubmatch(desc); m != nil {
		pwd = m[1]
	}
	return ufrag, pwd
}

// TestWHIPPublishWHEPPlay: a pion WHIP publisher and a pion WHEP viewer
// through the real server: the viewer receives the publisher's audio and
// video; the answer carries Location, ETag and TURN servers in Link; trickle
// and ICE restart by PATCH follow RFC 9725 (If-Match, 204, 200 with new
// credentials, media flowing on), a trickle without If-Match is taken as
// players such as whep.js send it but a restart without it is not; DELETE
// ends a session; nothing leaks.
func TestWHIPPublishWHEPPlay(t *testing.T) {
	leaks := testkit.LeakCheck(t, 2)
	ts := startServer(t, nil)
	pubTok := ts.grantToken(t, "studio", []string{"show"}, auth.GrantPublish)
	subTok := ts.grantToken(t, "viewer", []string{"show"}, auth.GrantSubscribe)

	pub := newWHIPSender(t)
	pubURL, _ := ts.whipPublish(t, pub, "show", pubTok)

	view := newWHEPReceiver(t)
	offer := whiptest.Offer(t, view.pc, nil)
	var resp *http.Response
	var answer string
	testkit.Eventually(t, 10*time.Second, "the WHIP tracks", func() bool {
		resp, answer = whipReq(t, http.MethodPost, ts.URL()+"/whep/show", subTok, "application/sdp; charset=utf-8", offer)
		return resp.StatusCode != http.StatusConflict
	})
	wantStatus(t, "WHEP POST", resp, answer, http.StatusCreated)
	viewURL, etag := ts.URL()+resp.Header.Get("Location"), resp.Header.Get("ETag")
	if !strings.HasPrefix(resp.Header.Get("Location"), "/whep/show/") {
		t.Errorf("WHEP Location %q", resp.Header.Get("Location"))
	}
	if ap := resp.Header.Get("Accept-Patch"); ap != "application/trickle-ice-sdpfrag" {
		t.Errorf("Accept-Patch %q", ap)
	}
	var turnLink bool
	for _, l := range resp.Header.Values("Link") {
		if strings.HasPrefix(l, "<turn:") && strings.Contains(l, `rel="ice-server"`) &&
			strings.Contains(l, `username="`) && strings.Contains(l, `credential="`) && strings.Contains(l, `credential-type="password"`) {
			turnLink = true
		}
	}
	if !turnLink {
		t.Errorf("no TURN server with credentials in Link: %q", resp.Header.Values("Link"))
	}
	if err := view.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "the viewer to receive audio and video", func() bool {
		return view.audio.Load() > 25 && view.video.Load() > 25
	})
	if _, ok := view.streams.Load("studio"); !ok {
		t.Error("the viewer's tracks do not carry the publisher's stream id (its user id)")
	}
	if n := ts.whipSessions(t, "whep"); n != "1" {
		t.Errorf("whep sessions = %s", n)
	}

	// Trickle: a candidate of the current ICE session.
	ufrag, pwd := iceCreds(view.pc.LocalDescription().SDP)
	cand := regexp.MustCompile(`a=candidate:[^\r\n]+`).FindString(view.pc.LocalDescription().SDP)
	trickle := "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n" + cand + "\r\n"
	const frag = "application/trickle-ice-sdpfrag"
	r, b := whipReq(t, http.MethodPatch, viewURL, subTok, frag, trickle)
	wantStatus(t, "trickle PATCH without If-Match", r, b, http.StatusNoContent)
	if got := r.Header.Get("ETag"); got != etag {
		t.Errorf("trickle without If-Match: ETag %q, want %q", got, etag)
	}
	r, b = whipReq(t, http.MethodPatch, viewURL, subTok, frag, trickle, "If-Match", `"not-the-tag"`)
	wantStatus(t, "PATCH with another ETag", r, b, http.StatusPreconditionFailed)
	r, b = whipReq(t, http.MethodPatch, viewURL, subTok, "application/sdp", trickle, "If-Match", etag)
	wantStatus(t, "PATCH as application/sdp", r, b, http.StatusUnsupportedMediaType)
	r, b = whipReq(t, http.MethodPatch, viewURL, subTok, frag, "a=candidate:garbage\r\n", "If-Match", etag)
	wantStatus(t, "PATCH with a bad candidate", r, b, http.StatusBadRequest)
	r, b = whipReq(t, http.MethodPatch, viewURL, subTok, frag, "a=ice-ufrag:otherufrag\r\n", "If-Match", etag)
	wantStatus(t, "PATCH with another ufrag and no password", r, b, http.StatusUnprocessableEntity)
	r, b = whipReq(t, http.MethodPatch, viewURL, subTok, frag, trickle+"a=end-of-candidates\r\n", "If-Match", etag)
	wantStatus(t, "trickle PATCH", r, b, http.StatusNoContent)

	// ICE restart: new client credentials, If-Match: *; the SFU's new
	// credentials and candidates come back with a new ETag.
	restart := whiptest.Offer(t, view.pc, &webrtc.OfferOptions{ICERestart: true})
	nu, np := iceCreds(restart)
	if nu == ufrag {
		t.Fatal("pion did not restart ICE")
	}
	body := "a=ice-ufrag:" + nu + "\r\na=ice-pwd:" + np + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
	for _, c := range regexp.MustCompile(`a=candidate:[^\r\n]+`).FindAllString(restart, -1) {
		body += c + "\r\n"
	}
	// Without If-Match a restart is refused and changes nothing.
	r, b = whipReq(t, http.MethodPatch, viewURL, subTok, frag, body)
	wantStatus(t, "ICE restart PATCH without If-Match", r, b, http.StatusPreconditionRequired)
	if !strings.Contains(b, "If-Match: *") {
		t.Errorf("restart without If-Match: %q does not say what to send", b)
	}
	r, b = whipReq(t, http.MethodPatch, viewURL, subTok, frag, trickle, "If-Match", etag)
	wantStatus(t, "trickle PATCH after a refused restart", r, b, http.StatusNoContent)
	r, b = whipReq(t, http.MethodPatch, viewURL, subTok, frag, body, "If-Match", "*")
	wantStatus(t, "ICE restart PATCH", r, b, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != frag {
		t.Errorf("restart answer Content-Type %q", ct)
	}
	if len(r.Header.Values("Link")) == 0 {
		t.Error("no ICE servers in the restart answer")
	}
	newTag := r.Header.Get("ETag")
	if newTag == "" || newTag == etag {
		t.Errorf("ETag after restart %q (was %q)", newTag, etag)
	}
	back, err := sdpfrag.Parse(b)
	if err != nil {
		t.Fatalf("restart answer %q: %v", b, err)
	}
	oldServerUfrag, _ := iceCreds(answer)
	if back.Ufrag == "" || back.Ufrag == oldServerUfrag || back.Pwd == "" || len(back.Candidates) == 0 {
		t.Fatalf("restart answer %q (old server ufrag %s)", b, oldServerUfrag)
	}
	// The client's new answer: the old one with the new credentials and
	// candidates.
	newAnswer := regexp.MustCompile(`(?m)^a=(candidate:|end-of-candidates).*\r\n`).ReplaceAllString(answer, "")
	newAnswer = regexp.MustCompile(`a=ice-ufrag:\S+`).ReplaceAllString(newAnswer, "a=ice-ufrag:"+back.Ufrag)
	newAnswer = regexp.MustCompile(`a=ice-pwd:\S+`).ReplaceAllString(newAnswer, "a=ice-pwd:"+back.Pwd)
	if err := view.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: newAnswer}); err != nil {
		t.Fatal(err)
	}
	for _, c := range back.Candidates {
		if err := view.pc.AddICECandidate(c); err != nil {
			t.Fatal(err)
		}
	}
	videoBefore := view.video.Load()
	testkit.Eventually(t, 15*time.Second, "video after the ICE restart", func() bool { return view.video.Load() > videoBefore+50 })
	r, b = whipReq(t, http.MethodPatch, viewURL, subTok, frag, trickle, "If-Match", etag)
	wantStatus(t, "PATCH with the old ICE session's ETag", r, b, http.StatusPreconditionFailed)
	// A trickle of the old ICE session arriving late without If-Match
	// would restart ICE back to it: refused.
	r, b = whipReq(t, http.MethodPatch, viewURL, subTok, frag, trickle)
	wantStatus(t, "PATCH with the old ICE session's credentials, no If-Match", r, b, http.StatusPreconditionRequired)
	videoBefore = view.video.Load()
	testkit.Eventually(t, 10*time.Second, "video after the refused stale trickle", func() bool { return view.video.Load() > videoBefore+25 })

	// Only the session's user may end it.
	r, b = whipReq(t, http.MethodDelete, viewURL, pubTok, "", "")
	wantStatus(t, "DELETE with another user's token", r, b, http.StatusForbidden)
	r, b = whipReq(t, http.MethodDelete, viewURL, "", "", "")
	wantStatus(t, "DELETE without a token", r, b, http.StatusUnauthorized)
	r, b = whipReq(t, http.MethodDelete, viewURL, subTok, "", "")
	wantStatus(t, "DELETE", r, b, http.StatusOK)
	r, b = whipReq(t, http.MethodDelete, viewURL, subTok, "", "")
	wantStatus(t, "DELETE again", r, b, http.StatusNotFound)
	r, b = whipReq(t, http.MethodPatch, viewURL, subTok, frag, trickle, "If-Match", "*")
	wantStatus(t, "PATCH after DELETE", r, b, http.StatusNotFound)
	if n := ts.whipSessions(t, "whep"); n != "0" {
		t.Errorf("whep sessions after DELETE = %s", n)
	}
	stopped := view.video.Load()
	time.Sleep(500 * time.Millisecond)
	if got := view.video.Load(); got > stopped+5 {
		t.Errorf("video still arrives after DELETE: %d → %d", stopped, got)
	}

	// The publisher's client closes its PeerConnection without DELETE
	// (DTLS close_notify): the session ends on its own.
	pub.Close()
	testkit.Eventually(t, 10*time.Second, "the closed publisher's session to end", func() bool {
		return ts.whipSessions(t, "whip") == "0"
	})
	r, b = whipReq(t, http.MethodDelete, pubURL, pubTok, "", "")
	wantStatus(t, "DELETE of an ended session", r, b, http.StatusNotFound)
	_ = view.pc.Close()
	view.wg.Wait()
	ts.stop(t)
	http.DefaultClient.CloseIdleConnections()
	leaks()
}

// TestWHIPErrors: bad inputs get the right HTTP errors, with CORS headers
// on every answer so that pages of other origins can read them.
func TestWHIPErrors(t *testing.T) {
	ts := startServer(t, nil)
	rooms := []string{"room1", "empty", "many"}
	pubTok := ts.grantToken(t, "studio", rooms, auth.GrantPublish)
	subTok := ts.grantToken(t, "viewer", rooms, auth.GrantSubscribe)
	callTok := ts.token(t, "alice", "phone") // the default grants: call only
	const sdpType = "application/sdp"
	u := ts.URL()
	pc := whipPC(t)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer := whiptest.Offer(t, pc, nil)

	for _, c := range []struct {
		what, method, path, token, ctype, body string
		status                                 int
	}{
		{"no token", "POST", "/whip/room1", "", sdpType, offer, 401},
		{"forged token", "POST", "/whip/room1", "not.a.token", sdpType, offer, 401},
		{"token without publish", "POST", "/whip/room1", callTok, sdpType, offer, 403},
		{"token without subscribe", "POST", "/whep/room1", pubTok, sdpType, offer, 403},
		{"wrong content type", "POST", "/whip/room1", pubTok, "text/plain", offer, 415},
		{"no content type", "POST", "/whep/room1", subTok, "", offer, 415},
		{"bad SDP", "POST", "/whip/room1", pubTok, sdpType, "v=0\r\nthis is not an offer\r\n", 400},
		{"SDP without ICE", "POST", "/whip/room1", pubTok, sdpType, regexp.MustCompile(`a=ice-(ufrag|pwd):\S+\r\n`).ReplaceAllString(offer, ""), 400},
		{"body too large", "POST", "/whip/room1", pubTok, sdpType, strings.Repeat("a", 65<<10), 413},
		{"bad room name", "POST", "/whip/Room!", pubTok, sdpType, offer, 400},
		{"nothing published", "POST", "/whep/empty", subTok, sdpType, offer, 409},
		{"GET endpoint", "GET", "/whip/room1", pubTok, "", "", 405},
		{"unknown session PATCH", "PATCH", "/whip/room1/aaaaaaaaaaaaaaaaaaaaaaaaaa", pubTok, "application/trickle-ice-sdpfrag", "a=end-of-candidates\r\n", 404},
		{"unknown session DELETE", "DELETE", "/whep/room1/aaaaaaaaaaaaaaaaaaaaaaaaaa", subTok, "", "", 404},
		{"unknown session no token", "DELETE", "/whep/room1/aaaaaaaaaaaaaaaaaaaaaaaaaa", "", "", "", 401},
		{"GET session", "GET", "/whep/room1/aaaaaaaaaaaaaaaaaaaaaaaaaa", subTok, "", "", 405},
	} {
		resp, body := whipReq(t, c.method, u+c.path, c.token, c.ctype, c.body)
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.what, resp.StatusCode, c.status, strings.TrimSpace(body))
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: no CORS header", c.what)
		}
		if c.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", c.what, resp.Header.Get("WWW-Authenticate"))
		}
		if c.status == 405 && resp.Header.Get("Allow") == "" {
			t.Errorf("%s: no Allow header", c.what)
		}
	}
	if n := ts.whipSessions(t, "whip"); n != "0" {
		t.Errorf("whip sessions after refusals = %s", n)
	}

	// CORS preflight, as a browser on another origin sends it.
	for _, path := range []string{"/whip/room1", "/whep/room1/aaaaaaaaaaaaaaaaaaaaaaaaaa"} {
		resp, body := whipReq(t, http.MethodOptions, u+path, "", "", "",
			"Origin", "http://127.0.0.1:1", "Access-Control-Request-Method", "POST",
			"Access-Control-Request-Headers", "authorization,content-type")
		wantStatus(t, "preflight "+path, resp, body, http.StatusNoContent)
		h := resp.Header
		if h.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: Allow-Origin %q", path, h.Get("Access-Control-Allow-Origin"))
		}
		for _, m := range []string{"POST", "PATCH", "DELETE", "OPTIONS"} {
			if !strings.Contains(h.Get("Access-Control-Allow-Methods"), m) {
				t.Errorf("%s: Allow-Methods %q lacks %s", path, h.Get("Access-Control-Allow-Methods"), m)
			}
		}
		for _, hd := range []string{"Authorization", "Content-Type", "If-Match"} {
			if !strings.Contains(h.Get("Access-Control-Allow-Headers"), hd) {
				t.Errorf("%s: Allow-Headers %q lacks %s", path, h.Get("Access-Control-Allow-Headers"), hd)
			}
		}
		for _, hd := range []string{"Location", "Link", "ETag", "Accept-Patch"} {
			if !strings.Contains(h.Get("Access-Control-Expose-Headers"), hd) {
				t.Errorf("%s: Expose-Headers %q lacks %s", path, h.Get("Access-Control-Expose-Headers"), hd)
			}
		}
	}

	// A user holds at most 8 sessions at once: the ninth is refused.
	var locs []string
	for i := range 9 {
		s := newWHIPSender(t)
		resp, body := whipReq(t, http.MethodPost, u+"/whip/many", pubTok, sdpType, whiptest.Offer(t, s.PC, nil))
		if i < 8 {
			wantStatus(t, "WHIP POST under the cap", resp, body, http.StatusCreated)
			locs = append(locs, resp.Header.Get("Location"))
			continue
		}
		wantStatus(t, "ninth WHIP POST", resp, body, http.StatusTooManyRequests)
	}
	for _, l := range locs {
		resp, body := whipReq(t, http.MethodDelete, u+l, pubTok, "", "")
		wantStatus(t, "DELETE", resp, body, http.StatusOK)
	}
}

// TestWHIPIntoCallRoom: WHIP publishes into the running signaling room of
// the same name: a member of the room receives the WHIP stream, and a WHEP
// viewer of that room plays it; when the room's call ends, the WHIP and
// WHEP sessions end with it.
func TestWHIPIntoCallRoom(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t, 30*time.Second)
	member := ts.dial(t, "bob", "laptop")
	callID, err := member.Join(ctx, "studio")
	if err != nil {
		t.Fatal(err)
	}
	mm, err := member.StartMedia(ctx, callID, client.MediaOptions{ReceiveOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer mm.Close()

	pub := newWHIPSender(t)
	ts.whipPublish(t, pub, "studio", ts.grantToken(t, "obs", []string{"studio"}, auth.GrantPublish))
	testkit.Eventually(t, 15*time.Second, "the room member to receive the WHIP stream", func() bool {
		st := mm.Stats()
		streams := mm.RemoteStreams()
		return len(streams) == 1 && streams[0] == "obs" && st.Video.PacketsReceived > 25 && st.Audio.PacketsReceived > 25
	})

	view := newWHEPReceiver(t)
	ts.whepPlay(t, view, "studio", ts.grantToken(t, "viewer", []string{"studio"}, auth.GrantSubscribe))
	testkit.Eventually(t, 15*time.Second, "the WHEP viewer to receive the WHIP stream", func() bool {
		return view.audio.Load() > 25 && view.video.Load() > 25
	})

	// The only member leaves: the room's call ends and takes the
	// sessions with it.
	if err := member.Hangup(ctx, callID); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the sessions to end with the room", func() bool {
		return ts.whipSessions(t, "whip") == "0" && ts.whipSessions(t, "whep") == "0"
	})
}

// TestWHIPTokenRooms: a stream key publishes and plays only in the rooms
// it names. A key for one room is refused in another, and one that names
// no rooms everywhere, with a 403 that says how to mint the right one; a
// key naming several rooms works in each.
func TestWHIPTokenRooms(t *testing.T) {
	ts := startServer(t, nil)
	const sdpType = "application/sdp"
	showKey := ts.grantToken(t, "studio", []string{"show"}, auth.GrantPublish)
	twoKey := ts.grantToken(t, "studio", []string{"show", "backstage"}, auth.GrantPublish)
	noRooms := ts.grantToken(t, "studio", nil, auth.GrantPublish)
	showView := ts.grantToken(t, "viewer", []string{"show"}, auth.GrantSubscribe)
	noRoomsView := ts.grantToken(t, "viewer", nil, auth.GrantSubscribe, auth.GrantPublish)

	viewOffer := func() string {
		pc := whipPC(t)
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
		return whiptest.Offer(t, pc, nil)
	}
	for _, c := range []struct {
		what, path, token string
		want              []string // in the refusal
	}{
		{"a key for show, into backstage", "/whip/backstage", showKey, []string{"not for room backstage", "--room backstage"}},
		{"a key naming no rooms", "/whip/show", noRooms, []string{"names no rooms", "--grants publish --room show"}},
		{"a viewer key for show, playing backstage", "/whep/backstage", showView, []string{"not for room backstage", "--room backstage"}},
		{"a viewer key naming no rooms", "/whep/show", noRoomsView, []string{"names no rooms", "--grants subscribe --room show"}},
	} {
		offer := whiptest.Offer(t, newWHIPSender(t).PC, nil)
		if strings.HasPrefix(c.path, "/whep/") {
			offer = viewOffer()
		}
		resp, body := whipReq(t, http.MethodPost, ts.URL()+c.path, c.token, sdpType, offer)
		wantStatus(t, c.what, resp, body, http.StatusForbidden)
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: refusal %q does not say %q", c.what, strings.TrimSpace(body), w)
			}
		}
	}
	if n := ts.whipSessions(t, "whip"); n != "0" {
		t.Errorf("whip sessions after refusals = %s", n)
	}

	// A key naming both rooms publishes in each; the viewer key plays show.
	ts.whipPublish(t, newWHIPSender(t), "backstage", twoKey)
	ts.whipPublish(t, newWHIPSender(t), "show", twoKey)
	view := newWHEPReceiver(t)
	ts.whepPlay(t, view, "show", showView)
	testkit.Eventually(t, 15*time.Second, "the viewer to receive show", func() bool { return view.video.Load() > 25 })
}
