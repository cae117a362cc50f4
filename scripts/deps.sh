#!/usr/bin/env bash
# deps.sh installs, on Debian 12 as root, what `make test`, `make demo` and
# `make bench` need besides Go itself:
#
#   util-linux  unshare, for scripts/private-ns.sh
#   mount       mount, for its tmpfs mounts
#   systemd     systemd-journald and journalctl (not as PID 1: the tests
#               start journald themselves)
#   gcc, libc6-dev  go test -race needs cgo
#
# It is idempotent: it asks dpkg what is installed, and runs apt-get (update
# included) only when something is missing.
set -euo pipefail

packages=(util-linux mount systemd gcc libc6-dev)

command -v go >/dev/null || {
	echo "deps: go is not on PATH; install Go $(sed -n 's/^go //p' "$(dirname "$0")/../go.mod") first" >&2
	exit 1
}
command -v dpkg-query >/dev/null || {
	echo "deps: no dpkg-query; install by hand: ${packages[*]}" >&2
	exit 1
}

missing=()
for p in "${packages[@]}"; do
	if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" != installed ]; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -gt 0 ] || exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing ${missing[*]}: run as root to install them" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update </dev/null
apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
