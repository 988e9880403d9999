package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// File is the agent's configuration file (configs/agent.yaml). The
// machine's owner writes it; unattended access is possible only when it
// says so.
type File struct {
	Server      string        `yaml:"server"`
	TokenFile   string        `yaml:"token_file"`
	Desktop     string        `yaml:"desktop"`
	Display     string        `yaml:"display"`
	StateDir    string        `yaml:"state_dir"`
	FPS         int           `yaml:"fps"`
	BitrateKbps int           `yaml:"bitrate_kbps"`
	LocalPause  time.Duration `yaml:"local_pause"`
	Unattended  struct {
		Enabled bool     `yaml:"enabled"`
		Helpers []string `yaml:"helpers"`
		Grants  []string `yaml:"grants"`
	} `yaml:"unattended"`
}

// LoadFile reads an agent configuration file; unknown keys are errors.
func LoadFile(path string) (File, error) {
	var f File
	b, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("agent config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) { // EOF: an empty file
		return f, fmt.Errorf("agent config %s: %w", path, err)
	}
	return f, f.check()
}

// check validates the file's values.
func (f File) check() error {
	for _, g := range f.Unattended.Grants {
		if !slices.Contains([]string{"view", "annotate", "control", "clipboard"}, g) {
			return fmt.Errorf("agent config: unattended.grants: unknown grant %q (view, annotate, control or clipboard)", g)
		}
	}
	if f.Unattended.Enabled && len(f.Unattended.Helpers) == 0 {
		return errors.New("agent config: unattended.enabled needs unattended.helpers: the users allowed in with nobody at the machine")
	}
	if f.Desktop != "" && f.Desktop != DesktopX11 && f.Desktop != DesktopPortal {
		return fmt.Errorf("agent config: desktop: unknown %q (x11 or portal; empty: by the session type)", f.Desktop)
	}
	if f.FPS < 0 || f.FPS > 60 {
		return fmt.Errorf("agent config: fps %d out of range 1–60", f.FPS)
	}
	return nil
}

// Config turns the file into an Agent configuration, reading the token
// from TokenFile.
func (f File) Config() (Config, error) {
	c := Config{
		URL: f.Server, Desktop: f.Desktop, Display: f.Display, StateDir: f.StateDir, FPS: f.FPS, BitrateKbps: f.BitrateKbps, LocalPause: f.LocalPause,
		Unattended: Unattended{Enabled: f.Unattended.Enabled, Helpers: f.Unattended.Helpers, Grants: f.Unattended.Grants},
	}
	if f.TokenFile != "" {
		b, err := os.ReadFile(f.TokenFile)
		if err != nil {
			return c, fmt.Errorf("agent config: token_file: %w", err)
		}
		c.Token = strings.TrimSpace(string(b))
	}
	return c, nil
}
