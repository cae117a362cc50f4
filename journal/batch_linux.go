//go:build linux

package journal

import (
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// batchable reports whether the journald at path keeps every entry of a
// datagram that carries several, so that senders may batch them.
//
// journald 252 and older do. journald 253 and later (to this day) do
// not: they store the entries of a datagram up to and including the
// first one with a MESSAGE, and drop the rest without a word (the
// LogFilterPatterns= check, new in 253, ends the loop over a datagram's
// entries). A client cannot ask journald its version, so this asks the
// system's systemd, by the version in the name of its shared library
// (libsystemd-shared-NNN.so), which journald is built with: batches go
// only to the system's own journald sockets (/run/systemd/journal/socket
// and its namespaces'), only when that systemd is 252 or older. Anything
// else — another socket path, a journaltest server, a version that
// cannot be found — gets one entry a datagram, which every journald
// stores.
func batchable(path string) bool {
	if !strings.HasPrefix(path, "/run/systemd/journal") {
		return false
	}
	v := systemdVersion()
	return v > 0 && v <= lastBatchingVersion
}

// lastBatchingVersion is the last systemd whose journald stores every
// entry of a datagram.
const lastBatchingVersion = 252

// sharedLibraryGlobs are where distributions put libsystemd-shared:
// Debian and Ubuntu under the multiarch directory, Fedora and RHEL in
// lib64, Arch and others in /usr/lib/systemd.
var sharedLibraryGlobs = []string{
	"/usr/lib/systemd/libsystemd-shared-*.so",
	"/usr/lib64/systemd/libsystemd-shared-*.so",
	"/usr/lib/*/systemd/libsystemd-shared-*.so",
	"/lib/systemd/libsystemd-shared-*.so",
	"/lib64/systemd/libsystemd-shared-*.so",
}

var systemdVersion = sync.OnceValue(func() int { return librariesVersion("") })

// librariesVersion returns the version of the first libsystemd-shared
// found under root (the file system's root for ""), or 0.
func librariesVersion(root string) int {
	for _, g := range sharedLibraryGlobs {
		matches, _ := filepath.Glob(root + g)
		for _, m := range matches {
			// libsystemd-shared-257.so, or -257.13-1.fc42.so and the like.
			v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), "libsystemd-shared-"), ".so")
			if i := strings.IndexFunc(v, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
				v = v[:i]
			}
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}
