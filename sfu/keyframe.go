package sfu

import "strings"

// keyframeInfo inspects the first bytes of a video RTP payload. It reports
// whether the packet starts a keyframe and, for VP8, the frame size the
// keyframe carries (0 when unknown). Malformed payloads report false.
func keyframeInfo(mime string, payload []byte) (key bool, width, height int) {
	switch {
	case strings.EqualFold(mime, "video/VP8"):
		return vp8Keyframe(payload)
	case strings.EqualFold(mime, "video/H264"):
		return h264Keyframe(payload), 0, 0
	}
	return false, 0, 0
}

// vp8Keyframe parses the VP8 payload descriptor (RFC 7741 §4.2) and the
// start of the VP8 frame header (RFC 6386 §9.1).
func vp8Keyframe(p []byte) (key bool, width, height int) {
	if len(p) < 1 {
		return false, 0, 0
	}
	x, s, pid := p[0]&0x80 != 0, p[0]&0x10 != 0, p[0]&0x07
	if !s || pid != 0 {
		return false, 0, 0 // not the first partition's start
	}
	i := 1
	if x {
		if len(p) < 2 {
			return false, 0, 0
		}
		ext := p[1]
		i = 2
		if ext&0x80 != 0 { // I: picture id
			if len(p) <= i {
				return false, 0, 0
			}
			if p[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // T or K: TID/KEYIDX byte
			i++
		}
	}
	if len(p) < i+3 || p[i]&0x01 != 0 {
		return false, 0, 0 // inter frame (P bit set)
	}
	// A keyframe: 3-byte frame tag, start code 9d 01 2a, then 14-bit
	// width and height.
	if len(p) >= i+10 && p[i+3] == 0x9d && p[i+4] == 0x01 && p[i+5] == 0x2a {
		width = int(p[i+6]) | int(p[i+7]&0x3f)<<8
		height = int(p[i+8]) | int(p[i+9]&0x3f)<<8
	}
	return true, width, height
}

// h264Keyframe reports whether an H.264 payload (RFC 6184) carries an IDR
// slice or an SPS at its start: a single NAL unit, a STAP-A or the first
// fragment of an FU-A.
func h264Keyframe(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	isKey := func(t byte) bool { return t == 5 || t == 7 }
	switch t := p[0] & 0x1f; {
	case t >= 1 && t <= 23:
		return isKey(t)
	case t == 24: // STAP-A: 2-byte sizes before each NAL unit
		for i := 1; i+2 < len(p); {
			n := int(p[i])<<8 | int(p[i+1])
			if n == 0 || i+2+n > len(p) {
				return false
			}
			if isKey(p[i+2] & 0x1f) {
				return true
			}
			i += 2 + n
		}
	case t == 28: // FU-A: start bit and the fragmented NAL type
		return p[1]&0x80 != 0 && isKey(p[1]&0x1f)
	}
	return false
}
