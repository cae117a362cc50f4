package service

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// startWatchdog feeds systemd's watchdog at half its interval while the
// Health check passes, and returns a function that stops it.
func (s *Service) startWatchdog(ctx context.Context) func() {
	interval, err := watchdogInterval()
	if err != nil {
		// Once: it is read once.
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
		s.guard("the watchdog", func() { s.watchdog(ctx, interval/2) })
	}()
	return func() { cancel(); <-done }
}

// maxWatchdogUsec is the longest interval a time.Duration holds, in
// microseconds: about 292 years.
const maxWatchdogUsec = math.MaxInt64 / uint64(time.Microsecond)

// watchdogInterval reads systemd's watchdog settings as
// sd_watchdog_enabled(3) reads them: WATCHDOG_USEC, the interval in
// microseconds, for the process WATCHDOG_PID when that is set. It returns
// 0 when there is no watchdog for this process. An interval systemd does
// not set (not a number, 0, or UINT64_MAX, which is infinity) is an
// error, as for libsystemd, and so is one too long for a time.Duration
// (over 292 years), which would otherwise overflow into a watchdog that
// is never fed or one fed every few nanoseconds: no watchdog is fed then,
// and Run says so, once.
func watchdogInterval() (time.Duration, error) {
	usec, pid := os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID")
	if usec == "" {
		return 0, nil
	}
	u, err := strconv.ParseUint(usec, 10, 64)
	switch {
	case err != nil:
		return 0, fmt.Errorf("service: WATCHDOG_USEC=%q is not a number of microseconds", usec)
	case u == 0 || u == math.MaxUint64:
		return 0, fmt.Errorf("service: WATCHDOG_USEC=%s is no interval (0 is none, %d infinity)", usec, uint64(math.MaxUint64))
	case u > maxWatchdogUsec:
		return 0, fmt.Errorf("service: WATCHDOG_USEC=%s is longer than a Go program can wait (%d µs, 292 years)", usec, maxWatchdogUsec)
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("service: WATCHDOG_PID=%q is not a process ID", pid)
		}
		if p != os.Getpid() {
			return 0, nil // for another process, which this one was forked from
		}
	}
	return time.Duration(u) * time.Microsecond, nil
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
			s.notifyCtx(ctx, "WATCHDOG=1")
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
	go s.guard("the Health check", func() { result <- s.opts.Health(ctx) })
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
