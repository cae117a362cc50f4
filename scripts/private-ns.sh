#!/usr/bin/env bash
# private-ns.sh [--systemd VERSION] [--journald] CMD ARGS...
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
# With --systemd VERSION, CMD (and the journald of --journald) run on
# another systemd generation: chrooted into an overlay of the root tree of
# scripts/systemd-VERSION.pin (built and cached by scripts/systemd-tree.sh
# the first time), whose writable layer is a tmpfs of the namespace, so
# the cached tree stays as built. systemd-journald, journalctl, systemd-cat
# and the rest are then the tree's, and journalctl --version says which.
# Inside the tree, the namespace's /proc, the host's /dev and /sys, and
# these of the host's directories are bound at the same paths, so that a
# program built on the host (go test -c) runs there as it would here:
#
#   this repository, and the working directory (CMD starts in it)
#   go's GOROOT, GOCACHE, GOMODCACHE (with go's bin first in PATH), so
#   that a test may still run `go build`
#
# e.g. a compiled test binary, on systemd 257's journald:
#
#   go test -c -tags integration -o bin/integration.test ./integration
#   cd integration && ../scripts/private-ns.sh --systemd 257 ../bin/integration.test -test.run Journald
#
# --systemd with the host's own major version (systemctl --version) is the
# host's systemd, as without the option. CMD sees NEWSTYLE_SYSTEMD=VERSION
# (the host's major version without the option).
#
# The exit status is CMD's, or 125 when the namespace or journald could not
# be set up. Must be run as root (unshare --mount --pid).
set -euo pipefail

readonly journald=/lib/systemd/systemd-journald
readonly socket=/run/systemd/journal/socket
readonly socket_wait=10 # seconds
readonly journald_log=/run/systemd/journald.log
# Where the overlay of a --systemd tree is put together: in a tmpfs that
# the namespace mounts on its own /run.
readonly overlay=/run/newstyle-ns

die() {
	echo "private-ns.sh: $*" >&2
	exit 125
}

usage() {
	echo "usage: scripts/private-ns.sh [--systemd VERSION] [--journald] CMD [ARGS...]" >&2
	exit 125
}

# host_systemd prints the major version of the host's systemd.
host_systemd() {
	systemctl --version 2>/dev/null | sed -n '1s/^systemd \([0-9]*\).*/\1/p'
}

# Outside: re-run this script as the PID 1 of new namespaces. --kill-child
# kills it (and so the whole PID namespace) if unshare itself is killed.
if [ "${1:-}" != --in-namespace ]; then
	[ $# -gt 0 ] || usage
	[ "$(id -u)" = 0 ] || die "must run as root (it uses unshare --mount --pid)"
	command -v unshare >/dev/null || die "unshare not found (package util-linux)"
	# The tree is found (or built) out here, where a failure is plainly
	# reported, and handed in.
	host=$(host_systemd)
	systemd=$host
	tree=
	opts=()
	while [ $# -gt 0 ]; do
		case $1 in
		--journald) opts+=("$1") ;;
		--systemd)
			[ $# -ge 2 ] || usage
			systemd=$2
			shift
			;;
		*) break ;;
		esac
		shift
	done
	[ $# -gt 0 ] || usage
	if [ "$systemd" != "$host" ]; then
		tree=$("$(dirname "${BASH_SOURCE[0]}")/systemd-tree.sh" "$systemd") || exit 125
	fi
	exec unshare --mount --pid --fork --kill-child --mount-proc --propagation private \
		-- bash "${BASH_SOURCE[0]}" --in-namespace "$systemd" "$tree" "${opts[@]}" "$@"
fi
shift
# Never mount over the host's directories: only the new PID namespace's
# init gets here.
[ $$ = 1 ] || die "--in-namespace is internal: run scripts/private-ns.sh CMD..."
systemd=$1 tree=$2
shift 2

start_journald=false
if [ "${1:-}" = --journald ]; then
	start_journald=true
	shift
fi
[ $# -gt 0 ] || usage

# root is where journald's directories are: "" (the namespace's /), or
# the overlay of the tree, which CMD and journald are chrooted into.
root=
in_root=()
if [ -n "$tree" ]; then
	[ -d "$tree/usr" ] || die "$tree is no root tree"
	# The namespace's /run is a tmpfs of its own, so the overlay's upper
	# layer and mount point leave nothing behind on the host.
	mount -t tmpfs -o mode=0755 tmpfs /run || die "cannot mount a tmpfs on /run"
	mkdir -p "$overlay"/{upper,work,root}
	mount -t overlay overlay -o "lowerdir=$tree,upperdir=$overlay/upper,workdir=$overlay/work" "$overlay/root" ||
		die "cannot mount an overlay of $tree"
	root=$overlay/root
	mount -t proc proc "$root/proc" || die "cannot mount /proc in the tree"
	for d in /dev /sys; do
		mount --rbind "$d" "$root$d" || die "cannot bind $d into the tree"
	done
	# A machine ID for journald (the tree's is empty, to be set at boot),
	# and name resolution as the host's, for a `go build` that downloads.
	if [ -s /etc/machine-id ]; then
		cp /etc/machine-id "$root/etc/machine-id"
	else
		tr -d - </proc/sys/kernel/random/uuid >"$root/etc/machine-id"
	fi
	cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

	# The host's directories a program built here needs there.
	binds=("$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" "$PWD")
	gobin=
	if go=$(command -v "${GO:-go}"); then
		mapfile -t godirs < <("$go" env GOROOT GOCACHE GOMODCACHE)
		binds+=("${godirs[@]}")
		gobin=${godirs[0]}/bin:
	fi
	bound=()
	for d in "${binds[@]}"; do
		[ -n "$d" ] && [ -d "$d" ] || continue
		for b in "${bound[@]}"; do
			case $d/ in "$b"/*) continue 2 ;; esac # there already
		done
		mkdir -p "$root$d"
		mount --rbind "$d" "$root$d" || die "cannot bind $d into the tree"
		bound+=("$d")
	done
	in_root=(chroot "$root")
	export PATH="${gobin}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
fi

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
# In a tree, every directory is the overlay's: nothing of the host's.
make_private() {
	local dir=$1
	if [ ! -d "$root$dir" ]; then
		[ -n "$root" ] || under_private "$dir" || make_private "$(dirname "$dir")"
		mkdir -p "$root$dir"
	fi
	mount -t tmpfs -o mode=0755 tmpfs "$root$dir" || die "cannot mount a tmpfs on $dir"
	private+=("$dir")
}

for dir in /run/systemd /run/log /var/log/journal /etc/systemd; do
	make_private "$dir"
done
mkdir -p "$root/run/systemd/journal"

# ReadKMsg=no: the host's kernel messages are none of the tests' business.
printf '%s\n' '[Journal]' 'RateLimitBurst=0' 'Storage=volatile' 'ReadKMsg=no' >"$root/etc/systemd/journald.conf"

export NEWSTYLE_PRIVATE_NS=1
export NEWSTYLE_SYSTEMD="$systemd"

jpid=
stop_journald() {
	if [ -n "$jpid" ]; then
		kill "$jpid" 2>/dev/null || true
		wait "$jpid" 2>/dev/null || true
		jpid=
	fi
}

if $start_journald; then
	[ -x "$root$journald" ] || die "$journald not found (package systemd)"
	# journald logs about itself to a file of the namespace (shown if it
	# fails to start) rather than to the host's kernel log. chroot(1)
	# execs journald, so $! is journald's PID either way.
	SYSTEMD_LOG_TARGET=console "${in_root[@]}" "$journald" >"$root$journald_log" 2>&1 &
	jpid=$!
	trap stop_journald EXIT
	deadline=$((SECONDS + socket_wait))
	# /run/systemd is a fresh tmpfs, so a socket there is journald's: it
	# binds it once, before its event loop, and reads what queues up.
	until [ -S "$root$socket" ]; do
		if ! kill -0 "$jpid" 2>/dev/null; then
			wait "$jpid" && rc=0 || rc=$?
			jpid=
			cat "$root$journald_log" >&2
			die "systemd-journald exited (status $rc) before creating $socket"
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			stop_journald
			cat "$root$journald_log" >&2
			die "systemd-journald did not create $socket within ${socket_wait}s"
		fi
		sleep 0.05
	done
fi

rc=0
if [ -n "$root" ]; then
	# chroot(1) starts CMD in /: go to the working directory, bound in.
	# shellcheck disable=SC2016
	chroot "$root" /bin/sh -c 'cd "$0" && exec "$@"' "$PWD" "$@" || rc=$?
else
	"$@" || rc=$?
fi
stop_journald
exit "$rc"
