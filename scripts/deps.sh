#!/usr/bin/env bash
# deps.sh installs, on Debian 12 as root, what `make test`, `make demo` and
# `make bench` need besides Go itself:
#
#   util-linux  unshare, for scripts/private-ns.sh
#   mount       mount, for its tmpfs mounts
#   systemd     systemd-journald and journalctl (not as PID 1: the tests
#               start journald themselves)
#   gcc, libc6-dev  go test -race needs cgo
#   systemd-container  systemd-nspawn, for the container tier
#               (integration/container) and make demo; pinned to the
#               installed systemd's version, since the archive may offer a
#               newer one that would upgrade systemd itself
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

installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
done

# systemd-container at exactly systemd's version (known once systemd is).
container_missing() {
	local want
	want=$(dpkg-query -W -f='${Version}' systemd 2>/dev/null) || return 0
	[ "$(dpkg-query -W -f='${db:Status-Status} ${Version}' systemd-container 2>/dev/null)" != "installed $want" ]
}

[ ${#missing[@]} -gt 0 ] || container_missing || exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing ${missing[*]} systemd-container: run as root to install them" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update </dev/null
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
fi
if container_missing; then
	version=$(dpkg-query -W -f='${Version}' systemd)
	echo "deps: installing systemd-container=$version"
	apt-get install -y --no-install-recommends --allow-downgrades "systemd-container=$version" </dev/null
fi
