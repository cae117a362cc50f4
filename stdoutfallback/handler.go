package stdoutfallback

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/newstyle-go/newstyle/internal/buffer"
	"github.com/newstyle-go/newstyle/internal/slogcore"
	"github.com/newstyle-go/newstyle/slogopts"
)

// DefaultTracebackField is the key a record's stack trace is written
// under.
const DefaultTracebackField = "traceback"

// HandlerOptions configure a Handler. The zero value is ready to use.
type HandlerOptions struct {
	// HandlerOptions are those every handler of the module takes: Level,
	// AddSource, ReplaceAttr, StackLevel, ContextAttrs, TimeField (its
	// key, with the time in its own zone) and TracebackField (empty:
	// DefaultTracebackField).
	slogopts.HandlerOptions

	// WriteTimeout bounds how long Handle waits for the writer to take a
	// record when it does not (a pipe or socket nobody reads: journald
	// stalled, a pager stopped); after it, the record is dropped, counted
	// and reported (see Handler). Zero means DefaultWriteTimeout; a
	// negative value waits as long as the writer does, as
	// slog.TextHandler does.
	WriteTimeout time.Duration
}

// Handler is a slog.Handler that writes each record to an io.Writer as
// one line:
//
//	<N>MESSAGE[ TIME=T][ source=FILE:LINE][ KEY=VALUE]…[ traceback=TRACE]\n
//
// <N> is the syslog priority of the record's level, one digit, over the
// whole range of slog levels, by the table of journal.LevelPriority (Info
// is <6>, Error <3>, journal.LevelCritical <2>, …); the journal handler
// and this one give every record the same priority.
//
// Every line starts with a prefix. A record whose level ReplaceAttr
// removed gets <6>, the priority systemd gives an unprefixed line by
// default (SyslogLevel=info): systemd reads a priority only at the very
// start of a line, so with a prefix always there, no message, key or
// value can forge one. A message that starts with "<3>" is written after
// the prefix and stays text.
//
// The message follows the prefix as it is, not quoted, with these escapes
// (the escapes of Go string literals): '\' as \\, newline as \n, CR as \r,
// tab as \t; every other C0 control character, NUL and DEL as \xNN, each
// byte of invalid UTF-8 as \xNN, and a rune unicode.IsPrint calls
// non-printable (C1 controls, U+2028, U+00A0, U+FEFF, …) as \uNNNN or
// \UNNNNNNNN. Everything else, non-ASCII letters, '"' and '=' included, is
// written as it is. A line is therefore printable UTF-8 with no control
// characters: it cannot be split by journald (which ends a line at a
// newline or a NUL) or by a terminal, nor move a terminal's cursor (ANSI
// escapes lose their ESC). When ReplaceAttr removed the message, what
// follows it starts right after the prefix, without its space.
//
// Then, each after one space, come the record's time under TimeField, its
// source under "source" as FILE:LINE with AddSource, the attributes
// (WithAttrs' first, then the record's, in order) and the traceback, all
// as key=value. A key is the names of its groups and its own, joined with
// '.' as slog.TextHandler joins them: "id" in group "req" is req.id. A key
// or a value is written as it is when it is not empty and has no space,
// '=', '"', '\' or character the message escapes; otherwise it is written
// between double quotes, with the message's escapes and '"' as \", which
// makes it a Go string literal (strconv.Unquote reads it). Keys are not
// renamed: an attribute may share its key with another or with a built-in
// one (source, the time and traceback keys), as with slog.TextHandler.
//
// The message cannot be told from the attributes by its form alone: a
// message "a b=c" looks like message "a" with an attribute b=c. The line
// is written for people and for journalctl's full-text filters; the
// journal handler keeps the structure.
//
// Values take the text forms of journal.Handler (strings as they are,
// numbers in decimal, durations as time.Duration.String, times in RFC
// 3339 with nanoseconds, errors by Error(), …; a method that panics
// written "<nil>" or "!PANIC: <value>" as log/slog does), then quoted and
// escaped as above. Groups are flattened into keys; an empty group leaves
// nothing.
//
// Stack traces go under the traceback key (TracebackField), in the same
// line, escaped like any value, never into the message: the stack of any
// error attribute whose chain has an error with a Stack() []byte method,
// and with StackLevel, the logging goroutine's own. Several are separated
// by an empty line (\n\n), all under the one key.
//
// Each record is built whole in a pooled buffer and written as one line,
// under a lock shared by every Handler derived (WithAttrs, WithGroup) from
// one NewHandler, so that records written at the same time never
// interleave. Handle returns the writer's error, or io.ErrShortWrite when
// the writer wrote less than the line without an error.
//
// Handle never waits longer than WriteTimeout (2 s by default) for the
// writer, and a waiting caller is a parked goroutine, not an OS thread,
// so a stdout that nobody reads (a stalled journald reads neither its
// socket nor its stdout streams) cannot stop the program. The policy:
//
//   - a line is written whole or not at all, in the order of the lock;
//
//   - a pipe, socket or terminal is written without blocking
//     (RWF_NOWAIT); when it takes only part of a line, or nothing, the
//     rest is written by a goroutine of the Handler's own that waits for
//     the reader, holding the lock meanwhile; the caller waits for it up
//     to WriteTimeout, and a line not written by then is not lost: it is
//     written as soon as the reader reads;
//
//   - a record that cannot get the lock within WriteTimeout is dropped:
//     Handle returns ErrTimeout, TimedOut counts it, and as soon as the
//     writer takes lines again a line of its own reports how many were
//     dropped since the last report, before any newer record:
//
//     <4>stdoutfallback: records dropped: the output did not take them within 2s dropped=N
//
//   - a writer that is not an *os.File (other than a bytes.Buffer,
//     strings.Builder or io.Discard) may block in ways Handle cannot see,
//     so every line is written by that goroutine, and the same bounds hold.
//
// With a negative WriteTimeout, Handle waits as long as the writer's
// Write does, and nothing is dropped.
//
// journald splits a line longer than its LineMax= (48 KiB by default)
// into several entries; only the first has the prefix's priority.
type Handler struct {
	core      *slogcore.Handler
	out       *output
	timeKey   []byte // " TIME=": TimeField encoded; nil without it
	traceback []byte // " traceback=": TracebackField encoded
}

// NewHandler returns a Handler that writes to w; nil means os.Stdout.
// opts may be nil.
func NewHandler(w io.Writer, opts *HandlerOptions) *Handler {
	if w == nil {
		w = os.Stdout
	}
	if opts == nil {
		opts = &HandlerOptions{}
	}
	traceback := opts.TracebackField
	if traceback == "" {
		traceback = DefaultTracebackField
	}
	h := &Handler{out: newOutput(w, opts.WriteTimeout), traceback: builtinKey(traceback)}
	if opts.TimeField != "" {
		h.timeKey = builtinKey(opts.TimeField)
	}
	h.core = slogcore.New(opts.HandlerOptions, attrFormat{})
	return h
}

// builtinKey returns " key=", the key escaped as any key is.
func builtinKey(key string) []byte {
	return append(appendKey([]byte{' '}, nil, key), '=')
}

// TimedOut returns how many records the Handler, and every Handler derived
// from the same NewHandler, dropped because the writer did not take them
// within WriteTimeout.
func (h *Handler) TimedOut() uint64 { return h.out.total.Load() }

// Enabled reports whether l is at or above HandlerOptions.Level.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return h.core.Enabled(l) }

// WithAttrs returns a Handler whose records carry attrs, formatted once
// now. It writes to the same writer, under the same mutex.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.core = h.core.WithAttrs(attrs)
	return &h2
}

// WithGroup returns a Handler whose later attributes are in group name.
// It writes to the same writer, under the same mutex.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.core = h.core.WithGroup(name)
	return &h2
}

// prefixes are the line prefixes, by priority.
var prefixes = [8][3]byte{
	{'<', '0', '>'}, {'<', '1', '>'}, {'<', '2', '>'}, {'<', '3', '>'},
	{'<', '4', '>'}, {'<', '5', '>'}, {'<', '6', '>'}, {'<', '7', '>'},
}

// noLevelPriority is the prefix of a record whose level ReplaceAttr
// removed: info, the default of systemd's SyslogLevel=.
const noLevelPriority = 6

// Handle writes r as one line.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	rec := h.core.Begin(ctx, r, h.timeKey != nil)
	buf := buffer.Get(len(r.Message) + 1024)
	b := *buf

	pri := noLevelPriority
	if rec.HasLevel {
		pri = slogopts.Priority(rec.Level)
	}
	b = append(b, prefixes[pri][:]...)
	start := len(b)
	hasMsg := rec.HasMsg
	if hasMsg {
		b = appendEscaped(b, rec.Message, false)
	}
	if !rec.Time.IsZero() {
		b = append(b, h.timeKey...)
		b = rec.Time.AppendFormat(b, time.RFC3339Nano)
	}
	if src := rec.Source; src != nil {
		b = append(b, " source="...)
		v := len(b)
		b = append(b, src.File...)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(src.Line), 10)
		b = quoteTail(b, v)
	}
	b = rec.AppendAttrs(b)
	if rec.Traceback != nil {
		b = append(b, h.traceback...)
		b = appendString(b, rec.Traceback)
	}
	rec.End()
	if !hasMsg && len(b) > start && b[start] == ' ' {
		b = b[:start+copy(b[start:], b[start+1:])]
	}
	b = append(b, '\n')

	err := h.out.write(b)
	*buf = b
	buffer.Put(buf)
	return err
}
