package sfu

import (
	"fmt"

	"github.com/pion/interceptor"
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

// newMediaEngine builds the media engine and interceptor registry for one
// PeerConnection: Tandem's codecs plus pion's default interceptors (NACK
// generator and responder, RTCP reports, stats, TWCC feedback).
func newMediaEngine(lf slogFactory) (*webrtc.MediaEngine, *interceptor.Registry, error) {
	m := &webrtc.MediaEngine{}
	audio, video := codecList()
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
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptorsWithOptions(m, ir,
		webrtc.WithInterceptorLoggerFactory(lf)); err != nil {
		return nil, nil, fmt.Errorf("register interceptors: %w", err)
	}
	return m, ir, nil
}
