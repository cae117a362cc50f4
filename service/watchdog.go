package service

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// startWatchdog feeds systemd's watchdog at half its interval while the
// Health check passes, and returns a function that stops it.
func (s *Service) startWatchdog(ctx context.Context) func() {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		s.logger.Warn("service: watchdog settings unreadable; not feeding it", "err", err)
		return func() {}
	}
	if interval <= 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer s.ExitOnPanic()
		s.watchdog(ctx, interval/2)
	}()
	return func() { cancel(); <-done }
}

// watchdogRound, set by tests, is called after each round of the
// watchdog with whether it was fed: the tests count rounds instead of
// guessing how many fit in a sleep. Atomic, since a failed test may leave
// a Run behind that still reads it.
var watchdogRound atomic.Pointer[func(fed bool)]

func (s *Service) watchdog(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	healthy := true
	// overdue is the result of a check that did not answer in time and
	// has not returned yet. Starting another beside it would pile up a
	// goroutine a tick behind a check that ignores its context.
	var overdue <-chan error
	for {
		var err error
		if overdue != nil {
			select {
			case <-overdue: // too late to count; the slot is free again
				overdue = nil
			default:
				err = errHealthOverdue
			}
		}
		if overdue == nil {
			overdue, err = s.check(ctx, every)
		}
		if ctx.Err() != nil {
			return // shutting down: not a failed check
		}
		fed := err == nil
		if !fed {
			if healthy {
				// Once per change, not per tick: systemd acts on it.
				s.logger.Error("service: health check failed; not feeding the watchdog", "err", err)
			}
			healthy = false
		} else {
			if !healthy {
				s.logger.Info("service: health check passes again")
			}
			healthy = true
			s.notifyf("WATCHDOG=1")
		}
		if report := watchdogRound.Load(); report != nil {
			(*report)(fed)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// check runs the Health check with a deadline of one ping interval: a
// check that has not answered by then has failed, and the watchdog goes
// hungry. Such a check is returned as overdue: its result is still to
// come.
func (s *Service) check(ctx context.Context, within time.Duration) (overdue <-chan error, err error) {
	if s.opts.Health == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	result := make(chan error, 1) // the check must never block on sending it
	go func() {
		defer s.ExitOnPanic()
		result <- s.opts.Health(ctx)
	}()
	select {
	case err := <-result:
		return nil, err
	case <-ctx.Done():
		return result, errHealthTimeout
	}
}

var (
	errHealthTimeout = errors.New("health check did not answer within half the watchdog interval")
	errHealthOverdue = errors.New("the last health check has not returned yet")
)
