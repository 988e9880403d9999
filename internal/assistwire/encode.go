package assistwire

import (
	"encoding/binary"
	"fmt"
)

// AppendMessage appends a whole message holding events — the version
// byte, then each event — to b and returns the extended slice. The
// server uses it to forward the events it kept, into a buffer it reuses.
//
// It refuses, leaving b as it was, what Decode would not return intact:
// an event of an unknown type (ErrUnknownType) or with a field out of
// range (ErrOutOfRange), more than MaxEvents events (ErrTooMany), or a
// message longer than MaxMessageLen (ErrTooLong; 128 StrokePoints are one
// byte too many). The error names the index of the offending event.
func AppendMessage(b []byte, events ...Event) ([]byte, error) {
	if len(events) > MaxEvents {
		return b, fmt.Errorf("%w: %d events, limit %d", ErrTooMany, len(events), MaxEvents)
	}
	n := 1
	for i := range events {
		if err := events[i].check(); err != nil {
			return b, fmt.Errorf("event %d: %w", i, err)
		}
		n += events[i].Type.size()
	}
	if n > MaxMessageLen {
		return b, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, n, MaxMessageLen)
	}
	b = append(b, Version)
	for i := range events {
		b = appendEvent(b, &events[i])
	}
	return b, nil
}

// appendEvent appends e, which check has accepted, to b.
func appendEvent(b []byte, e *Event) []byte {
	b = append(b, byte(e.Type))
	switch e.Type {
	case PointerMove:
		b = binary.BigEndian.AppendUint16(b, e.X)
		b = binary.BigEndian.AppendUint16(b, e.Y)
	case ButtonDown, ButtonUp:
		b = append(b, e.Button)
		b = binary.BigEndian.AppendUint16(b, e.X)
		b = binary.BigEndian.AppendUint16(b, e.Y)
	case Wheel:
		b = binary.BigEndian.AppendUint16(b, uint16(e.DX))
		b = binary.BigEndian.AppendUint16(b, uint16(e.DY))
	case KeyDown, KeyUp:
		b = binary.BigEndian.AppendUint32(b, e.Keysym)
	case StrokePoint:
		b = append(b, e.Stroke, e.Tool, e.Color)
		b = binary.BigEndian.AppendUint16(b, e.X)
		b = binary.BigEndian.AppendUint16(b, e.Y)
	case StrokeEnd:
		b = append(b, e.Stroke)
	}
	return b
}
