//go:build unix && !linux

package journaltest

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// Off Linux (macOS, the BSDs) a Server reads datagrams by journald's rules,
// but does not read passed files: memfds and journald's rules for files
// exist only on Linux. A datagram with descriptors is recorded as an error.

// oobSize holds a few descriptors, to see and close them.
var oobSize = unix.CmsgSpace(maxFDs * 4)

func newSocket() (int, error) {
	// No SOCK_CLOEXEC everywhere: set it under ForkLock, as package net does.
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func newWake() (r, w int, err error) {
	var p [2]int
	syscall.ForkLock.RLock()
	err = unix.Pipe(p[:])
	if err == nil {
		unix.CloseOnExec(p[0])
		unix.CloseOnExec(p[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, -1, fmt.Errorf("pipe: %w", err)
	}
	if err := unix.SetNonblock(p[0], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return -1, -1, fmt.Errorf("pipe: %w", err)
	}
	if err := unix.SetNonblock(p[1], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return -1, -1, fmt.Errorf("pipe: %w", err)
	}
	return p[0], p[1], nil
}

// receive reads one datagram and records its entries or the problem with it.
// It returns false if the socket failed, so that the loop does not spin on it.
func (s *Server) receive() bool {
	k := s.sock
	// Without MSG_TRUNC's size on peek, read into a buffer as large as
	// the socket's receive buffer, which no datagram exceeds.
	size, err := unix.GetsockoptInt(k.fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		s.fail("SO_RCVBUF: %v", err)
		return false
	}
	buf := k.buffer(max(size, 64<<10))
	n, oobn, flags, _, err := unix.Recvmsg(k.fd, buf, k.oob, unix.MSG_DONTWAIT)
	if err == unix.EAGAIN || err == unix.EINTR {
		return true
	}
	if err != nil {
		s.fail("recvmsg: %v", err)
		return false
	}
	seq := s.next()
	if oobn > 0 {
		fds := 0
		if msgs, err := unix.ParseSocketControlMessage(k.oob[:oobn]); err == nil {
			for i := range msgs {
				if got, err := unix.ParseUnixRights(&msgs[i]); err == nil {
					for _, fd := range got {
						unix.Close(fd)
						fds++
					}
				}
			}
		}
		s.fail("datagram #%d: %d bytes with %d descriptors: journaltest reads passed files only on Linux, where journald runs", seq, n, fds)
		return true
	}
	switch {
	case flags&unix.MSG_TRUNC != 0:
		s.fail("datagram #%d: truncated to %d bytes", seq, n)
	case n == 0:
		s.fail("datagram #%d: empty: journald ignores it", seq)
	default:
		s.record(seq, buf[:n], false, false)
	}
	return true
}
