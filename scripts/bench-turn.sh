#!/bin/sh
# Side-by-side TURN benchmark: Tandem's embedded TURN and coturn's
# turnserver under the same turnutils_uclient workload (UDP, channels),
# in one run, on loopback. Prints server CPU µs per relayed round trip,
# the ratio, and loss; then the server memory each needs per allocation
# with ALLOCS (default 10000) allocations held.
# Usage: scripts/bench-turn.sh [clients] [messages]
# Run it through scripts/loopback-only.sh (make bench-turn does).
set -eu
M=${1:-50}
N=${2:-2000}
ALLOCS=${ALLOCS:-10000}
SECRET=bench-secret-0123456789abcdef
BIN=${TANDEM_BIN:-bin/tandem}
WORK=$(mktemp -d)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

turnserver -n --no-cli --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port=13478 \
	--use-auth-secret --static-auth-secret=$SECRET --realm=tandem --allow-loopback-peers \
	--no-tls --no-dtls --no-tcp --min-port=32768 --max-port=49151 --total-quota=0 --user-quota=0 \
	--log-file=stdout --no-stdout-log >"$WORK/coturn.log" 2>&1 &
COTURN=$!; PIDS="$PIDS $COTURN"

TANDEM_TURN_SECRETS=$SECRET TANDEM_TURN_ALLOW_CIDRS=127.0.0.0/8 \
TANDEM_TURN_UDP_LISTEN=127.0.0.1:23478 TANDEM_TURN_TCP_LISTEN=127.0.0.1:23478 \
TANDEM_TURN_RELAY_PORT_MIN=49152 TANDEM_TURN_RELAY_PORT_MAX=65535 TANDEM_TURN_MAX_ALLOCATIONS=100000 \
TANDEM_TURN_BANDWIDTH_PER_ALLOCATION=0 TANDEM_TURN_MAX_ALLOCATIONS_PER_USER=100000 \
TANDEM_TURN_AUTH_FAILURES_PER_MINUTE=100000 TANDEM_LOG_LEVEL=warn \
	env ${SERVER_ENV:-} "$BIN" serve --dev --data-dir "$WORK/data" --listen 127.0.0.1:0 --media-udp 127.0.0.1:0 >"$WORK/tandem.log" 2>&1 &
TANDEM=$!; PIDS="$PIDS $TANDEM"

turnutils_peer -L 127.0.0.1 -p 13480 >/dev/null 2>&1 &
PIDS="$PIDS $!"
sleep 1

run() { # name pid port size -> "name size sent recv ticks loss seconds"
	before=$(ticks "$2")
	start=$(date +%s.%N)
	out=$(turnutils_uclient -W $SECRET -u bench -e 127.0.0.1 -r 13480 -p "$3" -m "$M" -n "$N" -l "$4" -z 1 -c 127.0.0.1 2>&1 || true)
	end=$(date +%s.%N)
	after=$(ticks "$2")
	recv=$(echo "$out" | sed -n 's/.*tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\)$/\2/p' | tail -1)
	sent=$(echo "$out" | sed -n 's/.*tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\)$/\1/p' | tail -1)
	lost=$(echo "$out" | sed -n 's/.*Total lost packets \([0-9]*\) (\([0-9.]*\)%).*/\2/p' | tail -1)
	echo "$1 $4 ${sent:-0} ${recv:-0} $((after - before)) ${lost:-?} $(echo "$start $end" | awk '{printf "%.1f", $2 - $1}')"
}

# Runs alternate between the two servers, REPEAT times per payload, so
# that load from other tenants of a shared machine falls on both; the
# ratio is taken over the sums.
REPEAT=${REPEAT:-3}
echo "# clients=$M messages=$N interval=1ms channels, $REPEAT alternating runs per payload; CPU from /proc (CLK_TCK=$hz)"
echo "# server size sent recv cpu_us_per_round_trip loss_% seconds"
for size in 100 1000; do
	rows=""
	for _ in $(seq "$REPEAT"); do
		rows="$rows
$(run coturn $COTURN 13478 $size)
$(run tandem $TANDEM 23478 $size)"
	done
	echo "$rows" | awk -v hz="$hz" -v s="$size" '
		NF == 7 {
			us = ($4 > 0) ? $5 * 1e6 / hz / $4 : 0
			printf "%s %s %d %d %.2f %s %s\n", $1, $2, $3, $4, us, $6, $7
			t[$1] += $5; r[$1] += $4; sent[$1] += $3
		}
		END {
			c = t["coturn"] * 1e6 / hz / r["coturn"]; d = t["tandem"] * 1e6 / hz / r["tandem"]
			printf "total %s bytes: coturn %.2f µs, tandem %.2f µs per round trip; coturn/tandem CPU = %.2f (1.00 = as efficient as coturn, higher is better); lost coturn %d, tandem %d\n", s, c, d, c / d, sent["coturn"] - r["coturn"], sent["tandem"] - r["tandem"]
		}'
done

# The allocation clients use their own source address, so their ports
# never meet an allocation turnutils_uclient left behind.
echo "# memory with $ALLOCS allocations held (RSS of the server process)"
for srv in "coturn $COTURN 13478" "tandem $TANDEM 23478"; do
	set -- $srv
	echo "$1: $("$BIN" loadtest turn --server 127.0.0.1:$3 --client-ip 127.0.0.2 --secret $SECRET --allocations "$ALLOCS" --pid "$2" 2>&1 | tr '\n' ' ')"
done
