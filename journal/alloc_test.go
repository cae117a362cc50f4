//go:build linux

package journal

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/slogopts"
)

// sink binds a datagram socket and reads it in a goroutine that allocates
// nothing, so that AllocsPerRun, which counts every goroutine's
// allocations, sees only the sender's. (journaltest.Server parses, and
// allocates.)
func sink(tb testing.TB) string {
	path := filepath.Join(tb.TempDir(), "sink")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		tb.Fatal(err)
	}
	// A blocked read of an unconnected datagram socket wakes for neither
	// shutdown nor close: a receive timeout lets the reader see stop.
	tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		tb.Fatal(err)
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1<<20)
		for !stop.Load() {
			unix.Read(fd, buf)
		}
	}()
	tb.Cleanup(func() {
		stop.Store(true)
		<-done
		unix.Close(fd)
	})
	return path
}

// benchFields is the workload of the benchmarks in bench/: five fields, one
// a five-line trace.
var benchFields = []Field{
	StringField("REQUEST_ID", "7f3c9a2e-5b1d-4c8e-9f0a-1b2c3d4e5f60"),
	StringField("USER_ID", "42"),
	StringField("HTTP_STATUS", "502"),
	StringField("DURATION_MS", "1234"),
	StringField("TRACEBACK", strings.Repeat("github.com/example/app/handler.(*Server).ServeHTTP(...)\n\t/src/app/handler/server.go:123 +0x1a4\n", 5)[:400]),
}

const benchMessage = "upstream request failed after 3 retries: connection reset by peer (backend=api-2)"

func TestSendAllocations(t *testing.T) {
	if testutil.RaceEnabled {
		testutil.CannotRun(t, "allocation counts are not meaningful under -race; make test runs this test without it")
	}
	w := newTestWriter(t, sink(t), WriterOptions{})
	allocs := testing.AllocsPerRun(200, func() {
		if err := w.Send(benchMessage, PriErr, benchFields...); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Send allocates %.1f times per entry, want 0", allocs)
	}
}

func BenchmarkSend(b *testing.B) {
	w, err := NewWriter(&WriterOptions{SocketPath: sink(b), SyslogIdentifier: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Send(benchMessage, PriErr, benchFields...); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendEntry(b *testing.B) {
	ident := appendStringField(nil, "SYSLOG_IDENTIFIER", "bench")
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendEntry(buf[:0], benchMessage, PriErr, ident, benchFields)
	}
}

var benchTrace = string(benchFields[4].Value)

// The benchmark workload through slog: five attributes, one a trace.
func logBench(ctx context.Context, l *slog.Logger) {
	l.LogAttrs(ctx, slog.LevelError, benchMessage,
		slog.String("request_id", "7f3c9a2e-5b1d-4c8e-9f0a-1b2c3d4e5f60"),
		slog.Int("user_id", 42),
		slog.Int("http_status", 502),
		slog.Duration("duration", 1234*time.Millisecond),
		slog.String("trace", benchTrace),
	)
}

func TestHandlerAllocations(t *testing.T) {
	if testutil.RaceEnabled {
		testutil.CannotRun(t, "allocation counts are not meaningful under -race; make test runs this test without it")
	}
	w := newTestWriter(t, sink(t), WriterOptions{})
	l := slog.New(NewHandler(w, nil))
	ls := slog.New(NewHandler(w, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{AddSource: true}}))
	lt := slog.New(NewHandler(w, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{ContextAttrs: testutil.TraceAttrs}}))
	ctx := context.Background()
	tctx := testutil.WithTrace(ctx, &testutil.Trace{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7"})
	tests := []struct {
		name   string
		log    func()
		allocs float64
	}{
		{"LogAttrs with 5 attributes", func() { logBench(ctx, l) }, 0},
		{"Info with 5 key-value pairs", func() {
			l.Info(benchMessage, "request_id", "7f3c9a2e", "user_id", 42, "ok", true, "http_status", 502, "duration", time.Second)
		}, 0},
		{"WithAttrs logger", func() { l.With("app", "shop").Info("m") }, 0},
		{"disabled Debug", func() { l.Debug(benchMessage, "user_id", 42, "request_id", "x") }, 0},
		{"AddSource", func() { ls.Info(benchMessage, "user_id", 42) }, 0},
		{"AddSource, LogAttrs", func() { ls.LogAttrs(ctx, slog.LevelInfo, benchMessage, slog.Int("user_id", 42)) }, 0},
		{"ContextAttrs", func() { lt.LogAttrs(tctx, slog.LevelInfo, benchMessage, slog.Int("user_id", 42)) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "WithAttrs logger" {
				// With formats its attributes once, and that allocates;
				// what must not allocate is each record after it.
				l2 := l.With("app", "shop")
				tt.log = func() { l2.Info("m", "user_id", 42) }
			}
			if allocs := testing.AllocsPerRun(200, tt.log); allocs != tt.allocs {
				t.Errorf("%.1f allocations per record, want %.0f", allocs, tt.allocs)
			}
		})
	}
	if st := w.Stats(); st.Errors.Total() != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

func BenchmarkHandler(b *testing.B) {
	w, err := NewWriter(&WriterOptions{SocketPath: sink(b), SyslogIdentifier: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	l := slog.New(NewHandler(w, nil))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		logBench(ctx, l)
	}
}
