#!/usr/bin/env bash
# demo-container.sh: cmd/newstyle-demo under a real systemd, end to end.
#
# Boots a throwaway systemd container (systemd-nspawn of the host's own
# /usr, / a tmpfs, a network namespace of its own), installs
# newstyle-demo.service and .socket from cmd/newstyle-demo, starts the
# service, makes a few requests — one /error, one /panic — and prints the
# unit's journal entries as journalctl -o json-pretty shows them: the
# request fields, the TRACEBACK field, the panic at priority crit, and
# systemd restarting the service; then crashes it as no recover sees
# (/crash?kind=map: concurrent map writes) and prints the crash watcher's
# one entry, and journalctl -x's explanation of it from the module's
# message catalog (catalog/newstyle.catalog, which it installs). Then it
# powers the container off.
#
# With --systemd VERSION (a scripts/systemd-VERSION.pin, e.g. 257), the
# container boots that generation's root tree (scripts/systemd-tree.sh
# builds it the first time) instead of the host's /usr, with a tmpfs
# overlay over it (--volatile=overlay), so the cached tree stays as built.
#
# Run as root on Debian 12 with systemd-container installed
# (scripts/deps.sh); `make demo` (SYSTEMD=257) runs it. Nothing of the
# host's changes: the container's /etc, /var and journal are a tmpfs that
# goes with it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
go=${GO:-go}
readonly unit=newstyle-demo.service
readonly boot_timeout=90 # seconds

die() {
	echo "demo-container.sh: $*" >&2
	exit 1
}

root=(--directory=/ --volatile=yes)
systemd=host
if [ "${1:-}" = --systemd ]; then
	[ $# = 2 ] || die "usage: scripts/demo-container.sh [--systemd VERSION]"
	systemd=$2
	host=$(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p')
	if [ "$systemd" != "$host" ]; then
		tree=$(scripts/systemd-tree.sh "$systemd") || exit 1
		root=(--directory="$tree" --volatile=overlay)
	fi
fi
readonly name=newstyle-demo-$systemd-$$

[ "$(id -u)" = 0 ] || die "must run as root (systemd-nspawn, nsenter)"
command -v systemd-nspawn >/dev/null ||
	die "systemd-nspawn not found: install systemd-container pinned to systemd's version (scripts/deps.sh)"

tmp=$(mktemp -d /tmp/newstyle-demo.XXXXXX)
mkdir "$tmp/bin"
nspawn=
init=

# cleanup powers the container off and waits for nspawn, bounded: SIGTERM
# to nspawn if poweroff hangs, then SIGKILL to the container's init (which
# ends its whole PID namespace) and to nspawn.
cleanup() {
	local rc=$? i
	if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
		echo "--- powering the container off"
		[ -z "$init" ] || timeout 10 nsenter -t "$init" -a systemctl poweroff --no-block 2>/dev/null || true
		for sig in "" TERM KILL; do
			if [ "$sig" = KILL ] && [ -n "$init" ]; then kill -KILL "$init" 2>/dev/null || true; fi
			[ -z "$sig" ] || kill -"$sig" "$nspawn" 2>/dev/null || true
			for ((i = 0; i < 300; i++)); do
				kill -0 "$nspawn" 2>/dev/null || break 2
				sleep 0.1
			done
		done
		wait "$nspawn" 2>/dev/null || true
	fi
	rmdir "/run/systemd/nspawn/propagate/$name" 2>/dev/null || true
	if [ "$rc" != 0 ] && [ -f "$tmp/console.log" ]; then
		echo "--- the container's console:" >&2
		tail -n 40 "$tmp/console.log" >&2
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "--- building cmd/newstyle-demo"
"$go" build -o "$tmp/bin/newstyle-demo" ./cmd/newstyle-demo

echo "--- booting a systemd container ($name)"
# setpriv --pdeathsig: should this script be killed outright, nspawn gets
# SIGTERM and powers the container off.
setpriv --pdeathsig TERM -- systemd-nspawn "${root[@]}" \
	--register=no --keep-unit --private-network --machine="$name" \
	--bind-ro="$tmp/bin:/opt/test" --console=read-only \
	--boot -- systemd.firstboot=off >"$tmp/console.log" 2>&1 &
nspawn=$!

# The container's init: nspawn's child that runs systemd.
deadline=$((SECONDS + boot_timeout))
until [ -n "$init" ]; do
	kill -0 "$nspawn" 2>/dev/null || die "systemd-nspawn exited during boot"
	[ "$SECONDS" -lt "$deadline" ] || die "the container's init did not start within ${boot_timeout}s"
	for c in $(cat "/proc/$nspawn/task/$nspawn/children" 2>/dev/null); do
		case $(readlink "/proc/$c/exe" 2>/dev/null) in */systemd) init=$c ;; esac
	done
	sleep 0.05
done

in_container() { nsenter -t "$init" -a -- "$@"; }

# "offline" until systemd listens: ask again.
until state=$(timeout "$boot_timeout" nsenter -t "$init" -a systemctl is-system-running --wait 2>/dev/null) ||
	[ "$state" = degraded ]; do
	[ "$SECONDS" -lt "$deadline" ] || die "the container did not finish booting: $state"
	sleep 0.1
done
echo "booted: $state, $(in_container systemctl --version | head -n 1)"

echo "--- installing $unit and newstyle-demo.socket into /etc/systemd/system"
for f in cmd/newstyle-demo/newstyle-demo.service cmd/newstyle-demo/newstyle-demo.socket; do
	in_container sh -c "cat > /etc/systemd/system/${f##*/}" <"$f"
done
# The D-Bus name (BusName=) needs the system bus's policy for it, and the
# static user that policy names; the bus reads a policy when reloaded.
in_container sh -c "mkdir -p /etc/sysusers.d && cat > /etc/sysusers.d/newstyle-demo.conf" <cmd/newstyle-demo/newstyle-demo.sysusers
in_container sh -c "mkdir -p /etc/dbus-1/system.d && cat > /etc/dbus-1/system.d/io.github.newstyle_go.Demo1.conf" <cmd/newstyle-demo/io.github.newstyle_go.Demo1.conf
# The module's message catalog, for journalctl -x: into
# /usr/local/lib/systemd/catalog/ (on the host's read-only /usr, a tmpfs of
# the container's own first), then journalctl --update-catalog.
in_container sh -c 'mkdir -p /usr/local/lib/systemd/catalog 2>/dev/null ||
	{ mount -t tmpfs -o mode=0755 tmpfs /usr/local/lib && mkdir -p /usr/local/lib/systemd/catalog; }'
in_container sh -c "cat > /usr/local/lib/systemd/catalog/newstyle.catalog" <catalog/newstyle.catalog
in_container journalctl --update-catalog
in_container systemd-sysusers /etc/sysusers.d/newstyle-demo.conf
in_container systemctl reload dbus
in_container systemctl daemon-reload

show() { in_container systemctl show "$unit" -p "$@" | paste -sd ' '; }

echo "--- systemctl start $unit (Type=notify: active once the demo sends READY=1)"
in_container systemctl start --no-block "$unit"
sleep 0.5
echo "during the warm-up: $(show ActiveState -p StatusText)"
in_container systemctl start "$unit" # waits for READY=1
echo "after READY=1:      $(show ActiveState -p StatusText -p MainPID)"

# request PATH: GET http://127.0.0.1:8080PATH inside the container, with
# bash's /dev/tcp (no HTTP client needed); prints the status line and body.
request() {
	local out
	out=$(timeout 15 nsenter -t "$init" -n bash -c '
		exec 3<>/dev/tcp/127.0.0.1/8080 || exit 1
		printf "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n" "$1" >&3
		tr -d "\r" <&3' bash "$1" 2>/dev/null) || true
	if [ -z "$out" ]; then
		printf '%-8s -> (no answer: the connection was dropped)\n' "$1"
	else
		printf '%-8s -> %s | %s\n' "$1" "$(head -n 1 <<<"$out")" "$(tail -n 1 <<<"$out")"
	fi
}

echo "--- operate it live: systemctl service-log-level $unit (org.freedesktop.LogControl1)"
echo "level now: $(in_container systemctl service-log-level "$unit")"
in_container systemctl service-log-level "$unit" debug
echo "level now: $(in_container systemctl service-log-level "$unit") (a debug record per request from here)"
request /
in_container systemctl service-log-level "$unit" info
echo "level now: $(in_container systemctl service-log-level "$unit")"

# restarted N waits (20 s at most) until systemd has restarted the unit
# N times and it is active again.
restarted() {
	local i
	for ((i = 0; i < 200; i++)); do
		[ "$(in_container systemctl show "$unit" -p NRestarts --value)" = "$1" ] &&
			[ "$(in_container systemctl is-active "$unit")" = active ] && return
		sleep 0.1
	done
}

echo "--- requests"
request /
request /error
request /panic
echo "--- waiting for Restart=on-failure to bring the service back"
restarted 1
show NRestarts -p ActiveState -p MainPID -p StatusText
request /

echo "--- journalctl -u $unit -o json-pretty --all (a selection of fields)"
# Each record of the demo is one entry with its attributes as fields; the
# error's stack is in TRACEBACK, the panic's entry is PRIORITY 2; systemd's
# own entries (_PID 1) tell the exit and the restart. Without
# --output-fields, every trusted field (_UID, _CMDLINE, ...) shows too.
in_container journalctl --sync
in_container journalctl -u "$unit" -o json-pretty --all --no-pager \
	--output-fields=MESSAGE,PRIORITY,SYSLOG_IDENTIFIER,_PID,_TRANSPORT,METHOD,PATH,STATUS,DURATION,REMOTE,ORDER_ID,ERR,PANIC,TRACEBACK,ADDR,SOCKET_ACTIVATED,GREETING,SOURCE,SIGNAL,TIMEOUT

echo "--- a crash no recover sees: /crash?kind=map (concurrent map writes)"
request '/crash?kind=map'
restarted 2
show NRestarts -p ActiveState -p MainPID
echo "--- journalctl -u $unit -p crit MESSAGE_ID=ead3cc56c85447c6a74aa3b32cdf4c02 -o json-pretty --all"
# The crash watcher's one entry: what the runtime called the crash, its
# whole output in TRACEBACK (the "fatal error:" line it writes to stderr
# alone included), the crashed process's PID in SYSLOG_PID; the runtime's
# own lines on stderr are there as before, at the unit's default priority.
in_container journalctl --sync
in_container journalctl -u "$unit" -p crit MESSAGE_ID=ead3cc56c85447c6a74aa3b32cdf4c02 -o json-pretty --all --no-pager \
	--output-fields=MESSAGE,PRIORITY,MESSAGE_ID,SYSLOG_IDENTIFIER,SYSLOG_PID,NEWSTYLE_CRASH_PID,NEWSTYLE_CRASH_KIND,TRACEBACK,_PID,_COMM,_SYSTEMD_UNIT,_TRANSPORT
echo "--- journalctl -u $unit -p crit -x: the module's catalog explains it"
in_container journalctl -u "$unit" -x --no-pager MESSAGE_ID=ead3cc56c85447c6a74aa3b32cdf4c02
