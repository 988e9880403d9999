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

// VP8Numbers locates the picture numbering a VP8 payload descriptor
// carries (RFC 7741 §4.2): the picture id (7 or 15 bits), TL0PICIDX and
// KEYIDX. A forwarder that switches between streams rewrites them so that
// a receiver sees one continuous numbering. An offset of 0 means the field
// is absent (a field never starts at byte 0).
type VP8Numbers struct {
	PictureID   uint16
	TL0PicIdx   uint8
	KeyIdx      uint8
	PictureAt   uint8 // offset of the picture id
	TL0At       uint8 // offset of TL0PICIDX
	KeyAt       uint8 // offset of the TID/Y/KEYIDX byte, when K is set
	LongPicture bool  // the picture id has 15 bits, not 7
}

// ParseVP8Numbers reads the numbering of a VP8 payload descriptor. It
// reports false for a payload too short for the descriptor it announces.
func ParseVP8Numbers(p []byte) (VP8Numbers, bool) {
	var n VP8Numbers
	if len(p) < 1 || p[0]&0x80 == 0 {
		return n, len(p) >= 1 // no extension byte: nothing to number
	}
	if len(p) < 2 {
		return n, false
	}
	ext := p[1]
	i := 2
	if ext&0x80 != 0 { // I
		if len(p) <= i {
			return n, false
		}
		n.PictureAt = uint8(i)
		if p[i]&0x80 != 0 {
			if len(p) <= i+1 {
				return VP8Numbers{}, false
			}
			n.LongPicture = true
			n.PictureID = binary.BigEndian.Uint16(p[i:]) & 0x7fff
			i += 2
		} else {
			n.PictureID = uint16(p[i])
			i++
		}
	}
	if ext&0x40 != 0 { // L
		if len(p) <= i {
			return VP8Numbers{}, false
		}
		n.TL0At, n.TL0PicIdx = uint8(i), p[i]
		i++
	}
	if ext&0x30 != 0 { // T or K
		if len(p) <= i {
			return VP8Numbers{}, false
		}
		if ext&0x10 != 0 {
			n.KeyAt, n.KeyIdx = uint8(i), p[i]&0x1f
		}
	}
	return n, true
}

// Rewrite writes picture id, TL0PICIDX and KEYIDX into p, a copy of the
// payload n was parsed from, at the places n found: the picture id keeps
// its width (mod 2^7 or 2^15), KEYIDX its 5 bits.
func (n VP8Numbers) Rewrite(p []byte, picture uint16, tl0, keyIdx uint8) {
	if at := int(n.PictureAt); at != 0 {
		if n.LongPicture {
			binary.BigEndian.PutUint16(p[at:], 0x8000|picture&0x7fff)
		} else {
			p[at] = byte(picture & 0x7f)
		}
	}
	if at := int(n.TL0At); at != 0 {
		p[at] = tl0
	}
	if at := int(n.KeyAt); at != 0 {
		p[at] = p[at]&0xe0 | keyIdx&0x1f
	}
}
