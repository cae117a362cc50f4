#!/usr/bin/env bash
# fuzz.sh [PKG...] runs every Fuzz target of each package (default: every
# package of the module) for FUZZTIME (default 20s), one target after
# another: go test -fuzz takes one target at a time. Minimizing a new
# input is capped at 5s: by default it may take 60s, reporting 0 execs/s
# meanwhile, which looks like a hang.
set -euo pipefail

fuzztime=${FUZZTIME:-20s}
go=${GO:-go}
[ $# -gt 0 ] || set -- $("$go" list ./...)

for pkg in "$@"; do
	list=$("$go" test -list 'Fuzz.*' "$pkg")
	targets=$(grep '^Fuzz' <<<"$list" || true)
	if [ -z "$targets" ]; then
		echo "fuzz: $pkg has no Fuzz targets"
		continue
	fi
	for target in $targets; do
		echo "fuzz: $pkg $target for $fuzztime"
		"$go" test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$pkg"
	done
done
