package otel_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/journaltest"
	"github.com/newstyle-go/newstyle/otel"
	"github.com/newstyle-go/newstyle/slogopts"
	"github.com/newstyle-go/newstyle/stdoutfallback"
	"go.opentelemetry.io/otel/trace"
)

var (
	traceID = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID  = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
)

const (
	traceHex = "4bf92f3577b34da6a3ce929d0e0e4736"
	spanHex  = "00f067aa0ba902b7"
)

func spanCtx(tid trace.TraceID, sid trace.SpanID, flags trace.TraceFlags, remote bool) context.Context {
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, Remote: remote})
	if remote {
		return trace.ContextWithRemoteSpanContext(context.Background(), sc)
	}
	return trace.ContextWithSpanContext(context.Background(), sc)
}

func TestContextAttrs(t *testing.T) {
	type parent struct{}
	tests := []struct {
		name string
		ctx  context.Context
		want []string // key=value
	}{
		{"valid span", spanCtx(traceID, spanID, trace.FlagsSampled, false),
			[]string{"trace_id=" + traceHex, "span_id=" + spanHex, "trace_flags=01"}},
		{"remote span", spanCtx(traceID, spanID, trace.FlagsSampled, true),
			[]string{"trace_id=" + traceHex, "span_id=" + spanHex, "trace_flags=01"}},
		{"flags 00", spanCtx(traceID, spanID, 0, false),
			[]string{"trace_id=" + traceHex, "span_id=" + spanHex, "trace_flags=00"}},
		{"flags ff", spanCtx(traceID, spanID, 0xff, false),
			[]string{"trace_id=" + traceHex, "span_id=" + spanHex, "trace_flags=ff"}},
		{"all digits", spanCtx(
			trace.TraceID{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10},
			trace.SpanID{0xff, 0, 0, 0, 0, 0, 0, 0x01}, trace.FlagsSampled, false),
			[]string{"trace_id=0123456789abcdeffedcba9876543210", "span_id=ff00000000000001", "trace_flags=01"}},
		{"span in a derived context", context.WithValue(spanCtx(traceID, spanID, 1, false), parent{}, 1),
			[]string{"trace_id=" + traceHex, "span_id=" + spanHex, "trace_flags=01"}},
		{"empty context", context.Background(), nil},
		{"TODO context", context.TODO(), nil},
		{"invalid span context", trace.ContextWithSpanContext(context.Background(), trace.SpanContext{}), nil},
		{"trace id without span id", spanCtx(traceID, trace.SpanID{}, 1, false), nil},
		{"span id without trace id", spanCtx(trace.TraceID{}, spanID, 1, false), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []slog.Attr{slog.Int("kept", 1)}
			got := otel.ContextAttrs(tt.ctx, prefix)
			if len(got) == 0 || !got[0].Equal(prefix[0]) {
				t.Fatalf("dst's attributes not kept: %v", got)
			}
			var kv []string
			for _, a := range got[1:] {
				if a.Value.Kind() != slog.KindString {
					t.Errorf("%s is a %v, want a string", a.Key, a.Value.Kind())
				}
				kv = append(kv, a.Key+"="+a.Value.String())
			}
			if strings.Join(kv, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %q, want %q", kv, tt.want)
			}
		})
	}
}

// TestContextAttrsMatchesString checks the text against SpanContext's own
// String methods, for many ids, each looked up twice (made, then cached),
// with ids that share a cache slot in between.
func TestContextAttrsMatchesString(t *testing.T) {
	for i := range 2000 {
		var tid trace.TraceID
		var sid trace.SpanID
		for j := range tid {
			tid[j] = byte(i*31 + j*7)
		}
		for j := range sid {
			sid[j] = byte(i*17 + j*13 + 1)
		}
		sid[7] = byte(i % 3) // many spans in few slots
		sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(i)})
		ctx := trace.ContextWithSpanContext(context.Background(), sc)
		for range 2 {
			got := otel.ContextAttrs(ctx, nil)
			if len(got) != 3 ||
				got[0].Value.String() != sc.TraceID().String() ||
				got[1].Value.String() != sc.SpanID().String() ||
				got[2].Value.String() != sc.TraceFlags().String() {
				t.Fatalf("%v: got %v", sc, got)
			}
		}
	}
}

// TestContextAttrsConcurrent runs lookups of spans that share cache slots
// from several goroutines (go test -race checks the cache).
func TestContextAttrsConcurrent(t *testing.T) {
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 2000 {
				tid := traceID
				tid[0] = byte(g)
				sid := spanID
				sid[0], sid[7] = byte(i), byte(i%4)
				sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid})
				got := otel.ContextAttrs(trace.ContextWithSpanContext(context.Background(), sc), nil)
				if got[0].Value.String() != sc.TraceID().String() || got[1].Value.String() != sc.SpanID().String() {
					t.Errorf("%v: got %v", sc, got)
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}

func TestContextAttrsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing with -race")
	}
	dst := make([]slog.Attr, 0, 8)
	ctx := spanCtx(traceID, spanID, trace.FlagsSampled, false)
	otel.ContextAttrs(ctx, dst) // the span's first record
	if n := testing.AllocsPerRun(1000, func() { dst = otel.ContextAttrs(ctx, dst[:0]) }); n != 0 {
		t.Errorf("a span's later records: %v allocations, want 0", n)
	}
	empty := context.Background()
	if n := testing.AllocsPerRun(1000, func() { dst = otel.ContextAttrs(empty, dst[:0]) }); n != 0 {
		t.Errorf("no span: %v allocations, want 0", n)
	}
	// A new span each time: the first record of each.
	ctxs := make([]context.Context, 1001)
	for i := range ctxs {
		sid := spanID
		sid[0], sid[1] = byte(i), byte(i>>8)
		ctxs[i] = spanCtx(traceID, sid, 1, false)
	}
	i := 0
	n := testing.AllocsPerRun(1000, func() { dst = otel.ContextAttrs(ctxs[i], dst[:0]); i++ })
	if n > 1 {
		t.Errorf("a span's first record: %v allocations, want at most 1", n)
	}
	t.Logf("allocations: a span's first record %v, its later records 0, no span 0", n)
}

// TestHandlers logs through both of newstyle's handlers with the hook.
func TestHandlers(t *testing.T) {
	ctx := spanCtx(traceID, spanID, trace.FlagsSampled, false)

	var out bytes.Buffer
	slog.New(stdoutfallback.NewHandler(&out, &stdoutfallback.HandlerOptions{HandlerOptions: slogopts.HandlerOptions{ContextAttrs: otel.ContextAttrs}})).
		WithGroup("req").InfoContext(ctx, "hello", "id", 7)
	want := "<6>hello req.id=7 trace_id=" + traceHex + " span_id=" + spanHex + " trace_flags=01\n"
	if out.String() != want {
		t.Errorf("stdout: got %q, want %q", out.String(), want)
	}

	srv := journaltest.NewServer(t)
	w, err := journal.NewWriter(&journal.WriterOptions{SocketPath: srv.Path(), SyslogIdentifier: "otel-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	logger := slog.New(journal.NewHandler(w, &journal.HandlerOptions{HandlerOptions: slogopts.HandlerOptions{ContextAttrs: otel.ContextAttrs}})).WithGroup("req")
	logger.InfoContext(ctx, "hello", "id", 7)
	e := srv.Wait(t, 1, 5*time.Second)[0].Entry
	for name, want := range map[string]string{"REQ_ID": "7", "TRACE_ID": traceHex, "SPAN_ID": spanHex, "TRACE_FLAGS": "01"} {
		if got, _ := e.Get(name); got != want {
			t.Errorf("journal field %s = %q, want %q", name, got, want)
		}
	}

	if err := srv.Err(); err != nil {
		t.Error(err)
	}

	// The whole of Handle, the hook included, allocates nothing for a
	// span's later records.
	if raceEnabled {
		return
	}
	if n := testing.AllocsPerRun(200, func() { logger.InfoContext(ctx, "hello", "id", 7) }); n != 0 {
		t.Errorf("journal.Handler with otel.ContextAttrs: %v allocations per record, want 0", n)
	}
}

func BenchmarkContextAttrs(b *testing.B) {
	dst := make([]slog.Attr, 0, 8)
	b.Run("span", func(b *testing.B) {
		ctx := spanCtx(traceID, spanID, trace.FlagsSampled, false)
		b.ReportAllocs()
		for b.Loop() {
			dst = otel.ContextAttrs(ctx, dst[:0])
		}
	})
	b.Run("new-span", func(b *testing.B) {
		ctxs := make([]context.Context, 1024)
		for i := range ctxs {
			sid := spanID
			sid[0], sid[1], sid[7] = byte(i), byte(i>>8), byte(i)
			ctxs[i] = spanCtx(traceID, sid, 1, false)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			dst = otel.ContextAttrs(ctxs[i&1023], dst[:0])
			i += 257 // another slot's span each time
		}
	})
	b.Run("no-span", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			dst = otel.ContextAttrs(context.Background(), dst[:0])
		}
	})
}
