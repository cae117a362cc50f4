package service

import (
	"context"
	"fmt"
	"time"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/journal"
)

// New returns a Service that is not running, for tests of code that takes
// a *Service (and for tools that share such code with a daemon): its
// Logger is made from opts.Log as Run makes it (but not set as slog's
// default), Level is its LevelVar, Ready, Status and ExtendTimeout notify
// as under Run (nothing, without NOTIFY_SOCKET), Listener listens on its
// fallback address (or takes sockets systemd passed), and OnStop records
// hooks that Shutdown runs. It catches no signal, feeds no watchdog,
// serves no LogControl1 and captures no crash. ExitOnPanic and the HTTP
// wrappers behave as under Run: a crash exits the process.
func New(opts *Options) *Service {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	logOpts, level := logOptions(o.Log)
	logger := newstyle.NewLogger(logOpts)
	ident := logOpts.SyslogIdentifier
	if ident == "" {
		ident = journal.ProgramName()
	}
	flush := flusher(logger)
	return &Service{opts: o, logger: logger, exit: func(code int) {
		flush()
		osExit(code)
	}, level: level, ident: ident, stopped: make(chan struct{})}
}

// Shutdown runs the OnStop hooks of a Service made by New, as Run runs
// them at a stop, until ctx ends (or ShutdownTimeout passes). It returns
// an error when a hook failed or did not finish in time.
func (s *Service) Shutdown(ctx context.Context) error {
	deadline := time.Now().Add(s.opts.ShutdownTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	switch s.runStopHooks(deadline) {
	case ExitOK:
		return nil
	case ExitDeadline:
		return fmt.Errorf("service: shutdown: stop hooks still running at the deadline: %w", context.DeadlineExceeded)
	}
	return fmt.Errorf("service: shutdown: a stop hook failed (logged)")
}
