#!/usr/bin/env bash
# systemd-tree.sh VERSION: the root tree of a second systemd generation,
# built once and cached; prints its directory.
#
#   scripts/systemd-tree.sh 257     # → /var/cache/newstyle/systemd-257-<hash>/root
#
# The tree's inputs are pinned in scripts/systemd-VERSION.pin (suite,
# package versions, mmdebstrap options). The tree is cached under
# NEWSTYLE_TREE_CACHE (default /var/cache/newstyle) in a directory named
# after the pin file's SHA-256: it is built the first time (mmdebstrap,
# about half a minute) and reused from then on, until the pin file
# changes. A finished tree holds beside root/ the pin it was built from
# (pin) and what got installed (manifest: dpkg-query's package and
# version of each). Trees of other pins are removed once the new one is
# built.
#
# Builds are serialised with a lock (flock), and a tree is moved into
# place only once complete, so concurrent runs on one machine share a
# build and never see half a tree. Nothing writes to a tree after that:
# the container tier boots it with --volatile=overlay and
# scripts/private-ns.sh --systemd VERSION runs on an overlay of it.
#
# Run as root (mmdebstrap --mode=root). The exit status is 0 with the
# tree's path on stdout, else non-zero with the reason on stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly cache=${NEWSTYLE_TREE_CACHE:-/var/cache/newstyle}

die() {
	echo "systemd-tree.sh: $*" >&2
	exit 1
}

[ $# = 1 ] || die "usage: scripts/systemd-tree.sh VERSION (a scripts/systemd-VERSION.pin must exist)"
version=$1
pin=$here/systemd-$version.pin
[ -f "$pin" ] || die "no pin file $pin"

hash=$(sha256sum "$pin" | cut -c1-16)
dir=$cache/systemd-$version-$hash

if [ -f "$dir/manifest" ]; then
	echo "$dir/root"
	exit 0
fi

[ "$(id -u)" = 0 ] || die "the tree $dir is not built yet, and building it needs root (mmdebstrap --mode=root)"
command -v mmdebstrap >/dev/null || die "mmdebstrap not found: run scripts/deps.sh"

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
# Another run may have built it while this one waited for the lock.
if [ -f "$dir/manifest" ]; then
	echo "$dir/root"
	exit 0
fi

# shellcheck source=systemd-257.pin
. "$pin"
: "${SUITE:?} ${SYSTEMD_VERSION:?} ${VARIANT:?} ${PINNED:?}"
include=()
for p in $PINNED; do include+=("$p=$SYSTEMD_VERSION"); done
for p in ${UNPINNED:-}; do include+=("$p"); done

build=$cache/.build-systemd-$version-$hash
rm -rf "$build"
mkdir -p "$build"
trap 'rm -rf "$build"' EXIT
start=$SECONDS
echo "systemd-tree.sh: building the systemd $version tree ($SUITE, systemd $SYSTEMD_VERSION) in $dir" >&2
# shellcheck disable=SC2086 # the options are words by design
if ! mmdebstrap $MMDEBSTRAP_OPTIONS --variant="$VARIANT" \
	--include="$(
		IFS=,
		echo "${include[*]}"
	)" \
	"$SUITE" "$build/root" >"$build/mmdebstrap.log" 2>&1; then
	tail -n 30 "$build/mmdebstrap.log" >&2
	die "mmdebstrap failed (the whole log was $build/mmdebstrap.log); is $SYSTEMD_VERSION still the version of $SUITE? See $pin"
fi
got=$(chroot "$build/root" dpkg-query -W -f='${Version}' systemd)
[ "$got" = "$SYSTEMD_VERSION" ] || die "the tree has systemd $got, the pin says $SYSTEMD_VERSION"
cp "$pin" "$build/pin"
chroot "$build/root" dpkg-query -W -f='${Package} ${Version}\n' >"$build/manifest.tmp"
mv "$build/manifest.tmp" "$build/manifest"
rm -f "$build/mmdebstrap.log"
mv "$build" "$dir"
trap - EXIT
echo "systemd-tree.sh: built in $((SECONDS - start))s: $(du -sh "$dir/root" | cut -f1)" >&2

# Trees of earlier pins: nothing uses them any more.
for old in "$cache"/systemd-"$version"-*; do
	[ "$old" = "$dir" ] || rm -rf "$old"
done
echo "$dir/root"
