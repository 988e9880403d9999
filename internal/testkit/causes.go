package testkit

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
)

// Causes is a slog.Handler for the nodes of a long test: it passes every
// record on to the handler it wraps and keeps each error-level record
// that does not name its cause. An operator woken by an error line must
// read why in it: an err or reason attribute, or, for a line of pion's
// (which formats its errors into the message), a message that goes on
// after a colon.
type Causes struct {
	next slog.Handler
	keys []string // of the attributes added with WithAttrs
	st   *causeState
}

type causeState struct {
	mu      sync.Mutex
	missing []string
	errors  int
}

// NewCauses wraps next (nil: records go nowhere else).
func NewCauses(next slog.Handler) *Causes {
	if next == nil {
		next = slog.DiscardHandler
	}
	return &Causes{next: next, st: &causeState{}}
}

// Enabled reports true for error records whatever next says, so that they
// are checked even when next discards them.
func (c *Causes) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || c.next.Enabled(ctx, l)
}

// Handle checks r and passes it on.
func (c *Causes) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		named := false
		pion := false
		check := func(k string) {
			switch k {
			case "err", "error", "reason":
				named = true
			case "pion":
				pion = true
			}
		}
		for _, k := range c.keys {
			check(k)
		}
		r.Attrs(func(a slog.Attr) bool { check(a.Key); return true })
		if pion {
			if _, after, ok := strings.Cut(r.Message, ": "); ok && after != "" {
				named = true
			}
		}
		c.st.mu.Lock()
		c.st.errors++
		if !named {
			var attrs []string
			r.Attrs(func(a slog.Attr) bool { attrs = append(attrs, a.String()); return true })
			c.st.missing = append(c.st.missing, fmt.Sprintf("%q %s", r.Message, strings.Join(attrs, " ")))
		}
		c.st.mu.Unlock()
	}
	if !c.next.Enabled(ctx, r.Level) {
		return nil
	}
	return c.next.Handle(ctx, r)
}

// WithAttrs notes the attributes' keys.
func (c *Causes) WithAttrs(as []slog.Attr) slog.Handler {
	d := *c
	d.next = c.next.WithAttrs(as)
	d.keys = append([]string(nil), c.keys...)
	for _, a := range as {
		d.keys = append(d.keys, a.Key)
	}
	return &d
}

// WithGroup puts what follows in a group (an err in it names the cause
// all the same).
func (c *Causes) WithGroup(name string) slog.Handler {
	d := *c
	d.next = c.next.WithGroup(name)
	return &d
}

// Uncaused returns the error records that did not name their cause, and
// how many error records there were in all.
func (c *Causes) Uncaused() (missing []string, errors int) {
	c.st.mu.Lock()
	defer c.st.mu.Unlock()
	return append([]string(nil), c.st.missing...), c.st.errors
}
