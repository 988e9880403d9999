package sfu

import (
	"fmt"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// videoFeedback returns the RTCP feedback offered for every video codec.
func videoFeedback() []webrtc.RTCPFeedback {
	return []webrtc.RTCPFeedback{
		{Type: webrtc.TypeRTCPFBNACK},
		{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
		{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
		{Type: webrtc.TypeRTCPFBGoogREMB},
		{Type: webrtc.TypeRTCPFBTransportCC},
	}
}

// codecList returns the codecs Tandem negotiates: Opus for audio, VP8 and
// H.264 (constrained baseline, baseline and high, packetization-mode 1) for
// video. Every call returns fresh slices.
func codecList() (audio, video []webrtc.RTPCodecParameters) {
	fb := videoFeedback
	audio = []webrtc.RTPCodecParameters{{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine:  "minptime=10;useinbandfec=1",
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}},
		},
		PayloadType: 111,
	}}
	h264 := func(profile string, pt webrtc.PayloadType) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profile,
				RTCPFeedback: fb(),
			},
			PayloadType: pt,
		}
	}
	video = []webrtc.RTPCodecParameters{
		{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb(),
			},
			PayloadType: 96,
		},
		h264("42e01f", 102),
		h264("42001f", 104),
		h264("640c1f", 106),
	}
	return audio, video
}

// subscriberFeedback is the RTCP feedback offered on the sub PC, where the
// SFU sends: NACK (answered from the SFU's cache), keyframe requests, and
// REMB (the receiver's own estimate). Transport-wide CC is not offered on
// sub: it would stamp a header extension on every forwarded packet, and
// browsers send REMB instead when it is absent.
func subscriberFeedback(kind webrtc.RTPCodecType) []webrtc.RTCPFeedback {
	if kind == webrtc.RTPCodecTypeAudio {
		return nil
	}
	return []webrtc.RTCPFeedback{
		{Type: webrtc.TypeRTCPFBNACK},
		{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
		{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
		{Type: webrtc.TypeRTCPFBGoogREMB},
	}
}

// Peer connection roles: a leg's pub PC receives, its sub PC sends.
const (
	rolePub = iota
	roleSub
)

// newMediaEngine builds the media engine and interceptor registry for one
// PeerConnection.
//
// pub: Tandem's codecs, simulcast header extensions (mid, rid, repaired
// rid), the audio level for active speaker, and the receiving half of
// pion's default interceptors (NACK generator, receiver reports, TWCC
// feedback for the publisher's congestion control), each started only when
// the PC receives its first stream. The sending half (NACK responder,
// sender reports) and pion's statistics have nothing to do on a PC that
// only receives, so they are left out.
//
// sub: the same codecs with RTX for video, and no interceptors at all: the
// SFU's forwarding path answers NACKs from one cache per published layer,
// sends its own sender reports from its ticker and reads receiver reports
// and REMB itself, so nothing runs per forwarded packet but SRTP and the
// socket write.
func newMediaEngine(lf slogFactory, role int, mode *atomic.Int32) (*webrtc.MediaEngine, *interceptor.Registry, error) {
	m := &webrtc.MediaEngine{}
	audio, video := codecList()
	ir := &interceptor.Registry{}
	if role == roleSub {
		for i := range audio {
			audio[i].RTCPFeedback = subscriberFeedback(webrtc.RTPCodecTypeAudio)
		}
		var withRTX []webrtc.RTPCodecParameters
		for _, c := range video {
			c.RTCPFeedback = subscriberFeedback(webrtc.RTPCodecTypeVideo)
			withRTX = append(withRTX, c, webrtc.RTPCodecParameters{
				RTPCodecCapability: webrtc.RTPCodecCapability{
					MimeType: webrtc.MimeTypeRTX, ClockRate: 90000,
					SDPFmtpLine: fmt.Sprintf("apt=%d", c.PayloadType),
				},
				PayloadType: c.PayloadType + 1,
			})
		}
		video = withRTX
	}
	for _, c := range audio {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, nil, fmt.Errorf("register %s: %w", c.MimeType, err)
		}
	}
	for _, c := range video {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, nil, fmt.Errorf("register %s: %w", c.MimeType, err)
		}
	}
	if role == roleSub {
		return m, ir, nil
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: audioLevelURI},
		webrtc.RTPCodecTypeAudio); err != nil {
		return nil, nil, fmt.Errorf("register audio level: %w", err)
	}
	if err := registerPubInterceptors(m, ir, lf, mode); err != nil {
		return nil, nil, err
	}
	return m, ir, nil
}

// registerPubInterceptors registers what a receiving PC needs: the
// simulcast header extensions, transport-wide CC, and lazily started NACK
// generator, receiver reports and TWCC feedback.
func registerPubInterceptors(m *webrtc.MediaEngine, ir *interceptor.Registry, lf slogFactory, mode *atomic.Int32) error {
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return fmt.Errorf("register simulcast extensions: %w", err)
	}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, kind); err != nil {
			return fmt.Errorf("register transport-cc: %w", err)
		}
	}
	gen, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(lf))
	if err != nil {
		return fmt.Errorf("nack generator: %w", err)
	}
	rr, err := report.NewReceiverInterceptor(report.WithReceiverLoggerFactory(lf))
	if err != nil {
		return fmt.Errorf("receiver reports: %w", err)
	}
	tw, err := twcc.NewSenderInterceptor(twcc.WithLoggerFactory(lf))
	if err != nil {
		return fmt.Errorf("twcc feedback: %w", err)
	}
	if mode == nil {
		mode = new(atomic.Int32)
	}
	ir.Add(lazyFactory{gen, mode})
	ir.Add(lazyFactory{rr, mode})
	ir.Add(lazyFactory{tw, mode})
	return nil
}
