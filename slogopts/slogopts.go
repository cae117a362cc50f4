// Package slogopts holds what newstyle's slog handlers share: the options
// that say how a record is written (HandlerOptions), and the syslog levels
// slog does not name, with the one table that maps every slog level to a
// syslog priority (Priority).
//
// Each handler's own options embed HandlerOptions:
//
//	journal.NewHandler(w, &journal.HandlerOptions{
//		HandlerOptions:   slogopts.HandlerOptions{Level: slog.LevelDebug, AddSource: true},
//		SyslogIdentifier: "shop",
//	})
//
// and newstyle.Options does too, so an option is declared, documented and
// passed on in one place.
//
// # Zero values
//
// The zero value of every option of the module is its documented default.
// Where an option can also mean "none" or "without bound", a negative
// value says so (a negative timeout waits without bound, a negative
// Linger sends at once), or a named constant where the zero value is a
// value of its own (journal.NoSyncPriority, journal.SyncEmergOnly).
// Options are passed by pointer, nil meaning every default.
package slogopts

import (
	"context"
	"log/slog"
)

// HandlerOptions are how a record is written, the same for the journal
// handler (journal.HandlerOptions), the stdout handler
// (stdoutfallback.HandlerOptions) and the root package's (newstyle.Options).
// The zero value is ready to use.
type HandlerOptions struct {
	// Level is the lowest level handled; nil means slog.LevelInfo. A
	// *slog.LevelVar changes it while the program runs.
	Level slog.Leveler

	// AddSource adds the record's source, from its program counter:
	// CODE_FILE, CODE_LINE and CODE_FUNC in the journal, source=FILE:LINE
	// on stdout.
	AddSource bool

	// ReplaceAttr is called for every non-group attribute, with the names
	// of the groups it is in, as in slog.HandlerOptions; and for the
	// built-in ones with no groups: slog.MessageKey (a string),
	// slog.LevelKey (a slog.Level), slog.SourceKey (a *slog.Source, with
	// AddSource) and slog.TimeKey (with TimeField). Returning the zero
	// Attr drops the attribute (for the level: the record gets the
	// priority of info).
	ReplaceAttr func(groups []string, a slog.Attr) slog.Attr

	// StackLevel, when not nil, captures the logging goroutine's stack for
	// every record at or above it into the traceback field.
	StackLevel slog.Leveler

	// ContextAttrs, when not nil, is called in Handle with the record's
	// context and a reusable slice, and appends the attributes the
	// context gives (a trace's ids: see the otel module,
	// github.com/newstyle-go/newstyle/otel, whose ContextAttrs gives
	// TRACE_ID, SPAN_ID and TRACE_FLAGS). They are written after the
	// record's own, outside any group WithGroup opened, by the same rules.
	// Unset, it costs nothing; a hook that appends a handful of
	// attributes without allocating keeps Handle free of allocations.
	ContextAttrs func(ctx context.Context, dst []slog.Attr) []slog.Attr

	// TimeField, when not empty, writes the record's time under that name
	// (RFC 3339, nanoseconds, the time's own zone): a journal field, a key
	// on stdout. It is off by default: journald stamps every entry and
	// every line it reads itself, and a value unique to each entry cannot
	// share storage with other entries' values as repeated values do.
	TimeField string

	// TracebackField names the field of stack traces; empty means the
	// handler's default: TRACEBACK in the journal, traceback on stdout.
	TracebackField string
}
