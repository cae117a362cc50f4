#!/usr/bin/env bash
# private-ns.sh [--journald] CMD ARGS...
#
# Runs CMD in a private mount and PID namespace in which journald's
# directories are empty tmpfs mounts of the namespace's own:
#
#   /run/systemd   (journald's sockets: /run/systemd/journal/socket)
#   /run/log       (the volatile journal)
#   /var/log/journal
#   /etc/systemd   (journald.conf: no rate limit, volatile storage)
#
# so that a systemd-journald started inside (by CMD, or by --journald) binds,
# writes and reads nothing of the host's. Every process of the namespace is
# killed when CMD ends (the namespace's PID 1 is this script), and the mounts
# go with it. CMD sees NEWSTYLE_PRIVATE_NS=1.
#
# With --journald, /lib/systemd/systemd-journald is started before CMD and
# CMD runs once its socket accepts datagrams; it is stopped after CMD.
#
# The exit status is CMD's, or 125 when the namespace or journald could not
# be set up. Must be run as root (unshare --mount --pid).
set -euo pipefail

readonly journald=/lib/systemd/systemd-journald
readonly socket=/run/systemd/journal/socket
readonly socket_wait=10 # seconds
readonly journald_log=/run/systemd/journald.log

die() {
	echo "private-ns.sh: $*" >&2
	exit 125
}

usage() {
	echo "usage: scripts/private-ns.sh [--journald] CMD [ARGS...]" >&2
	exit 125
}

# Outside: re-run this script as the PID 1 of new namespaces. --kill-child
# kills it (and so the whole PID namespace) if unshare itself is killed.
if [ "${1:-}" != --in-namespace ]; then
	[ $# -gt 0 ] || usage
	[ "$(id -u)" = 0 ] || die "must run as root (it uses unshare --mount --pid)"
	command -v unshare >/dev/null || die "unshare not found (package util-linux)"
	exec unshare --mount --pid --fork --kill-child --mount-proc --propagation private \
		-- bash "${BASH_SOURCE[0]}" --in-namespace "$@"
fi
shift
# Never mount over the host's directories: only the new PID namespace's
# init gets here.
[ $$ = 1 ] || die "--in-namespace is internal: run scripts/private-ns.sh CMD..."

start_journald=false
if [ "${1:-}" = --journald ]; then
	start_journald=true
	shift
fi
[ $# -gt 0 ] || usage

# Directories made private so far, to know where mkdir touches no host file.
private=()

under_private() {
	local p
	for p in "${private[@]}"; do
		case $1/ in "$p"/*) return 0 ;; esac
	done
	return 1
}

# make_private DIR mounts an empty tmpfs on DIR. A DIR the host lacks is not
# created on the host: it is made inside a private tmpfs over its parent.
make_private() {
	local dir=$1
	if [ ! -d "$dir" ]; then
		under_private "$dir" || make_private "$(dirname "$dir")"
		mkdir -p "$dir"
	fi
	mount -t tmpfs -o mode=0755 tmpfs "$dir" || die "cannot mount a tmpfs on $dir"
	private+=("$dir")
}

for dir in /run/systemd /run/log /var/log/journal /etc/systemd; do
	make_private "$dir"
done
mkdir -p /run/systemd/journal

# ReadKMsg=no: the host's kernel messages are none of the tests' business.
cat >/etc/systemd/journald.conf <<'EOF'
[Journal]
RateLimitBurst=0
Storage=volatile
ReadKMsg=no
EOF

export NEWSTYLE_PRIVATE_NS=1

jpid=
stop_journald() {
	if [ -n "$jpid" ]; then
		kill "$jpid" 2>/dev/null || true
		wait "$jpid" 2>/dev/null || true
		jpid=
	fi
}

if $start_journald; then
	[ -x "$journald" ] || die "$journald not found (package systemd)"
	# journald logs about itself to a file of the namespace (shown if it
	# fails to start) rather than to the host's kernel log.
	SYSTEMD_LOG_TARGET=console "$journald" >"$journald_log" 2>&1 &
	jpid=$!
	trap stop_journald EXIT
	deadline=$((SECONDS + socket_wait))
	# /run/systemd is a fresh tmpfs, so a socket there is journald's: it
	# binds it once, before its event loop, and reads what queues up.
	until [ -S "$socket" ]; do
		if ! kill -0 "$jpid" 2>/dev/null; then
			wait "$jpid" && rc=0 || rc=$?
			jpid=
			cat "$journald_log" >&2
			die "systemd-journald exited (status $rc) before creating $socket"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			stop_journald
			cat "$journald_log" >&2
			die "systemd-journald did not create $socket within ${socket_wait}s"
		fi
		sleep 0.05
	done
fi

rc=0
"$@" || rc=$?
stop_journald
exit "$rc"
