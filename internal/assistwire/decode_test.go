package assistwire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// hx turns spaced hex ("01 01 8000 4000") into bytes.
func hx(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// repeat returns a version byte followed by n copies of event.
func repeat(event []byte, n int) []byte {
	return append([]byte{Version}, bytes.Repeat(event, n)...)
}

func TestDecode(t *testing.T) {
	clears := func(n int) []Event {
		es := make([]Event, n)
		for i := range es {
			es[i] = Event{Type: Clear}
		}
		return es
	}
	tests := []struct {
		name  string
		msg   string // spaced hex; ignored when raw is set
		raw   []byte
		want  []Event
		drops Drops
		err   error
	}{
		// Whole messages.
		{name: "version only", msg: "01"},
		{name: "no version byte", msg: "", err: ErrVersion},
		{name: "version 0", msg: "00 12", err: ErrVersion},
		{name: "version 2", msg: "02 12", err: ErrVersion},
		{name: "too long", raw: repeat([]byte{byte(Clear)}, MaxMessageLen), err: ErrTooLong},
		{name: "longest", raw: repeat([]byte{byte(Clear)}, MaxMessageLen-1),
			want: clears(MaxEvents), drops: Drops{TooMany: MaxMessageLen - 1 - MaxEvents}},

		// Each type, at the edges of its fields.
		{name: "PointerMove", msg: "01 01 0000 ffff",
			want: []Event{{Type: PointerMove, X: 0, Y: 65535}}},
		{name: "ButtonDown left", msg: "01 02 01 1234 5678",
			want: []Event{{Type: ButtonDown, Button: 1, X: 0x1234, Y: 0x5678}}},
		{name: "ButtonDown middle", msg: "01 02 02 0000 0000",
			want: []Event{{Type: ButtonDown, Button: 2}}},
		{name: "ButtonUp right", msg: "01 03 03 ffff ffff",
			want: []Event{{Type: ButtonUp, Button: 3, X: 65535, Y: 65535}}},
		{name: "Wheel down one notch", msg: "01 04 0000 0078",
			want: []Event{{Type: Wheel, DY: 120}}},
		{name: "Wheel limits", msg: "01 04 0960 f6a0",
			want: []Event{{Type: Wheel, DX: 2400, DY: -2400}}},
		{name: "Wheel one unit", msg: "01 04 ffff 0000",
			want: []Event{{Type: Wheel, DX: -1}}},
		{name: "KeyDown a", msg: "01 05 00000061",
			want: []Event{{Type: KeyDown, Keysym: 'a'}}},
		{name: "KeyUp Return", msg: "01 06 0000ff0d",
			want: []Event{{Type: KeyUp, Keysym: 0xff0d}}},
		{name: "Key limits", msg: "01 05 00000001 06 1fffffff",
			want: []Event{{Type: KeyDown, Keysym: 1}, {Type: KeyUp, Keysym: MaxKeysym}}},
		{name: "StrokePoint pen", msg: "01 10 07 00 00 0100 0200",
			want: []Event{{Type: StrokePoint, Stroke: 7, X: 0x100, Y: 0x200}}},
		{name: "StrokePoint laser last color", msg: "01 10 ff 02 07 ffff 0000",
			want: []Event{{Type: StrokePoint, Stroke: 255, Tool: ToolLaser, Color: 7, X: 65535}}},
		{name: "StrokePoint arrow", msg: "01 10 00 01 03 0001 0001",
			want: []Event{{Type: StrokePoint, Tool: ToolArrow, Color: 3, X: 1, Y: 1}}},
		{name: "StrokeEnd", msg: "01 11 07",
			want: []Event{{Type: StrokeEnd, Stroke: 7}}},
		{name: "Clear", msg: "01 12",
			want: []Event{{Type: Clear}}},
		{name: "move and click", msg: "01 01 8000 4000 02 01 8000 4000 03 01 8000 4000",
			want: []Event{
				{Type: PointerMove, X: 0x8000, Y: 0x4000},
				{Type: ButtonDown, Button: 1, X: 0x8000, Y: 0x4000},
				{Type: ButtonUp, Button: 1, X: 0x8000, Y: 0x4000},
			}},

		// Out of range: dropped, decoding goes on.
		{name: "button 0", msg: "01 02 00 0000 0000 12",
			want: []Event{{Type: Clear}}, drops: Drops{OutOfRange: 1}},
		{name: "button 4", msg: "01 03 04 0000 0000 12",
			want: []Event{{Type: Clear}}, drops: Drops{OutOfRange: 1}},
		{name: "button 255", msg: "01 02 ff 0000 0000",
			drops: Drops{OutOfRange: 1}},
		{name: "wheel both zero", msg: "01 04 0000 0000 12",
			want: []Event{{Type: Clear}}, drops: Drops{OutOfRange: 1}},
		{name: "wheel dx 2401", msg: "01 04 0961 0000 12",
			want: []Event{{Type: Clear}}, drops: Drops{OutOfRange: 1}},
		{name: "wheel dy -2401", msg: "01 04 0000 f69f 12",
			want: []Event{{Type: Clear}}, drops: Drops{OutOfRange: 1}},
		{name: "wheel dx -32768", msg: "01 04 8000 0001",
			drops: Drops{OutOfRange: 1}},
		{name: "keysym 0", msg: "01 05 00000000 12",
			want: []Event{{Type: Clear}}, drops: Drops{OutOfRange: 1}},
		{name: "keysym above 0x1fffffff", msg: "01 06 20000000 12",
			want: []Event{{Type: Clear}}, drops: Drops{OutOfRange: 1}},
		{name: "keysym all ones", msg: "01 05 ffffffff",
			drops: Drops{OutOfRange: 1}},
		{name: "tool 3", msg: "01 10 00 03 00 0000 0000 12",
			want: []Event{{Type: Clear}}, drops: Drops{OutOfRange: 1}},
		{name: "color 8", msg: "01 10 00 00 08 0000 0000 12",
			want: []Event{{Type: Clear}}, drops: Drops{OutOfRange: 1}},
		{name: "out of range between good events", msg: "01 01 0001 0002 02 09 0000 0000 11 05",
			want:  []Event{{Type: PointerMove, X: 1, Y: 2}, {Type: StrokeEnd, Stroke: 5}},
			drops: Drops{OutOfRange: 1}},

		// Malformed: the rest of the message is dropped as one.
		{name: "unknown type 0x00", msg: "01 12 00 12", want: []Event{{Type: Clear}}, drops: Drops{Malformed: 1}},
		{name: "unknown type 0x07", msg: "01 07 12", drops: Drops{Malformed: 1}},
		{name: "unknown type 0x13", msg: "01 11 01 13 12 12",
			want: []Event{{Type: StrokeEnd, Stroke: 1}}, drops: Drops{Malformed: 1}},
		{name: "unknown type 0xff", msg: "01 ff", drops: Drops{Malformed: 1}},
		{name: "PointerMove cut short", msg: "01 12 01 0000 00",
			want: []Event{{Type: Clear}}, drops: Drops{Malformed: 1}},
		{name: "ButtonDown cut after button", msg: "01 02 01", drops: Drops{Malformed: 1}},
		{name: "KeyDown cut short", msg: "01 05 0000ff", drops: Drops{Malformed: 1}},
		{name: "StrokePoint cut short", msg: "01 10 00 00 00 0000 00", drops: Drops{Malformed: 1}},
		{name: "StrokeEnd without stroke", msg: "01 11", drops: Drops{Malformed: 1}},
		{name: "type only", msg: "01 01", drops: Drops{Malformed: 1}},

		// Too many.
		{name: "128 events", raw: repeat([]byte{byte(Clear)}, MaxEvents), want: clears(MaxEvents)},
		{name: "130 events", raw: repeat([]byte{byte(Clear)}, MaxEvents+2),
			want: clears(MaxEvents), drops: Drops{TooMany: 2}},
		{name: "out of range events count towards the limit",
			raw:   append(repeat(hx(t, "02 00 0000 0000"), MaxEvents-1), hx(t, "12 12")...),
			want:  clears(1),
			drops: Drops{OutOfRange: MaxEvents - 1, TooMany: 1}},
		{name: "too many then malformed",
			raw:   append(repeat([]byte{byte(Clear)}, MaxEvents+1), hx(t, "01 00")...),
			want:  clears(MaxEvents),
			drops: Drops{TooMany: 1, Malformed: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := tt.raw
			if msg == nil {
				msg = hx(t, tt.msg)
			}
			got, drops, err := Decode(msg, nil)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if len(got) != len(tt.want) || (len(got) > 0 && !reflect.DeepEqual(got, tt.want)) {
				t.Errorf("events = %+v\nwant     %+v", got, tt.want)
			}
			if drops != tt.drops {
				t.Errorf("drops = %+v, want %+v", drops, tt.drops)
			}
		})
	}
}

// The errors say what was wrong, for the log line of a refused message.
func TestDecodeErrorContext(t *testing.T) {
	_, _, err := Decode(make([]byte, 2000), nil)
	if err == nil || !strings.Contains(err.Error(), "2000 bytes") {
		t.Errorf("too long: %v", err)
	}
	_, _, err = Decode([]byte{7}, nil)
	if err == nil || !strings.Contains(err.Error(), "version byte 7") {
		t.Errorf("version: %v", err)
	}
}

// Decode writes over dst rather than after it, and a refused message
// leaves nothing in the result.
func TestDecodeReusesDst(t *testing.T) {
	dst := make([]Event, 3, MaxEvents)
	got, _, err := Decode(hx(t, "01 12"), dst)
	if err != nil || len(got) != 1 || &got[0] != &dst[0] {
		t.Fatalf("got %+v, %v; want one event in dst's storage", got, err)
	}
	got, _, err = Decode(hx(t, "02 12"), got)
	if err == nil || len(got) != 0 {
		t.Fatalf("refused message returned %+v, %v", got, err)
	}
}

func TestDecodeAllocatesNothing(t *testing.T) {
	msg := typicalMessage(t)
	dst := make([]Event, 0, MaxEvents)
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := Decode(msg, dst); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode allocated %v times per message", allocs)
	}
	// Out-of-range and malformed events are dropped without building
	// an error either.
	bad := hx(t, "01 02 09 0000 0000 04 0000 0000 05 00000000 10 00 09 00 0000 0000 ff")
	allocs = testing.AllocsPerRun(100, func() {
		if _, d, _ := Decode(bad, dst); d.Total() != 5 {
			t.Fatalf("drops %+v", d)
		}
	})
	if allocs != 0 {
		t.Errorf("Decode allocated %v times per bad message", allocs)
	}
}

// typicalMessage is what a helper sends in one animation frame while
// clicking: a few pointer moves, then a left click.
func typicalMessage(t testing.TB) []byte {
	t.Helper()
	msg, err := AppendMessage(nil,
		Event{Type: PointerMove, X: 30000, Y: 20000},
		Event{Type: PointerMove, X: 30100, Y: 20050},
		Event{Type: PointerMove, X: 30180, Y: 20090},
		Event{Type: PointerMove, X: 30200, Y: 20100},
		Event{Type: ButtonDown, Button: 1, X: 30200, Y: 20100},
		Event{Type: ButtonUp, Button: 1, X: 30200, Y: 20100},
	)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func BenchmarkDecode(b *testing.B) {
	msg := typicalMessage(b)
	dst := make([]Event, 0, MaxEvents)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		events, _, err := Decode(msg, dst)
		if err != nil || len(events) != 6 {
			b.Fatalf("%d events, %v", len(events), err)
		}
	}
}
