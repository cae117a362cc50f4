//go:build linux

package bench

import (
	"context"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/slogopts"
)

// The slog benchmarks log the workload (workload_test.go) through a
// slog.Logger, as a program does, on each client's slog.Handler: what
// reaches the drain is the same entry as BenchmarkSend's, as far as slog
// allows it.
//
// The four plain fields are slog string attributes whose values are the
// workload's bytes. The traceback is where the two handlers differ:
//
//   - newstyle (journal.Handler) names attributes itself (request_id is
//     REQUEST_ID) and reserves TRACEBACK for stack traces, which it takes
//     from an error attribute carrying one (a Stack() []byte method, as
//     newstyle.WithStack's errors have). Its fifth attribute is therefore
//     "err", an error whose Stack returns the workload's traceback: the
//     entry gets TRACEBACK, and ERR (the error's message) besides.
//   - slog-journal sends keys as they are and knows no stack traces: its
//     attributes are the workload's field names, the traceback a string.
//
// So newstyle sends one field more (ERR=card declined, 25 bytes), and
// slog-journal the four it always adds (CODE_FILE, CODE_FUNC, CODE_LINE,
// SYSLOG_TIMESTAMP).

// errMessage is the message of the workload's error.
const errMessage = "card declined"

// stackError is an error carrying a stack trace, as newstyle.WithStack's
// do; Stack returns the workload's traceback without allocating.
type stackError struct {
	msg   string
	stack []byte
}

func (e *stackError) Error() string { return e.msg }
func (e *stackError) Stack() []byte { return e.stack }

// slogValues are the workload's values, held in variables as a program
// holds them, so that passing them to slog costs what it costs there.
type slogValues struct {
	requestID, userID, httpStatus, durationMS string
	traceback                                 string
	err                                       error
}

func newSlogValues() *slogValues {
	v := &slogValues{err: &stackError{msg: errMessage, stack: []byte(traceback)}, traceback: traceback}
	for _, w := range workloadFields {
		switch w.name {
		case "REQUEST_ID":
			v.requestID = w.value
		case "USER_ID":
			v.userID = w.value
		case "HTTP_STATUS":
			v.httpStatus = w.value
		case "DURATION_MS":
			v.durationMS = w.value
		}
	}
	return v
}

// The four ways of logging the workload: newstyle's attributes or
// slog-journal's, by key-value pairs (Logger.Error, the form of Info,
// Warn…) or by LogAttrs. Each is one function, called from the check and
// from the loop alike, so that CODE_LINE is the same for both.

//go:noinline
func newstyleArgs(_ context.Context, l *slog.Logger, v *slogValues) {
	l.Error(message, "request_id", v.requestID, "user_id", v.userID, "http_status", v.httpStatus,
		"duration_ms", v.durationMS, "err", v.err)
}

//go:noinline
func newstyleAttrs(ctx context.Context, l *slog.Logger, v *slogValues) {
	l.LogAttrs(ctx, slog.LevelError, message, slog.String("request_id", v.requestID), slog.String("user_id", v.userID),
		slog.String("http_status", v.httpStatus), slog.String("duration_ms", v.durationMS), slog.Any("err", v.err))
}

//go:noinline
func slogJournalArgs(_ context.Context, l *slog.Logger, v *slogValues) {
	l.Error(message, "REQUEST_ID", v.requestID, "USER_ID", v.userID, "HTTP_STATUS", v.httpStatus,
		"DURATION_MS", v.durationMS, "TRACEBACK", v.traceback)
}

//go:noinline
func slogJournalAttrs(ctx context.Context, l *slog.Logger, v *slogValues) {
	l.LogAttrs(ctx, slog.LevelError, message, slog.String("REQUEST_ID", v.requestID), slog.String("USER_ID", v.userID),
		slog.String("HTTP_STATUS", v.httpStatus), slog.String("DURATION_MS", v.durationMS),
		slog.String("TRACEBACK", v.traceback))
}

// The same at Debug, for BenchmarkDisabledDebug.

//go:noinline
func newstyleDebugArgs(_ context.Context, l *slog.Logger, v *slogValues) {
	l.Debug(message, "request_id", v.requestID, "user_id", v.userID, "http_status", v.httpStatus,
		"duration_ms", v.durationMS, "err", v.err)
}

//go:noinline
func newstyleDebugAttrs(ctx context.Context, l *slog.Logger, v *slogValues) {
	l.LogAttrs(ctx, slog.LevelDebug, message, slog.String("request_id", v.requestID), slog.String("user_id", v.userID),
		slog.String("http_status", v.httpStatus), slog.String("duration_ms", v.durationMS), slog.Any("err", v.err))
}

//go:noinline
func slogJournalDebugArgs(_ context.Context, l *slog.Logger, v *slogValues) {
	l.Debug(message, "REQUEST_ID", v.requestID, "USER_ID", v.userID, "HTTP_STATUS", v.httpStatus,
		"DURATION_MS", v.durationMS, "TRACEBACK", v.traceback)
}

//go:noinline
func slogJournalDebugAttrs(ctx context.Context, l *slog.Logger, v *slogValues) {
	l.LogAttrs(ctx, slog.LevelDebug, message, slog.String("REQUEST_ID", v.requestID), slog.String("USER_ID", v.userID),
		slog.String("HTTP_STATUS", v.httpStatus), slog.String("DURATION_MS", v.durationMS),
		slog.String("TRACEBACK", v.traceback))
}

// newstyleExtras are the fields newstyle's entry has beyond the workload;
// with AddSource, the caller's position too.
var (
	newstyleExtras       = []string{"ERR"}
	newstyleSourceExtras = []string{"ERR", "CODE_FILE", "CODE_FUNC", "CODE_LINE"}
)

// newstyleLogger returns a slog.Logger on journal.NewHandler, on a Writer
// of its own.
func newstyleLogger(tb testing.TB, opts *journal.HandlerOptions) *slog.Logger {
	tb.Helper()
	return slog.New(journal.NewHandler(newWriter(tb), opts))
}

// rootLogger returns newstyle.NewLogger's logger, forced to the journal:
// journal.Handler behind the root package's switch to stdout.
func rootLogger(tb testing.TB) *slog.Logger {
	tb.Helper()
	h := newstyle.NewHandler(&newstyle.Options{
		Target:           newstyle.TargetJournal,
		SyslogIdentifier: identifier,
		SocketPath:       journal.DefaultSocketPath,
		Stdout:           failWriter{tb},
	})
	if d := h.Detection(); d.Target != newstyle.TargetJournal {
		tb.Fatalf("newstyle.NewHandler chose %v", d)
	}
	return slog.New(h)
}

// failWriter fails the benchmark if the root logger falls back to stdout.
type failWriter struct{ tb testing.TB }

func (w failWriter) Write(p []byte) (int, error) {
	w.tb.Errorf("the logger wrote to stdout: %q", p)
	return len(p), nil
}

// handlerCase is one row of BenchmarkHandler.
type handlerCase struct {
	name    string
	logger  func(testing.TB) *slog.Logger
	log     func(context.Context, *slog.Logger, *slogValues)
	allowed []string // fields allowed beyond the workload
}

var handlerCases = []handlerCase{
	{"newstyle", func(tb testing.TB) *slog.Logger { return newstyleLogger(tb, nil) }, newstyleArgs, newstyleExtras},
	{"newstyle-LogAttrs", func(tb testing.TB) *slog.Logger { return newstyleLogger(tb, nil) }, newstyleAttrs, newstyleExtras},
	{"newstyle-AddSource", func(tb testing.TB) *slog.Logger {
		return newstyleLogger(tb, &journal.HandlerOptions{HandlerOptions: slogopts.HandlerOptions{AddSource: true}})
	}, newstyleAttrs, newstyleSourceExtras},
	{"newstyle-NewLogger", rootLogger, newstyleAttrs, newstyleExtras},
	{"slog-journal", newSlogJournal, slogJournalArgs, slogJournalExtras},
	{"slog-journal-LogAttrs", newSlogJournal, slogJournalAttrs, slogJournalExtras},
}

// BenchmarkHandler logs the workload through slog.Logger on each client's
// handler, one entry per operation, to the drain:
//
//	newstyle               Logger.Error(msg, key, value, …) on journal.NewHandler
//	newstyle-LogAttrs      Logger.LogAttrs(ctx, LevelError, msg, attrs…), the same handler
//	newstyle-AddSource     the same with HandlerOptions.AddSource: CODE_* as slog-journal sends
//	newstyle-NewLogger     LogAttrs on newstyle.NewLogger (Target journal): the root
//	                       package's switch to stdout in front of journal.Handler
//	slog-journal           Logger.Error(msg, key, value, …) on github.com/systemd/slog-journal
//	slog-journal-LogAttrs  LogAttrs on it (BenchmarkSend/slog-journal)
//	floor                  sendto(2) of the datagram the newstyle row sends
//
// with the metrics, and the per-run checks, of BenchmarkSend.
func BenchmarkHandler(b *testing.B) {
	needDrain(b)
	for _, c := range handlerCases {
		b.Run(c.name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			logger := c.logger(b)
			v := newSlogValues()
			ctx := context.Background()
			r := begin(b, func() error { c.log(ctx, logger, v); return nil }, c.allowed...)
			n := 0
			for b.Loop() {
				c.log(ctx, logger, v)
				n++
			}
			r.end(b, n)
		})
	}

	b.Run("floor", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		logger := newstyleLogger(b, nil)
		v := newSlogValues()
		ctx := context.Background()
		f := newFloorOf(b, func() error { newstyleArgs(ctx, logger, v); return nil }, newstyleExtras...)
		benchFloor(b, f, newstyleExtras...)
	})
}

// BenchmarkHandlerInterleaved compares newstyle's handler, slog-journal's
// and the floor more precisely than BenchmarkHandler can on a machine
// whose speed drifts: blocks of pairBlock records of each alternate, each
// block timed, so that all three see the same machine. It reports
// slog-journal/newstyle and newstyle/floor (ratios of their times) and the
// time per record of each; its ns/op is that of three blocks. args logs
// with key-value pairs (Logger.Error), LogAttrs with LogAttrs, both
// clients alike.
func BenchmarkHandlerInterleaved(b *testing.B) {
	d := needDrain(b)
	for _, form := range []struct {
		name               string
		newstyle, slogJrnl func(context.Context, *slog.Logger, *slogValues)
	}{
		{"args", newstyleArgs, slogJournalArgs},
		{"LogAttrs", newstyleAttrs, slogJournalAttrs},
	} {
		b.Run(form.name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			ctx := context.Background()
			v := newSlogValues()
			nl, sl := newstyleLogger(b, nil), newSlogJournal(b)
			nsize, ssize := sizeOf(b, d, func() { form.newstyle(ctx, nl, v) }, newstyleExtras),
				sizeOf(b, d, func() { form.slogJrnl(ctx, sl, v) }, slogJournalExtras)
			f := newFloorOf(b, func() error { form.newstyle(ctx, nl, v); return nil }, newstyleExtras...)
			before := d.counts()
			var tn, ts, tf time.Duration
			n := 0
			for b.Loop() {
				t0 := time.Now()
				for range pairBlock {
					form.newstyle(ctx, nl, v)
				}
				t1 := time.Now()
				for range pairBlock {
					form.slogJrnl(ctx, sl, v)
				}
				t2 := time.Now()
				for range pairBlock {
					if errno := f.sendto(); errno != 0 {
						b.Fatal(errno)
					}
				}
				tn += t1.Sub(t0)
				ts += t2.Sub(t1)
				tf += time.Since(t2)
				n += pairBlock
			}
			// Every record arrived: n of each size.
			c, err := d.waitFor(before.datagrams + uint64(3*n))
			if err != nil {
				b.Fatal(err)
			}
			time.Sleep(time.Millisecond)
			c = d.counts()
			if c.datagrams != before.datagrams+uint64(3*n) || c.bytes-before.bytes != uint64(n)*(2*nsize+ssize) || c.bad != before.bad {
				b.Fatalf("sent %d records of each, the drain got %d datagrams, %d bytes, %d bad",
					n, c.datagrams-before.datagrams, c.bytes-before.bytes, c.bad-before.bad)
			}
			b.ReportMetric(float64(ts)/float64(tn), "slog-journal/newstyle")
			b.ReportMetric(float64(tn)/float64(tf), "newstyle/floor")
			b.ReportMetric(float64(tn.Nanoseconds())/float64(n), "newstyle-ns/rec")
			b.ReportMetric(float64(ts.Nanoseconds())/float64(n), "slog-journal-ns/rec")
			b.ReportMetric(float64(tf.Nanoseconds())/float64(n), "floor-ns/rec")
		})
	}
}

// sizeOf logs one record, checks its datagram, and returns its size.
func sizeOf(b *testing.B, d *drain, log func(), allowed []string) uint64 {
	b.Helper()
	dg, err := d.sendOne(func() error { log(); return nil })
	if err != nil {
		b.Fatal(err)
	}
	if _, err := checkEntry(dg, allowed...); err != nil {
		b.Fatalf("the datagram sent is not the workload: %v", err)
	}
	return uint64(len(dg))
}

// disabledCases are the rows of BenchmarkDisabledDebug.
var disabledCases = []struct {
	name   string
	logger func(testing.TB) *slog.Logger
	log    func(context.Context, *slog.Logger, *slogValues)
}{
	{"newstyle", func(tb testing.TB) *slog.Logger { return newstyleLogger(tb, nil) }, newstyleDebugArgs},
	{"newstyle-LogAttrs", func(tb testing.TB) *slog.Logger { return newstyleLogger(tb, nil) }, newstyleDebugAttrs},
	{"newstyle-NewLogger", rootLogger, newstyleDebugArgs},
	{"slog-journal", newSlogJournal, slogJournalDebugArgs},
	{"slog-journal-LogAttrs", newSlogJournal, slogJournalDebugAttrs},
	// The floor: a handler that is never enabled and does nothing else.
	// What remains is slog's own cost, and the call site's.
	{"discard", discardLogger, newstyleDebugArgs},
	{"discard-LogAttrs", discardLogger, newstyleDebugAttrs},
}

func discardLogger(testing.TB) *slog.Logger { return slog.New(slog.DiscardHandler) }

// BenchmarkDisabledDebug logs the workload at Debug on loggers at their
// default level (Info): what a disabled record costs. Nothing may reach
// the drain.
func BenchmarkDisabledDebug(b *testing.B) {
	d := needDrain(b)
	for _, c := range disabledCases {
		b.Run(c.name, func(b *testing.B) {
			logger := c.logger(b)
			ctx := context.Background()
			if logger.Enabled(ctx, slog.LevelDebug) {
				b.Fatal("the logger is enabled at Debug")
			}
			v := newSlogValues()
			before := d.counts()
			for b.Loop() {
				c.log(ctx, logger, v)
			}
			if after := d.counts(); after.datagrams != before.datagrams {
				b.Fatalf("%d datagrams sent for disabled records", after.datagrams-before.datagrams)
			}
		})
	}
}

// TestEachHandlerSendsTheWorkload sends one record through each row of
// BenchmarkHandler and checks the datagram, as each benchmark run does.
func TestEachHandlerSendsTheWorkload(t *testing.T) {
	d := needDrain(t)
	for _, c := range handlerCases {
		t.Run(c.name, func(t *testing.T) {
			logger := c.logger(t)
			v := newSlogValues()
			sendOne(t, d, func() error { c.log(context.Background(), logger, v); return nil }, c.allowed...)
		})
	}
}

// TestHandlerAllocations checks newstyle's targets: no allocation for a
// record of five attributes logged with LogAttrs, nor for a disabled one.
// Logged with key-value pairs, a disabled record allocates what
// slog.DiscardHandler's does and no more: the call site boxes each string
// value it passes as an `any` (4 here), whatever the handler.
func TestHandlerAllocations(t *testing.T) {
	needDrain(t)
	ctx := context.Background()
	v := newSlogValues()
	allocs := func(l *slog.Logger, log func(context.Context, *slog.Logger, *slogValues)) float64 {
		return testing.AllocsPerRun(1000, func() { log(ctx, l, v) })
	}
	for _, c := range []struct {
		name   string
		logger *slog.Logger
		log    func(context.Context, *slog.Logger, *slogValues)
	}{
		{"newstyle-LogAttrs", newstyleLogger(t, nil), newstyleAttrs},
		{"newstyle-AddSource", newstyleLogger(t, &journal.HandlerOptions{HandlerOptions: slogopts.HandlerOptions{AddSource: true}}), newstyleAttrs},
		{"newstyle-NewLogger", rootLogger(t), newstyleAttrs},
		{"disabled newstyle-LogAttrs", newstyleLogger(t, nil), newstyleDebugAttrs},
		{"disabled newstyle-NewLogger LogAttrs", rootLogger(t), newstyleDebugAttrs},
	} {
		if n := allocs(c.logger, c.log); n != 0 {
			t.Errorf("%s: %v allocations per record, want 0", c.name, n)
		}
	}
	floor := allocs(discardLogger(t), newstyleDebugArgs)
	t.Logf("a disabled Debug with key-value pairs allocates %v times on slog.DiscardHandler", floor)
	for name, l := range map[string]*slog.Logger{"newstyle": newstyleLogger(t, nil), "newstyle-NewLogger": rootLogger(t)} {
		if n := allocs(l, newstyleDebugArgs); n != floor {
			t.Errorf("disabled %s with key-value pairs: %v allocations, want %v as with slog.DiscardHandler", name, n, floor)
		}
	}
}
