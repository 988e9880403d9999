#!/bin/sh
# SFU forwarding cost: a dev-mode Tandem node on loopback and
# `tandem loadtest media` against it, one scenario after another:
#   fanout   1 video+audio publisher -> 20 receive-only subscribers
#   meeting  6 members, each publishing video+audio and receiving the others
#   audio    1 audio publisher -> 100 receive-only subscribers
# Video is 1 Mbit/s at 30 fps (packets of about 1040 bytes), audio 120-byte
# Opus packets every 20 ms. Prints one line per scenario: forwarded packets
# per second, server CPU µs (user + system, from /proc/PID/stat) per
# forwarded packet, loss by RTP sequence numbers, and one-way latency
# publisher -> SFU -> subscriber from send times stamped in the packets.
# Usage: scripts/bench-sfu.sh [scenario ...]   (default: all three)
# DURATION (default 20s) and WARMUP (default 3s) set each measured window;
# BIN (default bin/tandem) is the node, LOADTEST the load generator.
# Run it through scripts/loopback-only.sh (make bench-sfu does).
set -eu
BIN=${BIN:-bin/tandem}
# LOADTEST is the binary whose load generator runs (default BIN), so that
# two servers can be compared under the same load.
LOADTEST=${LOADTEST:-$BIN}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-3s}
SCENARIOS=${*:-fanout meeting audio}
WORK=$(mktemp -d)
PIDS=""
# The first signal drains the node, a second stops it at once; wait for it
# to exit before its data directory goes.
cleanup() {
	for p in $PIDS; do
		kill "$p" 2>/dev/null || continue
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill "$p" 2>/dev/null && sleep 0.5
	done
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# Every load client connects from 127.0.0.1: no per-address connection limit.
TANDEM_LOG_LEVEL=warn TANDEM_HTTP_MAX_CONNS_PER_IP=0 TANDEM_TURN_UDP_LISTEN=127.0.0.1:0 TANDEM_TURN_TCP_LISTEN=127.0.0.1:0 \
	"$BIN" serve --dev --data-dir "$WORK/data" --listen 127.0.0.1:0 --media-udp 127.0.0.1:0 \
	>"$WORK/tandem.out" 2>"$WORK/tandem.log" &
TANDEM=$!; PIDS="$PIDS $TANDEM"

# The dev banner names the address the kernel chose.
url=""
for _ in $(seq 100); do
	url=$(sed -n 's|.*Open \(http://127\.0\.0\.1:[0-9]*\) in .*|\1|p' "$WORK/tandem.out")
	[ -n "$url" ] && break
	kill -0 "$TANDEM" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$url" ]; then
	echo "bench-sfu: the node did not start:" >&2
	cat "$WORK/tandem.out" "$WORK/tandem.log" >&2
	exit 1
fi
WS="ws${url#http}/ws"

# UDP datagrams the kernel dropped (full receive buffers), for telling loss
# in the SFU from loss in the sockets; in the loopback-only namespace these
# are this benchmark's alone.
udp_errors() { awk '$1 == "Udp:" && $2 ~ /^[0-9]+$/ {print $4}' /proc/net/snmp; }

echo "# $(nproc) CPUs; node $WS (pid $TANDEM); window $DURATION after $WARMUP warm-up per scenario"
echo "# subscribers: members receiving media (in meeting every publisher receives the other five)"
printf '%-8s %10s %11s %14s %17s %8s %8s %8s %9s %7s\n' \
	scenario publishers subscribers forwarded_pps server_us_per_pkt loss_% p50_ms p95_ms udp_drops rss_mb
status=0
for sc in $SCENARIOS; do
	before=$(udp_errors)
	if ! "$LOADTEST" loadtest media --url "$WS" --scenario "$sc" --pid "$TANDEM" \
		--duration "$DURATION" --warmup "$WARMUP" >"$WORK/$sc.txt" 2>&1; then
		echo "bench-sfu: scenario $sc failed:" >&2
		cat "$WORK/$sc.txt" >&2
		status=1
	fi
	drops=$(($(udp_errors) - before))
	# The node's resident memory just after the scenario's members left.
	rss=$(awk '$1 == "VmRSS:" {printf "%d", $2 / 1024}' "/proc/$TANDEM/status")
	sed -n 's/^result //p' "$WORK/$sc.txt" | awk -v drops="$drops" -v rss="$rss" '{
		for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "%-8s %10s %11s %14s %17s %8s %8s %8s %9s %7s\n", v["scenario"], v["publishers"], v["receivers"],
			v["forwarded_pps"], v["cpu_us_per_packet"], v["loss_pct"], v["latency_p50_ms"], v["latency_p95_ms"], drops, rss
	}'
	sleep 2 # the node settles after the members leave
done
exit $status
