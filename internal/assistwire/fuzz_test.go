package assistwire

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzDecode feeds Decode what a hostile helper could send. Whatever the
// bytes, Decode must not panic, must keep only events in range, must
// account for no more events than the bytes can hold, and what it keeps
// must re-encode to a message that decodes to the same events.
func FuzzDecode(f *testing.F) {
	seeds := []string{
		"",
		"00",
		"02 12",
		"01",
		"01 01 8000 4000",
		"01 02 01 8000 4000",
		"01 03 03 ffff 0000",
		"01 04 0000 0078",
		"01 04 0961 0000",
		"01 05 0000ff0d",
		"01 06 1fffffff",
		"01 06 20000000",
		"01 10 01 02 07 0100 0200",
		"01 10 01 03 08 0100 0200",
		"01 11 01",
		"01 12",
		"01 01 8000 4000 02 01 8000 4000 03 01 8000 4000",
		"01 02 00 0000 0000 12 07 12",
		"01 10 00 00",
	}
	for _, s := range seeds {
		f.Add(hx(f, s))
	}
	f.Add(repeat([]byte{byte(Clear)}, MaxEvents+3))
	f.Add(repeat(hx(f, "10 00 00 00 0000 0000"), MaxEvents))

	dst := make([]Event, 0, MaxEvents)
	f.Fuzz(func(t *testing.T, msg []byte) {
		events, drops, err := Decode(msg, dst)

		refuse := len(msg) > MaxMessageLen || len(msg) == 0 || msg[0] != Version
		if (err != nil) != refuse {
			t.Fatalf("%d bytes starting % x: err %v", len(msg), msg[:min(len(msg), 1)], err)
		}
		if err != nil {
			if !errors.Is(err, ErrTooLong) && !errors.Is(err, ErrVersion) {
				t.Fatalf("refused with %v", err)
			}
			if len(events) != 0 || drops != (Drops{}) {
				t.Fatalf("refused message gave %d events, drops %+v", len(events), drops)
			}
			return
		}

		// Counts within what the bytes can hold: every event takes at
		// least a byte, a malformed tail too, and the kept ones exactly
		// their types' sizes.
		keptBytes := 0
		for i := range events {
			if err := events[i].check(); err != nil {
				t.Fatalf("kept event %d: %v", i, err)
			}
			keptBytes += events[i].Type.size()
		}
		if drops.Malformed < 0 || drops.Malformed > 1 || drops.OutOfRange < 0 || drops.TooMany < 0 {
			t.Fatalf("drops %+v", drops)
		}
		if len(events)+drops.OutOfRange > MaxEvents {
			t.Fatalf("%d kept and %d out of range, limit %d", len(events), drops.OutOfRange, MaxEvents)
		}
		if len(events)+drops.Total() > len(msg)-1 {
			t.Fatalf("%d kept and drops %+v from %d bytes of events", len(events), drops, len(msg)-1)
		}
		if keptBytes > len(msg)-1 {
			t.Fatalf("kept events take %d bytes of %d", keptBytes, len(msg)-1)
		}

		// What the server forwards decodes to what it kept.
		out, err := AppendMessage(nil, events...)
		if err != nil {
			t.Fatalf("re-encoding kept events: %v", err)
		}
		again, drops2, err := Decode(out, nil)
		if err != nil || drops2 != (Drops{}) {
			t.Fatalf("re-encoded message: drops %+v, err %v", drops2, err)
		}
		if len(again) != len(events) || (len(again) > 0 && !reflect.DeepEqual(again, events)) {
			t.Fatalf("re-encoded events differ:\n got %+v\nwant %+v", again, events)
		}
		// The encoding is canonical: a message with nothing dropped is
		// forwarded byte for byte.
		if drops.Total() == 0 && !bytes.Equal(out, msg) {
			t.Fatalf("clean message changed:\n in % x\nout % x", msg, out)
		}

		// Filtering by class keeps a subset and loses nothing else.
		for _, granted := range []Class{Control, Annotate} {
			in := append([]Event(nil), events...)
			kept, denied := Filter(in, granted)
			if len(kept)+denied != len(events) {
				t.Fatalf("Filter(%v): %d kept + %d denied of %d", granted, len(kept), denied, len(events))
			}
			for _, e := range kept {
				if e.Type.Class() != granted {
					t.Fatalf("Filter(%v) kept %v", granted, e.Type)
				}
			}
		}
	})
}
