package testutil

import (
	"context"
	"log/slog"
)

type traceKey struct{}

// Trace is a stand-in for a trace's ids in a context, for the tests of
// the handlers' ContextAttrs hook (the otel module gives the real one).
type Trace struct{ TraceID, SpanID string }

// WithTrace returns ctx carrying tr.
func WithTrace(ctx context.Context, tr *Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, tr)
}

// TraceAttrs is a ContextAttrs hook: trace_id and span_id from a context
// made by WithTrace, nothing from any other. It allocates nothing.
func TraceAttrs(ctx context.Context, dst []slog.Attr) []slog.Attr {
	tr, ok := ctx.Value(traceKey{}).(*Trace)
	if !ok {
		return dst
	}
	return append(dst, slog.String("trace_id", tr.TraceID), slog.String("span_id", tr.SpanID))
}
