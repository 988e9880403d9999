package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestAgentInstall: `tandem agent install` writes a user unit that runs
// this program's agent with the given file at every login and restarts it
// whenever it stops, and systemd accepts it; a file that would not start
// the agent is refused; uninstall removes the unit.
func TestAgentInstall(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "agent token")
	if err := os.WriteFile(token, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "my agent.yaml")
	if err := os.WriteFile(cfg, []byte("server: wss://tandem.example.org/ws\ntoken_file: "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	units := filepath.Join(dir, "units")
	var out bytes.Buffer
	if err := run([]string{"agent", "install", "--config", cfg, "--unit-dir", units}, &out, &out); err != nil {
		t.Fatalf("install: %v\n%s", err, out.String())
	}
	b, err := os.ReadFile(filepath.Join(units, agentUnitName))
	if err != nil {
		t.Fatal(err)
	}
	unit := string(b)
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	for _, want := range []string{
		"ExecStart=" + exe + ` agent --config "` + cfg + `"`,
		"Restart=always",
		"WantedBy=graphical-session.target",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("the unit lacks %q:\n%s", want, unit)
		}
	}
	if !strings.Contains(out.String(), "systemctl --user enable --now "+agentUnitName) {
		t.Errorf("install did not say how to start it:\n%s", out.String())
	}
	if analyze, err := exec.LookPath("systemd-analyze"); err == nil {
		// Offline: the unit's keys and sections, and that ExecStart's
		// program exists. It warns (exit 0) of unknown keys, naming the file.
		path := filepath.Join(units, agentUnitName)
		o, err := exec.Command(analyze, "verify", path).CombinedOutput()
		if err != nil || strings.Contains(string(o), path) {
			t.Errorf("systemd-analyze verify: %v\n%s", err, o)
		}
	}

	// A file the agent could not start with is refused.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("server: wss://x/ws\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"agent", "install", "--config", bad, "--unit-dir", t.TempDir()}, &out, &out); err == nil {
		t.Error("install accepted a file without a token")
	}

	if err := run([]string{"agent", "uninstall", "--unit-dir", units}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(units, agentUnitName)); !os.IsNotExist(err) {
		t.Errorf("the unit is still there after uninstall: %v", err)
	}
}
