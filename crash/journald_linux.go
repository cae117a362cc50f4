//go:build linux

package crash

import (
	"time"

	"golang.org/x/sys/unix"
)

// awaitRead waits, at most d, until journald has read every datagram
// sent to its socket at path before this call: the crash's entry.
//
// journald learns which unit an entry belongs to (_SYSTEMD_UNIT, which
// journalctl -u selects by) from the sender's /proc/PID/cgroup, when it
// reads the datagram; if the sender has exited by then, the entry has no
// unit. A journald that is busy, restarting, or started by its socket
// after it was stopped can read the entry long after the watcher would
// otherwise have exited. So the watcher sends an empty datagram of its
// own, which journald reads and ignores, after the entry, and waits until
// it was read: the kernel counts a datagram against its sender's socket
// (SIOCOUTQ) until the receiver has read it, and journald reads its
// socket in order, one datagram at a time, each to its end. An empty
// datagram is what journald's native socket ignores without a word (it
// takes a datagram with no data only when it carries a descriptor).
func awaitRead(path string, d time.Duration) {
	deadline := time.Now().Add(d)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	to := &unix.SockaddrUnix{Name: path} // a leading '@': an abstract address
	for {
		err := unix.Sendto(fd, nil, 0, to)
		if err == nil {
			break
		}
		if (err != unix.EAGAIN && err != unix.EINTR) || time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond) // journald's queue is full
	}
	for {
		n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
		if err != nil || n == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
