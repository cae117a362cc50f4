package journaltest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Received is one entry as the Server got it.
type Received struct {
	Entry
	ViaFD  bool // came as an fd passed with SCM_RIGHTS rather than in the datagram
	Sealed bool // the fd was a memfd with F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE set
	Size   int  // bytes of the datagram or file
}

// requiredSeals are the seals journald needs to trust a memfd (memfd_get_sealed):
// with them the client can no longer change the contents under journald's feet.
const requiredSeals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

// maxFDs sizes the control buffer: journald accepts exactly one fd, but we want
// to see (and report) a few extra rather than have them cut off by MSG_CTRUNC.
const maxFDs = 8

// Server is a unixgram socket that receives datagrams like journald's native
// socket does, and records what it got. Every parse or receive problem is
// recorded and makes Err non-nil; tests should assert Err() == nil.
//
// In steady state the reader goroutine does not allocate: it reuses its buffers
// and only stores raw payloads, which Received and Err parse on demand. That
// keeps testing.AllocsPerRun, which counts allocations of the whole process,
// meaningful for a writer that sends to a live Server.
type Server struct {
	path string
	ino  uint64 // the socket's inode, so Close never removes a successor's socket
	fd   int    // the socket
	wake int    // eventfd that interrupts poll when pause/close state changes
	done chan struct{}

	closeOnce sync.Once

	// Used by the reader goroutine only.
	pfds []unix.PollFd
	rbuf []byte // datagram or file contents
	oob  []byte

	mu       sync.Mutex
	cond     *sync.Cond // signals changes of paused, parked, closed, stopped
	paused   bool
	parked   bool // the reader is waiting in Pause and will not read
	closed   bool
	stopped  bool      // the reader goroutine has exited
	raw      []byte    // payloads not parsed yet, back to back
	pending  []payload // their boundaries in raw, in arrival order
	received []Received
	errs     []error
	seq      int // datagrams seen, for error messages
}

// payload is a received datagram or file waiting in Server.raw to be parsed.
type payload struct {
	end           int // raw[previous end:end]
	seq           int
	viaFD, sealed bool
}

// NewServer binds a unixgram socket in t.TempDir() and starts reading it in a
// goroutine, like journald's native socket. The server is closed by t.Cleanup.
// It is NewServerAt with a fresh path.
//
// A datagram with a payload and no fds is parsed with Parse; datagrams of any
// size the kernel delivers are read whole. A datagram with no payload and
// exactly one SCM_RIGHTS fd is read from the file, which must be a regular
// file opened without extra status flags (journald refuses e.g. O_APPEND),
// and either a memfd sealed with F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE or
// an unlinked file directly under /dev/shm. (journald also accepts /tmp and
// /var/tmp, does not insist on unlinking, and checks no path at all for root;
// we insist on the form that works for any client.) Anything else is
// recorded as an error.
func NewServer(t testing.TB) *Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "socket")
	if len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		// Long test names make long temp dirs; sun_path holds only 108 bytes.
		dir, err := os.MkdirTemp("", "journaltest")
		if err != nil {
			t.Fatalf("journaltest: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		path = filepath.Join(dir, "socket")
	}
	return NewServerAt(t, path)
}

// NewServerAt is NewServer at a given path, e.g. that of a closed Server to
// simulate journald restarting. Like journald it first removes a stale socket
// there, and makes the socket writable by everyone (mode 0666). A path that
// starts with '@' is an abstract address, as journal.WriterOptions.SocketPath
// reads it: "@name" binds "\x00name", and no file is made.
func NewServerAt(t testing.TB, path string) *Server {
	t.Helper()
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Listen is NewServerAt for code without a testing.TB (an Example, a
// TestMain): the caller must Close the Server.
func Listen(path string) (*Server, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("journaltest: socket: %w", err)
	}
	// A leading '@' names an abstract address, which has no file.
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
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("journaltest: eventfd: %w", err)
	}
	s := &Server{
		path: path, ino: st.Ino, fd: fd, wake: wake, done: make(chan struct{}),
		pfds: []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(wake), Events: unix.POLLIN}},
		// Preallocated so that a typical test does not even grow them.
		rbuf:    make([]byte, 64<<10),
		oob:     make([]byte, unix.CmsgSpace(maxFDs*4)),
		raw:     make([]byte, 0, 256<<10),
		pending: make([]payload, 0, 1024),
	}
	s.cond = sync.NewCond(&s.mu)
	go s.loop()
	return s, nil
}

// Entries returns the entries received so far, in arrival order, each an
// ordered list of fields as the client sent them.
func (s *Server) Entries() []Entry {
	var es []Entry
	for _, r := range s.Received() {
		es = append(es, r.Entry)
	}
	return es
}

// Path is the socket's path, to be used in place of /run/systemd/journal/socket.
func (s *Server) Path() string { return s.path }

// Received returns a snapshot of the entries received so far, in arrival order.
// The entries' field slices are shared; treat them as read-only.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parsePending()
	return append([]Received(nil), s.received...)
}

// Wait polls until at least n entries have been received and returns them, or
// fails the test with t.Fatalf after timeout.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Received {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := s.Received()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("journaltest: got %d entries after %v, want %d (errors: %v)", len(got), timeout, n, s.Err())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Err returns all problems recorded so far, joined, or nil if there were none.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parsePending()
	return errors.Join(s.errs...)
}

// Pause stops reading; when it returns, no further datagram is read until
// Resume. Datagrams queue up in the kernel, and since an AF_UNIX datagram queue
// is limited by count (net.unix.max_dgram_qlen) and by the sender's SO_SNDBUF,
// senders eventually block or get EAGAIN, as with a stalled journald.
func (s *Server) Pause() {
	s.mu.Lock()
	s.paused = true
	s.mu.Unlock()
	s.wakeup()
	s.mu.Lock()
	for !s.parked && !s.stopped {
		s.cond.Wait()
	}
	s.mu.Unlock()
}

// Resume restarts reading after Pause.
func (s *Server) Resume() {
	s.mu.Lock()
	s.paused = false
	s.cond.Broadcast()
	s.mu.Unlock()
}

// Close closes the socket and removes its path, simulating journald going away:
// senders then get ECONNREFUSED or ENOENT. Datagrams still queued are lost.
// Close is idempotent and safe to call while paused.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.cond.Broadcast()
		s.mu.Unlock()
		s.wakeup()
		// Close the fds only once the reader has left poll, so that it never
		// polls a closed (or, worse, reused) descriptor number.
		<-s.done
		unix.Close(s.fd)
		unix.Close(s.wake)
		var st unix.Stat_t
		if !strings.HasPrefix(s.path, "@") && unix.Lstat(s.path, &st) == nil && st.Ino == s.ino {
			os.Remove(s.path)
		}
	})
}

func (s *Server) wakeup() {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], 1)
	unix.Write(s.wake, b[:]) // EAGAIN only if the counter is already huge: still awake
}

func (s *Server) fail(format string, args ...any) {
	s.mu.Lock()
	s.parsePending() // keep errors in arrival order
	s.errs = append(s.errs, fmt.Errorf("journaltest: "+format, args...))
	s.mu.Unlock()
}

// runnable blocks while paused and reports whether the reader should go on.
func (s *Server) runnable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.paused && !s.closed {
		s.parked = true
		s.cond.Broadcast()
		s.cond.Wait()
	}
	s.parked = false
	return !s.closed
}

func (s *Server) loop() {
	defer func() {
		s.mu.Lock()
		s.stopped = true
		s.cond.Broadcast()
		s.mu.Unlock()
		close(s.done)
	}()
	pfds := s.pfds
	var drain [8]byte
	for s.runnable() {
		pfds[0].Revents, pfds[1].Revents = 0, 0
		if _, err := unix.Poll(pfds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			s.fail("poll: %v", err)
			return
		}
		if pfds[1].Revents != 0 {
			unix.Read(s.wake, drain[:])
			continue // pause or close requested: re-check before reading
		}
		if pfds[0].Revents != 0 && !s.receive() {
			return
		}
	}
}

// receive reads one datagram and records its entries or the problem with it.
// It returns false if the socket failed, so that the loop does not spin on it.
func (s *Server) receive() bool {
	// Peek at the real size first (MSG_TRUNC reports it even for an empty buffer)
	// so that a datagram of any size fits; a fixed buffer would silently truncate.
	// No control buffer here, so that peeking does not install passed fds.
	size, _, _, err := recvmsg(s.fd, nil, nil, unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT)
	if err == unix.EAGAIN || err == unix.EINTR {
		return true
	}
	if err != nil {
		s.fail("recvmsg (peek): %v", err)
		return false
	}
	buf := s.buffer(max(size, 1)) // a non-empty buffer even for an fd-only datagram
	n, oobn, flags, err := recvmsg(s.fd, buf, s.oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		s.fail("recvmsg: %v", err)
		return false
	}
	var fds []int
	if oobn > 0 {
		fds, err = parseRights(s.oob[:oobn])
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()

	s.mu.Lock()
	s.seq++
	seq := s.seq
	s.mu.Unlock()

	switch {
	case err != nil:
		s.fail("datagram #%d: control message: %v", seq, err)
	case flags&unix.MSG_CTRUNC != 0:
		s.fail("datagram #%d: control data truncated, passed fds lost", seq)
	case flags&unix.MSG_TRUNC != 0:
		s.fail("datagram #%d: truncated to %d bytes", seq, n)
	case len(fds) == 0 && n == 0:
		s.fail("datagram #%d: empty (journald ignores it)", seq)
	case len(fds) == 0:
		s.record(seq, buf[:n], false, false)
	case len(fds) == 1 && n == 0:
		data, sealed, err := s.readPassedFile(fds[0])
		if err != nil {
			s.fail("datagram #%d: passed fd: %v", seq, err)
			break
		}
		s.record(seq, data, true, sealed)
	default:
		// journald only takes a file from a datagram with no payload and one fd.
		s.fail("datagram #%d: %d bytes with %d fds (journald ignores it)", seq, n, len(fds))
	}
	return true
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

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET || m.Header.Type != unix.SCM_RIGHTS {
			continue
		}
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			return fds, err
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// buffer returns the reader's buffer with length n, growing it if needed.
func (s *Server) buffer(n int) []byte {
	if cap(s.rbuf) < n {
		s.rbuf = make([]byte, n)
	}
	return s.rbuf[:n]
}

// record queues data for parsing; it only copies, so that it does not allocate.
func (s *Server) record(seq int, data []byte, viaFD, sealed bool) {
	s.mu.Lock()
	s.raw = append(s.raw, data...)
	s.pending = append(s.pending, payload{end: len(s.raw), seq: seq, viaFD: viaFD, sealed: sealed})
	s.mu.Unlock()
}

// parsePending parses the queued payloads. Called with s.mu held.
func (s *Server) parsePending() {
	start := 0
	for _, p := range s.pending {
		data := s.raw[start:p.end]
		start = p.end
		entries, err := Parse(data) // copies values: raw can be reused
		for _, e := range entries {
			s.received = append(s.received, Received{Entry: e, ViaFD: p.viaFD, Sealed: p.sealed, Size: len(data)})
		}
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("journaltest: datagram #%d (%d bytes, viaFD=%v): %w", p.seq, len(data), p.viaFD, err))
		}
	}
	s.pending = s.pending[:0]
	s.raw = s.raw[:0]
	if cap(s.raw) > 16<<20 {
		s.raw = nil // don't hold on to a huge file's worth of memory
	}
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

// readPassedFile checks a passed fd the way journald's
// manager_process_native_file does (more strictly, see NewServer's rules) and
// returns the file's contents, in the reader's buffer.
func (s *Server) readPassedFile(fd int) (data []byte, sealed bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, false, fmt.Errorf("fstat: %v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, false, fmt.Errorf("not a regular file (mode %#o)", st.Mode)
	}
	// journald refuses fds with flags such as O_APPEND, O_NONBLOCK or O_PATH.
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return nil, false, fmt.Errorf("F_GETFL: %v", err)
	}
	if odd := fl &^ (unix.O_ACCMODE | unix.O_NOFOLLOW | openFlagNoise()); odd != 0 {
		return nil, false, fmt.Errorf("unexpected file status flags %#o (journald refuses the fd)", odd)
	}
	// F_GET_SEALS also works on plain tmpfs files (which report F_SEAL_SEAL), so
	// a memfd is recognised by its /proc link "/memfd:NAME (deleted)".
	seals, serr := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	sealed = serr == nil && seals&requiredSeals == requiredSeals
	if !sealed {
		link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		if err != nil {
			return nil, false, fmt.Errorf("readlink: %v", err)
		}
		// journald would read an unsealed file that the client can still truncate
		// or rewrite while it is being read; insist on an unlinked /dev/shm file.
		switch {
		case strings.HasPrefix(link, "/memfd:"):
			return nil, false, fmt.Errorf("memfd %q not sealed (seals %#x, want SHRINK|GROW|WRITE)", link, seals)
		case st.Nlink != 0:
			return nil, false, fmt.Errorf("file %q still has %d links, want it unlinked", link, st.Nlink)
		case filepath.Dir(strings.TrimSuffix(link, " (deleted)")) != "/dev/shm":
			return nil, false, fmt.Errorf("file %q is not directly under /dev/shm", link)
		}
	}
	if st.Size <= 0 {
		return nil, sealed, errors.New("empty file (journald ignores it)")
	}
	// journald copies an unsealed file, so it allows only half the size.
	limit := int64(EntrySizeMax)
	if !sealed {
		limit /= 2
	}
	if st.Size > limit {
		return nil, sealed, fmt.Errorf("file of %d bytes exceeds %d (journald refuses it)", st.Size, limit)
	}
	data = s.buffer(int(st.Size))
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
