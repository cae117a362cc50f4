package stdoutfallback

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/slogopts"
)

// benchAttrs are five simple attributes, one of them a string that needs
// quotes.
var benchAttrs = []slog.Attr{
	slog.String("request_id", "7f3c9a2e-5b1d-4c8e-9f0a-1b2c3d4e5f60"),
	slog.Int("status", 502),
	slog.Bool("retried", true),
	slog.Duration("took", 1234*time.Millisecond),
	slog.String("backend", "api-2 (eu-west)"),
}

// bytesStackError returns its stack without a conversion, so that the
// counts are the handler's.
type bytesStackError []byte

func (e bytesStackError) Error() string { return "failed" }
func (e bytesStackError) Stack() []byte { return e }

var errWithStack error = bytesStackError(testStack)

var errEscaped = errors.New("connection reset\nby peer")

const benchMessage = "upstream request failed after 3 retries: connection reset by peer"

// benchRecord is a record as a logger call makes it, with its time and
// program counter.
func benchRecord() slog.Record {
	var pcs [1]uintptr
	runtime.Callers(1, pcs[:])
	r := slog.NewRecord(time.Now(), slog.LevelError, benchMessage, pcs[0])
	r.AddAttrs(benchAttrs...)
	return r
}

func TestHandleAllocations(t *testing.T) {
	if testutil.RaceEnabled {
		testutil.CannotRun(t, "allocation counts are not meaningful under -race; make test runs this test without it")
	}
	ctx := context.Background()
	// Not AddSource: slogcore's source lookup allocates runtime.Frames.
	base := NewHandler(io.Discard, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{TimeField: "time"}})
	derived := base.WithAttrs([]slog.Attr{slog.String("service", "shop")}).WithGroup("req")
	r := benchRecord()
	// Values that need quotes and escapes, formatted in place.
	escaped := slog.NewRecord(time.Now(), slog.LevelInfo, "a\nb\x00 <3>\u2028", 0)
	escaped.AddAttrs(
		slog.Any("bytes", []byte("x y\n\xff")),
		slog.Any("err", errEscaped),
		slog.String("s", "\"quoted\"\t\u00a0"),
		slog.Float64("f", 0.25),
		slog.Any("trace", errWithStack),
	)
	traced := NewHandler(io.Discard, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{ContextAttrs: testutil.TraceAttrs}})
	tctx := testutil.WithTrace(ctx, &testutil.Trace{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7"})
	tests := []struct {
		name string
		f    func()
	}{
		{"Handle", func() {
			if err := base.Handle(ctx, r); err != nil {
				t.Fatal(err)
			}
		}},
		{"Handle derived", func() {
			if err := derived.Handle(ctx, r); err != nil {
				t.Fatal(err)
			}
		}},
		{"Handle with escapes and a traceback", func() {
			if err := base.Handle(ctx, escaped); err != nil {
				t.Fatal(err)
			}
		}},
		{"LogAttrs", func() {
			slog.New(base).LogAttrs(ctx, slog.LevelWarn, benchMessage, benchAttrs...)
		}},
		{"Enabled on a disabled level", func() {
			if base.Enabled(ctx, slog.LevelDebug) {
				t.Fatal("debug enabled")
			}
		}},
		{"Debug dropped", func() {
			slog.New(base).LogAttrs(ctx, slog.LevelDebug, benchMessage, benchAttrs...)
		}},
		{"ContextAttrs", func() {
			if err := traced.Handle(tctx, r); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if allocs := testing.AllocsPerRun(200, tt.f); allocs != 0 {
				t.Errorf("%.1f allocations per call, want 0", allocs)
			}
		})
	}
}

// BenchmarkHandle writes a record of five attributes to io.Discard; the
// slog.TextHandler case is the standard library's for comparison.
func BenchmarkHandle(b *testing.B) {
	ctx := context.Background()
	r := benchRecord()
	for _, bc := range []struct {
		name string
		h    slog.Handler
	}{
		{"stdoutfallback", NewHandler(io.Discard, nil)},
		{"stdoutfallback+time+source", NewHandler(io.Discard, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{TimeField: "time", AddSource: true}})},
		{"slog.TextHandler", slog.NewTextHandler(io.Discard, nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.h.Handle(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLogAttrs is the whole path from a logger call.
func BenchmarkLogAttrs(b *testing.B) {
	ctx := context.Background()
	logger := slog.New(NewHandler(io.Discard, nil))
	b.ReportAllocs()
	for b.Loop() {
		logger.LogAttrs(ctx, slog.LevelError, benchMessage, benchAttrs...)
	}
}
