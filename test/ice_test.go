package test

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/config"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/internal/udptrap"
	"github.com/tandemcall/tandem/internal/whiptest"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// The server's limit of distinct usable candidates per PeerConnection and
// ICE session (sfu's maxRemoteCandidates).
const candidateLimit = 32

// goroutinePeak samples the number of goroutines until stop is called and
// returns the highest seen.
func goroutinePeak() (stop func() int) {
	var peak atomic.Int64
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		for {
			if n := int64(runtime.NumGoroutine()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() int {
		close(done)
		<-ended
		return int(peak.Load())
	}
}

// loopbackCandidates counts the UDP loopback host candidates of a
// description.
func loopbackCandidates(desc string) int {
	return len(regexp.MustCompile(`(?m)^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 \d+ typ host`).FindAllString(desc, -1))
}

// TestICECandidatesOverWHIP: a WHIP client that never connects and
// trickles candidates naming ports on loopback, where nobody runs ICE,
// gets no packet sent there; unusable candidates are dropped and counted;
// past the limit a PATCH is refused with 422 and changes nothing, a
// thousand more change nothing either and leave the goroutines bounded; an
// offer with too many candidates is refused with 400; the metrics count it
// all.
func TestICECandidatesOverWHIP(t *testing.T) {
	ts := startServer(t, nil)
	tok := ts.grantToken(t, "studio", []string{"show", "other"}, auth.GrantPublish)
	trap := udptrap.New(t, 64)

	// The client's PC never gets the answer: the server's side stays
	// checking, as it would for a client that only names addresses.
	pc := whipPC(t)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer := whiptest.Offer(t, pc, nil)
	r, b := whipReq(t, http.MethodPost, ts.URL()+"/whip/show", tok, "application/sdp", offer)
	wantStatus(t, "WHIP POST", r, b, http.StatusCreated)
	url, etag := ts.URL()+r.Header.Get("Location"), r.Header.Get("ETag")
	own := loopbackCandidates(offer)
	ufrag, pwd := iceCreds(offer)
	frag := func(cands ...string) string {
		b := "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
		for _, c := range cands {
			b += "a=candidate:" + c + "\r\n"
		}
		return b
	}
	patch := func(what, body string, status int) string {
		t.Helper()
		r, b := whipReq(t, http.MethodPatch, url, tok, "application/trickle-ice-sdpfrag", body, "If-Match", etag)
		wantStatus(t, what, r, b, status)
		return b
	}
	var first []string
	for i := range candidateLimit - own {
		first = append(first, trap.Candidate(i))
	}
	unusable := []string{
		"1 1 udp 2122260223 3f1c2a6e-0000-4000-8000-000000000001.local 50000 typ host",
		"2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active",
		"3 1 udp 2122260223 0.0.0.0 50000 typ host",
		"4 1 udp 2122260223 224.0.0.251 5353 typ host",
		"5 1 udp 2122260223 127.0.0.1 0 typ host",
	}
	patch("PATCH up to the limit", frag(append(first[:16:16], unusable...)...), http.StatusNoContent)
	patch("PATCH to the limit", frag(first[16:]...), http.StatusNoContent)
	patch("PATCH repeating candidates", frag(first[:8]...), http.StatusNoContent)
	if b := patch("PATCH past the limit", frag(trap.Candidate(candidateLimit)), http.StatusUnprocessableEntity); !strings.Contains(b, "too many ICE candidates") {
		t.Errorf("refusal says %q", b)
	}

	before := runtime.NumGoroutine()
	peak := goroutinePeak()
	const patches, per = 20, 64
	for p := range patches {
		var cands []string
		for i := range per {
			cands = append(cands, udptrap.HostCandidate(i, "127.0.0.1", 30000+p*per+i))
		}
		patch("flood PATCH", frag(cands...), http.StatusUnprocessableEntity)
	}
	// An ICE restart with too many candidates is refused before it
	// restarts anything: the session's ETag still holds.
	var many []string
	for i := range candidateLimit + 1 {
		many = append(many, trap.Candidate(i))
	}
	restart := "a=ice-ufrag:NewUfrag\r\na=ice-pwd:aNewPasswordOf22Chars00\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n"
	for _, c := range many {
		restart += "a=candidate:" + c + "\r\n"
	}
	r, b = whipReq(t, http.MethodPatch, url, tok, "application/trickle-ice-sdpfrag", restart, "If-Match", "*")
	wantStatus(t, "ICE restart with too many candidates", r, b, http.StatusUnprocessableEntity)
	patch("PATCH after the refusals", frag(first[0])+"a=end-of-candidates\r\n", http.StatusNoContent)

	// A WHIP offer with too many candidates.
	i := strings.Index(offer, "a=mid:")
	i += strings.Index(offer[i:], "\n") + 1
	extra := ""
	for _, c := range many {
		extra += "a=candidate:" + c + "\r\n"
	}
	r, b = whipReq(t, http.MethodPost, ts.URL()+"/whip/other", tok, "application/sdp", offer[:i]+extra+offer[i:])
	wantStatus(t, "WHIP offer with too many candidates", r, b, http.StatusBadRequest)
	if !strings.Contains(b, "too many ICE candidates") {
		t.Errorf("refusal says %q", b)
	}
	if p := peak(); p > before+100 {
		t.Errorf("goroutines rose from %d to %d while candidates were refused", before, p)
	}

	// Long enough for a full agent to have checked them all many times.
	time.Sleep(2 * time.Second)
	if n := trap.Packets(); n != 0 {
		t.Errorf("the server sent %d packets to ports the client only named", n)
	}
	m := scrape(t, ts)
	want := map[string]float64{
		"mdns": 1, "transport": 1, "address": 3, "malformed": 0,
		// One past the limit, the flood, the restart, and the offer (its
		// own candidates too).
		"over_limit": 1 + patches*per + float64(candidateLimit+1) + float64(candidateLimit+1+loopbackCandidates(offer)),
	}
	for reason, v := range want {
		k := fmt.Sprintf(`tandem_sfu_ice_candidates_dropped_total{reason=%q}`, reason)
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
}

// TestICECandidatesOverWebSocket: a call leg whose client never connects
// and sends ice messages naming ports where nobody runs ICE gets no packet
// sent there; past the limit of the ICE session its candidates are
// refused with media_failed, thousands of them leave the goroutines
// bounded, and the other leg's media carries on.
func TestICECandidatesOverWebSocket(t *testing.T) {
	ts := startServer(t, func(c *config.Config) { c.Signaling.RateLimit = 100000 })
	alice := ts.dial(t, "alice", "phone")
	bob := ts.dial(t, "bob", "laptop")
	ctx := testCtx(t, 60*time.Second)
	id := answeredCall(t, alice, bob, true)
	bm, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true})
	if err != nil {
		t.Fatal(err)
	}
	// Alice's pub offer, from a PC that never takes the answer: the
	// server's side stays checking.
	pc := whipPC(t)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	offer := whiptest.Offer(t, pc, nil)
	if err := alice.Send(ctx, protocol.TypeSDP, &protocol.SDP{CallID: id, PC: protocol.PCPub, Kind: protocol.SDPOffer, SDP: offer}); err != nil {
		t.Fatal(err)
	}
	waitType(t, alice, func(m *protocol.SDP) bool { return m.CallID == id && m.PC == protocol.PCPub })
	// The sub PC has the server's offer and no answer: its candidates wait.
	waitType(t, alice, func(m *protocol.SDP) bool { return m.CallID == id && m.PC == protocol.PCSub })
	trap := udptrap.New(t, 2*candidateLimit)

	// send sends candidates as ice messages with ids prefix+n, then a
	// malformed one whose error marks the end, and returns the errors by id.
	batch := 0
	send := func(pc, prefix string, cands []string) map[string]*protocol.Error {
		t.Helper()
		batch++
		end := fmt.Sprintf("end-%d", batch)
		for i, c := range append(cands, "nonsense") {
			msgID := fmt.Sprintf("%s%d", prefix, i)
			if i == len(cands) {
				msgID = end
			}
			m := &protocol.ICE{Header: protocol.Header{ID: msgID}, CallID: id, PC: pc,
				Candidate: protocol.ICECandidate{Candidate: "candidate:" + c}}
			if err := alice.Send(ctx, protocol.TypeICE, m); err != nil {
				t.Fatal(err)
			}
		}
		errs := map[string]*protocol.Error{}
		for {
			e := waitType(t, alice, func(e *protocol.Error) bool { return strings.HasPrefix(e.Re, prefix) || e.Re == end })
			if e.Re == end {
				return errs
			}
			errs[e.Re] = e
		}
	}

	// Up to the limit (the client's own candidates count), candidates are
	// taken; the rest of the batch is refused.
	for _, pc := range []string{protocol.PCPub, protocol.PCSub} {
		var cands []string
		for i := range 2 * candidateLimit {
			cands = append(cands, trap.Candidate(i))
		}
		errs := send(pc, pc+"-trap-", cands)
		if len(errs) < candidateLimit || len(errs) > candidateLimit+4 {
			t.Errorf("%s: %d of %d candidates refused, want about %d", pc, len(errs), len(cands), candidateLimit)
		}
		for n := range candidateLimit - 4 {
			if e := errs[fmt.Sprintf("%s-trap-%d", pc, n)]; e != nil {
				t.Errorf("%s: candidate %d refused: %s", pc, n, e.Message)
			}
		}
		for _, e := range errs {
			if e.Code != protocol.CodeMediaFailed || !strings.Contains(e.Message, "too many ICE candidates") {
				t.Errorf("%s: refusal %s %q", pc, e.Code, e.Message)
				break
			}
		}
	}

	before := runtime.NumGoroutine()
	peak := goroutinePeak()
	const batches, per = 20, 100
	for b := range batches {
		var cands []string
		for i := range per {
			cands = append(cands, udptrap.HostCandidate(i, "127.0.0.1", 30000+b*per+i))
		}
		if errs := send(protocol.PCPub, fmt.Sprintf("flood-%d-", b), cands); len(errs) != per {
			t.Fatalf("flood batch %d: %d of %d refused", b, len(errs), per)
		}
	}
	if p := peak(); p > before+100 {
		t.Errorf("goroutines rose from %d to %d while candidates were refused", before, p)
	}
	errs := send(protocol.PCPub, "unusable-", []string{
		"1 1 udp 2122260223 3f1c2a6e-0000-4000-8000-000000000001.local 50000 typ host",
		"3 1 udp 2122260223 0.0.0.0 50000 typ host",
	})
	if len(errs) != 0 {
		t.Errorf("unusable candidates got errors: %v", errs)
	}

	time.Sleep(2 * time.Second)
	if n := trap.Packets(); n != 0 {
		t.Errorf("the server sent %d packets to ports the client only named", n)
	}
	if err := bm.Err(); err != nil {
		t.Errorf("bob's media: %v", err)
	}
}

// TestClientBehindNAT: Alice's device reaches the server through a NAT
// (nftables source NAT in the test's private network namespace): her only
// candidate is her private address, which the server cannot reach, and
// her checks arrive from the NAT's address. The server, which sends
// checks to nobody, learns that address from them (a peer-reflexive
// candidate) and answers there, never at her private address; media
// flows both ways.
func TestClientBehindNAT(t *testing.T) {
	if !inPrivateNetns(t, "nft") {
		return
	}
	ipCmd(t, "link", "add", "tnd0", "type", "veth", "peer", "name", "tnd1")
	ipCmd(t, "link", "set", "tnd0", "up")
	ipCmd(t, "link", "set", "tnd1", "up")
	ipCmd(t, "addr", "add", "10.77.0.2/24", "dev", "tnd0") // Alice's private address
	ipCmd(t, "addr", "add", "10.88.0.1/32", "dev", "lo")   // the NAT's public one
	_, home, err := net.ParseCIDR("10.77.0.0/24")
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *config.Config) { c.TURN.Enabled = false })
	port := ts.MediaAddr().Port
	// Alice's packets to the media port leave from the NAT's address;
	// the server's packets reach her only through the NAT's mapping.
	// Packets the server addresses to her private address itself are
	// counted and dropped, kept out of connection tracking so that they
	// cannot open a path the NAT would not.
	rules := fmt.Sprintf(`table ip tandem_nat {
	chain post {
		type nat hook postrouting priority srcnat;
		ip saddr 10.77.0.2 udp dport %[1]d counter snat to 10.88.0.1 comment "mapped"
	}
	chain pre {
		type nat hook prerouting priority dstnat;
	}
	chain out {
		type nat hook output priority -100;
	}
	chain raw {
		type filter hook output priority raw;
		ip daddr 10.77.0.2 udp sport %[1]d notrack
	}
	chain in {
		type filter hook input priority filter; policy accept;
		ip daddr 10.77.0.2 udp sport %[1]d ct status snat counter accept comment "back"
		ip daddr 10.77.0.2 udp sport %[1]d counter drop comment "direct"
	}
}
`, port)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f -: %v: %s", err, bytesTrim(out))
	}

	ctx := testCtx(t, 60*time.Second)
	alice, bob := ts.dial(t, "alice", "phone"), ts.dial(t, "bob", "phone")
	id := answeredCall(t, alice, bob, true)
	am, err := alice.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true, Network: home})
	if err != nil {
		t.Fatal(err)
	}
	bm, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, Video: true})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "media both ways", func() bool {
		a, b := am.Stats(), bm.Stats()
		return a.Video.PacketsReceived > 40 && a.Audio.PacketsReceived > 40 &&
			b.Video.PacketsReceived > 40 && b.Audio.PacketsReceived > 40
	})
	out, err := exec.Command("nft", "list", "table", "ip", "tandem_nat").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list table: %v: %s", err, bytesTrim(out))
	}
	counts := map[string]string{}
	for _, m := range regexp.MustCompile(`counter packets (\d+)[^\n]*comment "(\w+)"`).FindAllSubmatch(out, -1) {
		counts[string(m[2])] = string(m[1])
	}
	snat, back, direct := counts["mapped"], counts["back"], counts["direct"]
	if snat == "" || back == "" || direct == "" {
		t.Fatalf("want three counters in the NAT rules:\n%s", out)
	}
	t.Logf("NAT: %s connections mapped, %s packets back through the mapping, %s sent to the private address", snat, back, direct)
	if snat == "0" || back == "0" {
		t.Errorf("the media did not go through the NAT:\n%s", out)
	}
	if direct != "0" {
		t.Errorf("the server sent %s packets to Alice's private address, which only her candidates named", direct)
	}
}
