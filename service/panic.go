package service

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/crash"
	"github.com/newstyle-go/newstyle/internal/slogcore"
)

// ExitOnPanic, deferred at the top of a goroutine, logs a panic in it at
// CRIT with the goroutine's stack in the traceback field, then exits the
// process with status 2. (A panic in another goroutine than Run's ends
// the process anyway, but Go then prints it to stderr, line by line.)
// The panic's value is written as the handlers write any value: a value
// whose Error or String method panics is written "<nil>" (a nil
// pointer) or "!PANIC: " and what it panicked with, and still makes one
// entry.
//
// http.ErrAbortHandler is not a crash but net/http's way to abort a
// response (httputil.ReverseProxy uses it when a client goes away): it is
// panicked again, for net/http to handle as it means to.
//
// A deferred call cannot tell a function that returned from one ended by
// runtime.Goexit, or by panic(nil) under GODEBUG=panicnil=1: both look
// like a return here. The goroutines Run starts itself (the program's
// function, Go's, the stop hooks, Reload, Health) tell them apart, and
// treat either as a crash.
func (s *Service) ExitOnPanic() {
	if v := recover(); v != nil {
		s.crashed(v)
	}
}

// guard runs fn as ExitOnPanic guards a goroutine, and also takes an end
// without a return (runtime.Goexit; panic(nil) under GODEBUG=panicnil=1)
// for a crash: what is the name it is logged under.
func (s *Service) guard(what string, fn func()) {
	returned := false
	defer func() {
		if v := recover(); v != nil || !returned {
			s.logAbnormalEnd(what, v)
			s.exit(ExitPanic)
		}
	}()
	fn()
	returned = true
}

// crashed logs the panic v and exits, as ExitOnPanic says.
func (s *Service) crashed(v any) {
	if v == http.ErrAbortHandler {
		panic(v)
	}
	s.logAbnormalEnd("", v)
	s.exit(ExitPanic)
}

// errGoexit stands for a runtime.Goexit in the log.
var errGoexit = errors.New("runtime.Goexit")

// panicNil is the text of panic(nil), as Go's own *runtime.PanicNilError
// gives it: panic(nil) logs the same whatever GODEBUG=panicnil says.
const panicNil = "panic called with nil argument"

// logAbnormalEnd logs at CRIT, in one entry with the stack in the
// traceback field, that what (a function's name for the log; empty in
// ExitOnPanic) panicked with v, or, v being nil, ended without returning.
// It must be called by the deferred function that recovered, on the
// goroutine's stack as the panic or Goexit left it.
func (s *Service) logAbnormalEnd(what string, v any, attrs ...any) {
	trace, panicking := slogcore.AbnormalStack()
	var msg string
	var err error
	switch {
	case v != nil:
		text := valueText(v)
		msg, err = "service: panic: "+text, errors.New(text)
	case panicking:
		msg, err = "service: panic: "+panicNil, errors.New(panicNil)
	default:
		msg, err = "service: "+what+" ended without returning: runtime.Goexit", errGoexit
	}
	s.logger.Log(context.Background(), newstyle.LevelCritical, msg, append([]any{"panic", newstyle.WithTrace(err, trace)}, attrs...)...)
}

// valueText formats v (a panic's value, a Reload error) as the handlers
// format any value (slogcore.AppendValue): an error's Error, a
// Stringer's String, and a method that panics as "<nil>" for a nil
// pointer, "!PANIC: …" otherwise. Go's own panic printing would panic
// again on those, and end the process without a word in the journal.
func valueText(v any) string {
	return string(slogcore.AppendValue(nil, slogcore.Resolve(slog.AnyValue(v))))
}

// logAbort logs every goroutine's stack, in one entry. systemd sends
// SIGABRT when the watchdog was not fed in time; Go's own answer would be
// the same dump on stderr, one journal entry per line.
func (s *Service) logAbort() {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	err := errors.New("SIGABRT (from systemd: the watchdog was not fed in time?)")
	s.logger.Log(context.Background(), newstyle.LevelCritical, "service: aborted; the stacks of all goroutines follow",
		"abort", newstyle.WithTrace(err, buf))
}

// startCrashCapture is crash.Capture; the tests replace it, since a
// watcher started from a test binary would outlive the test.
var startCrashCapture = crash.Capture

// captureCrashes starts capturing the crashes no recover sees (see
// Options.DisableCrashCapture), to the journal or stdout as the logger
// made by logOpts chose, under the logger's SYSLOG_IDENTIFIER. That the
// program captures them already (it called crash.Capture itself, with
// options of its own), or that the system does not support it, is no
// news; a watcher that did not start, or that ends early, is logged.
func (s *Service) captureCrashes(logOpts *newstyle.Options) {
	err := startCrashCapture(&crash.Options{
		SyslogIdentifier: s.ident,
		Target:           logOpts.Target,
		SocketPath:       logOpts.SocketPath,
		Namespace:        logOpts.Namespace,
		OnWatcherExit: func(err error) {
			s.logger.Warn("service: the crash watcher ended; crashes are no longer captured", "err", err)
		},
	})
	switch {
	case err == nil, errors.Is(err, crash.ErrCapturing), errors.Is(err, crash.ErrUnsupported):
	case errors.Is(err, crash.ErrDisabled):
		s.logger.Info("service: crash capture is off (" + crash.EnvCapture + ")")
	default:
		s.logger.Warn("service: crash capture is off: the crash watcher did not start", "err", err)
	}
}
