package client

import "github.com/tandemcall/tandem/internal/rtpcodec"

// Synthetic media. The SFU only forwards packets, so frames need to look
// right to it (and to keyframe detection), not to a decoder. Every frame
// fits in one RTP packet.

// opusFrame is a 20 ms Opus packet: TOC 0xf8 (CELT fullband, 20 ms, mono,
// one frame) and two bytes of payload.
var opusFrame = []byte{0xf8, 0xff, 0xfe}

// Frame sizes chosen to stay under one packet's MTU.
const (
	vp8KeyframeSize = 800
	vp8DeltaSize    = 200
)

// vp8Keyframe returns a VP8 keyframe: a frame tag with the key bit clear
// (first byte & 0x01 == 0), the start code 9d 01 2a and a 320x240 size,
// then filler.
func vp8Keyframe() []byte {
	b := make([]byte, vp8KeyframeSize)
	copy(b, []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00})
	for i := 10; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

// vp8Delta returns a VP8 interframe: first byte & 0x01 == 1.
func vp8Delta() []byte {
	b := make([]byte, vp8DeltaSize)
	copy(b, []byte{0x11, 0x02, 0x00})
	for i := 3; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}

// isVP8Keyframe reports whether a VP8 RTP payload starts a keyframe: the
// descriptor marks the start of partition 0 and the frame tag's key bit is
// clear.
func isVP8Keyframe(payload []byte) bool {
	v := rtpcodec.ParseVP8(payload)
	return v.Start && v.Key
}
