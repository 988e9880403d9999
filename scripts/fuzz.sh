#!/bin/sh
# Runs every native fuzz target in the module (every `func FuzzX(f
# *testing.F)` in a _test.go file), one after the other, each for
# FUZZTIME (default 50000x: a count, not a duration — a deadline that lands
# while the fuzzer minimizes an input is reported as a failure).
#
#   scripts/fuzz.sh            run them all
#   scripts/fuzz.sh -l         list them as "<package dir> <target>"
#   FUZZ=Verify scripts/fuzz.sh    only targets whose name matches the regex
#
# A target added anywhere is picked up without editing this file or the
# Makefile.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-50000x}

files() {
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		git ls-files '*_test.go'
	else
		find . -name '*_test.go' -not -path './.git/*' | sed 's|^\./||'
	fi
}

targets=$(files | xargs grep -H '^func Fuzz[A-Za-z0-9_]*(f \*testing\.F)' \
	| sed -E 's|^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*|\1 \2|; s|^[^ /]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*|. \1|' \
	| sort -u)
if [ -n "${FUZZ:-}" ]; then
	targets=$(printf '%s\n' "$targets" | awk -v re="$FUZZ" '$2 ~ re')
fi
if [ "${1:-}" = "-l" ]; then
	printf '%s\n' "$targets"
	exit 0
fi
[ -n "$targets" ] || { echo "fuzz: no targets" >&2; exit 1; }
n=$(printf '%s\n' "$targets" | wc -l)
i=0
printf '%s\n' "$targets" | while read -r dir name; do
	i=$((i + 1))
	echo "fuzz [$i/$n] $name in ./$dir"
	$GO test -run='^$' -fuzz="^$name\$" -fuzztime="$FUZZTIME" "./$dir"
done
