//go:build unix

package journaltest

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// maxSocketPath is the size of sun_path: 108 bytes on Linux, 104 on the BSDs.
const maxSocketPath = len(unix.RawSockaddrUnix{}.Path)

// sock is the Server's socket, and what its reader goroutine uses.
type sock struct {
	fd           int
	wakeR, wakeW int    // an eventfd (Linux, both the same) or a pipe that interrupts poll
	ino          uint64 // the socket's inode, so that close never removes a successor's socket

	// Used by the reader goroutine only.
	pfds []unix.PollFd
	rbuf []byte // datagram or file contents
	oob  []byte
}

// listen binds a datagram socket at path, as journald binds its own.
func listen(path string) (*sock, error) {
	fd, err := newSocket()
	if err != nil {
		return nil, fmt.Errorf("journaltest: socket: %w", err)
	}
	// A leading '@' names an abstract address (Linux), which has no file.
	abstract := strings.HasPrefix(path, "@")
	var st unix.Stat_t
	if !abstract && unix.Lstat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK {
		os.Remove(path)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("journaltest: bind %s: %w", path, err)
	}
	if !abstract {
		// bind applies the umask; journald's socket accepts every user.
		err = os.Chmod(path, 0o666)
		if err == nil {
			err = unix.Stat(path, &st)
		}
		if err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("journaltest: %w", err)
		}
	}
	r, w, err := newWake()
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("journaltest: %w", err)
	}
	return &sock{
		fd: fd, wakeR: r, wakeW: w, ino: uint64(st.Ino),
		pfds: []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(r), Events: unix.POLLIN}},
		rbuf: make([]byte, 64<<10),
		oob:  make([]byte, oobSize),
	}, nil
}

// wait waits until the socket has a datagram (true) or wakeup was called
// (false).
func (k *sock) wait() (readable bool, err error) {
	for {
		k.pfds[0].Revents, k.pfds[1].Revents = 0, 0
		_, err := unix.Poll(k.pfds, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, err
		}
		if k.pfds[1].Revents != 0 {
			// Pause or Close was asked for: the caller checks before reading.
			var drain [64]byte
			for {
				if n, err := unix.Read(k.wakeR, drain[:]); n <= 0 || err != nil {
					break
				}
			}
			return false, nil
		}
		return k.pfds[0].Revents != 0, nil
	}
}

// wakeup interrupts wait.
func (k *sock) wakeup() {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], 1)
	unix.Write(k.wakeW, b[:]) // EAGAIN only if already full: still awake
}

// close closes the descriptors and removes the socket at path, if it is
// still this one.
func (k *sock) close(path string) {
	unix.Close(k.fd)
	unix.Close(k.wakeR)
	if k.wakeW != k.wakeR {
		unix.Close(k.wakeW)
	}
	var st unix.Stat_t
	if !strings.HasPrefix(path, "@") && unix.Lstat(path, &st) == nil && uint64(st.Ino) == k.ino {
		os.Remove(path)
	}
}

// buffer returns the reader's buffer with length n, growing it if needed.
func (k *sock) buffer(n int) []byte {
	if cap(k.rbuf) < n {
		k.rbuf = make([]byte, n)
	}
	return k.rbuf[:n]
}
