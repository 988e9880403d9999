// Package portal shares a Wayland desktop through the XDG desktop portal
// (org.freedesktop.portal.Desktop on the session bus): one RemoteDesktop
// session with a ScreenCast source on it gives the screen as a PipeWire
// stream and takes pointer and keyboard input for it. The compositor asks
// the person at the machine first, in its own dialog, and shows its own
// sharing indicator while the session lasts.
//
// Wayland gives no client the whole screen or another's input, so there
// is no other way: the portal is the desktop's door for remote desktop
// programs. GNOME (xdg-desktop-portal-gnome) and KDE (xdg-desktop-portal-kde)
// implement it; the portal of wlroots compositors such as sway
// (xdg-desktop-portal-wlr) has no RemoteDesktop interface, and Open says
// so.
//
// Frames come through libpipewire (cgo, the `pipewire` part of this
// package); builds without cgo, or with the nopipewire tag, have the
// D-Bus part only and OpenStream fails with ErrNoPipeWire.
package portal

import "errors"

// Errors of a portal session.
var (
	// ErrNoPortal: no XDG desktop portal on the session bus.
	ErrNoPortal = errors.New("portal: no org.freedesktop.portal.Desktop on the session bus: install xdg-desktop-portal and this desktop's backend (GNOME: xdg-desktop-portal-gnome, KDE: xdg-desktop-portal-kde)")
	// ErrNoRemoteDesktop: the portal has no RemoteDesktop interface, as
	// xdg-desktop-portal-wlr (sway and other wlroots compositors).
	ErrNoRemoteDesktop = errors.New("portal: this desktop's portal has no RemoteDesktop interface (xdg-desktop-portal-wlr, used by sway and other wlroots compositors, has none): remote assistance is not possible on this desktop")
	// ErrRefused: the person at the machine said no in the desktop's
	// dialog.
	ErrRefused = errors.New("portal: the person at the machine did not allow screen sharing and remote control in the desktop's dialog")
	// ErrNoControl: the person allowed sharing the screen but not remote
	// interaction.
	ErrNoControl = errors.New("portal: the desktop's dialog allowed sharing the screen but not remote interaction")
	// ErrClosed: the session ended, by Close or because the desktop
	// ended it (the person pressed its stop-sharing button).
	ErrClosed = errors.New("portal: the screen sharing session has ended")
	// ErrNoFrame: no picture has come yet.
	ErrNoFrame = errors.New("portal: no picture yet")
	// ErrStream: the PipeWire stream failed.
	ErrStream = errors.New("portal: screen stream")
	// ErrNoPipeWire: this build has no PipeWire (no cgo, or the
	// nopipewire tag).
	ErrNoPipeWire = errors.New("portal: this tandem was built without PipeWire (make agent with libpipewire-0.3-dev installed)")
)
