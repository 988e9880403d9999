#!/bin/sh
# Installs what Tandem's tests need on a Debian/Ubuntu machine, or says
# which package is missing. Browser tests are never skipped silently.
set -eu

need=""
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
	|| [ -n "${TANDEM_CHROMIUM:-}" ] || need="$need chromium"
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v turnutils_uclient >/dev/null 2>&1 || need="$need coturn"
# The impaired-network tests shape loopback in their own namespaces: tc
# (iproute2) for rate caps, nft for random loss.
command -v nft >/dev/null 2>&1 || need="$need nftables"
# The desktop agent's tests run it against a virtual X server, and its
# screen encoder links libvpx through cgo.
command -v Xvfb >/dev/null 2>&1 || need="$need xvfb"
# xclip is the program on that desktop that copies and pastes; Xephyr is
# a desktop that changes size or spans monitors, xrandr resizes it.
command -v xclip >/dev/null 2>&1 || need="$need xclip"
command -v Xephyr >/dev/null 2>&1 || need="$need xserver-xephyr"
command -v xrandr >/dev/null 2>&1 || need="$need x11-xserver-utils"
# The agent's Wayland tests run a headless GNOME desktop (mutter) with
# PipeWire and the XDG desktop portal, and a GTK 3 test window in Python;
# the agent reads the screen through libpipewire (cgo).
command -v dbus-daemon >/dev/null 2>&1 || need="$need dbus"
command -v mutter >/dev/null 2>&1 || need="$need mutter"
command -v pipewire >/dev/null 2>&1 || need="$need pipewire"
command -v wireplumber >/dev/null 2>&1 || need="$need wireplumber"
[ -x /usr/libexec/xdg-desktop-portal ] || need="$need xdg-desktop-portal"
[ -x /usr/libexec/xdg-desktop-portal-gnome ] || need="$need xdg-desktop-portal-gnome"
pkg-config --exists libpipewire-0.3 2>/dev/null || need="$need libpipewire-0.3-dev"
/usr/bin/python3 -c "import gi; gi.require_version('Gtk', '3.0'); from gi.repository import Gtk; import gi.repository.cairo" \
	>/dev/null 2>&1 || need="$need python3-gi python3-gi-cairo gir1.2-gtk-3.0"
# Multi-node tests run a real Redis.
command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
command -v gcc >/dev/null 2>&1 || need="$need gcc"
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
pkg-config --exists vpx 2>/dev/null || need="$need libvpx-dev"
# The web client's JSDoc types are checked by the TypeScript compiler,
# fetched with npm (make typecheck-web).
command -v npm >/dev/null 2>&1 || need="$need npm"

if [ -n "$need" ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing:$need"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
	elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		echo "installing:$need"
		sudo apt-get update -qq
		sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
	else
		echo "missing packages:$need — install them (Debian/Ubuntu: apt-get install$need) and run make test again" >&2
		exit 1
	fi
fi

# Fetch Go modules now: the tests themselves may run without a network.
go mod download
