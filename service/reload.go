package service

import (
	"context"
	"strings"

	"github.com/coreos/go-systemd/v22/daemon"
)

// reloader runs the reloads SIGHUP asks for, one at a time, beside the
// signal loop, so that a SIGTERM during a reload stops the program at
// once (the reload's context is cancelled); a SIGHUP during a reload asks
// for one more after it.
type reloader struct {
	requests chan struct{} // one waiting at most
	done     chan struct{} // closed when the reloads' goroutine has ended
}

// startReloads starts the goroutine of the reloads, which ends with ctx.
func (s *Service) startReloads(ctx context.Context) *reloader {
	r := &reloader{requests: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		s.guard("Reload", func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-r.requests:
					s.reload(ctx)
				}
			}
		})
	}()
	return r
}

// request asks for a reload, unless one is already waiting.
func (r *reloader) request() {
	select {
	case r.requests <- struct{}{}:
	default:
	}
}

// reload runs the Reload hook between RELOADING=1 and READY=1, unless the
// stop has begun: no reload starts then (select may well pick a SIGHUP
// that waits over the stop), and a reload the stop cut short says no
// READY=1.
func (s *Service) reload(ctx context.Context) {
	if !s.whileRunning(func() { s.notifyf(reloadingState(daemon.SdNotifyMonotonicUsec())) }) {
		return
	}
	s.logger.Info("service: reloading")
	var err error
	if s.opts.Reload != nil && !s.stopping.Load() {
		err = s.opts.Reload(ctx)
	}
	if !s.stopping.Load() && err != nil {
		s.logger.Error("service: reload failed", "err", err)
	}
	ready := s.whileRunning(func() {
		// The status now, not as it was before the reload: the program
		// may have set one meanwhile.
		status := s.getStatus()
		if err != nil {
			// The program runs on as before; the status says so.
			status = strings.TrimSpace(status + " (last reload failed: " + valueText(err) + ")")
		}
		if status == "" {
			status = "reloaded"
		}
		s.notifyf(withStatus("READY=1", status))
	})
	if !ready {
		// READY=1 now would contradict the STOPPING=1 already sent.
		s.logger.Info("service: reload cut short by the stop", "err", err)
	}
}

// reloadingState is the notification that starts a reload. MONOTONIC_USEC
// tells systemd 253+ (Type=notify-reload) which reload this is; older
// versions ignore it. go-systemd gives it with its own line end, or
// empty when the clock is unreadable: either way one line each, as an
// empty line is no assignment.
func reloadingState(monotonicUsec string) string {
	state := "RELOADING=1\n"
	if m := strings.TrimSuffix(monotonicUsec, "\n"); m != "" {
		state += m + "\n"
	}
	return state + "STATUS=reloading"
}
