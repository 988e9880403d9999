#!/bin/sh
# Side-by-side TURN benchmark: Tandem's embedded TURN and coturn's
# turnserver under the same turnutils_uclient workload (UDP, channels),
# in one run, on loopback. Prints server CPU µs per relayed round trip,
# the ratio, and loss. Usage: scripts/bench-turn.sh [clients] [messages]
# Run it through scripts/loopback-only.sh (make bench-turn does).
set -eu
M=${1:-50}
N=${2:-2000}
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
	--no-tls --no-dtls --no-tcp --min-port=20000 --max-port=29999 --total-quota=0 --user-quota=0 \
	--log-file=stdout --no-stdout-log >"$WORK/coturn.log" 2>&1 &
COTURN=$!; PIDS="$PIDS $COTURN"

TANDEM_TURN_SECRETS=$SECRET TANDEM_TURN_ALLOW_CIDRS=127.0.0.0/8 \
TANDEM_TURN_UDP_LISTEN=127.0.0.1:23478 TANDEM_TURN_TCP_LISTEN=127.0.0.1:23478 \
TANDEM_TURN_RELAY_PORT_MIN=30000 TANDEM_TURN_RELAY_PORT_MAX=39999 \
TANDEM_TURN_BANDWIDTH_PER_ALLOCATION=0 TANDEM_TURN_MAX_ALLOCATIONS_PER_USER=100000 \
TANDEM_TURN_AUTH_FAILURES_PER_MINUTE=100000 TANDEM_LOG_LEVEL=warn \
	"$BIN" serve --dev --data-dir "$WORK/data" --listen 127.0.0.1:0 --media-udp 127.0.0.1:0 >"$WORK/tandem.log" 2>&1 &
TANDEM=$!; PIDS="$PIDS $TANDEM"

turnutils_peer -L 127.0.0.1 -p 13480 >/dev/null 2>&1 &
PIDS="$PIDS $!"
sleep 1

run() { # name pid port size
	before=$(ticks "$2")
	start=$(date +%s.%N)
	out=$(turnutils_uclient -W $SECRET -u bench -e 127.0.0.1 -r 13480 -p "$3" -m "$M" -n "$N" -l "$4" -z 1 -c 127.0.0.1 2>&1 || true)
	end=$(date +%s.%N)
	after=$(ticks "$2")
	recv=$(echo "$out" | sed -n 's/.*tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\)$/\2/p' | tail -1)
	sent=$(echo "$out" | sed -n 's/.*tot_send_msgs=\([0-9]*\), tot_recv_msgs=\([0-9]*\)$/\1/p' | tail -1)
	lost=$(echo "$out" | sed -n 's/.*Total lost packets \([0-9]*\) (\([0-9.]*\)%).*/\2/p' | tail -1)
	awk -v n="$1" -v s="$4" -v t=$((after - before)) -v hz="$hz" -v r="${recv:-0}" -v snt="${sent:-0}" -v l="${lost:-?}" -v a="$start" -v b="$end" \
		'BEGIN { us = (r > 0) ? t * 1e6 / hz / r : 0; printf "%s %s %d %d %.2f %s %.1f\n", n, s, snt, r, us, l, b - a }'
}

echo "# clients=$M messages=$N interval=1ms channels; CPU from /proc (CLK_TCK=$hz)"
echo "# server size sent recv cpu_us_per_round_trip loss_% seconds"
for size in 100 1000; do
	c=$(run coturn $COTURN 13478 $size); echo "$c"
	t=$(run tandem $TANDEM 23478 $size); echo "$t"
	echo "$c
$t" | awk -v s=$size '$1=="coturn"{c=$5} $1=="tandem"{t=$5} END { if (t > 0) printf "ratio %s bytes: coturn/tandem CPU = %.2f (1.00 = as efficient as coturn, higher is better)\n", s, c/t }'
done
