package server

import (
	"errors"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// withBodyTimeout gives every request body d to arrive after its headers:
// a client that sends its body a byte at a time (slowloris) has its read
// fail and its connection closed. The read deadline is lifted once the
// body has been read whole, so a handler that works on after reading (a
// WHIP offer being answered) keeps its connection and context; requests
// without a body, WebSocket upgrades among them, get no deadline. The
// server sets the next request's deadlines itself.
func withBodyTimeout(d time.Duration, timeouts *atomic.Uint64, h http.Handler) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, w: w, rc: rc, timeouts: timeouts}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// errBodyTimeout is what reading a body that took too long returns.
var errBodyTimeout = errors.New("request body not received in time (http.body_timeout)")

type deadlineBody struct {
	io.ReadCloser
	w        http.ResponseWriter
	rc       *http.ResponseController
	timeouts *atomic.Uint64
	done     bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil || b.done:
	case errors.Is(err, io.EOF):
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.done = true
		b.timeouts.Add(1)
		// What is left of the body cannot be told from the next request.
		b.w.Header().Set("Connection", "close")
		return n, errBodyTimeout
	}
	return n, err
}
