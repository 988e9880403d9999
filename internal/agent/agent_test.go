package agent

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tok := write("token", "  tok123\n")
	for _, tt := range []struct {
		name, body, err string
	}{
		{"the shipped example", "", ""},
		{"unattended for bob", "server: ws://127.0.0.1:1/ws\ntoken_file: " + tok + "\nunattended:\n  enabled: true\n  helpers: [bob]\n  grants: [view, control]\n", ""},
		{"unknown key", "servr: x\n", "field servr not found"},
		{"unattended without helpers", "unattended:\n  enabled: true\n", "needs unattended.helpers"},
		{"unknown grant", "unattended:\n  grants: [everything]\n", `unknown grant "everything"`},
		{"fps out of range", "fps: 500\n", "out of range"},
	} {
		body := tt.body
		if tt.name == "the shipped example" {
			b, err := os.ReadFile("../../configs/agent.yaml")
			if err != nil {
				t.Fatal(err)
			}
			body = string(b)
		}
		f, err := LoadFile(write(strings.ReplaceAll(tt.name, " ", "_")+".yaml", body))
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: error %v, want one saying %q", tt.name, err, tt.err)
		}
		if tt.name == "unattended for bob" {
			c, err := f.Config()
			if err != nil || c.Token != "tok123" || !c.Unattended.Enabled || !slices.Equal(c.Unattended.Grants, []string{"view", "control"}) {
				t.Errorf("config %+v, %v", c, err)
			}
		}
	}
	if f, err := LoadFile("../../configs/agent.yaml"); err != nil || f.Unattended.Enabled {
		t.Errorf("the shipped example must leave unattended access off: %+v, %v", f.Unattended, err)
	}
}

// TestTerminal: each question waits for its own answer; "stop" stops the
// help and says no; a line typed with no question open answers nothing;
// an unanswered question is a no when ctx ends.
func TestTerminal(t *testing.T) {
	in, feed := io.Pipe()
	prompts, out := io.Pipe()
	var stops atomic.Int32
	term := NewTerminal(in, out, func() { stops.Add(1) })
	defer feed.Close()
	// answer reads up to the next question and types line.
	answer := func(line string) {
		var seen []byte
		buf := make([]byte, 1)
		for !bytes.HasSuffix(seen, []byte("[y/N] ")) {
			if _, err := prompts.Read(buf); err != nil {
				return
			}
			seen = append(seen, buf[0])
		}
		_, _ = io.WriteString(feed, line+"\n")
	}
	ctx := context.Background()
	go func() {
		answer("y")
		answer("YES")
		answer("n")
		answer("stop")
		_, _ = io.Copy(io.Discard, prompts)
	}()
	if !term.AnswerCall(ctx, "bob") {
		t.Error("y did not answer the call")
	}
	got := term.Grant(ctx, "bob", []string{"view", "annotate", "control"})
	if !slices.Equal(got, []string{"view"}) {
		t.Errorf("granted %v, want view only (yes, no, stop)", got)
	}
	if stops.Load() != 1 {
		t.Errorf("stop called %d times, want 1", stops.Load())
	}
	_, _ = io.WriteString(feed, "y\n") // no question open: ignored
	time.Sleep(50 * time.Millisecond)  // read and dropped before the next question opens
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if term.AnswerCall(short, "mallory") {
		t.Error("a line typed before the question, or no answer, counted as yes")
	}
}

func TestScale(t *testing.T) {
	for _, tt := range []struct {
		v    uint16
		n    int
		want int
	}{{0, 1280, 0}, {65535, 1280, 1279}, {32768, 1281, 640}} {
		if got := scale(tt.v, tt.n); got != tt.want {
			t.Errorf("scale(%d, %d) = %d, want %d", tt.v, tt.n, got, tt.want)
		}
	}
}
