#!/usr/bin/env bash
# deps.sh installs, on Debian 12 as root, what `make test`, `make demo` and
# `make bench` need besides Go itself:
#
#   util-linux  unshare, for scripts/private-ns.sh
#   mount       mount, for its tmpfs mounts
#   systemd     systemd-journald and journalctl (not as PID 1: the tests
#               start journald themselves)
#   gcc, libc6-dev  go test -race needs cgo
#   dbus, dbus-daemon  the system bus of the container tier, and a
#               private bus for service's LogControl1 unit tests
#   systemd-container  systemd-nspawn, for the container tier
#               (integration/container) and make demo; pinned to the
#               installed systemd's version, since the archive may offer a
#               newer one that would upgrade systemd itself
#   systemd-journal-remote  systemd-journal-remote and -upload, for the
#               central-journal test (integration/remote_test.go); pinned
#               likewise
#   mmdebstrap, debian-archive-keyring  the systemd 257 root tree
#               (Debian 13) that scripts/systemd-tree.sh builds, for the
#               runs on the second systemd generation
#
# It is idempotent: it asks dpkg what is installed, and runs apt-get (update
# included) only when something is missing.
set -euo pipefail

packages=(util-linux mount systemd gcc libc6-dev dbus dbus-daemon mmdebstrap debian-archive-keyring)

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

# Packages built from systemd's source, wanted at exactly systemd's version.
pinned=(systemd-container systemd-journal-remote)

# pinned_missing prints the pinned packages not installed at systemd's
# version (known once systemd is).
pinned_missing() {
	local want p
	want=$(dpkg-query -W -f='${Version}' systemd 2>/dev/null) || return 0
	for p in "${pinned[@]}"; do
		[ "$(dpkg-query -W -f='${db:Status-Status} ${Version}' "$p" 2>/dev/null)" = "installed $want" ] || echo "$p"
	done
}

[ ${#missing[@]} -gt 0 ] || [ -n "$(pinned_missing)" ] || exit 0

if [ "$(id -u)" != 0 ]; then
	need=("${missing[@]}")
	mapfile -t -O ${#need[@]} need < <(pinned_missing)
	echo "deps: missing ${need[*]}: run as root to install them" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update </dev/null
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
fi
mapfile -t pins < <(pinned_missing)
if [ ${#pins[@]} -gt 0 ]; then
	version=$(dpkg-query -W -f='${Version}' systemd)
	pins=("${pins[@]/%/=$version}")
	echo "deps: installing ${pins[*]}"
	apt-get install -y --no-install-recommends --allow-downgrades "${pins[@]}" </dev/null
fi
