package sfu

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// discardWriter is a TrackLocalWriter that counts and drops packets.
type discardWriter struct{ n int }

func (w *discardWriter) WriteRTP(*rtp.Header, []byte) (int, error) { w.n++; return 0, nil }
func (w *discardWriter) Write(b []byte) (int, error)               { w.n++; return len(b), nil }

// fakeBinding is a TrackLocalContext for binding a downTrack without a
// PeerConnection.
type fakeBinding struct {
	id string
	w  *discardWriter
}

func (f fakeBinding) CodecParameters() []webrtc.RTPCodecParameters {
	_, video := codecList()
	return video
}
func (f fakeBinding) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (f fakeBinding) SSRC() webrtc.SSRC                                      { return 1234 }
func (f fakeBinding) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (f fakeBinding) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (f fakeBinding) WriteStream() webrtc.TrackLocalWriter                   { return f.w }
func (f fakeBinding) ID() string                                             { return f.id }
func (f fakeBinding) RTCPReader() interceptor.RTCPReader                     { return nil }

// newBoundFanout builds a video forwardTrack with n bound subscribers.
func newBoundFanout(tb testing.TB, n int) (*forwardTrack, []*Participant, []*discardWriter) {
	tb.Helper()
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	pub := &Participant{id: "pub", streamID: "user-pub"}
	ft := &forwardTrack{publisher: pub, kind: webrtc.RTPCodecTypeVideo, codec: codec, id: "video"}
	ft.downs.Store(&[]*downTrack{})
	var subs []*Participant
	var writers []*discardWriter
	for i := range n {
		sub := &Participant{id: "sub"}
		local, err := webrtc.NewTrackLocalStaticRTP(codec, ft.id, pub.streamID)
		if err != nil {
			tb.Fatal(err)
		}
		d := &downTrack{TrackLocalStaticRTP: local, ft: ft, sub: sub}
		w := &discardWriter{}
		if _, err := d.Bind(fakeBinding{id: string(rune('a' + i)), w: w}); err != nil {
			tb.Fatal(err)
		}
		next := append(*ft.downs.Load(), d)
		ft.downs.Store(&next)
		subs = append(subs, sub)
		writers = append(writers, w)
	}
	return ft, subs, writers
}

// TestForwardFanout checks that one packet reaches every bound subscriber,
// is counted per subscriber, and that an unbound copy gets nothing.
func TestForwardFanout(t *testing.T) {
	ft, subs, writers := newBoundFanout(t, 3)
	unbound := &Participant{id: "late"}
	if _, err := ft.addDown(unbound); err != nil {
		t.Fatal(err)
	}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 7, SSRC: 99, Extension: true,
		Extensions: []rtp.Extension{{}}}, Payload: []byte{0, 1, 2}}
	ft.forward(pkt, 15)
	for i, w := range writers {
		if w.n != 1 {
			t.Errorf("subscriber %d got %d packets, want 1", i, w.n)
		}
		if st := subs[i].Stats().Video; st.PacketsForwarded != 1 || st.BytesForwarded != 15 {
			t.Errorf("subscriber %d stats %+v", i, st)
		}
	}
	if st := unbound.Stats().Video; st.PacketsForwarded != 0 {
		t.Errorf("unbound subscriber stats %+v", st)
	}
	if pkt.Header.Extension || len(pkt.Header.Extensions) != 0 {
		t.Error("publisher header extensions were forwarded")
	}
	removed := ft.removeDowns(func(d *downTrack) bool { return d.sub == unbound })
	if len(removed) != 1 || len(*ft.downs.Load()) != 3 {
		t.Errorf("removeDowns removed %d, left %d", len(removed), len(*ft.downs.Load()))
	}
}

// BenchmarkForward measures the per-packet fan-out to 8 subscribers.
func BenchmarkForward(b *testing.B) {
	ft, _, _ := newBoundFanout(b, 8)
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 99, Timestamp: 1}, Payload: make([]byte, 1100)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		pkt.SequenceNumber = uint16(i)
		ft.forward(pkt, 1112)
	}
}
