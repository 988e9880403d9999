package sfu

import (
	"bytes"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/tandemcall/tandem/internal/testkit"
)

// TestReceivePaths: whether a publisher's media is taken at the socket
// (direct input, the default) or through pion's receive path, subscribers
// get it, and the publisher gets receiver reports, transport-wide CC
// feedback and NACKs for the packets it never delivered.
func TestReceivePaths(t *testing.T) {
	t.Run("direct", func(t *testing.T) { testReceivePath(t, false) })
	t.Run("pion", func(t *testing.T) { testReceivePath(t, true) })
}

func testReceivePath(t *testing.T, pionInput bool) {
	s, err := New(Config{UDPListen: "127.0.0.1:0", PionInput: pionInput}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	room := s.Room("direct")
	a := joinClient(t, room, "A", func(c *client) {
		c.pubRegistry = func(m *webrtc.MediaEngine, ir *interceptor.Registry) error {
			return webrtc.ConfigureTWCCHeaderExtensionSender(m, ir)
		}
	})
	b := joinClient(t, room, "B")

	var track *webrtc.TrackLocalStaticRTP
	track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "v", "client-stream")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := a.pub.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reports, feedback int
	var nacked []uint16
	a.wg.Go(func() {
		for {
			pkts, _, err := tr.Sender().ReadRTCP()
			if err != nil {
				return
			}
			mu.Lock()
			for _, p := range pkts {
				switch p := p.(type) {
				case *rtcp.ReceiverReport:
					if len(p.Reports) > 0 {
						reports++
					}
				case *rtcp.TransportLayerCC:
					feedback++
				case *rtcp.TransportLayerNack:
					for _, pair := range p.Nacks {
						nacked = append(nacked, pair.PacketList()...)
					}
				}
			}
			mu.Unlock()
		}
	})
	a.negotiatePub()

	// Single-packet VP8 keyframes, 30 a second; 1010 and 1011 are never
	// sent.
	payload := []byte{0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, 0xaa, 0xbb}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(1000); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if seq == 1010 || seq == 1011 {
				continue
			}
			_ = track.WriteRTP(&rtp.Packet{
				Header:  rtp.Header{Version: 2, Marker: true, SequenceNumber: seq, Timestamp: uint32(seq) * 3000},
				Payload: payload,
			})
		}
	}()
	defer func() { close(stop); <-done }()

	testkit.Eventually(t, 10*time.Second, "B to receive A's video", func() bool {
		v := b.trackFrom("user-A", webrtc.RTPCodecTypeVideo)
		return v != nil && v.packets.Load() > 40
	})
	want := int32(modeDirect)
	if pionInput {
		want = modePion
	}
	if m := a.p.pubMode.Load(); m != want || (a.p.in.Load() != nil) == pionInput {
		t.Fatalf("A's pub PC receive path: mode %d, direct input %v; want mode %d", m, a.p.in.Load() != nil, want)
	}
	testkit.Eventually(t, 5*time.Second, "receiver reports, TWCC feedback and NACKs for 1010 and 1011", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return reports > 0 && feedback > 0 && slices.Contains(nacked, 1010) && slices.Contains(nacked, 1011)
	})
	mu.Lock()
	defer mu.Unlock()
	for _, n := range nacked {
		if n != 1010 && n != 1011 {
			t.Errorf("NACK for %d, which was sent", n)
		}
	}
}

// FuzzDirectInput feeds direct input what a publisher, or anyone sending
// from its address, could: any bytes as they arrive, and any RTP packet
// encrypted with the publisher's keys, forwarded to two subscribers.
// Nothing may panic; what does not decrypt goes on to pion; what does is
// taken and counted. Packets whose header extension claims cryptex
// (RFC 9335) are refused by SRTP, which has it off.
func FuzzDirectInput(f *testing.F) {
	f.Add([]byte{0x80, 0x60, 0x03, 0xe8, 0, 0, 0x0b, 0xb8, 0, 0, 0, 100, 0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00})
	f.Add([]byte{0x90, 0x60, 0x00, 0x01, 0, 0, 0, 1, 0, 0, 0, 100, 0xbe, 0xde, 0x00, 0x01, 0x10, 0xff, 0, 0, 0x00})
	f.Add([]byte{0xa0, 0x60, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 100, 0x00, 0x00, 0x03})
	key, salt := bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{9}, 14)
	f.Fuzz(func(t *testing.T, data []byte) {
		ft, ls := newTestTrack(t, "")
		ls[0].rx.clock = 90000
		addBound(t, ft, 2)
		enc, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAes128CmHmacSha1_80)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAes128CmHmacSha1_80)
		if err != nil {
			t.Fatal(err)
		}
		in := &srtpIn{p: ft.publisher, ctx: dec, buf: make([]byte, 0, 2048)}
		in.layers.Store(&map[uint32]*layer{ls[0].ssrc: ls[0]})
		fl := &filter{s: &SFU{}}

		// As it arrived: unencrypted bytes fail authentication.
		if len(data) >= 12 && in.consume(data, fl) {
			t.Fatalf("unauthenticated bytes taken: % x", data)
		}

		// Encrypted by the publisher, for the layer's SSRC.
		var pkt rtp.Packet
		if pkt.Unmarshal(data) != nil {
			return
		}
		if pkt.Extension && (pkt.ExtensionProfile == 0xc0de || pkt.ExtensionProfile == 0xc2de) {
			// RFC 9335 cryptex profiles: without cryptex negotiated, SRTP
			// refuses to decrypt them, here as on pion's path.
			return
		}
		pkt.SSRC = ls[0].ssrc
		plain, err := pkt.Marshal()
		if err != nil {
			return
		}
		srtpPkt, err := enc.EncryptRTP(nil, plain, nil)
		if err != nil {
			return
		}
		before := ft.publisher.stats.video.packetsReceived.Load()
		if !in.consume(srtpPkt, fl) {
			t.Fatalf("the publisher's packet went to pion: % x", plain)
		}
		fl.Flush()
		if ft.publisher.stats.video.packetsReceived.Load() != before+1 {
			t.Fatal("the packet was taken but not counted as received")
		}
	})
}
