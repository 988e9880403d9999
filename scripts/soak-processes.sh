#!/bin/sh
# Soaks three `tandem serve` processes sharing a private redis-server with
# `tandem loadtest soak` for DURATION (default 20m), link bursts on, and
# prints its result: each node's goroutines, heap, RSS and files before
# and after, and its RSS slope an hour. Run it in a namespace of its own:
#
#   make build && ./scripts/loopback-only.sh ./scripts/soak-processes.sh 20m
#
# The nodes listen on 127.0.0.1:17881-17883 and redis on 127.0.0.1:16391.
set -u
DURATION=${1:-20m}
BIN=${BIN:-bin/tandem}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
redis-server --port 16391 --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
redis=$!
sleep 1
secret=a-soak-secret-of-at-least-32-bytes-long
pids=""
for i in 1 2 3; do
	TANDEM_REDIS_ADDRS=127.0.0.1:16391 TANDEM_AUTH_SECRET=$secret \
	TANDEM_CALLS_RING_TIMEOUT=2s TANDEM_CALLS_RECONNECT_GRACE=5s \
	TANDEM_CALLS_CALLER_INVITES_PER_MINUTE=0 TANDEM_CALLS_CALLEE_INVITES_PER_MINUTE=0 \
	TANDEM_CALLS_PAIR_INVITES_PER_MINUTE=0 TANDEM_HTTP_MAX_CONNS_PER_IP=0 \
	TANDEM_TURN_UDP_LISTEN=127.0.0.1:0 TANDEM_TURN_TCP_LISTEN=127.0.0.1:0 \
		"$BIN" serve --dev --data-dir "$dir/n$i" --listen 127.0.0.1:1788$i --media-udp 127.0.0.1:0 >"$dir/n$i.log" 2>&1 &
	pids="$pids $!"
done
sleep 3
"$BIN" loadtest soak --url ws://127.0.0.1:17881/ws --url ws://127.0.0.1:17882/ws --url ws://127.0.0.1:17883/ws \
	--secret $secret --duration "$DURATION" --rate 5 --people 12 --hold 1s --ring-timeout 2s --link-bursts 5s --progress 1m
rc=$?
for p in $pids; do kill "$p"; done
wait $pids
kill "$redis"
wait "$redis"
errors=$(grep -h "level=ERROR" "$dir"/n*.log | wc -l)
echo "the nodes logged $errors error lines"
grep -h "level=ERROR" "$dir"/n*.log | head -20
exit $rc
