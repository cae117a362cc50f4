package slogcore

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// stackTracer is newstyle.stackTracer, which users meet and which this
// package cannot import: an error that carries the stack trace of where it
// was made. The handlers look for it along an error's chain (Unwrap()
// error and Unwrap() []error) and send what Stack returns as the traceback
// field.
type stackTracer interface {
	Stack() []byte
}

// maxDepth bounds a captured stack; deeper frames are rarely worth their
// cost, and a runaway recursion must not make an entry of megabytes.
const maxDepth = 64

// callers returns the program counters of the calling goroutine's stack,
// skip frames above the caller of callers left out (0 starts at the caller
// of callers).
func callers(skip int) []uintptr {
	pcs := make([]uintptr, maxDepth)
	return pcs[:runtime.Callers(skip+2, pcs)]
}

// AppendStack appends the frames of pcs, one function a line followed by
// its file and line on a tab-indented line, as Go prints a goroutine's
// stack:
//
//	main.handler(...)
//		/src/app/main.go:42
func AppendStack(dst []byte, pcs []uintptr) []byte {
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if f.Function != "" || f.File != "" {
			dst = append(dst, f.Function...)
			dst = append(dst, "(...)\n\t"...)
			dst = append(dst, f.File...)
			dst = append(dst, ':')
			dst = strconv.AppendInt(dst, int64(f.Line), 10)
			dst = append(dst, '\n')
		}
		if !more {
			return dst
		}
	}
}

// WithStack returns err annotated with the stack of WithStack's caller,
// skip frames further up left out. An err that already carries a stack is
// returned as it is: the stack closest to the error's origin tells most.
// A nil err stays nil.
func WithStack(err error, skip int) error {
	if err == nil || findStack(err) != nil {
		return err
	}
	return &stackError{err: err, pcs: callers(skip + 1)}
}

// WithTrace returns err annotated with trace, a stack trace already
// formatted (runtime/debug.Stack's, say, for a recovered panic).
func WithTrace(err error, trace []byte) error {
	if err == nil {
		return nil
	}
	return &traceError{err: err, trace: trace}
}

type stackError struct {
	err   error
	pcs   []uintptr
	once  sync.Once
	stack []byte // formatted on first use: most errors are never logged
}

func (e *stackError) Error() string { return e.err.Error() }
func (e *stackError) Unwrap() error { return e.err }

func (e *stackError) Stack() []byte {
	e.once.Do(func() { e.stack = AppendStack(nil, e.pcs) })
	return e.stack
}

type traceError struct {
	err   error
	trace []byte
}

func (e *traceError) Error() string { return e.err.Error() }
func (e *traceError) Unwrap() error { return e.err }
func (e *traceError) Stack() []byte { return e.trace }

// findStack returns the stack of the first error along err's chain that
// carries one, or nil. It walks the chain as errors.As does, without
// reflection.
func findStack(err error) stackTracer {
	for depth := 0; err != nil && depth < 100; depth++ {
		if st, ok := err.(stackTracer); ok {
			return st
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if st := findStack(e); st != nil {
					return st
				}
			}
			return nil
		default:
			return nil
		}
	}
	return nil
}

// AbnormalStack returns the stack of a goroutine that panics, or ends in
// runtime.Goexit, formatted by AppendStack, from the frame that panicked
// (or called Goexit) down, and whether it panics. It must be called by a
// deferred function: the goroutine's stack is still the panic's (or
// Goexit's) then, under the deferred call's own frames and
// runtime.gopanic (runtime.Goexit), which are cut off, as are the
// runtime's frames that raised a run-time panic (a nil map, a nil
// pointer, an index) for the function that caused it. Go's own crash
// output leaves out the same.
func AbnormalStack() (trace []byte, panicking bool) {
	pcs := callers(0)
	for i, pc := range pcs {
		funcs := frameFuncs(pc)
		panicking = slices.Contains(funcs, "runtime.gopanic")
		if !panicking && !slices.Contains(funcs, "runtime.Goexit") {
			continue
		}
		rest := pcs[i+1:]
		for len(rest) > 1 && inRuntime(rest[0]) {
			rest = rest[1:]
		}
		return AppendStack(nil, rest), panicking
	}
	// Cannot happen in a deferred call of a panic or Goexit; should a
	// runtime change that, the deferred call's frames beat an empty trace.
	return AppendStack(nil, pcs), false
}

// frameFuncs returns the functions at pc, the innermost first: more than
// one where calls were inlined.
func frameFuncs(pc uintptr) []string {
	frames := runtime.CallersFrames([]uintptr{pc})
	var names []string
	for {
		f, more := frames.Next()
		names = append(names, f.Function)
		if !more {
			return names
		}
	}
}

// inRuntime reports whether pc is the runtime's own code, and no
// program's code that had the runtime's inlined into it.
func inRuntime(pc uintptr) bool {
	for _, name := range frameFuncs(pc) {
		if !strings.HasPrefix(name, "runtime.") && !strings.HasPrefix(name, "internal/runtime/") {
			return false
		}
	}
	return true
}
