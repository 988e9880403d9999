#!/bin/sh
# Runs a command in a fresh network namespace that has only loopback, so
# that nothing a test starts (server, pion clients, Chromium) can send a
# packet anywhere but 127.0.0.1 / ::1. Where namespaces are not permitted,
# it runs the command as it is: every test binds to and targets loopback
# anyway.
set -eu
if [ "${TANDEM_NO_NETNS:-}" = "" ] && command -v unshare >/dev/null 2>&1 \
	&& command -v ip >/dev/null 2>&1 && unshare -n true 2>/dev/null; then
	exec unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
fi
echo "note: network namespaces unavailable; running on the host's loopback" >&2
exec "$@"
