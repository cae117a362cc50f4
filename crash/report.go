package crash

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/slogopts"
	"github.com/newstyle-go/newstyle/stdoutfallback"
)

// report is a crash, as the watcher writes it.
type report struct {
	kind    string // FieldKind's value
	message string // MESSAGE: what the runtime's first lines call the crash
	// The crash output: the stderr-only lines before it (prefix), then
	// all of it in head, or its first and last bytes in head and tail,
	// total bytes in all.
	prefix, head, tail []byte
	total              int64
}

// The kinds of crash (FieldKind).
const (
	kindPanic  = "panic"
	kindFatal  = "fatal error"
	kindSignal = "signal"
)

// maxMessage bounds MESSAGE: the runtime's first line can be as long as a
// panic's value, which TRACEBACK holds whole anyway.
const maxMessage = 2048

// newReport makes the report of a crash: prefix is what the runtime wrote
// to stderr alone before its crash output (the "fatal error: …" line and
// its context; nil when the watcher did not see stderr), and out what the
// cap kept of the crash output (SetCrashOutput's).
func newReport(prefix []byte, out *cutter) *report {
	head, tail, _ := out.parts()
	kind, msg := name(prefix, head)
	return &report{kind: kind, message: msg, prefix: prefix, head: head, tail: tail, total: out.total}
}

// cut returns how many bytes of the crash output the report lacks.
func (r *report) cut() int64 {
	if r.tail == nil {
		return r.total - int64(len(r.head))
	}
	return r.total - int64(len(r.head)) - int64(len(r.tail))
}

// traceback returns TRACEBACK: the stderr-only lines, then the crash
// output as the runtime wrote it, or its two ends with a line between
// them that says how many bytes are cut.
func (r *report) traceback() []byte {
	b := make([]byte, 0, len(r.prefix)+len(r.head)+len(r.tail)+64)
	b = append(append(b, r.prefix...), r.head...)
	if r.tail != nil {
		b = append(appendCut(b, r.cut()), r.tail...)
	}
	return b
}

// name reads what the crash is from the runtime's first lines: the crash
// output's own first line for a panic ("panic: …") or a signal the
// program did not handle ("SIGABRT: abort"); for the runtime's fatal
// errors, which write the line that names them to stderr alone, the last
// "fatal error: …" line of prefix, or, with none, a name read from the
// goroutine trace (see fromTrace). A "[signal …]" line right after the
// first is added to the name ("panic: runtime error: invalid memory
// address or nil pointer dereference [signal SIGSEGV: …]").
func name(prefix, out []byte) (kind, msg string) {
	first, rest := firstLine(out)
	switch {
	case strings.HasPrefix(first, "panic: "):
		kind, msg = kindPanic, first
		if sig, _ := firstLine(rest); strings.HasPrefix(sig, "[signal ") {
			msg += " " + sig
		}
	case signalLine(first):
		kind, msg = kindSignal, first
	default:
		kind = kindFatal
		msg = lastFatalLine(prefix)
		if msg == "" {
			msg = fromTrace(out)
		}
		// A fatal error of a signal ("unexpected signal during runtime
		// execution") tells which in the first line of its output.
		if sig := strings.TrimSpace(first); strings.HasPrefix(sig, "[signal ") {
			msg += " " + sig
		}
	}
	return kind, clip(msg, maxMessage)
}

// firstLine returns the first non-empty line of b, and what follows it.
func firstLine(b []byte) (line string, rest []byte) {
	b = bytes.TrimLeft(b, "\n")
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return string(b), nil
	}
	return string(b[:i]), b[i+1:]
}

// signalLine reports whether line is how the runtime starts the report of
// a signal that ended the program: "SIGQUIT: quit", "SIGSEGV:
// segmentation violation".
func signalLine(line string) bool {
	name, _, ok := strings.Cut(line, ": ")
	if !ok || len(name) < 4 || !strings.HasPrefix(name, "SIG") {
		return false
	}
	for i := 3; i < len(name); i++ {
		if c := name[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// lastFatalLine returns the last "fatal error: …" line of b, or "".
func lastFatalLine(b []byte) string {
	msg := ""
	for len(b) > 0 {
		var line string
		line, b = firstLine(b)
		if strings.HasPrefix(line, "fatal error: ") {
			msg = line
		}
	}
	return msg
}

// traceNames name the runtime's fatal errors by the function that threw
// them, for when the line that names them was not seen (stderr left
// alone): the first of these functions in the trace wins. The names are
// the runtime's own words, marked as read from the trace.
var traceNames = []struct{ function, name string }{
	{"runtime.newstack(", "stack overflow"},
	{"runtime.sysMap(", "out of memory"},
	{"runtime.(*mheap).grow(", "out of memory"},
	{"runtime.mapassign", "concurrent map writes"},
	{"runtime.mapdelete", "concurrent map writes"},
	{"runtime.mapaccess", "concurrent map read and map write"},
	{"runtime.mapiternext(", "concurrent map iteration and map write"},
	// Go 1.24's maps throw from a function of their own, called from
	// code the trace does not show: which access it was is not told.
	{"internal/runtime/maps.", "concurrent map access"},
	{"internal/sync.fatal(", "misuse of a sync lock"},
	{"sync.fatal(", "misuse of a sync lock"},
}

// fromTrace names a fatal error from its goroutine trace alone: "fatal
// error: stack overflow (read from the trace)", or "fatal error (its
// message went to stderr)" when no function there tells.
func fromTrace(out []byte) string {
	// The frames of the failing goroutine come first; stop at the next
	// goroutine's (GOTRACEBACK=all lists every one).
	head := out
	if i := bytes.Index(head, []byte("\n\ngoroutine ")); i >= 0 {
		if j := bytes.Index(head[i+2:], []byte("\n\ngoroutine ")); j >= 0 {
			head = head[:i+2+j]
		}
	}
	for _, n := range traceNames {
		if bytes.Contains(head, []byte("\n"+n.function)) {
			return "fatal error: " + n.name + " (read from the trace)"
		}
	}
	return "fatal error (its message went to stderr)"
}

// clip cuts s to at most n bytes, between two runes, ending it with "…".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	i := n - len(ellipsis)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + ellipsis
}

// contextPrefixes start the lines the runtime writes to stderr alone
// before a fatal error's output.
var contextPrefixes = []string{"fatal error: ", "runtime: ", "fatal: ", "unexpected fault address ", "[signal "}

// Bounds of the stderr-only context taken before a crash's output.
const (
	maxContextLines = 32
	maxContextBytes = 8 << 10
)

// findPrefix returns what the runtime wrote to stderr alone just before
// its crash output: the lines of window (the end of the program's
// stderr) right before the last place where start (the crash output's
// first bytes) begins in it, as far back as they are the runtime's
// context lines (contextPrefixes); nil when start is not in window, or
// no such line comes right before it. found says whether start is.
func findPrefix(window, start []byte) (prefix []byte, found bool) {
	i := bytes.LastIndex(window, start)
	if i < 0 || len(start) == 0 {
		return nil, false
	}
	b := window[:i]
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, true
	}
	from := len(b)
	for lines := 0; lines < maxContextLines && from > 0; lines++ {
		j := bytes.LastIndexByte(b[:from-1], '\n') + 1
		if len(b)-j > maxContextBytes || !contextLine(b[j:from]) {
			break
		}
		from = j
	}
	if from == len(b) {
		return nil, true
	}
	return bytes.Clone(b[from:]), true
}

func contextLine(line []byte) bool {
	for _, p := range contextPrefixes {
		if bytes.HasPrefix(line, []byte(p)) {
			return true
		}
	}
	return false
}

// journalFields returns the entry's fields but MESSAGE and PRIORITY, for
// the crashed process pid (see the package documentation).
func (r *report) journalFields(pid int) []journal.Field {
	id, _ := journal.MessageID(MessageID) // a constant, valid
	p := strconv.Itoa(pid)
	fields := []journal.Field{
		id,
		journal.StringField("SYSLOG_PID", p),
		journal.StringField(FieldPID, p),
		journal.StringField(FieldKind, r.kind),
		{Name: "TRACEBACK", Value: r.traceback()},
	}
	if cut := r.cut(); cut > 0 {
		fields = append(fields, journal.StringField(FieldCut, strconv.FormatInt(cut, 10)))
	}
	return fields
}

// maxStdoutLine bounds the stdout fallback's line, newline included:
// journald's stdout stream cuts a longer line into several entries
// (LineMax=, 48 KiB by default), and only the first would have the <2>.
const maxStdoutLine = 48 << 10

// stdoutLine returns the crash as one line of the stdout fallback's
// format, at most limit bytes long:
//
//	<2>MESSAGE MESSAGE_ID=… NEWSTYLE_CRASH_PID=… [NEWSTYLE_TRACEBACK_CUT=…] NEWSTYLE_CRASH_KIND=… traceback="…"
//
// A trace
// too long for the line is cut as the cap cuts it, head and tail, and
// the count says what was cut of the whole output.
func (r *report) stdoutLine(pid int, limit int) []byte {
	short := *r
	for {
		line := short.formatLine(pid)
		kept := len(short.head) + len(short.tail)
		if len(line) <= limit || kept == 0 {
			return line
		}
		// Escaping makes the trace longer (\n, \t, \"): keep less of it by
		// the part of the line that is over, in the same proportion.
		over := len(line) - limit
		keep := max(kept-(over*kept+len(line)-1)/len(line)-64, 0)
		short.head, short.tail = keepEnds(short.head, short.tail, keep)
		if short.tail == nil {
			short.tail = []byte{} // cut now, even if to nothing
		}
	}
}

// formatLine formats the stdout line through package stdoutfallback, as
// a record at crit.
func (r *report) formatLine(pid int) []byte {
	var buf bytes.Buffer
	h := stdoutfallback.NewHandler(&buf, &stdoutfallback.HandlerOptions{HandlerOptions: slogopts.HandlerOptions{Level: newstyle.LevelCritical}, WriteTimeout: -1})
	rec := slog.NewRecord(time.Time{}, newstyle.LevelCritical, r.message, 0)
	rec.AddAttrs(slog.String("MESSAGE_ID", MessageID), slog.Int(FieldPID, pid))
	if cut := r.cut(); cut > 0 {
		rec.AddAttrs(slog.Int64(FieldCut, cut))
	}
	// The kind, as an error that carries the trace: the handler writes
	// the one as the attribute's value, the other under its traceback key.
	rec.AddAttrs(slog.Any(FieldKind, &crashTrace{kind: r.kind, trace: r.traceback()}))
	_ = h.Handle(context.Background(), rec) // a bytes.Buffer takes it all
	return buf.Bytes()
}

// crashTrace is the crash's kind as an error with a stack
// (newstyle.StackTracer), the trace, which the handler writes under its
// traceback key.
type crashTrace struct {
	kind  string
	trace []byte
}

func (e *crashTrace) Error() string { return e.kind }
func (e *crashTrace) Stack() []byte { return e.trace }
