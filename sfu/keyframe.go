package sfu

import (
	"strings"

	"github.com/tandemcall/tandem/internal/rtpcodec"
)

// keyframeInfo inspects the first bytes of a video RTP payload. It reports
// whether the packet starts a keyframe and, for VP8, the frame size the
// keyframe carries (0 when unknown). Malformed payloads report false.
func keyframeInfo(mime string, payload []byte) (key bool, width, height int) {
	switch {
	case strings.EqualFold(mime, "video/VP8"):
		v := rtpcodec.ParseVP8(payload)
		return v.Start && v.Key, v.Width, v.Height
	case strings.EqualFold(mime, "video/H264"):
		return rtpcodec.H264Keyframe(payload), 0, 0
	}
	return false, 0, 0
}
