#!/bin/sh
# Runs a command RUNS times in a row while a busy loop keeps one core busy,
# and says how many runs passed: a test that fails once here fails in CI
# some day.
#
#   scripts/under-load.sh 5 ./scripts/loopback-only.sh go test -race -count=1 -run '^TestBrowserAssist$' ./test/
#
# LOAD=0 runs without the busy core, for comparison. A failed run's output
# is kept in a file named in the summary; a passed run's is dropped.
set -u
[ $# -ge 2 ] || { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
runs=$1
shift
hog=""
if [ "${LOAD:-1}" != 0 ]; then
	sh -c 'trap "exit 0" TERM; while :; do :; done' &
	hog=$!
	trap 'kill "$hog" 2>/dev/null' EXIT INT TERM
fi
pass=0
fail=0
i=0
while [ "$i" -lt "$runs" ]; do
	i=$((i + 1))
	log=$(mktemp "${TMPDIR:-/tmp}/under-load.$i.XXXXXX")
	start=$(date +%s)
	if "$@" >"$log" 2>&1; then
		pass=$((pass + 1))
		rm -f "$log"
		r=PASS
	else
		fail=$((fail + 1))
		r="FAIL (output: $log)"
	fi
	echo "run $i/$runs: $r in $(($(date +%s) - start)) s"
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
