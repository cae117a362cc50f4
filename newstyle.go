// Package newstyle gives a new-style daemon — a program that runs in the
// foreground under systemd — a log/slog logger that writes to the journal
// the way systemd means it to be written to: one record, one entry, with
// real fields, a priority journalctl -p can filter on, and a stack trace
// in a field of its own.
//
// NewLogger picks where records go:
//
//   - to journald's native socket (package journal), when stderr is the
//     journal (systemd set JOURNAL_STREAM to stderr's device and inode)
//     and the socket can be reached;
//   - otherwise to stdout, one "<N>"-prefixed line per record (package
//     stdoutfallback), which systemd's stdout stream and a terminal both
//     take.
//
// Options.Target or the environment variable NEWSTYLE_LOG_TARGET
// ("journal", "stdout" or "auto") force the choice; Detect says what was
// chosen and why.
//
// When a record cannot be sent to the journal at run time (journald gone,
// its socket made unreachable, stuck), that record is written to stdout
// instead, so nothing is lost, and the switch is reported once, in a
// record of its own, not per record. The journal is tried again at most
// once a second, and the way back is reported once too.
package newstyle

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/stdoutfallback"
)

// The syslog levels slog does not name; with slog's own, they cover the
// eight syslog priorities (the table is at journal.LevelPriority).
const (
	LevelNotice    slog.Level = journal.LevelNotice    // 2, PRIORITY 5
	LevelCritical  slog.Level = journal.LevelCritical  // 12, PRIORITY 2
	LevelAlert     slog.Level = journal.LevelAlert     // 16, PRIORITY 1
	LevelEmergency slog.Level = journal.LevelEmergency // 20, PRIORITY 0
)

// Target is where records go.
type Target int

const (
	TargetAuto    Target = iota // decide by JOURNAL_STREAM and the socket (see Detect)
	TargetJournal               // journald's native socket
	TargetStdout                // <N>-prefixed lines on stdout
)

func (t Target) String() string {
	switch t {
	case TargetJournal:
		return "journal"
	case TargetStdout:
		return "stdout"
	}
	return "auto"
}

// Options configure NewHandler. The zero value is ready to use.
type Options struct {
	// Target forces where records go; TargetAuto decides by itself. The
	// environment variable NEWSTYLE_LOG_TARGET, when set, overrides it:
	// it is the operator's word, given in the unit file.
	Target Target

	// Level is the lowest level logged; nil means slog.LevelInfo.
	Level slog.Leveler

	// AddSource adds the source of each record: CODE_FILE, CODE_LINE and
	// CODE_FUNC in the journal, source= on stdout.
	AddSource bool

	// ReplaceAttr is as in slog.HandlerOptions, and also sees the
	// built-in keys (message, level, source, time).
	ReplaceAttr func(groups []string, a slog.Attr) slog.Attr

	// SyslogIdentifier is the journal's SYSLOG_IDENTIFIER (journalctl -t);
	// empty means the program's name.
	SyslogIdentifier string

	// TracebackField names the field of stack traces; empty means
	// TRACEBACK in the journal and traceback on stdout.
	TracebackField string

	// StackLevel, when not nil, captures the stack of every record at or
	// above it into the traceback field.
	StackLevel slog.Leveler

	// ContextAttrs, when not nil, turns a record's context into
	// attributes (a trace's ids), written after the record's own and
	// outside any group, in the journal and on stdout alike (see
	// journal.HandlerOptions.ContextAttrs). The otel module's
	// ContextAttrs gives TRACE_ID, SPAN_ID and TRACE_FLAGS.
	ContextAttrs func(ctx context.Context, dst []slog.Attr) []slog.Attr

	// TimeField, when not empty, adds the record's time under that name
	// (RFC 3339, nanoseconds): a journal field, a key on stdout. Off by
	// default: journald stamps every entry and line itself.
	TimeField string

	// SocketPath is journald's socket; empty means
	// journal.DefaultSocketPath, or Namespace's socket when that is set.
	SocketPath string

	// Namespace is the journal namespace to write to when SocketPath is
	// empty, as a unit's LogNamespace= names it: records go to
	// journal.NamespaceSocketPath(Namespace), and journalctl
	// --namespace=NAME shows them. Empty means the default journal
	// (journal.DefaultSocketPath). A unit with LogNamespace= does not need
	// it: systemd mounts the namespace's sockets over the default ones in
	// the unit's mount namespace.
	Namespace string

	// SendTimeout bounds how long a record waits for a journald whose
	// queue is full before it goes to stdout instead (see
	// journal.WriterOptions.SendTimeout); zero means
	// journal.DefaultSendTimeout.
	SendTimeout time.Duration

	// Stdout is where the fallback writes; nil means os.Stdout.
	Stdout io.Writer

	// WriteTimeout bounds how long a record waits for a stdout that does
	// not take it before it is dropped, counted and reported (see
	// stdoutfallback.HandlerOptions.WriteTimeout); zero means
	// stdoutfallback.DefaultWriteTimeout.
	WriteTimeout time.Duration

	// Async, when not nil, makes the journal Writer asynchronous (see
	// journal.AsyncOptions): records are queued and sent many to a
	// datagram. Entries journald did not take (it was gone) are written
	// to stdout, as synchronous records are. Since every entry of a
	// datagram gets the same journald timestamp, Async turns TimeField on
	// as "TIME" unless it is set: a record's own time is then in its
	// entry. Call Handler.Flush (package service does, on every way out)
	// before the program exits.
	Async *journal.AsyncOptions
}

// NewLogger returns a slog.Logger on NewHandler(opts).
func NewLogger(opts *Options) *slog.Logger { return slog.New(NewHandler(opts)) }

// NewHandler returns a Handler that writes to the target Detect chooses
// for opts (nil opts: the defaults).
func NewHandler(opts *Options) *Handler {
	if opts == nil {
		opts = &Options{}
	}
	if opts.Async != nil && opts.TimeField == "" {
		o := *opts
		o.TimeField = "TIME"
		opts = &o
	}
	stdout := opts.Stdout
	if stdout == nil {
		stdout = os.Stdout
	}
	fallback := stdoutfallback.NewHandler(stdout, &stdoutfallback.HandlerOptions{
		Level:          opts.Level,
		AddSource:      opts.AddSource,
		ReplaceAttr:    opts.ReplaceAttr,
		TracebackField: opts.TracebackField,
		StackLevel:     opts.StackLevel,
		TimeField:      opts.TimeField,
		WriteTimeout:   opts.WriteTimeout,
		ContextAttrs:   opts.ContextAttrs,
	})
	h := &Handler{fallback: fallback, stdout: fallback, sw: &switcher{}}
	socketPath := opts.SocketPath
	if socketPath == "" && opts.Namespace != "" {
		socketPath = journal.NamespaceSocketPath(opts.Namespace)
	}
	wopts := &journal.WriterOptions{
		SocketPath:       socketPath,
		SyslogIdentifier: opts.SyslogIdentifier,
		SendTimeout:      opts.SendTimeout,
	}
	if opts.Async != nil {
		a := *opts.Async
		user := a.OnUndelivered
		a.OnUndelivered = func(msg string, pri journal.Priority, fields []journal.Field, err error) {
			h.sw.count()
			undeliveredToStdout(fallback, msg, pri, fields)
			if user != nil {
				user(msg, pri, fields, err)
			}
		}
		wopts.Async = &a
	}
	w, err := journal.NewWriter(wopts)
	if err != nil {
		h.detection = Detection{Target: TargetStdout, Reason: err.Error()}
		return h
	}
	h.detection = detect(opts.Target, w)
	if h.detection.Target != TargetJournal {
		w.Close()
		return h
	}
	h.journal = journal.NewHandler(w, &journal.HandlerOptions{
		Level:          opts.Level,
		AddSource:      opts.AddSource,
		ReplaceAttr:    opts.ReplaceAttr,
		TracebackField: opts.TracebackField,
		StackLevel:     opts.StackLevel,
		TimeField:      opts.TimeField,
		ContextAttrs:   opts.ContextAttrs,
	})
	h.writer = w
	h.sw.journal, h.sw.fallback = h.journal, h.fallback
	return h
}

// Handler is the slog.Handler NewHandler returns: the journal's, with
// stdout behind it, or stdout's alone.
//
// Making Handlers is cheap and leaks nothing: every journal Writer of the
// process that sends to the same socket path shares one socket, so a
// thousand Handlers (a logger per component, a test suite) hold one
// descriptor, given back when the last of them is closed or garbage
// collected. Close releases a Handler's share at once.
//
// No record, value or state of journald or stdout makes a Handler crash,
// hang or grow the program's threads: a record waits at most SendTimeout
// for the journal, then at most WriteTimeout for stdout, as a parked
// goroutine; a value whose method panics is written as "<nil>" or
// "!PANIC: …"; what stdout could not take in time is counted (Dropped)
// and reported on stdout.
type Handler struct {
	journal   slog.Handler // nil when the target is stdout
	fallback  slog.Handler
	stdout    *stdoutfallback.Handler // the one NewHandler made, for Dropped
	writer    *journal.Writer         // the journal's, for Stats; nil with stdout
	sw        *switcher               // shared by every Handler derived from one NewHandler
	detection Detection
}

// Detection returns what NewHandler chose and why.
func (h *Handler) Detection() Detection { return h.detection }

// Close releases the Handler's journal socket (see journal.Writer.Close);
// the Handler and every Handler derived from it then write to stdout.
// Closing is optional: an unreachable Handler releases it when collected.
// It is not an error to close twice.
func (h *Handler) Close() error {
	if h.writer == nil {
		return nil
	}
	return h.writer.Close()
}

// Flush returns once every record queued for an asynchronous journal
// Writer (Options.Async) before it is sent, or when ctx is done; at once
// otherwise.
func (h *Handler) Flush(ctx context.Context) error {
	if h.writer == nil {
		return nil
	}
	return h.writer.Flush(ctx)
}

// Dropped returns how many records stdout did not take within
// Options.WriteTimeout (see stdoutfallback.Handler.Dropped); each was
// reported on stdout.
func (h *Handler) Dropped() uint64 { return h.stdout.Dropped() }

// JournalStats returns the journal Writer's counters, and false when
// records go to stdout.
func (h *Handler) JournalStats() (journal.Stats, bool) {
	if h.writer == nil {
		return journal.Stats{}, false
	}
	return h.writer.Stats(), true
}

// Enabled reports whether records at level l are logged.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.fallback.Enabled(ctx, l)
}

// WithAttrs returns a Handler whose records carry attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.fallback = h.fallback.WithAttrs(attrs)
	if h.journal != nil {
		h2.journal = h.journal.WithAttrs(attrs)
	}
	return &h2
}

// WithGroup returns a Handler whose later attributes are in group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.fallback = h.fallback.WithGroup(name)
	if h.journal != nil {
		h2.journal = h.journal.WithGroup(name)
	}
	return &h2
}

// Handle writes r to the journal or, when that fails, to stdout.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if h.journal == nil {
		return h.fallback.Handle(ctx, r)
	}
	return h.sw.handle(ctx, h.journal, h.fallback, r)
}

// undeliveredToStdout writes an entry that journald did not take to
// stdout as a record: its priority, message and fields (by their journal
// names), the identifier left out.
func undeliveredToStdout(h slog.Handler, msg string, pri journal.Priority, fields []journal.Field) {
	r := slog.NewRecord(time.Time{}, priorityLevel[pri&7], msg, 0)
	for _, f := range fields {
		if f.Name != "SYSLOG_IDENTIFIER" {
			r.AddAttrs(slog.String(f.Name, string(f.Value)))
		}
	}
	_ = h.Handle(context.Background(), r)
}

// priorityLevel is the slog level of each priority, the inverse of
// journal.LevelPriority.
var priorityLevel = [8]slog.Level{
	LevelEmergency, LevelAlert, LevelCritical, slog.LevelError,
	slog.LevelWarn, LevelNotice, slog.LevelInfo, slog.LevelDebug,
}
