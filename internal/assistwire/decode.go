package assistwire

import (
	"encoding/binary"
	"fmt"
)

// Drops counts the events Decode left out of a message it accepted.
type Drops struct {
	// Malformed is 1 when decoding stopped early, at an unknown type byte
	// or at an event cut short by the end of the message; the bytes from
	// there on are dropped. Types are not skippable, so nothing after an
	// unknown one can be read.
	Malformed int
	// OutOfRange counts events with a field outside its range. Decoding
	// goes on with the next event.
	OutOfRange int
	// TooMany counts events after the first MaxEvents.
	TooMany int
}

// Total is the number of drops of all kinds.
func (d Drops) Total() int { return d.Malformed + d.OutOfRange + d.TooMany }

// Decode reads a message and returns the events it keeps, in order, with
// counts of those it dropped. err is non-nil, wrapping ErrTooLong or
// ErrVersion, only when the whole message is refused; events and drops
// are then empty.
//
// The events are written over dst's storage, from dst[0]: with
// cap(dst) >= MaxEvents, Decode allocates nothing, so a connection can
// decode every message into one slice. The result is only valid until
// the next Decode into the same dst.
//
// Only the first MaxEvents events, kept or out of range, count; the rest
// are dropped as TooMany, so a message costs at most MaxEvents range
// checks and never yields more than MaxEvents events.
func Decode(msg []byte, dst []Event) (events []Event, drops Drops, err error) {
	events = dst[:0]
	switch {
	case len(msg) > MaxMessageLen:
		return events, Drops{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, len(msg), MaxMessageLen)
	case len(msg) == 0:
		return events, Drops{}, fmt.Errorf("%w: empty message, want version byte %d", ErrVersion, Version)
	case msg[0] != Version:
		return events, Drops{}, fmt.Errorf("%w: version byte %d, want %d", ErrVersion, msg[0], Version)
	}
	seen := 0
	for p := msg[1:]; len(p) > 0; {
		n := Type(p[0]).size()
		if n == 0 || n > len(p) {
			drops.Malformed = 1
			break
		}
		b := p[:n]
		p = p[n:]
		if seen == MaxEvents {
			drops.TooMany++
			continue
		}
		seen++
		e := parse(b)
		if !e.inRange() {
			drops.OutOfRange++
			continue
		}
		events = append(events, e)
	}
	return events, drops, nil
}

// parse reads one event from b, which holds exactly its type's size.
func parse(b []byte) Event {
	e := Event{Type: Type(b[0])}
	p := b[1:]
	switch e.Type {
	case PointerMove:
		e.X, e.Y = be16(p[0:]), be16(p[2:])
	case ButtonDown, ButtonUp:
		e.Button = p[0]
		e.X, e.Y = be16(p[1:]), be16(p[3:])
	case Wheel:
		e.DX, e.DY = int16(be16(p[0:])), int16(be16(p[2:]))
	case KeyDown, KeyUp:
		e.Keysym = binary.BigEndian.Uint32(p)
	case StrokePoint:
		e.Stroke, e.Tool, e.Color = p[0], p[1], p[2]
		e.X, e.Y = be16(p[3:]), be16(p[5:])
	case StrokeEnd:
		e.Stroke = p[0]
	}
	return e
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
