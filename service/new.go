package service

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"
)

// New returns a Service that is not running, for tests of code that takes
// a *Service (and for tools that share such code with a daemon): its
// Logger is made from opts.Log as Run makes it (DEBUG_INVOCATION
// included, but not set as slog's default), Level is its LevelVar,
// Ready, Status and ExtendTimeout notify as under Run (nothing, without
// NOTIFY_SOCKET), Listener listens on its fallback address (or takes
// sockets systemd passed), and OnStop records hooks that Shutdown runs.
// It catches no signal, feeds no watchdog, serves no LogControl1 and
// captures no crash. ExitOnPanic and the HTTP wrappers behave as under
// Run: a crash exits the process.
func New(opts *Options) *Service {
	var o Options
	if opts != nil {
		o = *opts
	}
	svc, _ := newService(o)
	return svc
}

// Shutdown runs the OnStop hooks of a Service made by New, at once, as
// Run runs them at a stop, and waits for them until ctx ends or
// ShutdownTimeout passes; the hooks' context ends then too. It returns an
// error when a hook failed (the failure is logged) or had not finished
// (matching ctx's error, or context.DeadlineExceeded for
// ShutdownTimeout). The hooks run once: a later or concurrent call waits
// for that run (until its own ctx ends) and returns its outcome.
func (s *Service) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.shutdownDone = make(chan struct{})
		deadline := time.Now().Add(s.opts.ShutdownTimeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		go func() {
			defer close(s.shutdownDone)
			switch s.runStopHooks(ctx, deadline) {
			case ExitOK:
			case ExitDeadline:
				s.shutdownErr = fmt.Errorf("service: shutdown: stop hooks still running: %w", cmp.Or(ctx.Err(), context.DeadlineExceeded))
			default:
				s.shutdownErr = errors.New("service: shutdown: a stop hook failed (logged)")
			}
		}()
	})
	select {
	case <-s.shutdownDone:
		return s.shutdownErr
	case <-ctx.Done():
		return fmt.Errorf("service: shutdown: %w", ctx.Err())
	}
}
