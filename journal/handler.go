package journal

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/newstyle-go/newstyle/internal/buffer"
	"github.com/newstyle-go/newstyle/internal/slogcore"
	"github.com/newstyle-go/newstyle/slogopts"
)

// LevelPriority returns the syslog priority of any slog level, the
// PRIORITY of its entry (and the <N> of its stdout line, in package
// stdoutfallback), by the module's one table, at slogopts.Priority: Info
// is PriInfo, Error PriErr, slogopts.LevelCritical PriCrit, and so on.
func LevelPriority(l slog.Level) Priority { return Priority(slogopts.Priority(l)) }

// DefaultTracebackField is the field a record's stack trace goes to.
const DefaultTracebackField = "TRACEBACK"

// HandlerOptions configure a Handler. The zero value is ready to use.
type HandlerOptions struct {
	// HandlerOptions are those every handler of the module takes: Level,
	// AddSource, ReplaceAttr, StackLevel, ContextAttrs, TimeField and
	// TracebackField (empty: DefaultTracebackField).
	slogopts.HandlerOptions

	// SyslogIdentifier is sent as SYSLOG_IDENTIFIER; empty means the
	// Writer's (WriterOptions.SyslogIdentifier).
	SyslogIdentifier string
}

// Handler is a slog.Handler that sends each record to journald through a
// Writer, as one entry with these fields:
//
//	MESSAGE            the record's message
//	PRIORITY           from its level, below
//	SYSLOG_IDENTIFIER  HandlerOptions.SyslogIdentifier, or the Writer's
//	CODE_FILE, CODE_LINE, CODE_FUNC  with AddSource
//	TRACEBACK          stack traces, below (the name is configurable)
//	the TimeField      with TimeField
//	one field for each attribute, named by the rule below
//
// Levels map to priorities over the whole range of slog levels, as
// LevelPriority shows (slogopts.Priority, the module's one table).
//
// An attribute's key becomes a field name: the names of its groups and
// the key joined with '_'; ASCII letters in upper case; digits and '_'
// kept; any other character replaced by '_'. A name gets the prefix "F_"
// when it would be
//
//   - empty, or start with a digit or '_' (journald's trusted fields);
//   - one of the fields the Handler sets itself: MESSAGE, PRIORITY,
//     SYSLOG_IDENTIFIER, CODE_FILE, CODE_LINE, CODE_FUNC, the traceback
//     and time fields;
//   - one journald interprets: SYSLOG_FACILITY, SYSLOG_PID,
//     SYSLOG_TIMESTAMP, and every OBJECT_* field (OBJECT_PID makes
//     journald describe another process);
//   - one that journalctl uses to list an entry under a unit or an
//     invocation: UNIT, USER_UNIT, INVOCATION_ID, USER_INVOCATION_ID,
//     OBJECT_SYSTEMD_UNIT, OBJECT_SYSTEMD_USER_UNIT, and every COREDUMP_*
//     field (COREDUMP_UNIT, COREDUMP_USER_UNIT);
//
// then the name is cut to 64 characters. So "user.id" in group "req" is
// REQ_USER_ID, "2fa" is F_2FA, "message" is F_MESSAGE, and
// "object.systemd_unit" is F_OBJECT_SYSTEMD_UNIT: no attribute, whatever
// its key, makes `journalctl -u OTHER.service` (or --user-unit) list the
// entry, even when the program runs as root.
// Two attributes may end up with the same name; the entry then has the
// field twice, as the protocol allows. MESSAGE_ID and ERRNO are not
// reserved: an attribute "message_id" sets the entry's MESSAGE_ID.
//
// Values are written as text: strings as they are, numbers in decimal,
// durations as time.Duration.String ("1.5s"), times in RFC 3339 with
// nanoseconds, []byte as raw bytes, errors by Error(), TextMarshalers by
// MarshalText, Stringers by String(), LogValuers resolved, anything else
// by fmt's %+v. A method that panics does not lose the record: the value
// is written "<nil>" for a nil pointer receiver and "!PANIC: <value>"
// otherwise, as log/slog's handlers do. Groups are flattened into names;
// an empty group leaves nothing. Values are sent byte for byte: newlines
// and all. (stdoutfallback.Handler writes the same text, escaped.)
//
// Stack traces go to the traceback field, all of them in that one field
// of the one entry, never into MESSAGE: the stack of any error attribute
// whose chain has an error with a Stack() []byte method (see the root
// package's WithStack), and with StackLevel, the logging goroutine's own.
//
// Handle returns the Writer's error when the entry was not sent; it never
// blocks longer than the Writer's send timeout. An entry over journald's
// limits is not sent and Handle returns ErrTooLarge.
type Handler struct {
	core      *slogcore.Handler
	w         *Writer
	ident     []byte // the SYSLOG_IDENTIFIER field, encoded
	traceback string
	timeField string
}

// NewHandler returns a Handler that sends through w. opts may be nil.
func NewHandler(w *Writer, opts *HandlerOptions) *Handler {
	if opts == nil {
		opts = &HandlerOptions{}
	}
	h := &Handler{w: w, ident: w.ident, traceback: DefaultTracebackField}
	if opts.SyslogIdentifier != "" {
		h.ident = appendStringField(nil, "SYSLOG_IDENTIFIER", opts.SyslogIdentifier)
	}
	if opts.TracebackField != "" {
		h.traceback = fieldName(opts.TracebackField)
	}
	if opts.TimeField != "" {
		h.timeField = fieldName(opts.TimeField)
	}
	f := &attrFormat{reserved: []string{
		"MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC",
		"SYSLOG_FACILITY", "SYSLOG_PID", "SYSLOG_TIMESTAMP", h.traceback,
	}}
	if h.timeField != "" {
		f.reserved = append(f.reserved, h.timeField)
	}
	h.core = slogcore.New(opts.HandlerOptions, f)
	return h
}

// Enabled reports whether l is at or above HandlerOptions.Level.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return h.core.Enabled(l) }

// WithAttrs returns a Handler whose entries carry attrs, encoded once now.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.core = h.core.WithAttrs(attrs)
	return &h2
}

// WithGroup returns a Handler whose later attributes are in group name.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.core = h.core.WithGroup(name)
	return &h2
}

// Handle sends r as one entry.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	buf := buffer.Get(len(r.Message) + 1024)
	b, fields, pri := h.appendRecord(ctx, *buf, r)
	var err error
	// Every field is at most the whole entry, so checking the entry
	// against the smaller limit covers journald's limit per field too.
	if overLimits(len(b), fields, min(h.w.limit, maxDataSize)) {
		err = ErrTooLarge
		h.w.stats.fail(err)
	} else {
		err = h.w.transmit(b, pri)
	}
	*buf = b
	buffer.Put(buf)
	return err
}

// appendRecord appends r as one entry and says how many fields it has
// and its priority.
func (h *Handler) appendRecord(ctx context.Context, b []byte, r slog.Record) ([]byte, int, Priority) {
	rec := h.core.Begin(ctx, r, h.timeField != "")
	defer rec.End()
	fields := 1 // SYSLOG_IDENTIFIER
	if rec.HasMsg {
		b = appendStringField(b, "MESSAGE", rec.Message)
		fields++
	}
	pri := PriInfo
	if rec.HasLevel {
		pri = LevelPriority(rec.Level)
		b = append(b, priorityFields[pri]...)
		fields++
	}
	b = append(b, h.ident...)
	if src := rec.Source; src != nil {
		var head int
		b = appendStringField(b, "CODE_FILE", src.File)
		b, head = beginField(b, "CODE_LINE")
		b = finishField(strconv.AppendInt(b, int64(src.Line), 10), head)
		b = appendStringField(b, "CODE_FUNC", src.Function)
		fields += 3
	}
	if !rec.Time.IsZero() {
		var head int
		b, head = beginField(b, h.timeField)
		b = finishField(rec.Time.AppendFormat(b, time.RFC3339Nano), head)
		fields++
	}
	b = rec.AppendAttrs(b)
	fields += rec.NumAttrs
	if rec.Traceback != nil {
		b = appendBytesField(b, h.traceback, rec.Traceback)
		fields++
	}
	return b, fields, pri
}

// attrFormat writes attributes as journal fields.
type attrFormat struct {
	reserved []string
}

func (f *attrFormat) AppendGroup(prefix []byte, name string) []byte {
	return appendGroupName(prefix, name)
}

// AppendAttr formats the value straight into the field (beginField,
// finishField).
func (f *attrFormat) AppendAttr(dst, prefix []byte, key string, v slog.Value) []byte {
	dst = appendFieldName(dst, prefix, key, f.reserved)
	dst, head := beginField(dst, "")
	return finishField(slogcore.AppendValue(dst, v), head)
}
