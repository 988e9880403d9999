// Package rtpcodec reads what Tandem needs from video RTP payloads: where
// a frame starts, whether it is a keyframe, and the size a VP8 keyframe
// carries. It parses untrusted bytes and never panics.
package rtpcodec

import "encoding/binary"

// VP8 is what the start of a VP8 RTP payload says.
type VP8 struct {
	Start bool // the packet starts a frame (S bit, partition 0)
	Key   bool // that frame is a keyframe
	// Width and Height are a keyframe's size (RFC 6386 §9.1); 0 when
	// unknown.
	Width, Height int
}

// ParseVP8 parses the VP8 payload descriptor (RFC 7741 §4.2) and the start
// of the frame header. A malformed payload reads as no frame start.
func ParseVP8(p []byte) VP8 {
	if len(p) < 1 {
		return VP8{}
	}
	desc := p[0]
	start := desc&0x10 != 0 && desc&0x07 == 0
	i := 1
	if desc&0x80 != 0 { // X: extension byte follows
		if len(p) < 2 {
			return VP8{}
		}
		ext := p[1]
		i = 2
		if ext&0x80 != 0 { // I: picture id, 7 or 15 bits
			if len(p) <= i {
				return VP8{}
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
	if !start || len(p) <= i {
		return VP8{Start: start && len(p) > i}
	}
	v := VP8{Start: true, Key: p[i]&0x01 == 0}
	// A keyframe: 3-byte frame tag, start code 9d 01 2a, then 14-bit
	// width and height, little-endian.
	if hdr := p[i:]; v.Key && len(hdr) >= 10 && hdr[3] == 0x9d && hdr[4] == 0x01 && hdr[5] == 0x2a {
		v.Width = int(binary.LittleEndian.Uint16(hdr[6:]) & 0x3fff)
		v.Height = int(binary.LittleEndian.Uint16(hdr[8:]) & 0x3fff)
	}
	return v
}

// H264Keyframe reports whether an H.264 payload (RFC 6184) carries an IDR
// slice or an SPS at its start: a single NAL unit, a STAP-A or the first
// fragment of an FU-A.
func H264Keyframe(p []byte) bool {
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
