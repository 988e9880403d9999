package test

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemcall/tandem/internal/agent"
	"github.com/tandemcall/tandem/internal/agent/x11/x11test"
	"github.com/tandemcall/tandem/internal/client"
	"github.com/tandemcall/tandem/internal/store"
	"github.com/tandemcall/tandem/internal/testkit"
	"github.com/tandemcall/tandem/signaling/protocol"
)

// desktopClipboard is a program on the X display, xclip, copying text
// (copy) or pasting what the clipboard holds (paste).
type desktopClipboard struct {
	t       *testing.T
	display string
}

func (d desktopClipboard) run(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "xclip", append([]string{"-display", d.display, "-selection", "clipboard"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, stderr strings.Builder
	if args[0] == "-o" {
		// Not for -i: it stays in the background owning the selection,
		// and would hold a pipe open.
		cmd.Stdout, cmd.Stderr = &out, &stderr
	}
	if err := cmd.Run(); err != nil {
		return "", errors.New(err.Error() + ": " + stderr.String())
	}
	return out.String(), nil
}

func (d desktopClipboard) copy(text string) {
	d.t.Helper()
	if _, err := d.run(text, "-i"); err != nil {
		d.t.Fatalf("copy: %v", err)
	}
}

// paste is what a paste gives now ("" when the clipboard is empty).
func (d desktopClipboard) paste() string {
	s, _ := d.run("", "-o", "-target", "UTF8_STRING")
	return s
}

// TestAgentClipboard: Bob helps his mother and asks to share the
// clipboard. Until she allows it, nothing crosses: his text is refused
// and what she copies stays on her machine. Once she allows it, his text
// is what she pastes, and what she copies reaches him; text over the
// limit is refused (his) or not sent and counted (hers), and the next
// text crosses as before. Each crossing is in both audit logs, without
// the text. When she stops the help, nothing crosses any more.
func TestAgentClipboard(t *testing.T) {
	display := x11test.StartXvfb(t)
	desk := desktopClipboard{t, display}
	ts := startServer(t, nil)
	consent := &scriptedConsent{asked: make(chan []string, 4)}
	consent.set(protocol.AssistView)
	a := agent.New(agent.Config{URL: ts.wsURL(), Token: ts.token(t, "mom", "desktop"), Display: display, Logger: clientLogger(t)}, consent)
	runAgent(t, a)

	ctx := testCtx(t, 60*time.Second)
	bob := ts.dial(t, "bob", "phone")
	id := ringAgent(t, ctx, bob, "mom")
	waitType(t, bob, func(m *protocol.Accepted) bool { return m.CallID == id })
	if _, err := bob.StartMedia(ctx, id, client.MediaOptions{Audio: true, Assist: true}); err != nil {
		t.Fatal(err)
	}
	if err := bob.Assist(ctx, id, "mom", protocol.AssistClipboard); err != nil {
		t.Fatal(err)
	}
	if asked := <-consent.asked; !slices.Equal(asked, []string{protocol.AssistView, protocol.AssistClipboard}) {
		t.Errorf("Mom was asked for %v, want view and clipboard", asked)
	}
	waitType(t, bob, func(m *protocol.AssistState) bool { return slices.Equal(m.Granted, []string{protocol.AssistView}) })

	// Not allowed: nothing crosses either way.
	if err := bob.SendClipboard(ctx, id, "not yet"); !client.IsCode(err, protocol.CodeForbidden) {
		t.Errorf("Bob's text without the grant: %v, want forbidden", err)
	}
	desk.copy("Mom's note before she allowed it")
	time.Sleep(time.Second)
	if got := desk.paste(); got != "Mom's note before she allowed it" {
		t.Errorf("Mom pastes %q", got)
	}

	consent.set(protocol.AssistClipboard)
	if err := bob.AssistRequest(ctx, id, protocol.AssistClipboard); err != nil {
		t.Fatal(err)
	}
	<-consent.asked
	waitType(t, bob, func(m *protocol.AssistState) bool { return slices.Contains(m.Granted, protocol.AssistClipboard) })

	const fromBob = "https://example.org/update — Benutzername: grüße ✓"
	if err := bob.SendClipboard(ctx, id, fromBob); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "Mom pasting Bob's text", func() bool { return desk.paste() == fromBob })

	const fromMom = "Fehlercode 0x80070005"
	desk.copy(fromMom)
	got := waitType(t, bob, func(m *protocol.Clipboard) bool { return m.CallID == id })
	if got.Text != fromMom || got.From != "mom" {
		t.Errorf("Bob got %+v, want %q from mom", got, fromMom)
	}
	// The agent counts its copy once the server acknowledged it, which
	// may be after Bob has it.
	testkit.Eventually(t, 5*time.Second, "the agent counting a text each way", func() bool {
		st := a.Stats()
		return st.ClipboardIn == 1 && st.ClipboardOut == 1
	})

	// Too large, either way: refused or not sent, counted, and the
	// session goes on.
	big := strings.Repeat("Protokoll ", protocol.MaxClipboardBytes/10+1)
	if err := bob.SendClipboard(ctx, id, big); !client.IsCode(err, protocol.CodeBadMessage) {
		t.Errorf("Bob's %d bytes: %v, want bad_message", len(big), err)
	}
	desk.copy(big)
	testkit.Eventually(t, 10*time.Second, "the agent counting a copy too large", func() bool { return a.Stats().ClipboardTooLarge == 1 })
	if err := bob.SendClipboard(ctx, id, "still here"); err != nil {
		t.Fatalf("after the large texts: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, "Mom pasting Bob's next text", func() bool { return desk.paste() == "still here" })
	desk.copy("and me")
	if got := waitType(t, bob, func(m *protocol.Clipboard) bool { return m.CallID == id }); got.Text != "and me" {
		t.Errorf("after the large copy Bob got %q, want the next one", got.Text)
	}

	// Both logs say the clipboard crossed each way, and never what.
	testkit.Eventually(t, 5*time.Second, "both audit logs", func() bool {
		for _, u := range []string{"mom", "bob"} {
			var reasons []string
			for _, e := range assistLog(t, ts, u, "phone") {
				if e.Event == store.AssistClipboard {
					reasons = append(reasons, e.Reason)
				}
			}
			slices.Sort(reasons)
			if !slices.Equal(reasons, []string{"from_helped", "from_helped", "from_helper", "from_helper"}) {
				return false
			}
		}
		return true
	})

	// She stops the help: nothing crosses any more.
	a.StopHelp()
	waitType(t, bob, func(m *protocol.AssistState) bool { return !m.Active })
	if err := bob.SendClipboard(ctx, id, "after the end"); err == nil {
		t.Error("Bob's text after the help ended was accepted")
	}
	desk.copy("Mom's note after the help")
	time.Sleep(time.Second)
	if st := a.Stats(); st.ClipboardOut != 2 {
		t.Errorf("the agent sent %d copies, want only the two made while allowed", st.ClipboardOut)
	}
	if err := bob.Hangup(ctx, id); err != nil {
		t.Fatal(err)
	}
}
