package pionlog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestClosedIsRoutine: pion's error that a write found its socket closed
// (a peer that just left) is logged at Info, not Error; its other errors
// stay errors.
func TestClosedIsRoutine(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	l := Factory{Log: log, Levels: Plain}.NewLogger("udpmux")
	l.Errorf("Failed to write packet: %v", "io: read/write on closed pipe")
	l.Error("Failed to read: use of closed network connection")
	l.Errorf("Failed to handle packet: %v", "bad DTLS record")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %q", len(lines), buf.String())
	}
	for i, want := range []string{"level=INFO", "level=INFO", "level=ERROR"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q, want %s", i, lines[i], want)
		}
	}
}

// TestErrorsAtErrorLevel: with the log at Error, pion's errors are still
// logged, and a routine close is not.
func TestErrorsAtErrorLevel(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError}))
	l := Factory{Log: log, Levels: Plain}.NewLogger("dtls")
	l.Errorf("Failed to handle packet: %v", "bad DTLS record")
	l.Errorf("Failed to write packet: %v", "io: read/write on closed pipe")
	if got := strings.Count(buf.String(), "\n"); got != 1 || !strings.Contains(buf.String(), "bad DTLS record") {
		t.Errorf("logged %q, want the one real error", buf.String())
	}
}
