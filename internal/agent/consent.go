package agent

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
)

// Terminal asks the person at the machine on a terminal: each question
// waits for a line, "y" or "yes" meaning yes. Lines typed while no
// question is open are ignored, so that no answer is ever taken for a
// question not yet asked. A line "stop" at any time takes every grant back
// and ends the assistance (Agent.StopHelp), and says no to an open
// question.
type Terminal struct {
	out io.Writer

	mu      sync.Mutex
	pending chan string // the answer to the question being asked
	stop    func()
}

// NewTerminal reads answers from in and writes questions to out; stop is
// called on a "stop" line. It reads in until in ends.
func NewTerminal(in io.Reader, out io.Writer, stop func()) *Terminal {
	t := &Terminal{out: out, stop: stop}
	go t.read(in)
	return t
}

func (t *Terminal) read(in io.Reader) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := strings.ToLower(strings.TrimSpace(sc.Text()))
		t.mu.Lock()
		p := t.pending
		t.pending = nil
		t.mu.Unlock()
		switch {
		case line == "stop" && t.stop != nil:
			t.stop()
			fmt.Fprintln(t.out, "Stopped: nothing is shared or allowed any more.")
			if p != nil {
				p <- "" // and the question being asked is a no
			}
		case p != nil:
			p <- line // buffered, and only its own question's answer
		}
	}
}

// ask writes question and waits for a yes or no.
func (t *Terminal) ask(ctx context.Context, question string) bool {
	ch := make(chan string, 1)
	t.mu.Lock()
	t.pending = ch
	t.mu.Unlock()
	fmt.Fprint(t.out, question+" [y/N] ")
	select {
	case a := <-ch:
		return a == "y" || a == "yes"
	case <-ctx.Done():
		t.mu.Lock()
		if t.pending == ch {
			t.pending = nil
		}
		t.mu.Unlock()
		fmt.Fprintln(t.out, "(no answer: no)")
		return false
	}
}

// AnswerCall implements Consent.
func (t *Terminal) AnswerCall(ctx context.Context, from string) bool {
	return t.ask(ctx, from+" is calling to help with this computer. Answer?")
}

// Grant implements Consent: each requested grant is asked for on its own.
func (t *Terminal) Grant(ctx context.Context, helper string, requested []string) []string {
	questions := map[string]string{
		"view":     helper + " asks to see this screen. Allow?",
		"annotate": helper + " asks to point and draw on this screen. Allow?",
		"control":  helper + " asks to control the mouse and keyboard. Allow? (type stop at any time to take it back)",
		"clipboard": helper + " asks to share the clipboard: text you copy here is sent to " + helper +
			", and text " + helper + " sends can be pasted here. Allow?",
	}
	var allowed []string
	for _, g := range []string{"view", "annotate", "control", "clipboard"} {
		if slices.Contains(requested, g) && t.ask(ctx, questions[g]) {
			allowed = append(allowed, g)
		}
	}
	return allowed
}
