//go:build linux

package stdoutfallback

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fileMode says how to write to f: regular files and /dev/null take a
// write without ever blocking for long; a pipe, a socket (journald's
// stdout stream) or a terminal may block as long as its reader wants, and
// is written with RWF_NOWAIT.
func (o *output) fileMode(f *os.File) writeMode {
	raw, err := f.SyscallConn()
	if err != nil {
		return modeFlusher
	}
	var st unix.Stat_t
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) }); err != nil || serr != nil {
		return modeFlusher
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return modeDirect
	case unix.S_IFCHR:
		if unix.Major(st.Rdev) == 1 && unix.Minor(st.Rdev) == 3 { // /dev/null
			return modeDirect
		}
	}
	o.raw = raw
	o.rawFn = o.pwriteNoWait
	return modeNoWait
}

// writeNoWait writes what the kernel takes of b at once; a full pipe or
// socket takes nothing (n = 0). A file that refuses RWF_NOWAIT (a terminal
// does, on some kernels) is written by the flusher from then on.
func (o *output) writeNoWait(b []byte) (int, error) {
	o.rawB, o.rawN, o.rawE = b, 0, nil
	if err := o.raw.Control(o.rawFn); err != nil {
		return 0, err
	}
	switch o.rawE {
	case nil:
		return o.rawN, nil
	case unix.EAGAIN:
		return 0, nil
	case unix.EOPNOTSUPP, unix.EINVAL, unix.ENOSYS:
		o.mode = modeFlusher
		return 0, nil
	}
	return 0, &os.PathError{Op: "write", Path: "stdout", Err: o.rawE}
}

// pwriteNoWait is pwritev2(fd, b, -1, RWF_NOWAIT): a write at the file's
// position that returns EAGAIN rather than wait, without setting
// O_NONBLOCK on a descriptor that other code (and other processes) share.
func (o *output) pwriteNoWait(fd uintptr) {
	iov := unix.Iovec{Base: unsafe.SliceData(o.rawB)}
	iov.SetLen(len(o.rawB))
	for {
		n, _, errno := unix.Syscall6(unix.SYS_PWRITEV2, fd, uintptr(unsafe.Pointer(&iov)), 1,
			^uintptr(0), ^uintptr(0), unix.RWF_NOWAIT)
		if errno == unix.EINTR {
			continue
		}
		o.rawN = int(n)
		if errno != 0 {
			o.rawN, o.rawE = 0, errno
		}
		return
	}
}
