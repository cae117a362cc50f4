// Package otel gives newstyle's slog handlers the ids of the OpenTelemetry
// span a record is logged in.
//
// ContextAttrs plugs into the ContextAttrs hook of newstyle.Options,
// journal.HandlerOptions and stdoutfallback.HandlerOptions:
//
//	logger := newstyle.NewLogger(&newstyle.Options{
//		HandlerOptions: slogopts.HandlerOptions{ContextAttrs: otel.ContextAttrs},
//	})
//	logger.InfoContext(ctx, "order placed") // ctx holds a span
//
// A record logged with a context that holds a valid span context
// (trace.SpanContextFromContext) gets three attributes, outside any
// group, in W3C Trace Context's lower-case hex:
//
//	trace_id     32 hex digits   journal field TRACE_ID     stdout trace_id=
//	span_id      16 hex digits   journal field SPAN_ID      stdout span_id=
//	trace_flags   2 hex digits   journal field TRACE_FLAGS  stdout trace_flags=
//
// A record whose context holds no span, or an invalid one, gets none.
// The OpenTelemetry Collector's journald receiver and transform processor
// turn TRACE_ID and SPAN_ID back into the log record's trace and span ids:
// see integration/otelcol/newstyle.yaml in newstyle's repository.
//
// The hook allocates nothing for a record without a span, nor for a
// record of a span whose text it made before: the hex text of recent spans
// is kept in a table of 256 (a span's slot is chosen by its span id). The
// first record of a span costs one allocation (80 bytes), and so does a
// record whose span's slot another span took since. With it, newstyle's
// handlers log a span's records without allocating.
package otel

import (
	"context"
	"log/slog"
	"sync/atomic"
	"unsafe"

	"go.opentelemetry.io/otel/trace"
)

// The attribute keys ContextAttrs uses.
const (
	TraceIDKey    = "trace_id"
	SpanIDKey     = "span_id"
	TraceFlagsKey = "trace_flags"
)

// ContextAttrs appends to dst the trace_id, span_id and trace_flags of
// the span context in ctx, and returns dst as it is when ctx holds no
// valid span context. Its signature is that of newstyle.Options'
// ContextAttrs hook.
func ContextAttrs(ctx context.Context, dst []slog.Attr) []slog.Attr {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return dst
	}
	tid, sid := sc.TraceID(), sc.SpanID()
	ids := idsText(tid, sid)
	f := byte(sc.TraceFlags())
	return append(dst,
		slog.String(TraceIDKey, ids[:32]),
		slog.String(SpanIDKey, ids[32:]),
		slog.String(TraceFlagsKey, flagsHex[2*int(f):2*int(f)+2]),
	)
}

// hexDigits are the lower-case hex digits.
const hexDigits = "0123456789abcdef"

// flagsHex is the two hex digits of every byte, "000102…ff": the text of a
// TraceFlags b is flagsHex[2b:2b+2], a string that allocates nothing.
var flagsHex = func() string {
	var b [512]byte
	for i := range 256 {
		b[2*i], b[2*i+1] = hexDigits[i>>4], hexDigits[i&15]
	}
	return string(b[:])
}()

// idsEntry holds the hex text of one span's trace and span ids. It is
// never written once published in idsCache: its text is a string's bytes.
type idsEntry struct {
	tid trace.TraceID
	sid trace.SpanID
	hex [48]byte // the trace id's 32 digits, then the span id's 16
}

// idsCache holds the text of recent spans, indexed by the low bits of the
// span id (random, by the W3C specification and OpenTelemetry's SDK). Two
// spans that share a slot take turns in it; a lookup compares both ids in
// full, so a slot taken over by another span only costs an allocation.
var idsCache [idsCacheSize]atomic.Pointer[idsEntry]

const idsCacheSize = 256 // a power of two

// idsText returns the 48 hex digits of tid and sid, from idsCache or
// made and kept there.
func idsText(tid trace.TraceID, sid trace.SpanID) string {
	slot := &idsCache[sid[7]&(idsCacheSize-1)]
	e := slot.Load()
	if e == nil || e.sid != sid || e.tid != tid {
		e = &idsEntry{tid: tid, sid: sid}
		for i, b := range tid {
			e.hex[2*i], e.hex[2*i+1] = hexDigits[b>>4], hexDigits[b&15]
		}
		for i, b := range sid {
			e.hex[32+2*i], e.hex[32+2*i+1] = hexDigits[b>>4], hexDigits[b&15]
		}
		slot.Store(e)
	}
	// e.hex is never written again (see idsEntry), as a string's bytes
	// must not be; the string keeps e alive.
	return unsafe.String(&e.hex[0], len(e.hex))
}
