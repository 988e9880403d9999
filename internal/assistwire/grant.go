package assistwire

// Filter keeps the events whose class is in granted, a set of classes
// such as Annotate or Control|Annotate, and returns them with the number
// it removed. It works in place, reusing events' storage, so the server's
// decode, filter and re-encode path stays free of allocations.
//
// This is where a helper allowed only to draw is kept from moving the
// pointer or typing: the server forwards only what Filter keeps.
func Filter(events []Event, granted Class) (kept []Event, denied int) {
	kept = events[:0]
	for _, e := range events {
		if c := e.Type.Class(); c != 0 && granted&c == c {
			kept = append(kept, e)
		}
	}
	return kept, len(events) - len(kept)
}
