#!/usr/bin/env bash
# fuzz.sh [PKG...] runs every Fuzz target of each package for FUZZTIME
# (default 20s), one target after another: go test -fuzz takes one target
# at a time.
set -euo pipefail

fuzztime=${FUZZTIME:-20s}
go=${GO:-go}
[ $# -gt 0 ] || set -- ./journal ./internal/journaltest

for pkg in "$@"; do
	list=$("$go" test -list 'Fuzz.*' "$pkg")
	targets=$(grep '^Fuzz' <<<"$list" || true)
	if [ -z "$targets" ]; then
		echo "fuzz: $pkg has no Fuzz targets"
		continue
	fi
	for target in $targets; do
		echo "fuzz: $pkg $target for $fuzztime"
		"$go" test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
	done
done
