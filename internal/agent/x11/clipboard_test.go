package x11_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/agent/x11"
	"github.com/tandemcall/tandem/internal/agent/x11/x11test"
)

// xclip runs xclip, a program on the desktop, on display: "-o" pastes
// and returns the text; "-i" copies stdin and leaves xclip in the
// background owning the selection until something else is copied (or the
// X server ends).
func xclip(t *testing.T, display, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "xclip", append([]string{"-display", display, "-selection", "clipboard"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, stderr strings.Builder
	if args[0] == "-o" {
		// Not for -i: its background half would hold the pipe open.
		cmd.Stdout, cmd.Stderr = &out, &stderr
	}
	if err := cmd.Run(); err != nil {
		t.Fatalf("xclip %v: %v: %s", args, err, stderr.String())
	}
	return out.String()
}

func openClipboard(t *testing.T, display string, max int) *x11.Clipboard {
	t.Helper()
	cb, err := x11.OpenClipboard(display, max)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cb.Close() })
	return cb
}

func nextCopy(t *testing.T, cb *x11.Clipboard) string {
	t.Helper()
	select {
	case s := <-cb.Changes():
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no copy reported")
		return ""
	}
}

// TestClipboard: text Tandem sets is what a program on the desktop
// pastes, and what a program copies is reported, in both cases as UTF-8;
// text over the limit is neither set nor reported, and Tandem's own text
// is not reported back.
func TestClipboard(t *testing.T) {
	display := x11test.StartXvfb(t)
	cb := openClipboard(t, display, 64)

	const sent = "Grüße, Oma — 1234 ✓"
	if err := cb.Set(sent); err != nil {
		t.Fatal(err)
	}
	if got := xclip(t, display, "", "-o", "-target", "UTF8_STRING"); got != sent {
		t.Errorf("pasted %q, want %q", got, sent)
	}
	if got := xclip(t, display, "", "-o", "-target", "TARGETS"); !strings.Contains(got, "UTF8_STRING") {
		t.Errorf("targets offered: %q", got)
	}
	select {
	case s := <-cb.Changes():
		t.Errorf("Tandem's own text was reported as a copy: %q", s)
	default:
	}

	// xclip -i stays in the background as the selection's owner.
	const copied = "ssh oma@192.0.2.7 — pass phrase in the drawer"
	xclip(t, display, copied, "-i")
	if got := nextCopy(t, cb); got != copied {
		t.Errorf("copy reported as %q, want %q", got, copied)
	}

	if err := cb.Set(strings.Repeat("x", 65)); !errors.Is(err, x11.ErrClipboardTooLarge) {
		t.Errorf("65 bytes set: %v, want ErrClipboardTooLarge", err)
	}
	xclip(t, display, strings.Repeat("y", 200), "-i")
	select {
	case n := <-cb.TooLarge():
		if n != 200 {
			t.Errorf("a copy of 200 bytes reported as too large at %d", n)
		}
	case <-time.After(10 * time.Second):
		t.Error("a copy over the limit was not reported as too large")
	}
	xclip(t, display, "small again", "-i")
	if got := nextCopy(t, cb); got != "small again" {
		t.Errorf("after a copy over the limit, reported %q", got)
	}
}
