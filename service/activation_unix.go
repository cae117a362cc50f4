//go:build unix

package service

import (
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// takePassed takes the listening sockets systemd passed (LISTEN_FDS,
// LISTEN_FDNAMES, for the process LISTEN_PID, as sd_listen_fds(3) reads
// them), and unsets the three variables, whoever they were for.
//
// Every descriptor is looked at before any is touched. systemd passes
// them in a row from fd 3, all open: when one in the range LISTEN_FDS
// counts is not, the variables are not systemd's, and what is open in
// the range is someone else's (Go's own poller's epoll and eventfd, the
// program's own sockets), so none is taken, and a warning says so.
// Otherwise only listening sockets are taken (each given to a
// net.Listener, which holds a copy, and closed); anything else is left
// open as it is, never wrapped in an os.File (which the garbage
// collector would close), and reported once.
func takePassed(logger *slog.Logger) passedFDs {
	pid, fds, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	if fds == "" {
		return passedFDs{}
	}
	if p, err := strconv.Atoi(pid); err != nil || p != os.Getpid() {
		return passedFDs{} // for another process, which this one was forked from
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		logger.Warn("service: LISTEN_FDS is not a number of descriptors; no socket taken", "listen_fds", fds)
		return passedFDs{}
	}
	modes := make([]uint32, 0, min(n, 1024))
	for fd := listenFDsStart; fd < listenFDsStart+n; fd++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			logger.Warn("service: LISTEN_FDS counts descriptors that are not open: the environment is not systemd's; no socket taken",
				"listen_fds", n, "fd", fd, "err", err)
			return passedFDs{}
		}
		modes = append(modes, uint32(st.Mode))
	}

	nameOf := strings.Split(names, ":")
	byName := map[string][]net.Listener{}
	p := passedFDs{others: map[string][]string{}}
	var skipped []string
	for i, mode := range modes {
		fd := listenFDsStart + i
		name := "LISTEN_FD_" + strconv.Itoa(fd) // go-systemd's name when LISTEN_FDNAMES has none
		if i < len(nameOf) && nameOf[i] != "" {
			name = nameOf[i]
		}
		ln, what := takeListener(fd, mode, name)
		if ln != nil {
			byName[name] = append(byName[name], ln)
			continue
		}
		p.others[name] = append(p.others[name], what)
		skipped = append(skipped, name+": "+what)
	}
	if len(skipped) > 0 {
		logger.Warn("service: systemd passed descriptors that are not listening sockets; Listener does not serve them, and leaves them open",
			"descriptors", strings.Join(skipped, "; "))
	}
	p.listeners = make(map[string]net.Listener, len(byName))
	for name, ls := range byName {
		if len(ls) == 1 {
			p.listeners[name] = ls[0]
		} else {
			p.listeners[name] = newMultiListener(ls)
		}
	}
	return p
}

// takeListener returns a net.Listener for fd, of mode, when it is a
// listening socket, closing fd itself (the listener holds a copy);
// otherwise what fd is, and fd untouched.
func takeListener(fd int, mode uint32, name string) (ln net.Listener, what string) {
	what = "fd " + strconv.Itoa(fd) + ", "
	if mode&unix.S_IFMT != unix.S_IFSOCK {
		return nil, what + fileKind(mode)
	}
	// As sd_listen_fds does: a child process must not inherit it.
	unix.CloseOnExec(fd)
	if listening, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || listening == 0 {
		return nil, what + socketKind(fd)
	}
	// net.FileListener takes a copy of the file's descriptor; the file is
	// a copy of fd too, so that fd is closed only once a listener holds
	// the socket, and never by the garbage collector.
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, what + "a listening socket that cannot be copied: " + err.Error()
	}
	f := os.NewFile(uintptr(dup), name)
	ln, err = net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, what + "a listening socket Go cannot serve: " + err.Error()
	}
	unix.Close(fd)
	return ln, ""
}

// fileKind names a descriptor that is not a socket by its mode.
func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFDIR:
		return "a directory"
	}
	return "a descriptor of another kind (epoll, eventfd, …)"
}

// socketKind names a socket that is not listening.
func socketKind(fd int) string {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	switch {
	case err != nil:
		return "a socket of unknown type"
	case typ == unix.SOCK_DGRAM:
		return "a datagram socket"
	case typ == unix.SOCK_STREAM:
		return "a stream socket that is not listening"
	case typ == unix.SOCK_SEQPACKET:
		return "a seqpacket socket that is not listening"
	}
	return "a socket of type " + strconv.Itoa(typ)
}
