package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func load(t *testing.T, yaml string, env []string, args ...string) (Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	RegisterFlags(fs)
	if yaml != "" {
		p := filepath.Join(t.TempDir(), "tandem.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", p)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return Load(fs, env)
}

const secret = "0123456789abcdef0123456789abcdef"

func TestLoadLayers(t *testing.T) {
	c, err := load(t, "calls:\n  ring_timeout: 30s\nhttp:\n  listen: 127.0.0.1:9000\n",
		[]string{"TANDEM_CALLS_RING_TIMEOUT=20s", "TANDEM_AUTH_SECRET=" + secret, "HOME=/x"},
		"--listen", "127.0.0.1:9100")
	if err != nil {
		t.Fatal(err)
	}
	if c.Calls.RingTimeout != 20*time.Second {
		t.Errorf("env should override file: ring_timeout = %v", c.Calls.RingTimeout)
	}
	if c.HTTP.Listen != "127.0.0.1:9100" {
		t.Errorf("flag should override file: listen = %v", c.HTTP.Listen)
	}
	if c.Calls.WaitingTimeout != 15*time.Second {
		t.Errorf("default waiting_timeout = %v", c.Calls.WaitingTimeout)
	}
}

func TestDevNeedsNothing(t *testing.T) {
	c, err := load(t, "", nil, "--dev")
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Listen != "127.0.0.1:7880" || c.Media.UDPListen != "127.0.0.1:7882" {
		t.Errorf("dev listens on %s and %s", c.HTTP.Listen, c.Media.UDPListen)
	}
}

func TestLoadErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        []string
		args       []string
		key        string
	}{
		{"unknown file key", "http:\n  lisen: x\n", nil, nil, "http.lisen"},
		{"unknown top key", "colour: red\n", nil, nil, "colour"},
		{"bad duration", "calls:\n  ring_timeout: soon\n", nil, nil, "calls.ring_timeout"},
		{"bad env duration", "", []string{"TANDEM_CALLS_RING_TIMEOUT=forever"}, []string{"--dev"}, "calls.ring_timeout"},
		{"bad env int", "", []string{"TANDEM_SIGNALING_SEND_QUEUE=lots"}, []string{"--dev"}, "signaling.send_queue"},
		{"negative timeout", "calls:\n  ring_timeout: -1s\n", nil, []string{"--dev"}, "calls.ring_timeout"},
		{"bad listen", "", nil, []string{"--listen", "nowhere"}, "http.listen"},
		{"unknown env", "", []string{"TANDEM_HTTP_LISTN=1"}, nil, "TANDEM_HTTP_LISTN"},
		{"dev off loopback", "", nil, []string{"--dev", "--listen", "0.0.0.0:7880"}, "http.listen"},
		{"bad listen_also", "http:\n  listen_also: [\"nowhere\"]\n", nil, []string{"--dev"}, "http.listen_also"},
		{"dev listen_also off loopback", "http:\n  listen_also: [\"[::]:7880\"]\n", nil, []string{"--dev"}, "http.listen_also"},
		{"public without secret", "", nil, []string{"--listen", "0.0.0.0:7880"}, "auth.secret"},
		{"short secret", "", []string{"TANDEM_AUTH_SECRET=short"}, []string{"--listen", "0.0.0.0:7880"}, "auth.secret"},
		{"bad log level", "log:\n  level: loud\n", nil, []string{"--dev"}, "log.level"},
		{"zero max token ttl", "auth:\n  max_token_ttl: 0s\n", nil, []string{"--dev"}, "auth.max_token_ttl"},
		{"dev token ttl over the max", "auth:\n  max_token_ttl: 1h\n", nil, []string{"--dev"}, "auth.dev_token_ttl"},
		{"bad ice url", "ice:\n  servers:\n    - urls: [\"http://x\"]\n", nil, []string{"--dev"}, "ice.servers"},
		{"invite limit without a burst", "calls:\n  pair_invite_burst: 0\n", nil, []string{"--dev"}, "calls.pair_invite_burst"},
		{"negative invite limit", "", []string{"TANDEM_CALLS_CALLEE_INVITES_PER_MINUTE=-1"}, []string{"--dev"}, "calls.callee_invites_per_minute"},
		{"negative grouping", "calls:\n  group_unanswered_within: -1m\n", nil, []string{"--dev"}, "calls.group_unanswered_within"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.yaml, tt.env, tt.args...)
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("err = %v, want *KeyError", err)
			}
			if ke.Key != tt.key {
				t.Fatalf("key = %q, want %q (%v)", ke.Key, tt.key, err)
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("message %q does not name %q", err, tt.key)
			}
		})
	}
}

// TestDecodeErrorSaysWhereTheValueCameFrom: an operator who typed a bad value
// sees it, and the variable, file or flag that set it.
func TestDecodeErrorSaysWhereTheValueCameFrom(t *testing.T) {
	_, err := load(t, "", []string{"TANDEM_CALLS_RING_TIMEOUT=forever"}, "--dev")
	if err == nil {
		t.Fatal("bad duration accepted")
	}
	for _, want := range []string{"calls.ring_timeout", `"forever"`, "TANDEM_CALLS_RING_TIMEOUT"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not mention %s", err, want)
		}
	}
	_, err = load(t, "calls:\n  ring_timeout: soon\n", nil, "--dev")
	if err == nil || !strings.Contains(err.Error(), `"soon"`) || !strings.Contains(err.Error(), "tandem.yaml") {
		t.Errorf("file value: message %q should show the value and the file", err)
	}
}

func TestPublicWithSecret(t *testing.T) {
	c, err := load(t, "", []string{"TANDEM_AUTH_SECRET=" + secret}, "--listen", "0.0.0.0:7880")
	if err != nil {
		t.Fatal(err)
	}
	if c.Media.UDPListen != ":7882" {
		t.Errorf("udp = %q", c.Media.UDPListen)
	}
}

// TestExampleConfigIsComplete keeps configs/tandem.yaml in step with the
// defaults: it must load, and name every key.
func TestExampleConfigIsComplete(t *testing.T) {
	p := filepath.Join("..", "..", "configs", "tandem.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for k := range defaults() {
		leaf := k[strings.LastIndex(k, ".")+1:]
		if !strings.Contains(string(b), leaf+":") {
			t.Errorf("configs/tandem.yaml does not mention %s", k)
		}
	}
	if _, err := load(t, string(b), []string{"TANDEM_AUTH_SECRET=" + secret}); err != nil {
		t.Fatalf("configs/tandem.yaml does not load: %v", err)
	}
}
