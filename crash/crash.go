package crash

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/newstyle-go/newstyle"
)

// MessageID is the MESSAGE_ID of a crash's entry: `journalctl
// MESSAGE_ID=ead3cc56c85447c6a74aa3b32cdf4c02` lists every crash of every
// program that captures them, and the module's message catalog
// (catalog/newstyle.catalog) explains it in `journalctl -x`.
const MessageID = "ead3cc56c85447c6a74aa3b32cdf4c02"

// The fields of a crash's entry that are the package's own (see the
// package documentation for all of them).
const (
	// FieldPID holds the crashed process's PID (as SYSLOG_PID does): the
	// entry's _PID is the watcher's.
	FieldPID = "NEWSTYLE_CRASH_PID"
	// FieldKind says what ended the process: "panic", "fatal error" (the
	// runtime's throw: concurrent map writes, stack overflow, out of
	// memory, …) or "signal" (a signal the program did not handle, such
	// as SIGABRT or SIGQUIT).
	FieldKind = "NEWSTYLE_CRASH_KIND"
	// FieldCut is set only when the crash output was longer than
	// Options.MaxTraceback: how many of its bytes TRACEBACK lacks.
	FieldCut = "NEWSTYLE_TRACEBACK_CUT"
)

// DefaultMaxTraceback is how much of a crash's output the entry holds by
// default: 8 MiB, a stack overflow's trace many times over, or
// GOTRACEBACK=all with about 30,000 idle goroutines. Past it, TRACEBACK
// holds its first and last halves, with a line between them that says
// how many bytes were cut (and FieldCut says it too).
const DefaultMaxTraceback = 8 << 20

// maxTracebackLimit is the most Options.MaxTraceback may ask for: journald
// 257 and later take at most 32 MiB per entry from a process that is not
// root, and the entry needs room for its other fields.
const maxTracebackLimit = 30 << 20

// EnvCapture is the environment variable by which an operator turns crash
// capture off without a new build: "off", "0", "no" or "false" make
// Capture return ErrDisabled and do nothing (a unit's
// Environment=NEWSTYLE_CRASH_CAPTURE=off).
const EnvCapture = "NEWSTYLE_CRASH_CAPTURE"

var (
	// ErrCapturing is returned by Capture when crashes are captured
	// already (Capture was called before, and its watcher runs).
	ErrCapturing = errors.New("crash: crashes are captured already")

	// ErrDisabled is returned by Capture when EnvCapture turns capture
	// off.
	ErrDisabled = errors.New("crash: capture turned off by " + EnvCapture)

	// ErrUnsupported is returned by Capture where it does nothing: every
	// system but Linux. It matches errors.ErrUnsupported.
	ErrUnsupported = fmt.Errorf("crash: not supported on %s: %w", runtime.GOOS, errors.ErrUnsupported)
)

// Options configure Capture. The zero value is ready to use: the crash
// goes where newstyle.NewLogger(nil) would send a record.
type Options struct {
	// SyslogIdentifier is the entry's SYSLOG_IDENTIFIER (journalctl -t);
	// empty means the program's name (journal.ProgramName).
	SyslogIdentifier string

	// Target, SocketPath and Namespace say where the entry goes, as
	// newstyle.Options' fields of the same names say where records go:
	// the journal or stdout, chosen when the crash comes by the rule of
	// newstyle.Detect (NEWSTYLE_LOG_TARGET, Target, JOURNAL_STREAM
	// against stderr, journald's socket). newstyle.TargetNull writes no
	// entry. An entry journald does not take is written to stdout.
	Target     newstyle.Target
	SocketPath string
	Namespace  string

	// MaxTraceback bounds the crash output the entry holds; zero means
	// DefaultMaxTraceback, and more than 30 MiB is taken as 30 MiB (what
	// journald takes in one entry from a process that is not root). The
	// stdout fallback's one line holds at most 48 KiB, journald's
	// LineMax=, whatever this says.
	MaxTraceback int

	// LeaveStderr leaves the program's stderr as it is. By default the
	// watcher reads it through a pipe and writes it on, unchanged, to
	// where it went (see the package documentation): the runtime writes
	// the line that names a fatal error ("fatal error: concurrent map
	// writes") to stderr alone. With LeaveStderr, or when stderr is a
	// terminal, such a crash is named from its goroutine trace, which
	// tells less.
	LeaveStderr bool

	// OnWatcherExit, when not nil, is called once, on a goroutine of the
	// package's, if the watcher ends while the program runs (it was
	// killed): crashes are no longer captured from then on, and stderr
	// is the program's own again. nil writes one line to stderr instead.
	OnWatcherExit func(err error)
}

// Capture makes the program's own crash one journal entry: it starts
// the watcher, a copy of the program in a mode of its own, which outlives
// the program and, if it crashed, writes one entry at PRIORITY 2 (crit)
// with the runtime's whole crash output in its TRACEBACK field (see the
// package documentation). Call it first thing in main; service.Run calls
// it itself.
//
// It returns ErrCapturing when called again, ErrDisabled when
// NEWSTYLE_CRASH_CAPTURE=off, ErrUnsupported off Linux, or the error that
// kept the watcher from starting; crashes are not captured then, and the
// program is as it was. opts may be nil.
func Capture(opts *Options) error {
	var o Options
	if opts != nil {
		o = *opts
	}
	if disabled(os.Getenv(EnvCapture)) {
		return ErrDisabled
	}
	switch {
	case o.MaxTraceback <= 0:
		o.MaxTraceback = DefaultMaxTraceback
	case o.MaxTraceback > maxTracebackLimit:
		o.MaxTraceback = maxTracebackLimit
	}
	return capture(&o)
}

// disabled reports whether EnvCapture's value v turns capture off.
func disabled(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "off", "0", "no", "false":
		return true
	}
	return false
}
