package loadtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/tandemcall/tandem/internal/auth"
	"github.com/tandemcall/tandem/internal/pionlog"
)

// The broadcast scenario of a soak: one person publishes audio into a
// room over WHIP, as OBS would, two others play it over WHEP, each
// counting what arrives, and all three leave again with DELETE. It needs
// tokens with the publish and subscribe grants (RoomTokens).

// RoomTokens is a TokenSource that also mints tokens whose publish and
// subscribe grants hold in a room. A soak runs its broadcast scenario
// only with one.
type RoomTokens interface {
	RoomToken(ctx context.Context, user, device, room string, grants ...string) (string, error)
}

var _ RoomTokens = AuthorityTokens{}

// RoomToken implements RoomTokens.
func (a AuthorityTokens) RoomToken(_ context.Context, user, device, room string, grants ...string) (string, error) {
	tok, _, err := a.Authority.Mint(user, device, grants, a.TTL, auth.WithRooms(room))
	return tok, err
}

// whipSession is one WHIP publisher or WHEP player.
type whipSession struct {
	pc       *webrtc.PeerConnection
	resource string // its URL, for DELETE
	token    string
	stop     chan struct{}
	done     chan struct{}
}

// whipAPI is a pion API for WHIP and WHEP on loopback: Opus, the default
// interceptors (NACK, reports), host candidates on 127.0.0.1 only.
func whipAPI() (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{LoggerFactory: pionlog.Factory{Log: slog.New(slog.DiscardHandler), Levels: pionlog.Plain}}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// whipStart negotiates a WHIP (publish) or WHEP (play) session at
// endpoint (http://…/whip/room or /whep/room) without trickle: the offer
// holds every candidate. A publisher sends 20 ms Opus frames until
// close; a player hands every packet to rx. A WHEP POST refused as
// nothing published yet (409) is tried again, for up to soakStep.
func whipStart(ctx context.Context, endpoint, token string, rx *soakRx) (*whipSession, error) {
	api, err := whipAPI()
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	ws := &whipSession{pc: pc, token: token, stop: make(chan struct{}), done: make(chan struct{})}
	fail := func(err error) (*whipSession, error) {
		_ = pc.Close()
		return nil, err
	}
	publish := rx == nil
	var track *webrtc.TrackLocalStaticSample
	if publish {
		if track, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "broadcast"); err != nil {
			return fail(err)
		}
		if _, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			return fail(err)
		}
	} else {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fail(err)
		}
		pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			for {
				p, _, err := t.ReadRTP()
				if err != nil {
					return
				}
				rx.add("broadcast", p.SequenceNumber, p.Payload, time.Now())
			}
		})
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	var answer, loc string
	for deadline := time.Now().Add(soakStep); ; time.Sleep(100 * time.Millisecond) {
		var status int
		status, answer, loc, err = whipDo(ctx, http.MethodPost, endpoint, token, pc.LocalDescription().SDP)
		if err != nil {
			return fail(err)
		}
		if status == http.StatusCreated {
			break
		}
		if status != http.StatusConflict || publish || time.Now().After(deadline) {
			return fail(fmt.Errorf("POST %s: status %d: %s", endpoint, status, strings.TrimSpace(answer)))
		}
	}
	base, _, _ := strings.Cut(endpoint, "/wh")
	ws.resource = base + loc
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		_, _, _, _ = whipDo(context.Background(), http.MethodDelete, ws.resource, token, "")
		return fail(err)
	}
	go func() {
		defer close(ws.done)
		if !publish {
			<-ws.stop
			return
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ws.stop:
				return
			case <-tick.C:
				_ = track.WriteSample(media.Sample{Data: []byte{0x78, 1, 2, 3}, Duration: 20 * time.Millisecond})
			}
		}
	}()
	return ws, nil
}

// close ends the session with DELETE, as a client leaving does, and
// closes its PeerConnection; the error is the DELETE's.
func (ws *whipSession) close() error {
	close(ws.stop)
	<-ws.done
	ctx, cancel := context.WithTimeout(context.Background(), soakStep)
	defer cancel()
	status, body, _, err := whipDo(ctx, http.MethodDelete, ws.resource, ws.token, "")
	_ = ws.pc.Close()
	if err == nil && status != http.StatusOK && status != http.StatusNoContent {
		err = fmt.Errorf("DELETE %s: status %d: %s", ws.resource, status, strings.TrimSpace(body))
	}
	return err
}

// whipDo makes one WHIP or WHEP request and returns the status, the body
// and the Location header.
func whipDo(ctx context.Context, method, url, token, sdp string) (int, string, string, error) {
	ctx, cancel := context.WithTimeout(ctx, soakStep)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(sdp))
	if err != nil {
		return 0, "", "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if sdp != "" {
		req.Header.Set("Content-Type", "application/sdp")
	}
	resp, err := soakHTTP.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b), resp.Header.Get("Location"), err
}

// broadcast runs the broadcast scenario between ps: ps[0] publishes, the
// others play.
func (s *soak) broadcast(ctx context.Context, ps []*person, rt RoomTokens, rng *rand.Rand) {
	pub := ps[0].devices[0]
	room := fmt.Sprintf("bc-%x", rng.Uint32())
	base := httpBase(pub.url)
	broke := func(format string, args ...any) {
		if s.chaotic() {
			s.disturb()
			return
		}
		s.violate("broadcast %s: "+format, append([]any{room}, args...)...)
	}
	tok, err := rt.RoomToken(ctx, pub.user, "obs", room, auth.GrantPublish)
	if err != nil {
		s.violate("broadcast %s: token: %v", room, err)
		return
	}
	sent := time.Now()
	publisher, err := whipStart(ctx, base+"/whip/"+room, tok, nil)
	if err != nil {
		broke("publishing: %v", err)
		return
	}
	defer func() {
		if err := publisher.close(); err != nil {
			broke("the publisher leaving: %v", err)
		}
	}()
	var players []*whipSession
	var rxs []*soakRx
	defer func() {
		var expected, received uint64
		for i, p := range players {
			if err := p.close(); err != nil {
				broke("a player leaving: %v", err)
			}
			e, r := rxs[i].counts()
			expected, received = expected+e, received+r
		}
		s.recordMedia(expected, received)
	}()
	for _, p := range ps[1:] {
		tok, err := rt.RoomToken(ctx, p.user, "player", room, auth.GrantSubscribe)
		if err != nil {
			s.violate("broadcast %s: token: %v", room, err)
			return
		}
		rx := newSoakRx()
		player, err := whipStart(ctx, base+"/whep/"+room, tok, rx)
		if err != nil {
			broke("playing: %v", err)
			return
		}
		players, rxs = append(players, player), append(rxs, rx)
	}
	for i, rx := range rxs {
		if !awaitPackets(rx, 1, soakStep) {
			broke("player %d heard nothing", i+1)
			return
		}
	}
	s.latency("whip publish → every player hears", time.Since(sent))
	for i, rx := range rxs {
		if !awaitPackets(rx, 25, soakStep) { // half a second of it
			broke("player %d heard the start only", i+1)
			return
		}
	}
	s.mu.Lock()
	s.completed[SoakBroadcast]++
	s.mu.Unlock()
}

// awaitPackets waits until rx has n packets.
func awaitPackets(rx *soakRx, n uint64, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if _, got := rx.counts(); got >= n {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
