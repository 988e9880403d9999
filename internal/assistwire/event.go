// Package assistwire is the binary format of remote-assistance events: the
// pointer, keyboard and annotation events a helper sends to the device it
// helps, on the WebRTC data channel labelled "assist".
//
// The messages pass through the Tandem server, which decodes each one,
// drops the events the helper has no grant for and forwards the rest. The
// decoder therefore reads untrusted bytes: it never panics, allocates
// nothing when given room for the events, and counts what it drops so that
// a misbehaving helper shows up in metrics rather than on the helped
// screen.
//
// A message is one version byte (Version) followed by events back to back,
// each a type byte and a fixed-size big-endian payload whose size the type
// alone determines. Fixed sizes let the decoder skip an out-of-range event
// and carry on with the next one.
package assistwire

import (
	"errors"
	"fmt"
)

// Version is the format version, the first byte of every message.
const Version = 1

// Limits of one message. A helper sends at most a few dozen events per
// animation frame; the limits bound what a hostile one can make the server
// and the helped device do with a single message.
const (
	MaxMessageLen = 1024 // bytes, version byte included
	MaxEvents     = 128  // events considered per message, kept or not
)

// Ranges of the event fields, beyond the ranges of their integer types.
const (
	// MaxWheelDelta bounds |DX| and |DY|: 20 notches of 120 units, the
	// Windows WHEEL_DELTA. More in one event is a runaway scroll.
	MaxWheelDelta = 20 * 120
	// MaxKeysym is the largest X11 keysym; the three top bits of a
	// keysym's 32 are always zero.
	MaxKeysym = 0x1FFFFFFF
	// Colors is the size of the annotation palette.
	Colors = 8
)

// Errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrTooLong: a message longer than MaxMessageLen.
	ErrTooLong = errors.New("assistwire: message too long")
	// ErrVersion: a message whose first byte is not Version, or that has
	// no first byte.
	ErrVersion = errors.New("assistwire: unsupported version")
	// ErrTooMany: more than MaxEvents events for one message.
	ErrTooMany = errors.New("assistwire: too many events")
	// ErrUnknownType: an event type version 1 does not define.
	ErrUnknownType = errors.New("assistwire: unknown event type")
	// ErrOutOfRange: an event field outside its range.
	ErrOutOfRange = errors.New("assistwire: event out of range")
)

// Type is an event type, the first byte of an event.
type Type uint8

// Event types. The gap between the control and annotation types leaves
// room to add types to either class.
const (
	PointerMove Type = 0x01 // X, Y
	ButtonDown  Type = 0x02 // Button, X, Y
	ButtonUp    Type = 0x03 // Button, X, Y
	Wheel       Type = 0x04 // DX, DY
	KeyDown     Type = 0x05 // Keysym
	KeyUp       Type = 0x06 // Keysym
	StrokePoint Type = 0x10 // Stroke, Tool, Color, X, Y
	StrokeEnd   Type = 0x11 // Stroke
	Clear       Type = 0x12 // no fields
)

// String names the type for logs and errors.
func (t Type) String() string {
	switch t {
	case PointerMove:
		return "PointerMove"
	case ButtonDown:
		return "ButtonDown"
	case ButtonUp:
		return "ButtonUp"
	case Wheel:
		return "Wheel"
	case KeyDown:
		return "KeyDown"
	case KeyUp:
		return "KeyUp"
	case StrokePoint:
		return "StrokePoint"
	case StrokeEnd:
		return "StrokeEnd"
	case Clear:
		return "Clear"
	}
	return fmt.Sprintf("Type(%#02x)", uint8(t))
}

// size is the encoded size of an event of type t, type byte included, or
// 0 for a type version 1 does not define.
func (t Type) size() int {
	switch t {
	case PointerMove:
		return 1 + 2 + 2
	case ButtonDown, ButtonUp:
		return 1 + 1 + 2 + 2
	case Wheel:
		return 1 + 2 + 2
	case KeyDown, KeyUp:
		return 1 + 4
	case StrokePoint:
		return 1 + 1 + 1 + 1 + 2 + 2
	case StrokeEnd:
		return 1 + 1
	case Clear:
		return 1
	}
	return 0
}

// Class is what an event does to the helped device, and so which grant a
// helper needs to send it. Classes are distinct bits, so that the set of
// classes a helper is granted is their bitwise OR (Control|Annotate).
type Class uint8

// Classes.
const (
	// Control drives the helped device's pointer and keyboard.
	Control Class = 1 << iota
	// Annotate draws over the helped screen without acting on it.
	Annotate
)

// String names the class, or the set of classes, for logs and metrics.
func (c Class) String() string {
	switch c {
	case 0:
		return "none"
	case Control:
		return "control"
	case Annotate:
		return "annotate"
	case Control | Annotate:
		return "control|annotate"
	}
	return fmt.Sprintf("Class(%#02x)", uint8(c))
}

// Class is the class of events of type t: Control for pointer, button,
// wheel and key events, Annotate for strokes and Clear, 0 for a type
// version 1 does not define.
func (t Type) Class() Class {
	switch {
	case t >= PointerMove && t <= KeyUp:
		return Control
	case t >= StrokePoint && t <= Clear:
		return Annotate
	}
	return 0
}

// Event is one assistance event. Only the fields of its Type are
// meaningful (see the Type constants); Decode leaves the others zero, and
// the encoder ignores them.
type Event struct {
	Type Type
	// Button is 1 (left), 2 (middle) or 3 (right), numbered as X11 does.
	Button uint8
	// X and Y are normalised over the shared screen: 0 is its left or top
	// edge, 65535 its right or bottom edge, whatever its size in pixels.
	X, Y uint16
	// DX and DY are wheel movement in 1/120 of a notch; positive is right
	// and down. At most MaxWheelDelta each, and not both zero.
	DX, DY int16
	// Keysym is an X11 keysym, 1 to MaxKeysym: layout-independent names
	// for keys, unlike scan codes, so that the helped device types what
	// the helper means.
	Keysym uint32
	// Stroke is a helper-chosen id that ties StrokePoints to their
	// StrokeEnd, so that strokes may interleave.
	Stroke uint8
	// Tool is 0 (pen), 1 (arrow) or 2 (laser pointer).
	Tool uint8
	// Color is an index into the palette, 0 to Colors-1.
	Color uint8
}

// Tools of a StrokePoint.
const (
	ToolPen   = 0
	ToolArrow = 1
	ToolLaser = 2
)

// inRange reports whether e is a defined type with every field in range.
// It allocates nothing, for Decode's sake; check says what is wrong.
func (e *Event) inRange() bool {
	switch e.Type {
	case PointerMove, Clear, StrokeEnd:
		return true
	case ButtonDown, ButtonUp:
		return e.Button >= 1 && e.Button <= 3
	case Wheel:
		return (e.DX != 0 || e.DY != 0) &&
			e.DX >= -MaxWheelDelta && e.DX <= MaxWheelDelta &&
			e.DY >= -MaxWheelDelta && e.DY <= MaxWheelDelta
	case KeyDown, KeyUp:
		return e.Keysym >= 1 && e.Keysym <= MaxKeysym
	case StrokePoint:
		return e.Tool <= ToolLaser && e.Color < Colors
	}
	return false
}

// check returns nil for an event the format can carry, else an error
// wrapping ErrUnknownType or ErrOutOfRange that names the bad field.
func (e *Event) check() error {
	if e.inRange() {
		return nil
	}
	switch e.Type {
	case ButtonDown, ButtonUp:
		return fmt.Errorf("%w: %v button %d, want 1 (left), 2 (middle) or 3 (right)", ErrOutOfRange, e.Type, e.Button)
	case Wheel:
		return fmt.Errorf("%w: Wheel (%d, %d), want each within ±%d and not both 0", ErrOutOfRange, e.DX, e.DY, MaxWheelDelta)
	case KeyDown, KeyUp:
		return fmt.Errorf("%w: %v keysym %#x, want 1 to %#x", ErrOutOfRange, e.Type, e.Keysym, MaxKeysym)
	case StrokePoint:
		return fmt.Errorf("%w: StrokePoint tool %d color %d, want tool 0 to %d and color 0 to %d", ErrOutOfRange, e.Tool, e.Color, ToolLaser, Colors-1)
	}
	return fmt.Errorf("%w: %v", ErrUnknownType, e.Type)
}
