package turn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Framing errors for TURN over TCP and TLS (RFC 8656 §12.5: a stream
// carries STUN messages and ChannelData messages back to back, ChannelData
// padded to a multiple of four bytes).
var (
	ErrFrameInvalid  = errors.New("turn: stream data is neither STUN nor ChannelData")
	ErrFrameTooLarge = errors.New("turn: frame exceeds the size limit")
)

const (
	stunHeaderLen     = 20
	stunMagicCookie   = 0x2112A442
	channelHeaderLen  = 4
	channelNumberMin  = 0x4000
	channelNumberMax  = 0x7FFF
	inboundMTU        = 1600
	maxFrameLen       = inboundMTU - 1 // pion drops reads of inboundMTU bytes or more
	frameReaderBufLen = 2 * inboundMTU
)

// isChannelData reports whether b starts with a ChannelData channel number.
func isChannelData(b []byte) bool {
	return len(b) >= 1 && b[0] >= channelNumberMin>>8 && b[0] <= channelNumberMax>>8
}

// frameLen returns the length of the frame at the start of b, including
// ChannelData padding. It returns 0 and no error when b is too short to
// tell, and an error when b cannot start a valid frame or the frame would
// exceed maxFrameLen.
func frameLen(b []byte) (int, error) {
	switch {
	case len(b) == 0:
		return 0, nil
	case isChannelData(b):
		if len(b) < channelHeaderLen {
			return 0, nil
		}
		n := int(binary.BigEndian.Uint16(b[2:4]))
		n = channelHeaderLen + (n+3)&^3
		if n > maxFrameLen {
			return 0, fmt.Errorf("%w: ChannelData of %d bytes", ErrFrameTooLarge, n)
		}
		return n, nil
	case b[0]&0xC0 == 0: // STUN: the two top bits are zero
		if len(b) < 8 {
			return 0, nil
		}
		if binary.BigEndian.Uint32(b[4:8]) != stunMagicCookie {
			return 0, fmt.Errorf("%w: bad STUN magic cookie", ErrFrameInvalid)
		}
		body := int(binary.BigEndian.Uint16(b[2:4]))
		if body%4 != 0 {
			return 0, fmt.Errorf("%w: STUN length %d is not a multiple of 4", ErrFrameInvalid, body)
		}
		n := stunHeaderLen + body
		if n > maxFrameLen {
			return 0, fmt.Errorf("%w: STUN message of %d bytes", ErrFrameTooLarge, n)
		}
		return n, nil
	default:
		return 0, fmt.Errorf("%w: first byte %#x", ErrFrameInvalid, b[0])
	}
}

// frameReader splits a byte stream into STUN and ChannelData frames using
// a fixed buffer, so a client can never make it hold more than
// frameReaderBufLen bytes.
type frameReader struct {
	r          io.Reader
	buf        [frameReaderBufLen]byte
	start, end int
	err        error // sticky read error, returned once buffered frames are used up
}

// next returns the next complete frame. The slice is valid until the next
// call. A framing error is permanent: the stream cannot be resynchronised.
func (f *frameReader) next() ([]byte, error) {
	for {
		n, err := frameLen(f.buf[f.start:f.end])
		if err != nil {
			f.err = err
			return nil, err
		}
		if n > 0 && f.end-f.start >= n {
			frame := f.buf[f.start : f.start+n : f.start+n]
			f.start += n
			return frame, nil
		}
		if f.err != nil {
			return nil, f.err
		}
		if f.start == f.end {
			f.start, f.end = 0, 0
		} else if len(f.buf)-f.start < maxFrameLen {
			f.end = copy(f.buf[:], f.buf[f.start:f.end])
			f.start = 0
		}
		m, err := f.r.Read(f.buf[f.end:])
		f.end += m
		if err != nil {
			f.err = err
		}
	}
}
