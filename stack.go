package newstyle

import "github.com/newstyle-go/newstyle/internal/slogcore"

// StackTracer is implemented by an error that carries a stack trace. The
// handlers look for it along an error attribute's chain (errors.Unwrap,
// errors.Join) and send the first one's Stack() in the traceback field of
// the record's entry, whole, never in MESSAGE:
//
//	slog.Error("payment failed", "err", newstyle.WithStack(err))
//
// Any error type with this method works; it need not come from this
// package.
type StackTracer interface {
	Stack() []byte
}

// WithStack returns err with the stack of WithStack's caller attached (as
// a StackTracer); err's message and chain are unchanged. An err that
// already carries a stack is returned as it is, since the stack nearest
// the error's origin tells most; nil stays nil.
func WithStack(err error) error { return slogcore.WithStack(err, 1) }

// WithTrace returns err with trace, an already formatted stack trace (as
// from runtime/debug.Stack in a recovered panic), attached.
func WithTrace(err error, trace []byte) error { return slogcore.WithTrace(err, trace) }
