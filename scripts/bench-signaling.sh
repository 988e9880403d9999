#!/bin/sh
# Signaling benchmark, on loopback, in one run:
#  1. invites per second and the time from invite to the callee's device
#     ringing: one node alone, then three nodes sharing a redis-server with
#     every caller and callee on different nodes (INVITES, default 20000,
#     by PAIRS (default 400) pairs at once, each at most 40 a second);
#  2. the memory one node needs per idle signed-in device, with IDLE
#     (default 18000; at most what `ulimit -n` allows the node and this
#     shell) sessions held.
# Usage: scripts/bench-signaling.sh   (make bench-signaling runs it through
# scripts/loopback-only.sh)
set -eu
INVITES=${INVITES:-20000}
IDLE=${IDLE:-18000}
PAIRS=${PAIRS:-400}
SECRET=a-benchmark-secret-of-at-least-32-bytes
BIN=${TANDEM_BIN:-bin/tandem}
WORK=${KEEP:-$(mktemp -d)}
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; [ -n "${KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
# Thousands of load devices connect from three addresses: no per-address
# connection limit.
export TANDEM_TURN_UDP_LISTEN=127.0.0.1:0 TANDEM_TURN_TCP_LISTEN=127.0.0.1:0 TANDEM_AUTH_SECRET=$SECRET TANDEM_HTTP_MAX_CONNS_PER_IP=0
# Each pair calls up to 40 times a second: lift the invite limits.
export TANDEM_CALLS_CALLER_INVITES_PER_MINUTE=0 TANDEM_CALLS_CALLEE_INVITES_PER_MINUTE=0 TANDEM_CALLS_PAIR_INVITES_PER_MINUTE=0

redis-server --port 16379 --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" --loglevel warning >"$WORK/redis.log" 2>&1 &
PIDS="$PIDS $!"
until redis-cli -p 16379 ping >/dev/null 2>&1; do sleep 0.1; done
mkdir -p "$WORK/solo"
"$BIN" serve --dev --data-dir "$WORK/solo" --listen 127.0.0.1:17800 --media-udp 127.0.0.1:17801 --log-level warn >"$WORK/solo.log" 2>&1 &
SOLO=$!; PIDS="$PIDS $SOLO"
for i in 1 2 3; do
	mkdir -p "$WORK/n$i"
	TANDEM_REDIS_ADDRS=127.0.0.1:16379 "$BIN" serve --dev --data-dir "$WORK/n$i" \
		--listen 127.0.0.1:1781$i --media-udp 127.0.0.1:1782$i --log-level warn >"$WORK/n$i.log" 2>&1 &
	PIDS="$PIDS $!"
done
sleep 2

echo "== one node, local store"
"$BIN" loadtest signaling --secret $SECRET --invites "$INVITES" --pairs "$PAIRS" --url ws://127.0.0.1:17800/ws
echo "== three nodes on one Redis, caller and callee on different nodes"
"$BIN" loadtest signaling --secret $SECRET --invites "$INVITES" --pairs "$PAIRS" \
	--url ws://127.0.0.1:17811/ws --url ws://127.0.0.1:17812/ws --url ws://127.0.0.1:17813/ws
echo "== idle devices held by one node"
"$BIN" loadtest signaling --secret $SECRET --idle "$IDLE" --pid "$SOLO" --url ws://127.0.0.1:17800/ws \
	--source 127.0.0.1 --source 127.0.0.2 --source 127.0.0.3
