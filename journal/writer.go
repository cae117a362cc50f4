package journal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/newstyle-go/newstyle/internal/buffer"
)

// DefaultSocketPath is where the system's journald listens for the native
// protocol. A journal namespace NAME listens on
// /run/systemd/journal.NAME/socket instead.
const DefaultSocketPath = "/run/systemd/journal/socket"

// DefaultSendTimeout is how long Send waits, by default, for a journald
// that does not read. journald takes tens of thousands of entries a second,
// so a queue still full after this long means it is stuck, not busy.
const DefaultSendTimeout = 2 * time.Second

// WriterOptions configure a Writer. The zero value sends to the system's
// journald.
type WriterOptions struct {
	// SocketPath is the journald socket to send to; empty means
	// DefaultSocketPath (NamespaceSocketPath gives a namespace's). A
	// leading '@' names an address in the abstract namespace, as in
	// systemd's and Go's own socket addresses: "@name" is "\x00name",
	// for every entry, small or passed as a memfd, and for Probe. (Any
	// process of the network namespace may bind an abstract name; a
	// path is guarded by its directory's permissions.) A path with a NUL
	// byte, "@" alone, or one over 107 bytes is refused by NewWriter
	// with ErrInvalidSocketPath.
	SocketPath string

	// SendTimeout bounds how long Send waits while journald's socket queue
	// is full; after it, Send returns ErrTimeout. Zero means
	// DefaultSendTimeout; a negative value waits as long as it takes, as
	// libsystemd's sd_journal_send does. A waiting Send is a parked
	// goroutine, not an OS thread (see Writer).
	SendTimeout time.Duration

	// SyslogIdentifier is sent as SYSLOG_IDENTIFIER with every entry that
	// does not carry that field itself (journalctl -t selects by it).
	// Empty means ProgramName().
	SyslogIdentifier string

	// Async, when not nil (even &AsyncOptions{}), makes Send queue the
	// entry and return, and a goroutine of the Writer's send queued
	// entries several to a datagram (see AsyncOptions). nil keeps Send
	// synchronous.
	Async *AsyncOptions
}

// Writer sends entries to journald over the native protocol. It is safe for
// concurrent use; each Send is one entry, delivered whole or not at all.
//
// Writers send through one datagram socket per socket path, shared by
// every Writer of the process (as libsystemd and go-systemd share theirs),
// so that making Writers, and loggers on them, costs no descriptor each;
// the last Writer to be closed, or garbage-collected unclosed, closes it.
// The socket is not connected to journald: every send names the socket
// path, so a journald that is restarted is reached again by the next
// Send, with nothing to reopen. Its send buffer is raised to 8 MiB (as
// libsystemd does) so that entries of a few MiB still fit in one datagram.
//
// Send never blocks in the kernel. While journald's socket queue is full
// (journald busy, stalled on a slow disk, or stopped), callers wait in Go,
// parked as goroutines, oldest first, each for at most SendTimeout, while
// one goroutine sends for them as journald makes room; so a stalled
// journald costs no OS thread per waiting caller, however many goroutines
// log (a second, connected socket watched by Go's network poller is opened
// for that the first time it is needed).
//
// An entry too large for a datagram (EMSGSIZE, or ENOBUFS when the kernel
// cannot allocate it) is written to a memfd sealed against writing,
// shrinking and growing, whose descriptor is passed to journald instead;
// where memfd_create is not available, to an unlinked file directly under
// /dev/shm, which journald also accepts.
//
// Send is strict and checks the whole entry before anything is sent: an
// invalid field name, a reserved one, a priority outside 0–7 or an entry
// over journald's limits is refused whole with an error. (The slog handler
// built on a Writer is forgiving instead: it makes names valid by a
// documented rule.)
//
// Send does send, as given, the fields that journalctl reads to list an
// entry under a unit: UNIT, USER_UNIT, OBJECT_SYSTEMD_UNIT,
// OBJECT_SYSTEMD_USER_UNIT, COREDUMP_UNIT, COREDUMP_USER_UNIT, and the
// OBJECT_* fields (with OBJECT_PID, journald describes that process). A
// supervisor running as root may have reason to log about another unit,
// and journald believes such fields only from root (UNIT only from PID 1),
// so a program that passes untrusted input as field names must not pass it
// to Send: the Handler renames those fields.
//
// By default Send is synchronous: when it returns nil, journald's socket
// has the entry. With WriterOptions.Async, Send checks and encodes the
// entry, queues it and returns, and a goroutine of the Writer's sends
// the queue many entries to a datagram (see AsyncOptions).
type Writer struct {
	path    string
	ident   []byte // pre-encoded SYSLOG_IDENTIFIER field; nil for none
	timeout time.Duration
	limit   int                    // largest entry journald takes from this process
	sock    atomic.Pointer[socket] // nil until the first send (see socket)
	release *release
	async   *asyncQueue // nil for a synchronous Writer

	// users counts the sends under way (and an asynchronous Writer's
	// sender while it runs), with closedBit set by Close: the socket is
	// given back by Close when nothing is under way, else by the last
	// send to finish, so that its descriptor is never closed (and reused)
	// under a send, and Close never waits for one.
	users atomic.Int64

	stats counters
}

// closedBit marks Writer.users once the Writer is closed.
const closedBit = 1 << 62

// NewWriter returns a Writer for opts; nil opts are the defaults. It opens the Writer's socket but does
// not check that journald is there: that is Send's outcome, and an absent
// journald is an ordinary condition (see ErrUnavailable).
func NewWriter(opts *WriterOptions) (*Writer, error) {
	if opts == nil {
		opts = &WriterOptions{}
	}
	w := &Writer{path: opts.SocketPath, timeout: opts.SendTimeout, limit: entrySizeLimit(os.Geteuid())}
	if w.path == "" {
		w.path = DefaultSocketPath
	}
	if w.timeout == 0 {
		w.timeout = DefaultSendTimeout
	}
	ident := opts.SyslogIdentifier
	if ident == "" {
		ident = ProgramName()
	}
	if ident != "" {
		w.ident = appendStringField(nil, "SYSLOG_IDENTIFIER", ident)
	}
	if err := checkSocketPath(w.path); err != nil {
		return nil, err
	}
	w.release = &release{path: w.path}
	if opts.Async != nil {
		w.async = newAsyncQueue(w, opts.Async)
	}
	// A Writer dropped without Close gives the socket back all the same.
	runtime.AddCleanup(w, (*release).do, w.release)
	return w, nil
}

// socket returns the Writer's share of the process's socket for its path,
// taking it the first time: a Writer that never sends (a logger that
// writes to stdout) holds no descriptor.
func (w *Writer) socket() (*socket, error) {
	if s := w.sock.Load(); s != nil {
		return s, nil
	}
	s, err := w.release.open()
	if err != nil {
		return nil, err
	}
	w.sock.Store(s)
	return s, nil
}

// release is a Writer's share of its socket: taken when first needed,
// given back once.
type release struct {
	path string
	mu   sync.Mutex
	s    *socket // nil until taken
	done bool
	err  error
}

func (r *release) open() (*socket, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return nil, ErrClosed
	}
	if r.s == nil {
		s, err := openSocket(r.path)
		if err != nil {
			return nil, err
		}
		r.s = s
	}
	return r.s, nil
}

func (r *release) do() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	r.done = true
	if r.s != nil {
		r.err = r.s.release()
	}
}

// SocketPath returns the path the Writer sends to.
func (w *Writer) SocketPath() string { return w.path }

// Send sends one entry: MESSAGE=message, PRIORITY=priority, the Writer's
// SYSLOG_IDENTIFIER unless fields has one, then fields in their order.
//
// It returns nil once journald's socket has taken the entry, or an error
// that matches one of ErrInvalidFieldName, ErrInvalidPriority, ErrTooLarge,
// ErrUnavailable (one of ErrNoSocket, ErrNotListening, ErrPermission),
// ErrTimeout or ErrClosed with errors.Is. Either way the outcome is counted
// in Stats.
func (w *Writer) Send(message string, priority Priority, fields ...Field) error {
	size, hasIdent, err := checkEntry(message, priority, w.ident, fields, w.limit)
	if err != nil {
		w.stats.fail(err)
		return err
	}
	ident := w.ident
	if hasIdent {
		ident = nil
	}
	buf := buffer.Get(size)
	*buf = appendEntry(*buf, message, priority, ident, fields)
	err = w.transmit(*buf, priority)
	buffer.Put(buf)
	return err
}

// transmit hands one entry of priority pri to journald, or to the queue
// of an asynchronous Writer, and counts the outcome.
func (w *Writer) transmit(data []byte, pri Priority) error {
	if !w.acquire() {
		w.stats.fail(ErrClosed)
		return ErrClosed
	}
	defer w.unref()
	if w.async != nil {
		return w.async.enqueue(data, pri)
	}
	s, err := w.socket()
	if err != nil {
		w.stats.fail(err)
		return err
	}
	viaFile, err := s.send(data, w.timeout, nil)
	if err != nil {
		w.stats.fail(err)
		return err
	}
	w.stats.sent(len(data), viaFile)
	return nil
}

// acquire counts one more use of the socket, and reports false (counting
// nothing) once the Writer is closed.
func (w *Writer) acquire() bool {
	if w.users.Add(1)&closedBit != 0 {
		w.unref()
		return false
	}
	return true
}

// unref ends one use of the socket; the last use after Close gives the
// socket back.
func (w *Writer) unref() {
	if w.users.Add(-1) == closedBit {
		w.release.do()
	}
}

// Probe reports whether a journald listens at the Writer's socket path,
// without sending anything: nil, or an error matching ErrUnavailable (one
// of ErrNoSocket, ErrNotListening, ErrPermission). It is not counted in
// Stats.
func (w *Writer) Probe() error {
	s, err := w.socket()
	if err != nil {
		return err
	}
	return s.probe()
}

// Flush returns once every entry that Send queued before it is sent (or
// given up), or when ctx is done. It returns the error of the last
// datagram it waited for, if any. A synchronous Writer has nothing queued:
// Flush returns nil at once.
func (w *Writer) Flush(ctx context.Context) error {
	if w.async == nil {
		return nil
	}
	return w.async.flush(ctx)
}

// Close releases the Writer's socket: the process's socket for the path is
// closed with the last Writer that uses it. Later sends return ErrClosed.
// Closing twice is not an error.
//
// Close never waits for a synchronous send under way: each ends within
// SendTimeout, and the last of them gives the socket back. An
// asynchronous Writer first delivers what is queued, for at most
// SendTimeout (DefaultSendTimeout when SendTimeout waits without bound),
// so Close returns within that bound and a few milliseconds, whatever
// journald, OnUndelivered or the program's stdout do. Entries it could
// not deliver by then are not waited for: they are counted as timed out
// (Stats.Errors.Timeout), OnUndelivered is not called for them, a report
// of them is tried once (see DroppedMessageID), and Close returns an
// error that matches ErrTimeout and says how many there were. (An
// OnUndelivered call that was under way at the deadline is left to
// finish on the sender's goroutine.)
func (w *Writer) Close() error {
	if w.users.Or(closedBit)&closedBit != 0 {
		return nil
	}
	var err error
	if w.async != nil {
		bound := w.timeout
		if bound < 0 {
			bound = DefaultSendTimeout
		}
		if n := w.async.close(time.Now().Add(bound)); n > 0 {
			err = fmt.Errorf("journal: close: %d entries not delivered within %v: %w", n, bound, ErrTimeout)
		}
	}
	if w.users.Load() == closedBit {
		w.release.do()
		err = errors.Join(err, w.release.err)
	}
	return err
}

// ProgramName returns the base name of the running program (os.Args[0]),
// the default SYSLOG_IDENTIFIER, as libsystemd uses program_invocation_short_name.
func ProgramName() string {
	if len(os.Args) == 0 || os.Args[0] == "" {
		return ""
	}
	return filepath.Base(os.Args[0])
}
