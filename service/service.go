// Package service runs a Go program as a new-style daemon: in the
// foreground, supervised by systemd.
//
//	func main() {
//		service.Main(service.Options{}, func(ctx context.Context, svc *service.Service) error {
//			ln, err := svc.Listener("http", ":8080") // socket-activated, or its own
//			if err != nil {
//				return err
//			}
//			srv := &http.Server{Handler: mux}
//			svc.OnStop("http server", srv.Shutdown)
//			svc.Ready("serving on " + ln.Addr().String())
//			if err := srv.Serve(ln); err != http.ErrServerClosed {
//				return err
//			}
//			return nil
//		})
//	}
//
// Main sets slog's default logger (newstyle.NewLogger: the journal or
// stdout, by itself), gives the program a context that is cancelled on
// SIGTERM or SIGINT, calls Options.Reload on SIGHUP, keeps systemd's
// watchdog fed while Options.Health says the program is healthy, and
// tells systemd through sd_notify what it is doing: READY=1 and STATUS=
// when the program says so, RELOADING=1 with MONOTONIC_USEC= and READY=1
// around a reload, STOPPING=1 at shutdown. Outside systemd (no
// NOTIFY_SOCKET, no WATCHDOG_USEC, no LISTEN_FDS) each of these is simply
// not done: that is not an error.
//
// A panic in the program's function, or in a goroutine started with
// Service.Go or guarded by Service.ExitOnPanic, is logged at CRIT with the
// goroutine's stack in the traceback field — one journal entry — and the
// process exits with status 2, so that Restart=on-failure brings it back.
//
// The exit status says how the program ended:
//
//	0  the function returned nil, and shutdown finished in time
//	1  the function returned an error (it is logged)
//	2  a panic (it is logged with its stack), or SIGABRT, which systemd
//	   sends when the watchdog was not fed (logged with the stacks of all
//	   goroutines, one entry, to show where the program hung)
//	3  shutdown did not finish within Options.ShutdownTimeout (what did
//	   not finish is logged)
package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/newstyle-go/newstyle"
)

// Exit statuses of Run and Main.
const (
	ExitOK       = 0
	ExitError    = 1
	ExitPanic    = 2
	ExitDeadline = 3
)

// DefaultShutdownTimeout is how long shutdown may take by default: well
// within systemd's TimeoutStopSec (90 s by default), after which systemd
// kills the service.
const DefaultShutdownTimeout = 15 * time.Second

// Options configure Run. The zero value is ready to use.
type Options struct {
	// Log configures the logger Run makes and sets as slog's default; nil
	// means newstyle's defaults.
	Log *newstyle.Options

	// ShutdownTimeout bounds shutdown, counted from the stop signal: the
	// program's function returning and the OnStop hooks. Zero means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	// Reload, if set, is called on SIGHUP, between RELOADING=1 and
	// READY=1. Its error is logged; the program goes on.
	Reload func(ctx context.Context) error

	// Health, if set, is asked before each watchdog ping: the ping is sent
	// only when it returns nil within half the watchdog interval. A hung
	// or failing program is then restarted by systemd; a healthy one is
	// not. Without it, the watchdog is fed while the process runs.
	Health func(ctx context.Context) error
}

// Service is the running daemon, handed to the program's function.
type Service struct {
	opts   Options
	logger *slog.Logger
	notify func(state string) error

	listenOnce sync.Once
	listeners  map[string][]net.Listener
	listenErr  error

	mu     sync.Mutex
	stops  []stopHook
	status string // the program's last STATUS=, restored after a reload
	exit   func(code int)
}

type stopHook struct {
	name string
	fn   func(context.Context) error
}

// Main runs fn as the daemon and exits the process with Run's status.
func Main(opts Options, fn func(ctx context.Context, svc *Service) error) {
	os.Exit(Run(opts, fn))
}

// Run runs fn as the daemon and returns the exit status (see the package
// documentation). fn is given a context that is cancelled on SIGTERM or
// SIGINT, and should return soon after.
func Run(opts Options, fn func(ctx context.Context, svc *Service) error) int {
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	logger := newstyle.NewLogger(opts.Log)
	slog.SetDefault(logger)
	svc := &Service{opts: opts, logger: logger, notify: notify, exit: osExit}
	return svc.run(fn)
}

// osExit is replaced in tests, which must not end.
var osExit = os.Exit

// notify sends state to systemd. A program not started by systemd (no
// NOTIFY_SOCKET) is not an error.
func notify(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}

func (s *Service) run(fn func(ctx context.Context, svc *Service) error) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGABRT)
	defer signal.Stop(signals)

	stopWatchdog := s.startWatchdog(ctx)
	defer stopWatchdog()

	// Reloads run beside the signal loop, so that a SIGTERM during a
	// reload stops the program at once (the reload's context is
	// cancelled); a SIGHUP during a reload asks for one more after it.
	reloads := make(chan struct{}, 1)
	go func() {
		defer s.ExitOnPanic()
		for {
			select {
			case <-ctx.Done():
				return
			case <-reloads:
				s.reload(ctx)
			}
		}
	}()

	done := make(chan int, 1)
	go func() {
		code := ExitOK
		defer func() {
			if v := recover(); v != nil {
				s.logPanic(v, debug.Stack())
				code = ExitPanic
			}
			done <- code
		}()
		if err := fn(ctx, s); err != nil && !errors.Is(err, context.Canceled) {
			s.logger.Error("service: the program ended with an error", "err", err)
			code = ExitError
		}
	}()

	for {
		select {
		case code := <-done:
			// The program ended by itself: still stop cleanly.
			s.notifyf("STOPPING=1")
			cancel()
			if c := s.runStopHooks(time.Now().Add(s.opts.ShutdownTimeout)); c != ExitOK && code == ExitOK {
				code = c
			}
			return code
		case sig := <-signals:
			if sig == syscall.SIGABRT {
				s.logAbort()
				s.exit(ExitPanic)
				return ExitPanic
			}
			if sig == syscall.SIGHUP {
				select {
				case reloads <- struct{}{}:
				default: // one is already waiting
				}
				continue
			}
			return s.shutdown(sig, cancel, done)
		}
	}
}

// shutdown stops the program on sig: STOPPING=1, the context cancelled,
// the stop hooks run, all within ShutdownTimeout.
func (s *Service) shutdown(sig os.Signal, cancel context.CancelFunc, done <-chan int) int {
	deadline := time.Now().Add(s.opts.ShutdownTimeout)
	s.logger.Info("service: stopping", "signal", sig.String(), "timeout", s.opts.ShutdownTimeout)
	s.notifyf("STOPPING=1\nSTATUS=stopping")
	cancel()

	hooks := make(chan int, 1)
	go func() { hooks <- s.runStopHooks(deadline) }()

	code := ExitOK
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	var fnDone, hooksDone bool
	for !fnDone || !hooksDone {
		select {
		case c := <-done:
			fnDone = true
			if c != ExitOK {
				code = c
			}
		case c := <-hooks:
			hooksDone = true
			if c != ExitOK && code == ExitOK {
				code = c
			}
		case <-timer.C:
			if !fnDone {
				s.logger.Error("service: shutdown deadline passed; the program's function has not returned",
					"timeout", s.opts.ShutdownTimeout)
			}
			// The hooks' own report names those still running.
			if !hooksDone {
				if c := <-hooks; c != ExitOK {
					code = c
				}
			}
			return ExitDeadline
		}
	}
	if code == ExitOK {
		s.logger.Info("service: stopped")
	}
	return code
}

// OnStop registers fn to run at shutdown, with a context that ends at the
// shutdown deadline (http.Server.Shutdown fits as it is). Hooks run
// concurrently; those that have not returned by the deadline are logged by
// name.
func (s *Service) OnStop(name string, fn func(ctx context.Context) error) {
	s.mu.Lock()
	s.stops = append(s.stops, stopHook{name, fn})
	s.mu.Unlock()
}

// runStopHooks runs the hooks and waits for them until deadline.
func (s *Service) runStopHooks(deadline time.Time) int {
	s.mu.Lock()
	hooks := append([]stopHook(nil), s.stops...)
	s.mu.Unlock()
	if len(hooks) == 0 {
		return ExitOK
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	var mu sync.Mutex
	running := map[string]bool{}
	failed := false
	var wg sync.WaitGroup
	for _, h := range hooks {
		running[h.name] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.ExitOnPanic()
			err := h.fn(ctx)
			mu.Lock()
			delete(running, h.name)
			mu.Unlock()
			if err != nil {
				s.logger.Error("service: stop hook failed", "hook", h.name, "err", err)
				mu.Lock()
				failed = true
				mu.Unlock()
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
		if failed {
			return ExitError
		}
		return ExitOK
	case <-ctx.Done():
		mu.Lock()
		names := make([]string, 0, len(running))
		for n := range running {
			names = append(names, n)
		}
		mu.Unlock()
		sort.Strings(names)
		s.logger.Error("service: shutdown deadline passed; stop hooks still running",
			"hooks", strings.Join(names, ", "), "timeout", s.opts.ShutdownTimeout)
		return ExitDeadline
	}
}

// Logger returns the logger Run made (also slog's default).
func (s *Service) Logger() *slog.Logger { return s.logger }

// Ready tells systemd the program is ready (READY=1), with status as its
// STATUS= line when not empty. A Type=notify unit becomes active only now.
func (s *Service) Ready(status string) {
	if status != "" {
		s.setStatus(status)
		s.notifyf("READY=1\nSTATUS=" + oneLine(status))
		return
	}
	s.notifyf("READY=1")
}

// Status sets the text systemctl status shows (STATUS=).
func (s *Service) Status(status string) {
	s.setStatus(status)
	s.notifyf("STATUS=" + oneLine(status))
}

func (s *Service) setStatus(status string) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

// oneLine keeps a status from adding assignments of its own to the
// notification: it is sent as NAME=value lines.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func (s *Service) notifyf(state string) {
	if err := s.notify(state); err != nil {
		s.logger.Warn("service: sd_notify failed", "state", state, "err", err)
	}
}

// reload runs the Reload hook between RELOADING=1 and READY=1.
func (s *Service) reload(ctx context.Context) {
	// MONOTONIC_USEC tells systemd 253+ (Type=notify-reload) which
	// reload this is; older versions ignore it.
	s.notifyf("RELOADING=1\n" + daemon.SdNotifyMonotonicUsec() + "\nSTATUS=reloading")
	s.logger.Info("service: reloading")
	s.mu.Lock()
	status := s.status
	s.mu.Unlock()
	if s.opts.Reload != nil {
		if err := s.opts.Reload(ctx); err != nil {
			s.logger.Error("service: reload failed", "err", err)
			// The program runs on as before; the status says so.
			status = strings.TrimSpace(status + " (last reload failed: " + err.Error() + ")")
		}
	}
	if status == "" {
		status = "reloaded"
	}
	s.notifyf("READY=1\nSTATUS=" + oneLine(status))
}

// Go runs fn in a goroutine in which a panic is logged and ends the
// process (see ExitOnPanic); an error fn returns is logged with name.
func (s *Service) Go(name string, fn func() error) {
	go func() {
		defer s.ExitOnPanic()
		if err := fn(); err != nil {
			s.logger.Error("service: goroutine failed", "goroutine", name, "err", err)
		}
	}()
}

// ExitOnPanic, deferred at the top of a goroutine, logs a panic in it at
// CRIT with the goroutine's stack in the traceback field, then exits the
// process with status 2. (A panic in another goroutine than Run's ends
// the process anyway, but Go then prints it to stderr, line by line.)
//
// http.ErrAbortHandler is not a crash but net/http's way to abort a
// response (httputil.ReverseProxy uses it when a client goes away): it is
// panicked again, for net/http to handle as it means to.
func (s *Service) ExitOnPanic() {
	if v := recover(); v != nil {
		if v == http.ErrAbortHandler {
			panic(v)
		}
		s.logPanic(v, debug.Stack())
		s.exit(ExitPanic)
	}
}

func (s *Service) logPanic(v any, stack []byte) {
	err, ok := v.(error)
	if !ok {
		err = fmt.Errorf("%v", v)
	}
	s.logger.Log(context.Background(), newstyle.LevelCritical, "service: panic: "+err.Error(),
		"panic", newstyle.WithTrace(err, panicStack(stack)))
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

// panicStack drops, from a runtime/debug.Stack taken in a deferred
// recover, the frames of the recovery itself (debug.Stack, ExitOnPanic,
// runtime's panic): the trace then starts where the panic happened, as
// Go's own crash output does.
func panicStack(stack []byte) []byte {
	lines := bytes.SplitAfter(stack, []byte("\n"))
	if len(lines) < 2 {
		return stack
	}
	for i := 1; i+1 < len(lines); i++ {
		if bytes.HasPrefix(lines[i], []byte("panic(")) {
			return append(append([]byte(nil), lines[0]...), bytes.Join(lines[i+2:], nil)...)
		}
	}
	return stack
}

// Listener returns the listening socket systemd passed under name
// (FileDescriptorName= in the .socket unit, "LISTEN_FDNAMES"). When the
// process was not socket-activated, it listens on TCP address fallback
// itself; an empty fallback is then an error. When it was activated but
// no socket has that name, the error says which names there are.
func (s *Service) Listener(name, fallback string) (net.Listener, error) {
	s.listenOnce.Do(func() {
		s.listeners, s.listenErr = activation.ListenersWithNames()
	})
	if s.listenErr != nil {
		return nil, fmt.Errorf("service: socket activation: %w", s.listenErr)
	}
	if len(s.listeners) == 0 {
		if fallback == "" {
			return nil, fmt.Errorf("service: socket %q: %w, and no address to listen on", name, ErrNotActivated)
		}
		return net.Listen("tcp", fallback)
	}
	ls := s.listeners[name]
	if len(ls) == 0 || ls[0] == nil {
		names := make([]string, 0, len(s.listeners))
		for n := range s.listeners {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("service: %w: %q (systemd passed %s)", ErrNoSuchSocket, name, strings.Join(names, ", "))
	}
	return ls[0], nil
}

// Errors of Listener.
var (
	ErrNotActivated = errors.New("not socket-activated")
	ErrNoSuchSocket = errors.New("service: no socket of that name")
)
