package service

import (
	"context"
	"errors"
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

func (s *Service) watchdog(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	healthy := true
	for {
		if err := s.healthy(ctx, every); err != nil {
			if ctx.Err() != nil {
				return // shutting down: not a failed check
			}
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
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// healthy runs the Health check with a deadline of one ping interval: a
// check that hangs counts as failed, and the watchdog goes hungry.
func (s *Service) healthy(ctx context.Context, within time.Duration) error {
	if s.opts.Health == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	result := make(chan error, 1)
	go func() {
		defer s.ExitOnPanic()
		result <- s.opts.Health(ctx)
	}()
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		return errHealthTimeout
	}
}

var errHealthTimeout = errors.New("health check did not answer within half the watchdog interval")
