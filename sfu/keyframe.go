package sfu

import (
	"strings"

	"github.com/tandemcall/tandem/internal/rtpcodec"
)

// keyframeInfo inspects the first bytes of a video RTP payload. It reports
// whether the packet starts a keyframe and, for VP8, the frame size the
// keyframe carries (0 when unknown). Malformed payloads report false.
func keyframeInfo(mime string, payload []byte) (key bool, width, height int) {
	return keyframeReader(mime)(payload)
}

// keyframeReader returns the keyframe test for a codec, chosen once per
// track rather than per packet.
func keyframeReader(mime string) func(payload []byte) (key bool, width, height int) {
	switch {
	case strings.EqualFold(mime, "video/VP8"):
		return func(p []byte) (bool, int, int) {
			v := rtpcodec.ParseVP8(p)
			return v.Start && v.Key, v.Width, v.Height
		}
	case strings.EqualFold(mime, "video/H264"):
		return func(p []byte) (bool, int, int) { return rtpcodec.H264Keyframe(p), 0, 0 }
	}
	return func([]byte) (bool, int, int) { return false, 0, 0 }
}
