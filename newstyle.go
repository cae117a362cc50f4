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
// ("journal", "stdout", "null" or "auto") force the choice; Detect says what was
// chosen and why. Handler.SetTarget changes it while the program runs
// (package service does so for systemctl service-log-target).
//
// When a record cannot be sent to the journal at run time (journald gone,
// its socket made unreachable, stuck), that record is written to stdout
// instead, so nothing is lost, and the switch is reported once, in a
// record of its own, not per record. The journal is tried again at most
// once a second, and the way back is reported once too.
//
// # Options
//
// Every options type of the module (Options here, slogopts.HandlerOptions,
// journal.WriterOptions and journal.AsyncOptions,
// stdoutfallback.HandlerOptions, service.Options) follows one rule:
//
//   - a nil options pointer, and a field's zero value, mean the default
//     that the field's doc names;
//   - a negative value means "none" where none has a meaning: no bound
//     for a timeout (journal's SendTimeout, stdout's WriteTimeout), no
//     wait for AsyncOptions.Linger; and the default where it has none
//     (AsyncOptions.QueueBytes; service's ShutdownTimeout, since systemd's
//     TimeoutStopSec bounds every stop anyway);
//   - where the zero value of a type is a real value that cannot mean the
//     default (AsyncOptions.SyncPriority: PriEmerg), a named constant says
//     the rest (journal.SyncEmergOnly, journal.NoSyncPriority).
package newstyle

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/slogopts"
	"github.com/newstyle-go/newstyle/stdoutfallback"
)

// The syslog levels slog does not name (slogopts declares them, with the
// table that maps every level to a priority, slogopts.Priority).
const (
	LevelNotice    = slogopts.LevelNotice    // 2, PRIORITY 5
	LevelCritical  = slogopts.LevelCritical  // 12, PRIORITY 2
	LevelAlert     = slogopts.LevelAlert     // 16, PRIORITY 1
	LevelEmergency = slogopts.LevelEmergency // 20, PRIORITY 0
)

// PriorityLevel returns the slog level of a syslog priority, the inverse
// of journal.LevelPriority (see slogopts.Level).
func PriorityLevel(p journal.Priority) slog.Level { return slogopts.Level(int(p)) }

// Options configure NewHandler. The zero value is ready to use.
type Options struct {
	// HandlerOptions are those of every handler of the module: Level,
	// AddSource, ReplaceAttr, StackLevel, ContextAttrs, TimeField and
	// TracebackField (empty: TRACEBACK in the journal, traceback on
	// stdout). Both the journal's handler and stdout's get them.
	slogopts.HandlerOptions

	// Target forces where records go; TargetAuto decides by itself. The
	// environment variable NEWSTYLE_LOG_TARGET, when set, overrides it
	// (unless IgnoreEnv): it is the operator's word, given in the unit
	// file. Handler.SetTarget changes it at run time.
	Target Target

	// IgnoreEnv makes Target win over NEWSTYLE_LOG_TARGET: for tests,
	// which must log where they look (a journaltest.Server) whatever the
	// developer's shell or CI exports.
	IgnoreEnv bool

	// Fallback, when not nil, is the handler for every record that does
	// not go to the journal, in place of stdout's <N>-prefixed lines: a
	// slog.JSONHandler or slog.TextHandler on os.Stderr or os.Stdout, for
	// a container's or Kubernetes' log collector, or a terminal. (Under
	// systemd, leave it nil: journald reads the <N> prefix as the
	// priority.) Stdout and WriteTimeout are then unused, and the bound
	// on a record's wait for its output is Fallback's own. Options'
	// HandlerOptions are not applied to it (it formats as it is made to),
	// but Options.Level still decides what is logged, wherever records
	// go: the Fallback is given the records at or above it that its own
	// Enabled takes. A panic in its Handle is recovered and counted
	// (Stats.FallbackPanics). Records of an asynchronous Writer (Async)
	// that journald did not take reach it as the journal saw them: the
	// message and priority, each field by its journal name with a string
	// value, without the record's time or groups.
	Fallback slog.Handler

	// Quiet leaves out the record NewHandler logs, once, to say where
	// records go and why, when the automatic rule or NEWSTYLE_LOG_TARGET
	// chose it ("newstyle: logging to the journal", at Info, so a Level
	// above Info leaves it out too). A value of NEWSTYLE_LOG_TARGET it
	// cannot read is warned about all the same.
	Quiet bool

	// SyslogIdentifier is the journal's SYSLOG_IDENTIFIER (journalctl -t);
	// empty means the program's name.
	SyslogIdentifier string

	// SocketPath is journald's socket; empty means
	// journal.DefaultSocketPath, or Namespace's socket when that is set.
	SocketPath string

	// Namespace is the journal namespace to write to when SocketPath is
	// empty, as a unit's LogNamespace= names it: records go to
	// journal.NamespaceSocketPath(Namespace), and journalctl
	// --namespace=NAME shows them. Empty means the default journal. A
	// unit with LogNamespace= does not need it: systemd mounts the
	// namespace's sockets over the default ones in the unit's mount
	// namespace. An invalid name makes no socket: records go to stdout,
	// and the Detection says why.
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
	// datagram gets the same journald timestamp, Async also sets
	// TimeField to "TIME" when it is empty: a record's own time is then
	// in its entry (and on its stdout line). Call Handler.Flush (package
	// service does, on every way out) before the program exits.
	Async *journal.AsyncOptions
}

// NewLogger returns a slog.Logger on NewHandler(opts).
func NewLogger(opts *Options) *slog.Logger { return slog.New(NewHandler(opts)) }

// NewHandler returns a Handler that writes to the target Detect chooses
// for opts (nil opts: the defaults).
func NewHandler(opts *Options) *Handler {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Async != nil && o.TimeField == "" {
		o.TimeField = "TIME"
	}
	sw := &switcher{}
	if o.Fallback != nil {
		sw.fallback = o.Fallback
	} else {
		sw.stdout = stdoutfallback.NewHandler(o.Stdout, &stdoutfallback.HandlerOptions{
			HandlerOptions: o.HandlerOptions,
			WriteTimeout:   o.WriteTimeout,
		})
		sw.fallback = sw.stdout
	}
	sw.level = o.Level
	if sw.level == nil {
		sw.level = slog.LevelInfo
	}
	h := &Handler{fallback: sw.fallback, sw: sw}
	sw.writer, sw.writerErr = newWriter(&o, sw)
	if sw.writer != nil {
		sw.journal = journal.NewHandler(sw.writer, &journal.HandlerOptions{HandlerOptions: o.HandlerOptions})
		h.journal = sw.journal
	}

	d, envErr := detect(o.Target, sw.writer, o.IgnoreEnv)
	if d.Target == TargetJournal && sw.writer == nil {
		d = Detection{Target: TargetStdout, Reason: "the journal cannot be used (" + d.Reason + "): " + sw.writerErr.Error(), Forced: d.Forced}
	}
	sw.detection = d
	sw.target.Store(int32(d.Target))
	// The program's own Options.Target needs no announcement; the
	// automatic rule's choice and the operator's do.
	byEnv := d.Forced && strings.HasPrefix(d.Reason, EnvTarget+"=")
	h.announce(d, envErr, o.Quiet || d.Forced && !byEnv)
	return h
}

// announce logs, once, where h's records go and why, unless quiet; and
// warns of a value of NEWSTYLE_LOG_TARGET it could not read.
func (h *Handler) announce(d Detection, envErr error, quiet bool) {
	ctx := context.Background()
	if envErr != nil {
		_ = h.sw.report(ctx, h, slog.LevelWarn, "newstyle: "+EnvTarget+" is ignored", envErr, 0)
	}
	if quiet || !h.Enabled(ctx, slog.LevelInfo) {
		return
	}
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "newstyle: logging to "+h.sw.place(d.Target), 0)
	r.AddAttrs(slog.String("target", d.Target.String()), slog.String("reason", d.Reason))
	_ = h.Handle(ctx, r)
}

// place names where records of target t go, for a person.
func (s *switcher) place(t Target) string {
	switch {
	case t == TargetJournal:
		return "the journal"
	case s.stdout == nil:
		return "the fallback handler (Options.Fallback)"
	}
	return "stdout"
}

// newWriter makes the journal's Writer for o; the switcher counts what
// an asynchronous one could not deliver, which goes to stdout.
func newWriter(o *Options, sw *switcher) (*journal.Writer, error) {
	path := o.SocketPath
	if path == "" && o.Namespace != "" {
		var err error
		if path, err = journal.NamespaceSocketPath(o.Namespace); err != nil {
			// No socket is opened for a name that could lead anywhere.
			return nil, fmt.Errorf("Options.Namespace: %w", err)
		}
	}
	wopts := &journal.WriterOptions{SocketPath: path, SyslogIdentifier: o.SyslogIdentifier, SendTimeout: o.SendTimeout}
	if o.Async != nil {
		a := *o.Async
		user := a.OnUndelivered
		a.OnUndelivered = func(msg string, pri journal.Priority, fields []journal.Field, err error) {
			sw.count()
			undeliveredToStdout(sw, msg, pri, fields)
			if user != nil {
				user(msg, pri, fields, err)
			}
		}
		wopts.Async = &a
	}
	return journal.NewWriter(wopts)
}

// Handler is the slog.Handler NewHandler returns: the journal's, with
// stdout behind it, or stdout's alone.
//
// A Handler is open until Close. Open, it writes to its target (Target):
// the journal (TargetJournal), where a record journald does not take goes
// to stdout (see the package documentation); stdout (TargetStdout); or
// nowhere (TargetNull). SetTarget changes the target of every Handler
// derived from the same NewHandler. Closed, the journal's Writer is
// closed: records go to stdout (or nowhere, if the target was
// TargetNull), Target says so, and SetTarget refuses the journal with
// journal.ErrClosed; Flush, JournalStats and Dropped still answer.
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
	journal  slog.Handler // nil when the journal's Writer could not be made
	fallback slog.Handler
	sw       *switcher // shared by every Handler derived from one NewHandler
}

// Detection returns what NewHandler chose and why. SetTarget does not
// change it; Target says where records go now.
func (h *Handler) Detection() Detection { return h.sw.detection }

// Target returns where records go now: TargetJournal, TargetStdout or
// TargetNull, for h and every Handler derived from the same NewHandler.
// (Records that the journal did not take go to stdout all the same:
// TargetJournal includes that fallback.)
func (h *Handler) Target() Target { return Target(h.sw.target.Load()) }

// SetTarget sends the records of h, and of every Handler derived from
// the same NewHandler (With, WithGroup), to t from now on:
//
//   - TargetJournal: journald's native socket, whatever NewHandler chose;
//     records it does not take go to stdout, as always;
//   - TargetStdout: stdout's <N>-prefixed lines (systemd's "console");
//   - TargetNull: nowhere; Enabled reports false, so that records are
//     not even formatted;
//   - TargetAuto: decide again, as Detect does, by JOURNAL_STREAM and
//     the socket, without Options.Target or NEWSTYLE_LOG_TARGET: the
//     operator asked for the automatic choice.
//
// It returns the outcome, with the reason for TargetAuto's choice. It is
// safe to call at any time, from any goroutine; a record being handled
// meanwhile goes to the old target or the new one. Choosing the journal
// fails when there is no journal Writer (the error says why: an invalid
// Options.Namespace, say) or the Handler is closed (journal.ErrClosed);
// the target is then unchanged. A value that is not a Target is
// ErrInvalidTarget.
//
// Handle pays one atomic load for this.
func (h *Handler) SetTarget(t Target) (Detection, error) { return h.sw.setTarget(t) }

// Close closes the Handler's journal Writer (see journal.Writer.Close),
// for h and every Handler derived from the same NewHandler: records then
// go to stdout. It returns within the Writer's bound (SendTimeout, and a
// few milliseconds for an asynchronous Writer), whatever journald,
// OnUndelivered or stdout do; what an asynchronous Writer had not
// delivered by then is counted, reported and left (its error says how
// many). Closing is optional: an unreachable Handler releases the socket
// when collected. It is not an error to close twice.
func (h *Handler) Close() error {
	if w := h.sw.close(); w != nil {
		return w.Close()
	}
	return nil
}

// Flush returns once every record queued for an asynchronous journal
// Writer (Options.Async) before it is sent, or when ctx is done; at once
// otherwise.
func (h *Handler) Flush(ctx context.Context) error {
	if h.sw.writer == nil {
		return nil
	}
	return h.sw.writer.Flush(ctx)
}

// Stats counts what the Handlers derived from one NewHandler did with
// their records: the journal Writer's counters, whose invariant
// journal.Stats states (every record the Writer was given is in exactly
// one of Entries, Errors, Dropped and Queued, in both modes), and how
// many went to stdout instead, or could not go there either. A record
// the journal did not take (Journal.Errors) is written to stdout
// (OnStdout) unless stdout timed out too (StdoutTimeouts).
//
// Handler.Stats returns them, and service.Service.LogStats for a
// service's logger; to publish them with expvar:
//
//	expvar.Publish("newstyle", expvar.Func(func() any { return h.Stats() }))
type Stats struct {
	// Journal is the journal Writer's counters; zero without a Writer
	// (JournalStats says whether there is one).
	Journal journal.Stats

	// OnStdout counts the records that went to stdout while the journal
	// was the target: those it did not take, and those written there
	// while it was down.
	OnStdout uint64

	// StdoutTimeouts counts the records stdout did not take within
	// Options.WriteTimeout: they were dropped, and reported on stdout
	// (see stdoutfallback.Handler.TimedOut).
	StdoutTimeouts uint64

	// FallbackPanics counts the records whose Options.Fallback's Handle
	// panicked: recovered, and the record lost.
	FallbackPanics uint64
}

// Stats returns the counters of h and every Handler derived from the same
// NewHandler.
func (h *Handler) Stats() Stats {
	st := Stats{FallbackPanics: h.sw.fallbackPanics.Load()}
	if h.sw.stdout != nil {
		st.StdoutTimeouts = h.sw.stdout.TimedOut()
	}
	if h.sw.writer != nil {
		st.Journal = h.sw.writer.Stats()
	}
	h.sw.mu.Lock()
	st.OnStdout = h.sw.fellBack
	h.sw.mu.Unlock()
	return st
}

// JournalStats returns the journal Writer's counters, and false when
// there is no journal Writer (it could not be made).
func (h *Handler) JournalStats() (journal.Stats, bool) {
	if h.sw.writer == nil {
		return journal.Stats{}, false
	}
	return h.sw.writer.Stats(), true
}

// Enabled reports whether records at level l are logged.
//
// Options.Level decides, whatever the target (and LogControl1, DEBUG_INVOCATION
// and service.Service.Level set it when it is a *slog.LevelVar); on stdout
// with Options.Fallback, the Fallback's own Enabled must agree too.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool {
	switch Target(h.sw.target.Load()) {
	case TargetNull:
		return false
	case TargetStdout:
		if h.sw.stdout == nil && !h.fallback.Enabled(ctx, l) {
			return false
		}
	}
	return l >= h.sw.level.Level()
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

// Handle writes r to the target: to the journal or, when that fails, to
// stdout; to stdout; or nowhere.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	switch Target(h.sw.target.Load()) {
	case TargetJournal:
		return h.sw.handle(ctx, h.journal, h.fallback, r)
	case TargetNull:
		return nil
	}
	return h.sw.toFallback(ctx, h.fallback, r)
}

// undeliveredToStdout writes an entry that journald did not take to
// stdout as a record: its priority, message and fields (by their journal
// names), the identifier left out.
func undeliveredToStdout(sw *switcher, msg string, pri journal.Priority, fields []journal.Field) {
	r := slog.NewRecord(time.Time{}, PriorityLevel(pri), msg, 0)
	for _, f := range fields {
		if f.Name != "SYSLOG_IDENTIFIER" {
			r.AddAttrs(slog.String(f.Name, string(f.Value)))
		}
	}
	_ = sw.toFallback(context.Background(), sw.fallback, r)
}
