//go:build linux

package journal

import (
	"errors"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendBufferSize is the send buffer libsystemd asks for on its journal
// socket. The kernel doubles it, and it also bounds the largest datagram.
const sendBufferSize = 8 << 20

// socket is an unconnected AF_UNIX datagram socket and the address it
// sends to. The address is encoded once: sendto then reads it without
// building anything, which keeps a send free of allocations and of data
// races between goroutines.
type socket struct {
	fd      int
	path    string
	timeout time.Duration // SO_SNDTIMEO; <= 0 for none
	addr    unix.RawSockaddrUnix
	addrLen uint32
}

func openSocket(path string, timeout time.Duration) (*socket, error) {
	s := &socket{path: path, timeout: timeout}
	if len(path) >= len(s.addr.Path) {
		return nil, errors.New("journal: socket path too long: " + quote(path))
	}
	s.addr.Family = unix.AF_UNIX
	for i := 0; i < len(path); i++ {
		s.addr.Path[i] = int8(path[i])
	}
	s.addrLen = uint32(unsafe.Offsetof(s.addr.Path)) + uint32(len(path)) + 1

	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("journal: socket", err)
	}
	s.fd = fd
	raiseSendBuffer(fd, sendBufferSize)
	if timeout > 0 {
		// The socket stays blocking, and the kernel bounds the wait: an
		// unconnected datagram socket cannot be polled for "the receiver's
		// queue has room", so a non-blocking one would have to spin.
		tv := unix.NsecToTimeval(timeout.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
			unix.Close(fd)
			return nil, os.NewSyscallError("journal: setsockopt SO_SNDTIMEO", err)
		}
	}
	return s, nil
}

// raiseSendBuffer raises the socket's send buffer to at least n bytes, as
// far as the process may: SO_SNDBUF is capped at net.core.wmem_max, which
// SO_SNDBUFFORCE (CAP_NET_ADMIN) may exceed. A smaller buffer only means
// that smaller entries already go by memfd, so failures are not errors.
func raiseSendBuffer(fd, n int) {
	if cur, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil && cur >= 2*n {
		return
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, n)
	if cur, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF); err == nil && cur >= 2*n {
		return
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, n)
}

// send sends data as one datagram or, when it does not fit in one, through
// a sealed file. It reports which.
func (s *socket) send(data []byte) (viaFile bool, err error) {
	errno := s.sendto(data)
	switch errno {
	case 0:
		return false, nil
	case unix.EMSGSIZE, unix.ENOBUFS:
		// Too large for a datagram, or for the kernel to allocate one.
		return true, s.sendFile(data)
	}
	// libsystemd also retries EAGAIN through a memfd; its socket has no
	// send timeout. Ours has, so EAGAIN means journald's queue stayed full
	// for all of it, and a memfd's datagram would wait on the same queue.
	return false, s.error(errno)
}

func (s *socket) sendto(data []byte) unix.Errno {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	var r retry
	for {
		_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(p), uintptr(len(data)),
			unix.MSG_NOSIGNAL, uintptr(unsafe.Pointer(&s.addr)), uintptr(s.addrLen))
		if !r.again(errno, s.timeout) {
			return errno
		}
	}
}

// retry decides whether to repeat a send that a signal interrupted. A
// signal interrupts a send waiting under SO_SNDTIMEO even with SA_RESTART,
// and the entry was not sent, so it is sent again; but each attempt waits
// a full timeout anew, so a steady stream of signals (SIGCHLD, SIGPROF)
// would stretch the wait without end. From the first interruption on,
// attempts are made only until one more timeout has passed: a send then
// waits less than twice the timeout in all, and the fast path reads no
// clock.
type retry struct{ deadline time.Time }

func (r *retry) again(errno unix.Errno, timeout time.Duration) bool {
	if errno != unix.EINTR {
		return false
	}
	if timeout <= 0 {
		return true
	}
	if r.deadline.IsZero() {
		r.deadline = time.Now().Add(timeout)
		return true
	}
	return time.Now().Before(r.deadline)
}

// sendFile writes data to a sealed memfd, or failing that an unlinked file
// under /dev/shm, and passes its descriptor to journald, which reads the
// entry from it.
func (s *socket) sendFile(data []byte) error {
	fd, err := openEntryFile()
	if err != nil {
		return &sendError{kind: errFile, errno: errnoOf(err), path: s.path}
	}
	defer unix.Close(fd)
	if err := writeAll(fd, data); err != nil {
		// A full tmpfs or memory cgroup: the entry is too large here.
		return &sendError{kind: ErrTooLarge, errno: errnoOf(err), path: s.path}
	}
	// journald maps a sealed memfd instead of copying it. The seal is
	// best-effort: a /dev/shm file cannot be sealed, and journald accepts
	// it unsealed because of where it lives.
	_, _ = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL)

	rights := unix.UnixRights(fd)
	to := &unix.SockaddrUnix{Name: s.path}
	var r retry
	for {
		err = unix.Sendmsg(s.fd, nil, rights, to, unix.MSG_NOSIGNAL)
		if errno := errnoOf(err); !r.again(errno, s.timeout) {
			if err != nil {
				return s.error(errno)
			}
			return nil
		}
	}
}

// memfdCreate is replaced in tests to take the /dev/shm path.
var memfdCreate = unix.MemfdCreate

func openEntryFile() (int, error) {
	fd, err := memfdCreate("journal-entry", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err == nil {
		return fd, nil
	}
	// No memfd (a kernel before 3.17, or a seccomp filter): /dev/shm is
	// a tmpfs from early boot on, and journald accepts a file passed from
	// directly under it. Not O_TMPFILE: its flags stay on the descriptor,
	// and journald 256 and later refuse a descriptor with unexpected flags.
	f, err := os.CreateTemp("/dev/shm", "journal-entry-")
	if err != nil {
		return -1, err
	}
	defer f.Close()
	if err := os.Remove(f.Name()); err != nil {
		return -1, err
	}
	return unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
}

func writeAll(fd int, data []byte) error {
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

// probe connects a fresh datagram socket to the path: connect succeeds
// only while something is bound there, and sends nothing.
func (s *socket) probe() error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("journal: socket", err)
	}
	defer unix.Close(fd)
	_, _, errno := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&s.addr)), uintptr(s.addrLen))
	if errno != 0 {
		return s.error(errno)
	}
	return nil
}

// error turns the errno of a failed send into the package's error.
func (s *socket) error(errno unix.Errno) error {
	kind := errSend
	switch errno {
	case unix.ENOENT, unix.ENOTDIR:
		kind = ErrNoSocket
	case unix.ECONNREFUSED:
		kind = ErrNotListening
	case unix.EACCES, unix.EPERM:
		kind = ErrPermission
	case unix.EAGAIN, unix.EINTR:
		// EINTR is returned only once retry has given up: the wait has
		// taken the whole timeout, between interruptions.
		kind = ErrTimeout
	}
	return &sendError{kind: kind, errno: errno, path: s.path}
}

func errnoOf(err error) unix.Errno {
	var errno unix.Errno
	errors.As(err, &errno)
	return errno
}

func (s *socket) close() error {
	if err := unix.Close(s.fd); err != nil {
		return os.NewSyscallError("journal: close", err)
	}
	return nil
}
