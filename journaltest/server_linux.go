package journaltest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On Linux a Server is journald's whole native socket: it learns who sent
// each datagram (SO_PASSCRED, as journald does) and reads files passed by
// descriptor (memfds, /dev/shm files) by the modelled journald's rules.

// oobSize holds the sender's credentials and a few descriptors.
var oobSize = unix.CmsgSpace(unix.SizeofUcred) + unix.CmsgSpace(maxFDs*4)

func newSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, err
	}
	// journald asks for the sender's credentials with every datagram: its
	// rules for passed files depend on whether the sender is root.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func newWake() (r, w int, err error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return -1, -1, fmt.Errorf("eventfd: %w", err)
	}
	return fd, fd, nil
}

// receive reads one datagram and records its entries or the problem with it.
// It returns false if the socket failed, so that the loop does not spin on it.
func (s *Server) receive() bool {
	k := s.sock
	// Peek at the real size first (MSG_TRUNC reports it even for an empty buffer)
	// so that a datagram of any size fits; a fixed buffer would silently truncate.
	// No control buffer here, so that peeking does not install passed fds.
	size, _, _, err := recvmsg(k.fd, nil, nil, unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT)
	if err == unix.EAGAIN || err == unix.EINTR {
		return true
	}
	if err != nil {
		s.fail("recvmsg (peek): %v", err)
		return false
	}
	buf := k.buffer(max(size, 1)) // a non-empty buffer even for an fd-only datagram
	n, oobn, flags, err := recvmsg(k.fd, buf, k.oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		s.fail("recvmsg: %v", err)
		return false
	}
	var fdArr [maxFDs]int
	from, fds, cerr := parseControl(k.oob[:oobn], fdArr[:0])
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	seq := s.next()

	switch {
	case cerr != nil:
		s.fail("datagram #%d: control message: %v", seq, cerr)
	case flags&unix.MSG_CTRUNC != 0:
		s.fail("datagram #%d: control data truncated (more than %d descriptors): journald ignores the datagram", seq, maxFDs)
	case flags&unix.MSG_TRUNC != 0:
		s.fail("datagram #%d: truncated to %d bytes", seq, n)
	case len(fds) == 0 && n == 0:
		s.fail("datagram #%d: empty: journald ignores it", seq)
	case len(fds) == 0:
		s.record(seq, buf[:n], false, false)
	case len(fds) == 1 && n == 0:
		data, sealed, err := s.readPassedFile(fds[0], from)
		if err != nil {
			s.fail("datagram #%d: passed file: %v", seq, err)
			break
		}
		s.record(seq, data, true, sealed)
	default:
		// journald takes a file only from a datagram with no payload and one fd.
		s.fail("datagram #%d: %d bytes with %d descriptors: journald takes one descriptor alone, and ignores the datagram", seq, n, len(fds))
	}
	return true
}

// parseControl reads the sender's credentials and the passed descriptors
// out of a control buffer, into fds, without allocating.
func parseControl(oob []byte, fds []int) (from sender, _ []int, err error) {
	for len(oob) > 0 {
		var hdr unix.Cmsghdr
		var data []byte
		hdr, data, oob, err = unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return from, fds, err
		}
		if hdr.Level != unix.SOL_SOCKET {
			continue
		}
		switch hdr.Type {
		case unix.SCM_CREDENTIALS:
			if len(data) >= unix.SizeofUcred {
				cred := (*unix.Ucred)(unsafe.Pointer(&data[0]))
				from = sender{known: true, uid: cred.Uid}
			}
		case unix.SCM_RIGHTS:
			for ; len(data) >= 4; data = data[4:] {
				if len(fds) < cap(fds) {
					fds = append(fds, int(int32(binary.NativeEndian.Uint32(data))))
				}
			}
		}
	}
	return from, fds, nil
}

// recvmsg is unix.Recvmsg without the sender's address, for which
// unix.Recvmsg allocates on every call.
func recvmsg(fd int, p, oob []byte, flags int) (n, oobn, recvflags int, err error) {
	var iov unix.Iovec
	if len(p) > 0 {
		iov.Base = &p[0]
		iov.SetLen(len(p))
	}
	var msg unix.Msghdr
	msg.Iov = &iov
	msg.SetIovlen(1)
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	r, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if errno != 0 {
		return 0, 0, 0, errno
	}
	return int(r), int(msg.Controllen), int(msg.Flags), nil
}

// openFlagNoise holds the F_GETFL bits the kernel sets on every open file by
// itself (O_LARGEFILE on 64-bit kernels, whose value differs per architecture
// and is hidden by Go's O_LARGEFILE=0). journald's fd_verify_safe_flags allows
// exactly these besides the access mode and O_NOFOLLOW.
var openFlagNoise = sync.OnceValue(func() int {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return 0
	}
	return fl &^ unix.O_ACCMODE
})

// readPassedFile checks a passed fd by the modelled journald's rules
// (manager_process_native_file) and returns the file's contents, in the
// reader's buffer, and whether journald takes it as a sealed memfd.
func (s *Server) readPassedFile(fd int, from sender) (data []byte, sealed bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, false, fmt.Errorf("fstat: %v", err)
	}
	f := passedFile{regular: st.Mode&unix.S_IFMT == unix.S_IFREG, size: st.Size, links: uint64(st.Nlink), seals: -1}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return nil, false, fmt.Errorf("F_GETFL: %v", err)
	}
	f.oddFlags = fl &^ (unix.O_ACCMODE | unix.O_NOFOLLOW | openFlagNoise())
	// F_GET_SEALS also works on plain tmpfs files (which report
	// F_SEAL_SEAL): journald judges by the seals alone, and so do the rules.
	if seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0); err == nil {
		f.seals = seals
	}
	if f.path, err = os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); err != nil {
		return nil, false, fmt.Errorf("readlink: %v", err)
	}
	sealed, reason := s.cfg.takeFile(f, from)
	if reason != "" {
		return nil, sealed, errors.New(reason)
	}
	data = s.sock.buffer(int(st.Size))
	for off := 0; off < len(data); {
		n, err := unix.Pread(fd, data[off:], int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, sealed, fmt.Errorf("pread: %v", err)
		}
		if n == 0 {
			return nil, sealed, fmt.Errorf("file shrank to %d bytes while reading (stat said %d)", off, st.Size)
		}
		off += n
	}
	return data, sealed, nil
}
