package assistwire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// validEvents holds every type, with fields at the edges of their ranges.
var validEvents = []Event{
	{Type: PointerMove, X: 0, Y: 0},
	{Type: PointerMove, X: 65535, Y: 65535},
	{Type: ButtonDown, Button: 1, X: 100, Y: 200},
	{Type: ButtonUp, Button: 1, X: 100, Y: 200},
	{Type: ButtonDown, Button: 2, X: 1, Y: 65534},
	{Type: ButtonUp, Button: 3, X: 32768, Y: 32767},
	{Type: Wheel, DY: 120},
	{Type: Wheel, DX: -MaxWheelDelta, DY: MaxWheelDelta},
	{Type: Wheel, DX: 1},
	{Type: KeyDown, Keysym: 0xffe1}, // Shift_L
	{Type: KeyDown, Keysym: 'A'},
	{Type: KeyUp, Keysym: 'A'},
	{Type: KeyUp, Keysym: 0xffe1},
	{Type: KeyDown, Keysym: 1},
	{Type: KeyUp, Keysym: MaxKeysym},
	{Type: StrokePoint, Stroke: 0, Tool: ToolPen, Color: 0, X: 10, Y: 10},
	{Type: StrokePoint, Stroke: 0, Tool: ToolPen, Color: 0, X: 12, Y: 15},
	{Type: StrokePoint, Stroke: 255, Tool: ToolArrow, Color: Colors - 1, X: 65535, Y: 0},
	{Type: StrokePoint, Stroke: 9, Tool: ToolLaser, Color: 4, X: 40000, Y: 30000},
	{Type: StrokeEnd, Stroke: 0},
	{Type: StrokeEnd, Stroke: 255},
	{Type: Clear},
}

func TestRoundTrip(t *testing.T) {
	msg, err := AppendMessage(nil, validEvents...)
	if err != nil {
		t.Fatal(err)
	}
	got, drops, err := Decode(msg, nil)
	if err != nil || drops != (Drops{}) {
		t.Fatalf("decode: drops %+v, err %v", drops, err)
	}
	if !reflect.DeepEqual(got, validEvents) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, validEvents)
	}
	// Every byte is accounted for by the sizes of the types.
	want := 1
	for _, e := range validEvents {
		want += e.Type.size()
	}
	if len(msg) != want {
		t.Errorf("message is %d bytes, want %d", len(msg), want)
	}
}

// The annotated example of the protocol document, byte for byte.
func TestAppendMessageMoveAndClick(t *testing.T) {
	at := func(typ Type, button uint8) Event {
		return Event{Type: typ, Button: button, X: 0x8000, Y: 0x4000}
	}
	got, err := AppendMessage(nil, at(PointerMove, 0), at(ButtonDown, 1), at(ButtonUp, 1))
	if err != nil {
		t.Fatal(err)
	}
	want := hx(t, "01  01 8000 4000  02 01 8000 4000  03 01 8000 4000")
	if !bytes.Equal(got, want) {
		t.Errorf("got  % x\nwant % x", got, want)
	}
}

// Fields that do not belong to an event's type are not sent.
func TestAppendMessageIgnoresOtherFields(t *testing.T) {
	got, err := AppendMessage(nil, Event{Type: Clear, X: 5, Button: 9, Keysym: 0}, Event{Type: StrokeEnd, Stroke: 3, Tool: 200})
	if err != nil {
		t.Fatal(err)
	}
	if want := hx(t, "01 12 11 03"); !bytes.Equal(got, want) {
		t.Errorf("got % x, want % x", got, want)
	}
}

func TestAppendMessageAppends(t *testing.T) {
	buf := make([]byte, 0, 64)
	buf = append(buf, 0xAA)
	got, err := AppendMessage(buf, Event{Type: Clear})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0xAA, Version, byte(Clear)}; !bytes.Equal(got, want) || &got[0] != &buf[0] {
		t.Errorf("got % x, want % x in the same storage", got, want)
	}
}

func TestAppendMessageRefuses(t *testing.T) {
	strokes := make([]Event, MaxEvents)
	for i := range strokes {
		strokes[i] = Event{Type: StrokePoint}
	}
	tests := []struct {
		name   string
		events []Event
		err    error
	}{
		{"unknown type 0", []Event{{Type: 0}}, ErrUnknownType},
		{"unknown type 0x07", []Event{{Type: 0x07}}, ErrUnknownType},
		{"unknown type 0x13", []Event{{Type: 0x13}}, ErrUnknownType},
		{"button 0", []Event{{Type: ButtonDown}}, ErrOutOfRange},
		{"button 4", []Event{{Type: ButtonUp, Button: 4}}, ErrOutOfRange},
		{"wheel zero", []Event{{Type: Wheel}}, ErrOutOfRange},
		{"wheel dx", []Event{{Type: Wheel, DX: MaxWheelDelta + 1}}, ErrOutOfRange},
		{"wheel dy", []Event{{Type: Wheel, DY: -MaxWheelDelta - 1}}, ErrOutOfRange},
		{"keysym 0", []Event{{Type: KeyDown}}, ErrOutOfRange},
		{"keysym too big", []Event{{Type: KeyUp, Keysym: MaxKeysym + 1}}, ErrOutOfRange},
		{"tool", []Event{{Type: StrokePoint, Tool: ToolLaser + 1}}, ErrOutOfRange},
		{"color", []Event{{Type: StrokePoint, Color: Colors}}, ErrOutOfRange},
		{"bad event after good ones", []Event{{Type: Clear}, {Type: KeyDown}}, ErrOutOfRange},
		{"129 events", append(strokes[:MaxEvents:MaxEvents], Event{Type: Clear}), ErrTooMany},
		{"128 stroke points are 1025 bytes", strokes, ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte{0xAA}
			got, err := AppendMessage(prefix, tt.events...)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if !bytes.Equal(got, prefix) {
				t.Errorf("refused message left % x, want % x", got, prefix)
			}
		})
	}
	// The error names the event at fault.
	_, err := AppendMessage(nil, Event{Type: Clear}, Event{Type: KeyDown})
	if err == nil || err.Error() != "event 1: assistwire: event out of range: KeyDown keysym 0x0, want 1 to 0x1fffffff" {
		t.Errorf("error %q", err)
	}
}

func TestClass(t *testing.T) {
	for typ := range 256 {
		var want Class
		switch Type(typ) {
		case PointerMove, ButtonDown, ButtonUp, Wheel, KeyDown, KeyUp:
			want = Control
		case StrokePoint, StrokeEnd, Clear:
			want = Annotate
		}
		if got := Type(typ).Class(); got != want {
			t.Errorf("%v.Class() = %v, want %v", Type(typ), got, want)
		}
		// Exactly the types with a class have a size.
		if (Type(typ).size() != 0) != (want != 0) {
			t.Errorf("%v has size %d and class %v", Type(typ), Type(typ).size(), want)
		}
	}
}

func TestFilter(t *testing.T) {
	events := []Event{
		{Type: PointerMove, X: 1},
		{Type: StrokePoint, X: 2},
		{Type: KeyDown, Keysym: 'a'},
		{Type: StrokeEnd},
		{Type: Clear},
		{Type: ButtonDown, Button: 1},
	}
	annotations := []Event{events[1], events[3], events[4]}
	controls := []Event{events[0], events[2], events[5]}
	tests := []struct {
		granted Class
		want    []Event
	}{
		{0, nil},
		{Annotate, annotations},
		{Control, controls},
		{Control | Annotate, events},
		{0x80, nil}, // a class version 1 does not define grants nothing
	}
	for _, tt := range tests {
		t.Run(tt.granted.String(), func(t *testing.T) {
			in := append([]Event(nil), events...)
			kept, denied := Filter(in, tt.granted)
			if len(kept) != len(tt.want) || (len(kept) > 0 && !reflect.DeepEqual(kept, tt.want)) {
				t.Errorf("kept %+v, want %+v", kept, tt.want)
			}
			if denied != len(events)-len(tt.want) {
				t.Errorf("denied %d, want %d", denied, len(events)-len(tt.want))
			}
		})
	}
}

// The server's whole path for a helper allowed only to draw: decode,
// filter, re-encode. What reaches the helped device holds no control
// event, and the drops and denials add up.
func TestDecodeFilterForward(t *testing.T) {
	in, err := AppendMessage(nil,
		Event{Type: StrokePoint, Stroke: 1, X: 10, Y: 10},
		Event{Type: PointerMove, X: 10, Y: 10},
		Event{Type: StrokePoint, Stroke: 1, X: 20, Y: 20},
		Event{Type: ButtonDown, Button: 1},
		Event{Type: StrokeEnd, Stroke: 1},
	)
	if err != nil {
		t.Fatal(err)
	}
	in = append(in, byte(StrokePoint), 0, 9, 0, 0, 0, 0, 0) // tool 9: out of range
	in = append(in, 0x42)                                   // unknown type
	events, drops, err := Decode(in, make([]Event, 0, MaxEvents))
	if err != nil {
		t.Fatal(err)
	}
	events, denied := Filter(events, Annotate)
	out, err := AppendMessage(nil, events...)
	if err != nil {
		t.Fatal(err)
	}
	want := hx(t, "01  10 01 00 00 000a 000a  10 01 00 00 0014 0014  11 01")
	if !bytes.Equal(out, want) {
		t.Errorf("forwarded % x\nwant      % x", out, want)
	}
	if denied != 2 || drops != (Drops{OutOfRange: 1, Malformed: 1}) {
		t.Errorf("denied %d, drops %+v", denied, drops)
	}
}

func TestStrings(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{PointerMove.String(), "PointerMove"},
		{Clear.String(), "Clear"},
		{Type(0x07).String(), "Type(0x07)"},
		{Control.String(), "control"},
		{(Control | Annotate).String(), "control|annotate"},
		{Class(0x80).String(), "Class(0x80)"},
	} {
		if tt.got != tt.want {
			t.Errorf("%q, want %q", tt.got, tt.want)
		}
	}
}
