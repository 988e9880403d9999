package test

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// videoWatch records what one subscriber receives of a publisher's video:
// the frame width of each keyframe, sequence-number continuity, and bytes
// in the current measuring window.
type videoWatch struct {
	mu        sync.Mutex
	from      string
	widths    []int // of keyframes, in arrival order
	last      uint16
	started   bool
	jumps     int // consecutive packets whose numbers differ by more than one
	bytes     int
	packets   int
	windowBeg time.Time
}

func newVideoWatch(from string) *videoWatch { return &videoWatch{from: from, windowBeg: time.Now()} }

func (w *videoWatch) onRTP(tr client.RemoteTrack, p *rtp.Packet, _ time.Time) {
	if tr.Kind != "video" || tr.StreamID != w.from {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started && p.SequenceNumber != w.last+1 {
		w.jumps++
	}
	w.started, w.last = true, p.SequenceNumber
	w.bytes += len(p.Payload)
	w.packets++
	// A keyframe start from the load source: descriptor 0x10, frame tag
	// with the key bit clear, start code, then width.
	if b := p.Payload; len(b) >= 11 && b[0] == 0x10 && b[1]&1 == 0 && b[4] == 0x9d && b[5] == 0x01 && b[6] == 0x2a {
		w.widths = append(w.widths, int(b[7])|int(b[8]&0x3f)<<8)
	}
}

// rate returns the bit/s received since the last call and starts a new
// window.
func (w *videoWatch) rate() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := time.Since(w.windowBeg).Seconds()
	r := float64(w.bytes*8) / d
	w.bytes, w.windowBeg = 0, time.Now()
	return r
}

// lastWidth returns the width of the last keyframe received (0 = none).
func (w *videoWatch) lastWidth() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.widths) == 0 {
		return 0
	}
	return w.widths[len(w.widths)-1]
}

func (w *videoWatch) counts() (packets, jumps int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.packets, w.jumps
}

// TestSimulcastLayersFollowTiles publishes three simulcast layers from a
// pion client and checks the SFU serves each subscriber the layer its view
// asks for: a subscriber that says nothing gets the top layer, one with a
// small tile the lowest, one with a hidden tile nothing; the middle layer,
// which nobody receives, is paused at the publisher; when the small tile
// grows, the publisher resumes the middle layer and the subscriber moves
// to it at a keyframe without a gap in its sequence numbers.
func TestSimulcastLayersFollowTiles(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testCtx(t, 90*time.Second)
	users := []string{"pub", "big", "small", "hidden"}
	clients := make([]*client.Client, len(users))
	watches := map[string]*videoWatch{}
	medias := map[string]*client.Media{}
	var roomID string
	for i, u := range users {
		clients[i] = ts.dial(t, u, "laptop")
		ack, err := clients[i].Request(ctx, protocol.TypeJoin, &protocol.Join{Room: "simulcast"})
		if err != nil {
			t.Fatal(err)
		}
		roomID = ack.CallID
		o := client.MediaOptions{ReceiveOnly: true}
		if u == "pub" {
			o = client.MediaOptions{Video: true, Simulcast: true, VideoBitrate: 1_500_000}
		} else {
			w := newVideoWatch("pub")
			watches[u] = w
			o.OnRTP = w.onRTP
		}
		if medias[u], err = clients[i].StartMedia(ctx, roomID, o); err != nil {
			t.Fatal(err)
		}
	}
	tile := func(w, h int) []protocol.Tile {
		return []protocol.Tile{{User: "pub", Track: "video", Width: w, Height: h}}
	}
	if err := medias["small"].SetView(ctx, tile(320, 180)); err != nil {
		t.Fatal(err)
	}
	if err := medias["hidden"].SetView(ctx, tile(0, 0)); err != nil {
		t.Fatal(err)
	}

	testkit.Eventually(t, 20*time.Second, "big on the 1280-wide layer and small on the 320-wide one", func() bool {
		return watches["big"].lastWidth() == 1280 && watches["small"].lastWidth() == 320
	})
	testkit.Eventually(t, 15*time.Second, "the middle layer, which nobody receives, paused at the publisher", func() bool {
		return !medias["pub"].LayerActive("h")
	})
	if !medias["pub"].LayerActive("q") || !medias["pub"].LayerActive("f") {
		t.Errorf("watched layers paused: q %v, f %v", medias["pub"].LayerActive("q"), medias["pub"].LayerActive("f"))
	}
	watches["big"].rate()
	watches["small"].rate()
	hiddenBefore, _ := watches["hidden"].counts()
	time.Sleep(2 * time.Second)
	big, small := watches["big"].rate(), watches["small"].rate()
	t.Logf("received: big %.0f kbit/s, small %.0f kbit/s", big/1000, small/1000)
	// The layers are told apart by the sizes in their keyframes; the rates
	// only confirm it (a starved machine may slow the top layer down).
	if w := watches["big"].lastWidth(); w != 1280 || big < 500_000 {
		t.Errorf("big receives the %d-wide layer at %.0f bit/s, want the 1280-wide one at ~1.5 Mbit/s", w, big)
	}
	if w := watches["small"].lastWidth(); w != 320 || small > 300_000 || small < 50_000 {
		t.Errorf("small receives the %d-wide layer at %.0f bit/s, want the 320-wide one at ~150 kbit/s", w, small)
	}
	if n, _ := watches["hidden"].counts(); n != hiddenBefore {
		t.Errorf("the hidden tile received %d video packets", n-hiddenBefore)
	}

	// The small tile grows: the middle layer comes back and small moves
	// to it at a keyframe, its sequence numbers continuing.
	if err := medias["small"].SetView(ctx, tile(640, 360)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "small on the 640-wide layer", func() bool {
		return watches["small"].lastWidth() == 640
	})
	if !medias["pub"].LayerActive("h") {
		t.Error("the middle layer is still paused at the publisher")
	}
	for _, u := range []string{"big", "small"} {
		packets, jumps := watches[u].counts()
		if packets == 0 || jumps != 0 {
			t.Errorf("%s: %d packets, %d sequence jumps; layer switches must not show in the numbers", u, packets, jumps)
		}
	}
}
