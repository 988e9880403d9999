package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"

	"github.com/spf13/pflag"

	"github.com/tandemcall/tandem/internal/agent"
)

// agentUnitName is the agent's systemd user unit.
const agentUnitName = "tandem-agent.service"

// agentUnit starts the agent with the desktop session and starts it again
// whenever it stops: a lost server, a crash, a new login. The graphical
// session's environment (DISPLAY or WAYLAND_DISPLAY, XDG_SESSION_TYPE,
// DBUS_SESSION_BUS_ADDRESS) reaches it through the user manager, into
// which desktop sessions import it.
var agentUnit = template.Must(template.New("unit").Parse(`[Unit]
Description=Tandem desktop agent: remote help for this computer's user
After=graphical-session.target
PartOf=graphical-session.target
# Give up for a while after 10 quick failures in a minute (a revoked
# token, say); the journal says why: journalctl --user -u tandem-agent.
StartLimitIntervalSec=60
StartLimitBurst=10

[Service]
Type=exec
ExecStart={{.Exec}} agent --config {{.Config}}
Restart=always
RestartSec=5

[Install]
WantedBy=graphical-session.target
`))

// agentInstallCmd writes the agent's systemd user unit and, with --now,
// enables and starts it; agentUninstallCmd undoes that.
func agentInstallCmd(args []string, stdout, stderr io.Writer, uninstall bool) error {
	name := "install"
	if uninstall {
		name = "uninstall"
	}
	fs := pflag.NewFlagSet("agent "+name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "agent configuration file the service runs with (required to install)")
	unitDir := fs.String("unit-dir", "", "where to write the unit (default $XDG_CONFIG_HOME/systemd/user)")
	now := fs.Bool("now", false, "also tell systemd: enable and start the service (or stop and disable it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := userUnitDir(*unitDir)
	if err != nil {
		return err
	}
	path := filepath.Join(dir, agentUnitName)
	if uninstall {
		if *now {
			if err := systemctlUser(stdout, "disable", "--now", agentUnitName); err != nil {
				return err
			}
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("agent uninstall: %w", err)
		}
		fmt.Fprintf(stdout, "Removed %s.\n", path)
		return nil
	}

	if *cfgPath == "" {
		return errors.New("agent install: --config is required: the service runs the agent with that file")
	}
	cfgAbs, err := filepath.Abs(*cfgPath)
	if err != nil {
		return fmt.Errorf("agent install: %w", err)
	}
	// A file that would not start the agent is refused now, not at login.
	f, err := agent.LoadFile(cfgAbs)
	if err != nil {
		return err
	}
	cfg, err := f.Config()
	if err != nil {
		return err
	}
	if cfg.URL == "" || cfg.Token == "" {
		return errors.New("agent install: the file needs server and token_file")
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("agent install: finding this program: %w", err)
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return fmt.Errorf("agent install: %w", err)
	}
	unit, err := renderAgentUnit(exe, cfgAbs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("agent install: %w", err)
	}
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		return fmt.Errorf("agent install: %w", err)
	}
	fmt.Fprintf(stdout, "Wrote %s.\n", path)
	if !f.Unattended.Enabled {
		fmt.Fprintln(stdout, "Note: with no terminal to ask on, the service answers calls only as unattended access allows (unattended in the file); on Wayland the desktop's own sharing dialog asks.")
	}
	if *now {
		if err := systemctlUser(stdout, "daemon-reload"); err != nil {
			return err
		}
		return systemctlUser(stdout, "enable", "--now", agentUnitName)
	}
	fmt.Fprintf(stdout, "Start it now and at every login with:\n  systemctl --user daemon-reload\n  systemctl --user enable --now %s\n", agentUnitName)
	return nil
}

// renderAgentUnit is the unit for the given program and configuration
// file, both absolute; paths with spaces are quoted as systemd reads them.
func renderAgentUnit(exe, cfg string) ([]byte, error) {
	quote := func(s string) string {
		if strings.ContainsAny(s, " \t\"\\") {
			return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
		}
		return s
	}
	var b bytes.Buffer
	if err := agentUnit.Execute(&b, struct{ Exec, Config string }{quote(exe), quote(cfg)}); err != nil {
		return nil, fmt.Errorf("agent install: %w", err)
	}
	return b.Bytes(), nil
}

// userUnitDir is where systemd looks for a user's own units.
func userUnitDir(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "systemd", "user"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("agent install: no home directory: %w (use --unit-dir)", err)
	}
	return filepath.Join(home, ".config", "systemd", "user"), nil
}

// systemctlUser runs systemctl --user with args, its output to out.
func systemctlUser(out io.Writer, args ...string) error {
	cmd := exec.Command("systemctl", append([]string{"--user"}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("systemctl --user %s: %w", strings.Join(args, " "), err)
	}
	return nil
}
