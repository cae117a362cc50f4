package otel_test

import (
	"context"
	"os"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/otel"
	"github.com/newstyle-go/newstyle/slogopts"
	"go.opentelemetry.io/otel/trace"
)

// A record logged with a context that holds a span carries its ids. Here
// the logger writes to stdout; in the journal they are the fields
// TRACE_ID, SPAN_ID and TRACE_FLAGS.
func Example() {
	logger := newstyle.NewLogger(&newstyle.Options{
		Target:         newstyle.TargetStdout,
		Stdout:         os.Stdout,
		HandlerOptions: slogopts.HandlerOptions{ContextAttrs: otel.ContextAttrs},
	})

	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)

	logger.InfoContext(ctx, "order placed", "order_id", "A-1042")
	logger.InfoContext(context.Background(), "no span here")
	// Output:
	// <6>order placed order_id=A-1042 trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7 trace_flags=01
	// <6>no span here
}
