package journaltest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Received is one entry as the Server stored it.
type Received struct {
	Entry
	ViaFD bool // came in a file passed with SCM_RIGHTS rather than in the datagram
	// Sealed: the file was a memfd that the modelled journald takes as
	// sealed (see Version).
	Sealed bool
	Size   int // bytes of the datagram or file
}

// maxFDs sizes the control buffer: journald accepts exactly one fd, but we want
// to see (and report) a few extra rather than have them cut off by MSG_CTRUNC.
const maxFDs = 8

// Server is a datagram socket that receives what a client sends to
// journald's native socket, stores the entries as journald would, and
// records every difference between what was sent and what journald stores.
// Tests should assert Err() == nil.
//
// In steady state the reader goroutine does not allocate: it reuses its buffers
// and only stores raw payloads, which Received and Err parse on demand. That
// keeps testing.AllocsPerRun, which counts allocations of the whole process,
// meaningful for a writer that sends to a live Server.
type Server struct {
	path string
	cfg  config
	sock *sock // the socket and what the reader goroutine uses: per system
	done chan struct{}

	closeOnce sync.Once

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

// NewServer binds a datagram socket in t.TempDir() and starts reading it
// in a goroutine, like journald's native socket. The server is closed by
// t.Cleanup. It is NewServerAt with a fresh path.
//
// A datagram with a payload and no fds is read by journald's rules (see
// Parse). A datagram with no payload and exactly one SCM_RIGHTS fd is
// read from the file, if the modelled journald takes it (see Version and
// the package documentation): a regular, non-empty file, a sealed memfd
// or, from a sender that is not root, a file directly in /dev/shm, /tmp
// or /var/tmp. Anything else is recorded as an error.
//
// Where unix datagram sockets do not exist (Windows), NewServer skips the
// test.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "socket")
	if len(path) >= maxSocketPath {
		// Long test names make long temp dirs; sun_path holds only 104 or 108 bytes.
		dir, err := os.MkdirTemp("", "journaltest")
		if err != nil {
			t.Fatalf("journaltest: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		path = filepath.Join(dir, "socket")
	}
	return NewServerAt(t, path, opts...)
}

// NewServerAt is NewServer at a given path, e.g. that of a closed Server to
// simulate journald restarting. Like journald it first removes a stale socket
// there, and makes the socket writable by everyone (mode 0666). A path that
// starts with '@' is an abstract address (Linux), as
// journal.WriterOptions.SocketPath reads it: "@name" binds "\x00name",
// and no file is made.
func NewServerAt(t testing.TB, path string, opts ...Option) *Server {
	t.Helper()
	s, err := Listen(path, opts...)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// Listen is NewServerAt for code without a testing.TB (an Example, a
// TestMain): the caller must Close the Server. Where unix datagram sockets
// do not exist (Windows), it returns an error that matches
// errors.ErrUnsupported.
func Listen(path string, opts ...Option) (*Server, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	sock, err := listen(path)
	if err != nil {
		return nil, err
	}
	s := &Server{
		path: path, cfg: cfg, sock: sock, done: make(chan struct{}),
		// Preallocated so that a typical test does not even grow them.
		raw:     make([]byte, 0, 256<<10),
		pending: make([]payload, 0, 1024),
	}
	s.cond = sync.NewCond(&s.mu)
	go s.loop()
	return s, nil
}

// Entries returns the entries stored so far, in arrival order.
func (s *Server) Entries() []Entry {
	var es []Entry
	for _, r := range s.Received() {
		es = append(es, r.Entry)
	}
	return es
}

// Path is the socket's path, to be used in place of /run/systemd/journal/socket.
func (s *Server) Path() string { return s.path }

// Received returns a snapshot of the entries stored so far, in arrival order.
// The entries' field slices are shared; treat them as read-only.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.parsePending()
	return append([]Received(nil), s.received...)
}

// Wait polls until at least n entries have been stored and returns them, or
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
			t.Fatalf("journaltest: got %d entries after %v, want %d (errors: %v)%s", len(got), timeout, n, s.Err(), s.hint(len(got)))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// hint says what may send a client elsewhere, when a test sees fewer
// entries than it waits for.
func (s *Server) hint(got int) string {
	h := "; is the client sending to " + s.path + "?"
	if v := os.Getenv("NEWSTYLE_LOG_TARGET"); v != "" {
		h += " NEWSTYLE_LOG_TARGET=" + v + " is set: a newstyle logger follows it unless Options.IgnoreEnv is set"
	}
	return h
}

// Err returns every difference recorded so far between what clients sent
// and what journald stores, joined, or nil if there was none. Each says
// where (the datagram, the offset) and what journald does there: skips a
// line, drops an entry, reads nothing more of the datagram, ignores a
// passed file.
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
	s.sock.wakeup()
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
		s.sock.wakeup()
		// Close the fds only once the reader has left poll, so that it never
		// polls a closed (or, worse, reused) descriptor number.
		<-s.done
		s.sock.close(s.path)
	})
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

// loop is the reader goroutine: it reads datagrams until Close.
func (s *Server) loop() {
	defer func() {
		s.mu.Lock()
		s.stopped = true
		s.cond.Broadcast()
		s.mu.Unlock()
		close(s.done)
	}()
	for s.runnable() {
		readable, err := s.sock.wait()
		if err != nil {
			s.fail("poll: %v", err)
			return
		}
		if readable && !s.receive() {
			return
		}
	}
}

// next counts a datagram and returns its number.
func (s *Server) next() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return s.seq
}

func (s *Server) fail(format string, args ...any) {
	s.mu.Lock()
	s.parsePending() // keep errors in arrival order
	s.errs = append(s.errs, fmt.Errorf("journaltest: "+format, args...))
	s.mu.Unlock()
}

// record queues data for parsing; it only copies, so that it does not allocate.
func (s *Server) record(seq int, data []byte, viaFD, sealed bool) {
	s.mu.Lock()
	s.raw = append(s.raw, data...)
	s.pending = append(s.pending, payload{end: len(s.raw), seq: seq, viaFD: viaFD, sealed: sealed})
	s.mu.Unlock()
}

// parsePending reads the queued payloads as journald does, and stores
// what it would store. Called with s.mu held.
func (s *Server) parsePending() {
	start := 0
	for _, p := range s.pending {
		data := s.raw[start:p.end]
		start = p.end
		res := scan(data, journaldLimits, s.cfg.scanVersion()) // copies values: raw can be reused
		for _, e := range res.entries {
			if e.stored {
				s.received = append(s.received, Received{Entry: e.collapse(), ViaFD: p.viaFD, Sealed: p.sealed, Size: len(data)})
			}
		}
		for _, pe := range res.problems {
			s.errs = append(s.errs, &DatagramError{Datagram: p.seq, Size: len(data), ViaFD: p.viaFD, ParseError: pe})
		}
	}
	s.pending = s.pending[:0]
	s.raw = s.raw[:0]
	if cap(s.raw) > 16<<20 {
		s.raw = nil // don't hold on to a huge file's worth of memory
	}
}

// DatagramError is a difference, in a datagram the Server received,
// between what the client sent and what journald stores. Err joins them;
// errors.As finds each, and its ParseError.
type DatagramError struct {
	Datagram int  // the datagram's number, from 1, in arrival order
	Size     int  // its bytes (or the passed file's)
	ViaFD    bool // the entries came in a passed file
	*ParseError
}

func (e *DatagramError) Error() string {
	via := ""
	if e.ViaFD {
		via = ", in a passed file"
	}
	return fmt.Sprintf("journaltest: datagram #%d (%d bytes%s): offset %d: %s", e.Datagram, e.Size, via, e.Offset, e.Reason)
}

func (e *DatagramError) Unwrap() error { return e.ParseError }
