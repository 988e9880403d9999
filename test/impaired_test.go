package test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/testkit"
)

// Subscribers behind an impaired link. Each test runs in a network
// namespace of its own (inPrivateNetns) and impairs one subscriber's
// downlink by its ICE port range (linkshape_test.go); a second subscriber
// of the same publisher is the unimpaired reference.

// impairedPorts is the impaired subscriber's ICE port range: below the
// kernel's ephemeral ports (32768 on), so no other socket of the test
// lands in it, and aligned for tc's u32 mask.
var impairedPorts = client.PortRange{Min: 20000, Max: 20015}

// disableNACKEnv, when set, makes the lossy subscriber ask for no
// retransmissions: TestLossyLinkRecovers must then fail, which shows it
// measures what NACK recovers.
const disableNACKEnv = "TANDEM_TEST_DISABLE_NACK"

// Media of the impaired-link tests.
const (
	// impairedVideoBitrate is a video call's bitrate on a phone: frames of
	// about 2 kB, two RTP packets each, a keyframe every second.
	impairedVideoBitrate = 500_000
	// impairedAudioBytes is a 48 kbit/s Opus packet every 20 ms.
	impairedAudioBytes = 120
)

// TestLossyLinkRecovers: Alice publishes video and audio to a room; Bob
// receives over a clean link, Carol over one that loses 10 % of the
// packets the SFU sends her, at random. Carol's receiver asks for the lost
// video packets (NACK) and the SFU resends them, so she sees nearly every
// frame Bob sees; audio is not retransmitted, so she loses about 10 % of
// it, in short gaps that her Opus decoder's loss concealment (PLC, and
// in-band FEC where the sender adds it) fills: audio keeps playing. With
// TANDEM_TEST_DISABLE_NACK=1 this test fails: about one frame in five
// then misses a packet, and each such loss leaves the picture frozen until
// the next keyframe.
func TestLossyLinkRecovers(t *testing.T) {
	if !inPrivateNetns(t, "nft") {
		return
	}
	leaks := testkit.LeakCheck(t, 2)
	dropDownlink(t, impairedPorts, 10)
	ts := startServer(t, nil)
	ctx := testCtx(t, 60*time.Second)
	const room = "lossy"
	alice, _ := joinWithMedia(t, ctx, ts, "alice", room, client.MediaOptions{
		Audio: true, Video: true, VideoBitrate: impairedVideoBitrate, AudioFrameBytes: impairedAudioBytes,
	})
	bob, clean := joinWithMedia(t, ctx, ts, "bob", room, client.MediaOptions{ReceiveOnly: true})
	carol, lossy := joinWithMedia(t, ctx, ts, "carol", room, client.MediaOptions{
		ReceiveOnly: true, ReceivePorts: impairedPorts, DisableNACK: os.Getenv(disableNACKEnv) != "",
	})
	testkit.Eventually(t, 20*time.Second, "bob and carol to decode alice's video and hear her", func() bool {
		return playing(clean, "alice") && playing(lossy, "alice")
	})

	// A second of warm-up lets the lossy leg's first losses settle, then
	// the window starts for both.
	time.Sleep(time.Second)
	const window = 10 * time.Second
	clean.ResetQuality()
	lossy.ResetQuality()
	nacksBefore, linkBefore := lossy.Stats(), downlinkCount(t)
	time.Sleep(window)
	cleanVideo, cleanAudio := remoteQuality(t, clean, "alice")
	lossyVideo, lossyAudio := remoteQuality(t, lossy, "alice")
	nacks, link := lossy.Stats(), downlinkCount(t).sub(linkBefore)
	nacksSent := nacks.NACKsSent - nacksBefore.NACKsSent
	nacked := nacks.PacketsNACKed - nacksBefore.PacketsNACKed
	repaired := nacks.RetransmissionsReceived - nacksBefore.RetransmissionsReceived

	t.Logf("window %v; the loss rule dropped %d of %d packets sent to carol", window, link.dropped, link.sent)
	logQuality(t, "bob (clean)", cleanVideo, cleanAudio)
	logQuality(t, "carol (10% loss)", lossyVideo, lossyAudio)
	t.Logf("carol: %d NACKs sent asking for %d packets, %d retransmissions received; %d remote tracks",
		nacksSent, nacked, repaired, len(nacks.RemoteTracks))

	// Bob's link is clean: the reference must be a whole stream. Alice
	// sends 30 fps; the floor is low because tests of other packages
	// share the CPUs and stall the publisher's pacer now and then.
	if minFrames := uint64(10 * window.Seconds()); cleanVideo.FramesDecoded < minFrames {
		t.Errorf("bob decoded %d frames in %v, want at least %d (10 fps)", cleanVideo.FramesDecoded, window, minFrames)
	}
	if l := cleanVideo.LossFraction(); l > 0.01 || cleanVideo.FramesDropped > 0 {
		t.Errorf("bob, on a clean link, lost %.1f %% of video and %d frames", 100*l, cleanVideo.FramesDropped)
	}
	if l := cleanAudio.LossFraction(); l > 0.01 {
		t.Errorf("bob, on a clean link, lost %.1f %% of audio", 100*l)
	}

	// Carol's link loses packets, and NACK brings the video back.
	if link.dropped == 0 {
		t.Error("the loss rule dropped nothing: carol's link was not impaired")
	}
	if nacksSent == 0 || repaired == 0 || repaired < nacked/2 {
		t.Errorf("carol sent %d NACKs for %d packets and received %d retransmissions; want NACKs and most of the packets", nacksSent, nacked, repaired)
	}
	// Without NACK, a frame of two packets survives 10 % loss 81 % of the
	// time and a reference chain of a second's frames hardly ever: far
	// below this.
	if want := cleanVideo.FramesDecoded * 9 / 10; lossyVideo.FramesDecoded < want {
		t.Errorf("carol decoded %d frames, bob %d; want at least %d (90 %%)", lossyVideo.FramesDecoded, cleanVideo.FramesDecoded, want)
	}

	// Audio is not retransmitted: carol loses about what the link drops,
	// in gaps short enough for loss concealment, and her audio does not
	// stall where bob's does not. Stalls both see come from this machine
	// (the publisher's pacer or the SFU waiting for a CPU while other
	// tests run) and end at slightly different times for each receiver,
	// hence the margin over bob's longest.
	if l := lossyAudio.LossFraction(); l < 0.04 || l > 0.18 {
		t.Errorf("carol lost %.1f %% of audio; want about 10 %% (4–18 %%)", 100*l)
	}
	if lossyAudio.LongestMediaGap > maxAudioGap {
		t.Errorf("carol's audio has a gap of %v of media; want at most %v", lossyAudio.LongestMediaGap, maxAudioGap)
	}
	if limit := cleanAudio.LongestGap*3/2 + maxAudioGap; lossyAudio.LongestGap > limit {
		t.Errorf("carol's audio stopped for %v (bob's for %v); want at most %v", lossyAudio.LongestGap, cleanAudio.LongestGap, limit)
	}

	for _, c := range []*client.Client{alice, bob, carol} {
		_ = c.Close()
	}
	ts.stop(t)
	leaks()
}

// maxAudioGap is the longest gap between two audio packets a listener
// does not hear as a dropout: five 20 ms packets lost in a row, 100 ms,
// which Opus packet loss concealment covers. At 10 % random loss six in a
// row happen about once in six hours of audio.
const maxAudioGap = 120 * time.Millisecond

// TestCappedLinkSettlesLower: Alice publishes video in three simulcast
// layers (1.2 Mbit/s 1280×720, 400 kbit/s 640×360, 120 kbit/s 320×180)
// and audio; Bob receives over a clean link, Carol over one capped at
// 600 kbit/s. The SFU's bandwidth estimate for Carol starts high, so she
// first gets the top layer; the loss her receiver reports brings the
// estimate down and the SFU moves her to a lower layer, which she keeps
// decoding without a long freeze, while Bob keeps the top layer.
func TestCappedLinkSettlesLower(t *testing.T) {
	if !inPrivateNetns(t) {
		return
	}
	leaks := testkit.LeakCheck(t, 2)
	const capKbit = 600
	capDownlink(t, impairedPorts, capKbit)
	ts := startServer(t, nil)
	ctx := testCtx(t, 60*time.Second)
	const room = "capped"
	alice, _ := joinWithMedia(t, ctx, ts, "alice", room, client.MediaOptions{
		Audio: true, Video: true, Simulcast: true, VideoBitrate: 1_200_000, AudioFrameBytes: impairedAudioBytes,
	})
	cleanTrace, cappedTrace := newVideoTrace("alice"), newVideoTrace("alice")
	bob, clean := joinWithMedia(t, ctx, ts, "bob", room, client.MediaOptions{ReceiveOnly: true, OnRTP: cleanTrace.onRTP})
	carol, capped := joinWithMedia(t, ctx, ts, "carol", room, client.MediaOptions{
		ReceiveOnly: true, ReceivePorts: impairedPorts, OnRTP: cappedTrace.onRTP,
	})
	testkit.Eventually(t, 20*time.Second, "bob and carol to decode alice's video and hear her", func() bool {
		return playing(clean, "alice") && playing(capped, "alice")
	})
	// Settled: below the top layer, and on the same layer for a while.
	testkit.Eventually(t, 20*time.Second, "carol to settle below the top layer", func() bool {
		w, since := cappedTrace.layer()
		return w > 0 && w < topLayerWidth && since > settleTime
	})
	const window = 6 * time.Second
	windowStart := time.Now()
	clean.ResetQuality()
	capped.ResetQuality()
	cleanBytes, cappedBytes, nacksBefore := videoBytes(clean), videoBytes(capped), capped.Stats()
	time.Sleep(window)
	nacks := capped.Stats()
	cleanVideo, cleanAudio := remoteQuality(t, clean, "alice")
	cappedVideo, cappedAudio := remoteQuality(t, capped, "alice")
	cleanRate := float64(videoBytes(clean)-cleanBytes) * 8 / window.Seconds()
	cappedRate := float64(videoBytes(capped)-cappedBytes) * 8 / window.Seconds()

	t.Logf("window %v; video payload received: bob %.0f kbit/s at %dx%d, carol %.0f kbit/s at %dx%d (link capped at %d kbit/s)",
		window, cleanRate/1000, cleanVideo.Width, cleanVideo.Height, cappedRate/1000, cappedVideo.Width, cappedVideo.Height, capKbit)
	logQuality(t, "bob (clean)", cleanVideo, cleanAudio)
	logQuality(t, "carol (600 kbit/s)", cappedVideo, cappedAudio)
	t.Logf("bob's video by second (kbit/s @ keyframe width): %s", cleanTrace)
	t.Logf("carol's video by second: %s", cappedTrace)
	t.Logf("carol: %d NACKs sent asking for %d packets, %d retransmissions received (in the window); %d, %d, %d in all",
		nacks.NACKsSent-nacksBefore.NACKsSent, nacks.PacketsNACKed-nacksBefore.PacketsNACKed,
		nacks.RetransmissionsReceived-nacksBefore.RetransmissionsReceived,
		nacks.NACKsSent, nacks.PacketsNACKed, nacks.RetransmissionsReceived)
	t.Logf("tc:\n%s", tcStats(t))

	// Bob keeps the top layer.
	if cleanVideo.Width != topLayerWidth || cleanRate < 1_000_000 {
		t.Errorf("bob receives %dx%d at %.0f kbit/s; want the top layer (%d wide, 1.2 Mbit/s)",
			cleanVideo.Width, cleanVideo.Height, cleanRate/1000, topLayerWidth)
	}
	if minFrames := uint64(10 * window.Seconds()); cleanVideo.FramesDecoded < minFrames {
		t.Errorf("bob decoded %d frames in %v, want at least %d (10 fps)", cleanVideo.FramesDecoded, window, minFrames)
	}
	// Carol settled on a lower layer that fits her link, with room left
	// for her audio...
	if w := cappedTrace.widest(windowStart); cappedVideo.Width == 0 || w >= topLayerWidth {
		t.Errorf("carol receives %dx%d, keyframes up to %d wide since settling; want a layer below the top one",
			cappedVideo.Width, cappedVideo.Height, w)
	}
	if cappedRate >= capKbit*1000 {
		t.Errorf("carol receives %.0f kbit/s of video through a %d kbit/s link; want less", cappedRate/1000, capKbit)
	}
	if l := cappedAudio.LossFraction(); l > 0.02 {
		t.Errorf("carol lost %.1f %% of audio on the layer she settled on; want under 2 %%", 100*l)
	}
	// ...and keeps decoding it: about as many frames as bob (every layer
	// runs at 30 fps), and no freeze longer than a second beyond what bob
	// sees (stalls of this machine, which both see).
	if want := cleanVideo.FramesDecoded * 8 / 10; cappedVideo.FramesDecoded < want {
		t.Errorf("carol decoded %d frames, bob %d; want at least %d (80 %%)", cappedVideo.FramesDecoded, cleanVideo.FramesDecoded, want)
	}
	if limit := cleanVideo.LongestFreeze + time.Second; cappedVideo.LongestFreeze > limit {
		t.Errorf("carol's video froze for %v (bob's for %v); want at most %v", cappedVideo.LongestFreeze, cleanVideo.LongestFreeze, limit)
	}

	for _, c := range []*client.Client{alice, bob, carol} {
		_ = c.Close()
	}
	ts.stop(t)
	leaks()
}

// topLayerWidth is the width of the client's top simulcast layer.
const topLayerWidth = 1280

// settleTime is how long a subscriber stays on one layer before the test
// takes the SFU's choice as settled.
const settleTime = 2 * time.Second

// joinWithMedia signs user in, joins room and starts media with o.
func joinWithMedia(t *testing.T, ctx context.Context, ts *testServer, user, room string, o client.MediaOptions) (*client.Client, *client.Media) {
	t.Helper()
	c := ts.dial(t, user, "impaired")
	id, err := c.Join(ctx, room)
	if err != nil {
		t.Fatalf("%s joining %s: %v", user, room, err)
	}
	m, err := c.StartMedia(ctx, id, o)
	if err != nil {
		t.Fatalf("%s starting media: %v", user, err)
	}
	return c, m
}

// remoteQuality returns the quality of from's video and audio tracks at m.
func remoteQuality(t *testing.T, m *client.Media, from string) (video, audio client.TrackQuality) {
	t.Helper()
	var seen [2]bool
	for _, q := range m.Quality() {
		if q.Track.StreamID != from {
			continue
		}
		switch q.Track.Kind {
		case "video":
			video, seen[0] = q, true
		case "audio":
			audio, seen[1] = q, true
		}
	}
	if !seen[0] || !seen[1] {
		t.Fatalf("no video or audio track from %s", from)
	}
	return video, audio
}

// playing reports whether m decodes from's video and receives its audio.
func playing(m *client.Media, from string) bool {
	var video, audio bool
	for _, q := range m.Quality() {
		if q.Track.StreamID == from {
			video = video || q.FramesDecoded > 0
			audio = audio || (q.Track.Kind == "audio" && q.PacketsReceived > 0)
		}
	}
	return video && audio
}

func videoBytes(m *client.Media) uint64 { return m.Stats().Video.BytesReceived }

func logQuality(t *testing.T, who string, video, audio client.TrackQuality) {
	t.Helper()
	t.Logf("%s video: %d frames decoded, %d dropped, %d undecodable, %d keyframes, longest freeze %v; packets %d of %d (%.2f %% lost), %d late",
		who, video.FramesDecoded, video.FramesDropped, video.FramesUndecodable, video.KeyframesDecoded,
		video.LongestFreeze.Round(time.Millisecond), video.PacketsReceived, video.PacketsExpected, 100*video.LossFraction(), video.PacketsLate)
	t.Logf("%s audio: packets %d of %d (%.1f %% lost), longest gap %v of media, %v between arrivals",
		who, audio.PacketsReceived, audio.PacketsExpected, 100*audio.LossFraction(),
		audio.LongestMediaGap.Round(time.Millisecond), audio.LongestGap.Round(time.Millisecond))
}
