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
// chosen and why. Handler.SetTarget changes it while the program runs
// (package service does so for systemctl service-log-target).
//
// When a record cannot be sent to the journal at run time (journald gone,
// its socket made unreachable, stuck), that record is written to stdout
// instead, so nothing is lost, and the switch is reported once, in a
// record of its own, not per record. The journal is tried again at most
// once a second, and the way back is reported once too.
package newstyle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync/atomic"
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
	TargetNull                  // nowhere: every record is dropped (systemd's log target "null")
)

func (t Target) String() string {
	switch t {
	case TargetJournal:
		return "journal"
	case TargetStdout:
		return "stdout"
	case TargetNull:
		return "null"
	}
	return "auto"
}

// Options configure NewHandler. The zero value is ready to use.
type Options struct {
	// Target forces where records go; TargetAuto decides by itself. The
	// environment variable NEWSTYLE_LOG_TARGET, when set to journal or
	// stdout, overrides it: it is the operator's word, given in the unit
	// file. Handler.SetTarget changes it at run time.
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
	h := &Handler{fallback: fallback, stdout: fallback, sw: &switcher{fallback: fallback}}
	socketPath := opts.SocketPath
	var pathErr error
	if socketPath == "" && opts.Namespace != "" {
		socketPath, pathErr = journal.NamespaceSocketPath(opts.Namespace)
		if pathErr != nil {
			pathErr = fmt.Errorf("Options.Namespace: %w", pathErr)
		}
	}
	wopts := &journal.WriterOptions{
		SocketPath:       socketPath,
		SyslogIdentifier: opts.SyslogIdentifier,
		SendTimeout:      opts.SendTimeout,
	}
	if opts.Async != nil {
		a := *opts.Async
		user := a.OnUndelivered
		sw := h.sw
		a.OnUndelivered = func(msg string, pri journal.Priority, fields []journal.Field, err error) {
			sw.count()
			undeliveredToStdout(fallback, msg, pri, fields)
			if user != nil {
				user(msg, pri, fields, err)
			}
		}
		wopts.Async = &a
	}
	hopts := &journal.HandlerOptions{
		Level:          opts.Level,
		AddSource:      opts.AddSource,
		ReplaceAttr:    opts.ReplaceAttr,
		TracebackField: opts.TracebackField,
		StackLevel:     opts.StackLevel,
		TimeField:      opts.TimeField,
		ContextAttrs:   opts.ContextAttrs,
	}
	// The journal's side is made now when the journal is the target, or
	// later, by SetTarget, when it becomes one: a Handler on stdout holds
	// no socket.
	h.sw.makeJournal = func() (*journalSide, error) {
		if pathErr != nil {
			// No socket is opened for a name that could lead anywhere.
			return nil, pathErr
		}
		w, err := journal.NewWriter(wopts)
		if err != nil {
			return nil, err
		}
		return &journalSide{writer: w, handler: journal.NewHandler(w, hopts)}, nil
	}

	if opts.Target == TargetNull && !envForcesTarget() {
		h.detection = Detection{Target: TargetNull, Reason: "Options.Target is TargetNull"}
		h.sw.target.Store(int32(TargetNull))
		return h
	}
	side, err := h.sw.makeJournal()
	if err != nil {
		h.detection = Detection{Target: TargetStdout, Reason: "the journal cannot be used: " + err.Error()}
		h.sw.target.Store(int32(TargetStdout))
		return h
	}
	h.detection = detect(opts.Target, side.writer)
	if h.detection.Target != TargetJournal {
		side.writer.Close()
		h.sw.target.Store(int32(TargetStdout))
		return h
	}
	h.journal = side.handler
	h.writer = side.writer
	h.sw.side.Store(side)
	h.sw.target.Store(int32(TargetJournal))
	return h
}

// envForcesTarget reports whether EnvTarget names a target, which then
// wins over Options.Target (see detect).
func envForcesTarget() bool {
	switch strings.ToLower(os.Getenv(EnvTarget)) {
	case "journal", "stdout":
		return true
	}
	return false
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
	// journal is nil when the target was not the journal when this
	// Handler was made: lazy then says how to make its journal side,
	// should SetTarget make the journal the target.
	journal   slog.Handler
	lazy      *lazyJournal
	fallback  slog.Handler
	stdout    *stdoutfallback.Handler // the one NewHandler made, for Dropped
	writer    *journal.Writer         // the journal's, when NewHandler chose it
	sw        *switcher               // shared by every Handler derived from one NewHandler
	detection Detection
}

// journalSide is the journal's Writer and the Handler NewHandler makes
// on it, made once per NewHandler.
type journalSide struct {
	writer  *journal.Writer
	handler slog.Handler
}

// lazyJournal is how a Handler derived while the journal was not the
// target makes its journal handler once it is: its parent's, with its
// own attributes or group. A nil *lazyJournal is the Handler NewHandler
// returned, whose journal handler is the journalSide's.
type lazyJournal struct {
	parent *lazyJournal
	attrs  []slog.Attr
	group  string
	made   atomic.Pointer[handlerBox]
}

type handlerBox struct{ h slog.Handler }

// handler returns l's journal handler, made on root (the journalSide's)
// the first time.
func (l *lazyJournal) handler(root slog.Handler) slog.Handler {
	if l == nil {
		return root
	}
	if b := l.made.Load(); b != nil {
		return b.h
	}
	parent := l.parent.handler(root)
	var h slog.Handler
	if l.group != "" {
		h = parent.WithGroup(l.group)
	} else {
		h = parent.WithAttrs(l.attrs)
	}
	// Two records may race to make it: both are equal, one is kept.
	l.made.CompareAndSwap(nil, &handlerBox{h})
	return l.made.Load().h
}

// journalHandler returns h's journal handler, or nil while there is no
// journal side.
func (h *Handler) journalHandler() slog.Handler {
	if h.journal != nil {
		return h.journal
	}
	side := h.sw.side.Load()
	if side == nil {
		return nil
	}
	return h.lazy.handler(side.handler)
}

// Detection returns what NewHandler chose and why. SetTarget does not
// change it; Target says where records go now.
func (h *Handler) Detection() Detection { return h.detection }

// Target returns where records go now: TargetJournal, TargetStdout or
// TargetNull. It is what NewHandler chose until SetTarget changes it, for
// h and every Handler derived from the same NewHandler. (Records that
// the journal did not take go to stdout all the same: TargetJournal
// includes that fallback.)
func (h *Handler) Target() Target { return Target(h.sw.target.Load()) }

// ErrInvalidTarget is returned by SetTarget for a value that is not a
// Target.
var ErrInvalidTarget = errors.New("newstyle: invalid target")

// SetTarget sends the records of h, and of every Handler derived from
// the same NewHandler (With, WithGroup), to t from now on:
//
//   - TargetJournal: journald's native socket, whatever NewHandler chose
//     (its Writer is made now if NewHandler did not make one); records it
//     does not take go to stdout, as always;
//   - TargetStdout: stdout's <N>-prefixed lines (systemd's "console");
//   - TargetNull: nowhere; Enabled reports false, so that records are
//     not even formatted;
//   - TargetAuto: decide again, as Detect does, by JOURNAL_STREAM and
//     the socket, without Options.Target or NEWSTYLE_LOG_TARGET: the
//     operator asked for the automatic choice.
//
// It returns the outcome, with the reason for TargetAuto's choice. It is
// safe to call at any time, from any goroutine; a record being handled
// meanwhile goes to the old target or the new one. Only making the
// journal's Writer can fail (the error is journal.NewWriter's, or the
// invalid Options.Namespace's): the target is then unchanged. After
// Close, the journal stays closed: choosing it (TargetJournal,
// TargetAuto) returns an error matching journal.ErrClosed.
//
// Handle pays one atomic load for this.
func (h *Handler) SetTarget(t Target) (Detection, error) {
	return h.sw.setTarget(t)
}

// Close releases the Handler's journal socket (see journal.Writer.Close);
// the Handler and every Handler derived from it then write to stdout
// (Target reports TargetStdout), and SetTarget can no longer choose the
// journal. Close returns within the journal Writer's bound (SendTimeout,
// and a few milliseconds for an asynchronous Writer), whatever journald,
// OnUndelivered or stdout do; what an asynchronous Writer had not
// delivered by then is counted, reported and left (its error says how
// many). Closing is optional: an unreachable Handler releases the socket
// when collected. It is not an error to close twice.
func (h *Handler) Close() error {
	side := h.sw.close()
	if side == nil {
		return nil
	}
	return side.writer.Close()
}

// Flush returns once every record queued for an asynchronous journal
// Writer (Options.Async) before it is sent, or when ctx is done; at once
// otherwise.
func (h *Handler) Flush(ctx context.Context) error {
	side := h.sw.side.Load()
	if side == nil {
		return nil
	}
	return side.writer.Flush(ctx)
}

// Dropped returns how many records stdout did not take within
// Options.WriteTimeout (see stdoutfallback.Handler.Dropped); each was
// reported on stdout.
func (h *Handler) Dropped() uint64 { return h.stdout.Dropped() }

// JournalStats returns the journal Writer's counters, and false when
// there is no journal Writer: records have only gone to stdout (or
// nowhere).
func (h *Handler) JournalStats() (journal.Stats, bool) {
	side := h.sw.side.Load()
	if side == nil {
		return journal.Stats{}, false
	}
	return side.writer.Stats(), true
}

// Enabled reports whether records at level l are logged.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool {
	if Target(h.sw.target.Load()) == TargetNull {
		return false
	}
	return h.fallback.Enabled(ctx, l)
}

// WithAttrs returns a Handler whose records carry attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.fallback = h.fallback.WithAttrs(attrs)
	if jh := h.journalHandler(); jh != nil {
		h2.journal, h2.lazy = jh.WithAttrs(attrs), nil
	} else {
		h2.lazy = &lazyJournal{parent: h.lazy, attrs: slices.Clone(attrs)}
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
	if jh := h.journalHandler(); jh != nil {
		h2.journal, h2.lazy = jh.WithGroup(name), nil
	} else {
		h2.lazy = &lazyJournal{parent: h.lazy, group: name}
	}
	return &h2
}

// Handle writes r to the target: to the journal or, when that fails, to
// stdout; to stdout; or nowhere.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	switch Target(h.sw.target.Load()) {
	case TargetJournal:
		jh := h.journal
		if jh == nil {
			// The target is the journal only once its side exists.
			jh = h.lazy.handler(h.sw.side.Load().handler)
		}
		return h.sw.handle(ctx, jh, h.fallback, r)
	case TargetNull:
		return nil
	}
	return h.fallback.Handle(ctx, r)
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

// PriorityLevel returns the slog level of a syslog priority, the inverse
// of journal.LevelPriority: debug is slog.LevelDebug, info
// slog.LevelInfo, notice LevelNotice, warning slog.LevelWarn, err
// slog.LevelError, crit LevelCritical, alert LevelAlert, emerg
// LevelEmergency. A priority below 0 is taken as emerg, one above 7 as
// debug.
func PriorityLevel(p journal.Priority) slog.Level {
	return priorityLevel[min(max(p, journal.PriEmerg), journal.PriDebug)]
}

// priorityLevel is the slog level of each priority, the inverse of
// journal.LevelPriority.
var priorityLevel = [8]slog.Level{
	LevelEmergency, LevelAlert, LevelCritical, slog.LevelError,
	slog.LevelWarn, LevelNotice, slog.LevelInfo, slog.LevelDebug,
}
