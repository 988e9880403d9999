// Package portaltest runs a private headless GNOME desktop on Wayland for
// the tests of the desktop agent's portal backend: a session bus,
// PipeWire and WirePlumber, mutter with one 1280×720 virtual monitor, and
// the XDG desktop portal with its GNOME backend — the same portal, and
// the same consent dialog, as on a person's GNOME desktop.
//
// mutter refuses to run as root, and a session bus admits only its own
// user, so when the test runs as root the desktop runs as uid 65534 and
// the test itself runs again as that user, inside the desktop (Run).
package portaltest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

// Size of the virtual monitor.
const (
	Width  = 1280
	Height = 720
)

// childEnv marks the test process that runs inside the desktop; it holds
// the desktop's directory.
const childEnv = "TANDEM_PORTALTEST_DIR"

// nobody is the user the desktop runs as when the test runs as root.
const nobody = 65534

// Desktop is the running desktop, seen from the test inside it.
type Desktop struct {
	t   *testing.T
	Dir string
}

// Run starts the desktop and runs the calling test again inside it, as
// the desktop's user, with its environment. In the outer test it returns
// nil once the inner run has ended, failing the test if the inner run
// failed: the caller returns at once. In the inner run it returns the
// Desktop, ready: the portal and mutter are on the session bus.
func Run(t *testing.T) *Desktop {
	t.Helper()
	if dir := os.Getenv(childEnv); dir != "" {
		d := &Desktop{t: t, Dir: dir}
		d.waitReady()
		return d
	}
	for _, p := range []string{"dbus-daemon", "pipewire", "wireplumber", "mutter", python,
		"/usr/libexec/xdg-desktop-portal", "/usr/libexec/xdg-desktop-portal-gnome"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("portaltest: %s not found: install the Debian packages dbus, pipewire, wireplumber, mutter, xdg-desktop-portal, xdg-desktop-portal-gnome, python3-gi, gir1.2-gtk-3.0 (scripts/test-deps.sh does): %v", p, err)
		}
	}
	if err := exec.Command(python, "-c", "import gi; gi.require_version('Gtk', '3.0'); from gi.repository import Gtk").Run(); err != nil {
		t.Fatalf("portaltest: %s cannot load GTK 3: install python3-gi and gir1.2-gtk-3.0: %v", python, err)
	}
	o := newOuter(t)
	o.start()
	o.runInner()
	return nil
}

// outer is the desktop, seen from the test that starts it.
type outer struct {
	t        *testing.T
	dir, run string
	env      []string
	cred     *syscall.Credential
}

func newOuter(t *testing.T) *outer {
	dir := t.TempDir()
	o := &outer{t: t, dir: dir, run: filepath.Join(dir, "run")}
	if os.Getuid() == 0 {
		o.cred = &syscall.Credential{Uid: nobody, Gid: nobody}
		// The desktop's user must reach its directory.
		for _, p := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, sub := range []string{"run", "home", "tmp", "logs"} {
		p := filepath.Join(dir, sub)
		mode := os.FileMode(0o755)
		if sub == "run" {
			mode = 0o700 // XDG_RUNTIME_DIR must be private
		}
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if o.cred != nil {
			if err := os.Chown(p, nobody, nobody); err != nil {
				t.Fatal(err)
			}
		}
	}
	// xdg-desktop-portal starts the document portal, which mounts a FUSE
	// file system in the runtime directory; after the desktop is killed
	// it is unmounted, or the directory cannot be removed.
	t.Cleanup(func() { unmount(filepath.Join(o.run, "doc")) })
	home := filepath.Join(dir, "home")
	o.env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + home,
		"XDG_RUNTIME_DIR=" + o.run,
		"XDG_CONFIG_HOME=" + home + "/.config",
		"XDG_DATA_HOME=" + home + "/.local/share",
		"XDG_STATE_HOME=" + home + "/.local/state",
		"XDG_CACHE_HOME=" + home + "/.cache",
		"DBUS_SESSION_BUS_ADDRESS=unix:path=" + o.run + "/bus",
		"XDG_SESSION_TYPE=wayland",
		"XDG_CURRENT_DESKTOP=GNOME",
		"WAYLAND_DISPLAY=wayland-0",
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"NO_AT_BRIDGE=1",
		"GTK_A11Y=none",
		"GSETTINGS_BACKEND=memory",
		"LANG=C.UTF-8",
	}
	return o
}

// spawn starts one program of the desktop as its user, in a process
// group of its own that is killed at the end of the test (with whatever
// it started, such as services the bus activates).
func (o *outer) spawn(name string, args ...string) {
	o.t.Helper()
	logf, err := os.Create(filepath.Join(o.dir, "logs", name+".log"))
	if err != nil {
		o.t.Fatal(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = o.env
	cmd.Dir = filepath.Join(o.dir, "home")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: o.cred}
	if err := cmd.Start(); err != nil {
		logf.Close()
		o.t.Fatalf("portaltest: start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	o.t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		logf.Close()
	})
}

// waitFile waits for a socket or file to appear.
func (o *outer) waitFile(what, path string) {
	o.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	o.t.Fatalf("portaltest: %s did not start (no %s)\n%s", what, path, o.logs())
}

// start starts the desktop's programs, in order.
func (o *outer) start() {
	o.spawn("dbus-daemon", "dbus-daemon", "--session", "--address=unix:path="+o.run+"/bus", "--nofork", "--nopidfile")
	o.waitFile("dbus-daemon", o.run+"/bus")
	o.spawn("pipewire", "pipewire")
	o.waitFile("pipewire", o.run+"/pipewire-0")
	// WirePlumber links a consumer's stream to the screen's node.
	o.spawn("wireplumber", "wireplumber")
	o.spawn("mutter", "mutter", "--headless", "--virtual-monitor", fmt.Sprintf("%dx%d", Width, Height),
		"--wayland", "--no-x11", "--wayland-display=wayland-0")
	o.waitFile("mutter", o.run+"/wayland-0")
	o.spawn("xdg-desktop-portal-gnome", "/usr/libexec/xdg-desktop-portal-gnome")
	o.spawn("xdg-desktop-portal", "/usr/libexec/xdg-desktop-portal")
}

// runInner runs the test again, as the desktop's user, with its
// environment, and reports its output.
func (o *outer) runInner() {
	t := o.t
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The go tool's build directory is private to whoever ran it.
	bin := filepath.Join(o.dir, "test.bin")
	if err := copyFile(self, bin); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^"+t.Name()+"$", "-test.count=1", "-test.v", "-test.timeout=95s")
	cmd.Env = append(o.env, childEnv+"="+o.dir)
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "TANDEM_") { // the tests' own settings, such as TANDEM_TEST_LOG
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Dir = filepath.Join(o.dir, "home")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: o.cred}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("portaltest: run the test inside the desktop: %v", err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		t.Log("inside: " + sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("portaltest: the test inside the desktop failed: %v\n%s", err, o.logs())
	}
}

// logs returns the tails of the desktop programs' logs.
func (o *outer) logs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(o.dir, "logs", "*.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", filepath.Base(f), strings.Join(lines, "\n"))
	}
	return b.String()
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// waitReady waits until mutter's remote desktop API and the portal are on
// the session bus.
func (d *Desktop) waitReady() {
	t := d.t
	conn, err := dbus.ConnectSessionBus()
	if err != nil {
		t.Fatalf("portaltest: session bus: %v", err)
	}
	defer conn.Close()
	deadline := time.Now().Add(20 * time.Second)
	for _, name := range []string{"org.gnome.Mutter.RemoteDesktop", "org.gnome.Mutter.ScreenCast", "org.freedesktop.portal.Desktop"} {
		for {
			var owned bool
			err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&owned)
			if err == nil && owned {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("portaltest: %s did not come on the session bus (%v)", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// The portal answers once its backends are found; ask it something.
	for {
		var v dbus.Variant
		err := conn.Object("org.freedesktop.portal.Desktop", "/org/freedesktop/portal/desktop").
			Call("org.freedesktop.DBus.Properties.Get", 0, "org.freedesktop.portal.RemoteDesktop", "version").Store(&v)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("portaltest: the portal has no RemoteDesktop interface: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// python is the system's Python, which has Debian's GObject bindings
// (python3-gi), whatever python3 comes first on PATH.
const python = "/usr/bin/python3"

// unmount detaches a mount point if something is mounted there.
func unmount(path string) {
	if os.Getuid() == 0 {
		_ = syscall.Unmount(path, syscall.MNT_DETACH)
		return
	}
	_ = exec.Command("fusermount", "-u", "-z", path).Run()
}
