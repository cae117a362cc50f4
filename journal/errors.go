package journal

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"
)

// Errors returned by this package. Match them with [errors.Is]: the
// errors that [Writer.Send] returns wrap one of these and, where the kernel
// said why, the [syscall.Errno] too.
var (
	// ErrInvalidFieldName: a field name that journald would drop (see
	// [ValidFieldName]), or one of the names Send sets itself (MESSAGE,
	// PRIORITY). Nothing of the entry was sent.
	ErrInvalidFieldName = errors.New("journal: invalid field name")

	// ErrInvalidPriority: a Priority outside PriEmerg…PriDebug. Nothing was
	// sent.
	ErrInvalidPriority = errors.New("journal: invalid priority")

	// ErrInvalidMessageID: [MessageID] was given something that is not a
	// 128-bit ID.
	ErrInvalidMessageID = errors.New("journal: invalid message ID")

	// ErrUnavailable: no journald can be reached at the socket path. It is
	// the common parent of ErrNoSocket, ErrNotListening and ErrPermission,
	// so that a caller who only wants to fall back (to stdout, say) checks
	// this one.
	ErrUnavailable = errors.New("journal: journald unavailable")

	// ErrNoSocket: the socket path does not exist (ENOENT, ENOTDIR). No
	// journald runs here, or the unit's sandbox hides it.
	ErrNoSocket = fmt.Errorf("%w: no socket", ErrUnavailable)

	// ErrNotListening: the socket file exists but nothing is bound to it
	// (ECONNREFUSED): journald has stopped or is restarting. Entries sent
	// after it is back are delivered; the Writer needs no reopening.
	ErrNotListening = fmt.Errorf("%w: not listening", ErrUnavailable)

	// ErrPermission: the socket, or a directory on its path, may not be
	// written to by this process (EACCES, EPERM).
	ErrPermission = fmt.Errorf("%w: permission denied", ErrUnavailable)

	// ErrTimeout: journald did not take the entry within the Writer's send
	// timeout; it is alive but not reading (stopped, overloaded, or its
	// socket queue is full). The entry was not sent.
	ErrTimeout = errors.New("journal: send timed out")

	// ErrTooLarge: the entry is larger than journald accepts (a field over
	// 768 MiB, an entry over 770 MiB, or 32 MiB when the process is not
	// root, or more than 1024 fields), or the memfd for it could not be
	// written. Nothing was sent: journald would have dropped it silently.
	ErrTooLarge = errors.New("journal: entry too large")

	// ErrClosed: the Writer was closed.
	ErrClosed = errors.New("journal: writer closed")

	// ErrInvalidSocketPath: WriterOptions.SocketPath cannot name a
	// socket: it holds a NUL byte, is "@" alone, or is too long for an
	// AF_UNIX address (107 bytes). NewWriter returns it.
	ErrInvalidSocketPath = errors.New("journal: invalid socket path")
)

// Kinds of failure that callers have no reason to branch on; they are
// counted as ErrorCounts.Other and carry the errno.
var (
	errSend = errors.New("journal: send failed")
	errFile = errors.New("journal: no memfd or /dev/shm file for a large entry")
)

// sendError is what a failed send returns: which sentinel it is, what the
// kernel said, and where it was sent. It is built only on failure, so the
// successful path never allocates for it.
type sendError struct {
	kind  error         // one of the sentinels above
	errno syscall.Errno // 0 when the kernel was not asked
	path  string
}

func (e *sendError) Error() string {
	s := "journal: send to " + quote(e.path) + ": " + trimPrefix(e.kind.Error())
	if e.errno != 0 {
		s += ": " + e.errno.Error()
	}
	return s
}

// Unwrap lets errors.Is match both the sentinel and the errno.
func (e *sendError) Unwrap() []error {
	if e.errno == 0 {
		return []error{e.kind}
	}
	return []error{e.kind, e.errno}
}

func trimPrefix(s string) string {
	const p = "journal: "
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// fieldError reports the first invalid field of an entry.
type fieldError struct {
	kind error
	name string
}

func (e *fieldError) Error() string {
	return e.kind.Error() + " " + quote(e.name)
}

func (e *fieldError) Unwrap() error { return e.kind }

// quote quotes a field name for an error message, cut short so that a
// name of a megabyte does not make an error of a megabyte.
func quote(name string) string {
	const max = 80
	if len(name) > max {
		return strconv.Quote(name[:max]) + "…"
	}
	return strconv.Quote(name)
}
