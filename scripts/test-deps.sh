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
