//go:build linux

package journal

import (
	"errors"
	"fmt"
	"os"
	"sync"
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
//
// One socket serves every Writer of the process that sends to the same
// path, as libsystemd and go-systemd each keep one: making Writers (and so
// loggers) costs no descriptor each. It is counted by its Writers and
// closed with the last one.
type socket struct {
	fd      int
	path    string
	addr    unix.RawSockaddrUnix
	addrLen uint32
	to      *unix.SockaddrUnix // the same, for sendmsg with a descriptor
	refs    int                // Writers using it; guarded by sockets.mu

	// The callers that found journald's queue full wait here, as
	// goroutines (see congestion).
	q congestion
}

// sockets holds the process's sockets, one per path.
var sockets = struct {
	mu sync.Mutex
	m  map[string]*socket
}{m: make(map[string]*socket)}

// openSocket returns the process's socket for path, opening it if no
// Writer has it open. Each call must be paired with one release.
func openSocket(path string) (*socket, error) {
	sockets.mu.Lock()
	defer sockets.mu.Unlock()
	if s := sockets.m[path]; s != nil {
		s.refs++
		return s, nil
	}
	s := &socket{path: path, refs: 1}
	if len(path) >= len(s.addr.Path) {
		return nil, fmt.Errorf("%w %s: longer than %d bytes", ErrInvalidSocketPath, quote(path), len(s.addr.Path)-1)
	}
	s.addr.Family = unix.AF_UNIX
	for i := 0; i < len(path); i++ {
		s.addr.Path[i] = int8(path[i])
	}
	s.addrLen = uint32(unsafe.Offsetof(s.addr.Path)) + uint32(len(path)) + 1
	if path[0] == '@' {
		// An abstract address: a NUL, then the name, whose length is
		// the address's (no NUL ends it). golang.org/x/sys/unix reads
		// '@' so too, which the memfd's sendmsg (to) relies on.
		s.addr.Path[0] = 0
		s.addrLen--
	}

	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("journal: socket", err)
	}
	s.fd = fd
	s.to = &unix.SockaddrUnix{Name: path}
	s.q.batch = batchable(path)
	raiseSendBuffer(fd, sendBufferSize)
	// Only congestion's leader blocks, and for at most this slice at a
	// time (see congestion).
	tv := unix.NsecToTimeval(sliceTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("journal: setsockopt SO_SNDTIMEO", err)
	}
	sockets.m[path] = s
	return s, nil
}

// release gives up one Writer's use of s; the last closes it.
func (s *socket) release() error {
	sockets.mu.Lock()
	defer sockets.mu.Unlock()
	if s.refs--; s.refs > 0 {
		return nil
	}
	delete(sockets.m, s.path)
	s.q.close()
	if err := unix.Close(s.fd); err != nil {
		return os.NewSyscallError("journal: close", err)
	}
	return nil
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
// a sealed file, waiting at most timeout (< 0: without bound) for room in
// journald's queue. It reports which way it went.
//
// A send blocked in the kernel holds an OS thread for as long as it
// waits, so a stalled journald and thousands of logging goroutines would
// make thousands of threads (Go dies at 10,000): only one sender of a
// socket at a time makes the system call; the others wait in Go, as
// parked goroutines (see congestion).
//
// A send from an asynchronous Writer's sender also stops waiting when
// abort is closed (Close began); nil never is.
func (s *socket) send(data []byte, timeout time.Duration, abort <-chan struct{}) (viaFile bool, err error) {
	errno := s.q.send(s, data, nil, timeout, abort)
	switch errno {
	case 0:
		return false, nil
	case unix.EMSGSIZE, unix.ENOBUFS:
		// Too large for a datagram, or for the kernel to allocate one.
		return true, s.sendFile(data, timeout, abort)
	}
	// libsystemd also retries EAGAIN through a memfd; its socket blocks
	// without bound. Ours waited the whole timeout, so EAGAIN means
	// journald's queue stayed full for all of it, and a memfd's datagram
	// would wait on the same queue.
	return false, s.error(errno)
}

// sendBlocking makes one attempt to send data as a datagram, or pass the
// descriptor in oob, waiting in the kernel for room in journald's queue
// for at most sliceTimeout (the socket's SO_SNDTIMEO): EAGAIN then. Only
// the leader of congestion calls it.
func (s *socket) sendBlocking(data, oob []byte) unix.Errno { return s.sendto(data, oob, 0) }

// sendto is one attempt to send, with flags added to MSG_NOSIGNAL
// (MSG_DONTWAIT: no wait for room at all).
func (s *socket) sendto(data, oob []byte, flags int) unix.Errno {
	if oob != nil {
		return errnoOf(unix.Sendmsg(s.fd, nil, oob, s.to, unix.MSG_NOSIGNAL|flags))
	}
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(p), uintptr(len(data)),
		uintptr(unix.MSG_NOSIGNAL|flags), uintptr(unsafe.Pointer(&s.addr)), uintptr(s.addrLen))
	return errno
}

// sendFile writes data to a sealed memfd, or failing that an unlinked file
// under /dev/shm, and passes its descriptor to journald, which reads the
// entry from it.
func (s *socket) sendFile(data []byte, timeout time.Duration, abort <-chan struct{}) error {
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

	if errno := s.q.send(s, nil, unix.UnixRights(fd), timeout, abort); errno != 0 {
		return s.error(errno)
	}
	return nil
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
	case unix.EAGAIN:
		// Only ever returned once the wait has taken the whole timeout.
		kind = ErrTimeout
	case unix.EBADF:
		// The socket was closed under a send already under way: the
		// last Writer sharing it was closed (the congestion queue says
		// so with EBADF too). That is ErrClosed, not a fault.
		kind = ErrClosed
	}
	return &sendError{kind: kind, errno: errno, path: s.path}
}

func errnoOf(err error) unix.Errno {
	var errno unix.Errno
	errors.As(err, &errno)
	return errno
}

// batches reports whether a datagram may carry several entries (see
// batchable).
func (s *socket) batches() bool { return s.q.batch }
