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
// Logging can be changed while the program runs, as systemd's own
// services allow: with a D-Bus name (Options.BusName, or NEWSTYLE_BUS_NAME
// set by the unit beside BusName=), Run serves org.freedesktop.LogControl1
// on the system bus, so that
//
//	systemctl service-log-level UNIT debug      # or info, 7, 6, …
//	systemctl service-log-target UNIT console   # or journal, null, auto
//
// change the level and the target of Run's logger and of every logger
// derived from it, at once, each change logged once. Setting is allowed to
// root alone: the bus policy should say so (see cmd/newstyle-demo's), and
// the program checks the caller's user with the bus daemon again. Reading
// is open. Without a name nothing is done; without a system bus it is
// logged once at info, and nothing else changes.
//
// DEBUG_INVOCATION=1 in the environment (systemd sets it when it restarts
// a unit with RestartMode=debug; an operator may set it in a drop-in)
// starts the logger at debug level. A slow start or stop asks systemd for
// more time with ExtendTimeout.
//
// A panic in the program's function, or in a goroutine started with
// Service.Go or guarded by Service.ExitOnPanic, is logged at CRIT with the
// goroutine's stack in the traceback field — one journal entry — and the
// process exits with status 2, so that Restart=on-failure brings it back.
// That stack starts at the function that panicked and reads as every
// other TRACEBACK of this module (newstyle.WithStack's): a function a
// line, its file:line on the next, tab-indented. The one exception is
// the dump logged on SIGABRT: it holds every goroutine, which only the
// runtime can list, so it keeps the runtime's own format, with a
// "goroutine N [state]:" line above each stack.
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
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/internal/slogcore"
	"github.com/newstyle-go/newstyle/journal"
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

	// ShutdownTimeout bounds shutdown: the program's function returning
	// and the OnStop hooks. It is counted from the stop signal, or from
	// the function's return when it returns by itself. Zero means
	// DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	// Reload, if set, is called on SIGHUP, between RELOADING=1 and
	// READY=1. Its error is logged; the program goes on. A stop cancels
	// its context, and no READY=1 follows then.
	Reload func(ctx context.Context) error

	// Health, if set, is asked before each watchdog ping: the ping is sent
	// only when it returns nil within half the watchdog interval, before
	// its context ends. A hung or failing program is then restarted by
	// systemd; a healthy one is not. Without it, the watchdog is fed while
	// the process runs.
	//
	// Only one check runs at a time. A check still running when its
	// context ends has failed, and no other starts until it returns: each
	// tick meanwhile counts as failed (no ping, so systemd ends the
	// program as for any failing check), and the late answer is dropped.
	// A check that ignores its context thus holds one goroutine, not one
	// per tick; the first tick after it returns starts a fresh check.
	Health func(ctx context.Context) error

	// BusName, when not empty, is the D-Bus name under which Run serves
	// org.freedesktop.LogControl1 on the system bus: the unit's
	// BusName=, which systemctl service-log-level and service-log-target
	// call. The environment variable NEWSTYLE_BUS_NAME (EnvBusName), when
	// set, overrides it, so that a unit can turn it on for a program that
	// sets nothing:
	//
	//	BusName=org.example.Shop1
	//	Environment=NEWSTYLE_BUS_NAME=org.example.Shop1
	//	Type=notify   # else BusName= makes the unit Type=dbus
	//
	// The bus's policy must let the program's user own the name. The
	// interface is served from before the program's function starts;
	// Ready waits for it to be (or to have failed), for at most 5 s.
	// LogLevel takes and gives the syslog names emerg … debug (and 0–7),
	// mapped to slog levels by newstyle.PriorityLevel and
	// journal.LevelPriority; LogTarget takes journal, console (stdout's
	// <N> lines), null and auto (see newstyle.Handler.SetTarget), refuses
	// kmsg, syslog and the rest with org.freedesktop.DBus.Error.InvalidArgs,
	// as systemd's services refuse a target they do not know, and reads
	// back the target last set (auto, as long as the logger chooses by
	// itself); SyslogIdentifier is read-only. Only root may
	// set them (org.freedesktop.DBus.Error.AccessDenied otherwise). If the
	// bus daemon restarts, the interface is gone until the program
	// restarts.
	//
	// The level is Log.Level's when that is a *slog.LevelVar (the
	// program's own changes and the operator's then meet in it), else a
	// LevelVar of Run's starting at Log.Level.
	BusName string
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

	level   *slog.LevelVar // the logger's level, which LogControl1 sets
	ident   string         // the logger's SyslogIdentifier
	busName string         // where LogControl1 is served; empty: not at all
	// busDone is closed when LogControl1 is served, or failed to be;
	// nil without a bus name.
	busDone chan struct{}
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
// SIGINT, and should return soon after. With an asynchronous logger
// (Options.Log.Async), Run delivers the records it still holds, for at
// most FlushTimeout, on every way out: before it returns, and before the
// process exits on a panic or on SIGABRT.
func Run(opts Options, fn func(ctx context.Context, svc *Service) error) int {
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	logOpts, level := logOptions(opts.Log)
	debug := debugInvocation()
	if debug {
		level.Set(min(level.Level(), slog.LevelDebug))
	}
	logger := newstyle.NewLogger(logOpts)
	slog.SetDefault(logger)
	flush := flusher(logger)
	ident := logOpts.SyslogIdentifier
	if ident == "" {
		ident = journal.ProgramName()
	}
	svc := &Service{opts: opts, logger: logger, notify: notify, exit: func(code int) {
		flush()
		osExit(code)
	}, level: level, ident: ident, busName: busName(opts)}
	if debug {
		logger.Debug("service: " + EnvDebugInvocation + " is set: logging at debug level")
	}
	code := svc.run(fn)
	flush()
	return code
}

// logOptions returns the logger's options with a *slog.LevelVar for its
// level: opts.Level itself when it is one, else a new one at opts.Level.
func logOptions(opts *newstyle.Options) (*newstyle.Options, *slog.LevelVar) {
	var o newstyle.Options
	if opts != nil {
		o = *opts
	}
	level, ok := o.Level.(*slog.LevelVar)
	if !ok || level == nil {
		level = new(slog.LevelVar)
		if o.Level != nil {
			level.Set(o.Level.Level())
		}
		o.Level = level
	}
	return &o, level
}

// FlushTimeout bounds how long Run waits, on its way out, for the records
// an asynchronous logger (newstyle.Options.Async) still holds.
const FlushTimeout = 2 * time.Second

// flusher returns what delivers the records logger's handler has queued,
// for at most FlushTimeout: Run calls it on every way out (a return, a
// stop, a panic, SIGABRT), so that the records that tell why the program
// ended are in the journal before it exits.
func flusher(logger *slog.Logger) func() {
	h, ok := logger.Handler().(interface{ Flush(context.Context) error })
	if !ok {
		return func() {}
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), FlushTimeout)
		defer cancel()
		_ = h.Flush(ctx)
	}
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

	// LogControl1 is set up beside the program's function, which starts
	// at once; Ready waits for it.
	if s.busName != "" {
		if h, ok := s.logger.Handler().(*newstyle.Handler); ok {
			var lc *logControl
			s.busDone = make(chan struct{})
			go func() {
				defer close(s.busDone)
				lc = s.startLogControl(s.busName, h)
			}()
			defer func() {
				<-s.busDone // within busTimeout
				if lc != nil {
					lc.stop()
				}
			}()
		}
	}

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
				s.logPanic(v, panicTrace())
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

// OnStop registers fn to run at shutdown, under name (for the log), with
// a context that ends at the shutdown deadline. http.Server.Shutdown fits
// as it is.
//
// When the hooks run depends on how the program ends:
//
//   - On SIGTERM or SIGINT, Run logs "service: stopping", sends
//     STOPPING=1, stops feeding the watchdog and cancels the function's
//     context, then starts the hooks at once: they run while the function
//     winds down, not after it has returned, so that a hook can be what
//     makes it return (Shutdown makes Serve return ErrServerClosed). The
//     deadline is ShutdownTimeout after the signal.
//   - When the function returns by itself (nil, an error, or a panic that
//     Run recovered and logged), Run sends STOPPING=1, stops feeding the
//     watchdog and cancels the context, then starts the hooks. The
//     deadline is ShutdownTimeout after the function's return.
//   - Not at all when the process ends on SIGABRT (systemd's watchdog) or
//     on a panic in a goroutine guarded by Go or ExitOnPanic: it exits at
//     once, as it would if systemd killed it.
//
// The hooks registered by then run concurrently, in no order; a hook
// registered once shutdown has begun does not run. Run returns when the
// function and all hooks have returned, or at the deadline, without the
// hooks still running: they are logged by name and left running, and the
// exit status is 3 (1 or 2 if the function, returning by itself, failed
// or panicked). A hook's error is logged, and makes the exit status 1 if
// it was to be 0; a panic in a hook is logged and exits the process with
// status 2, at once. After STOPPING=1, systemd's watchdog no longer
// applies; its TimeoutStopSec does, and should exceed ShutdownTimeout.
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
// With a bus name (Options.BusName), it first waits until
// org.freedesktop.LogControl1 is served, or failed to be: once the unit is
// active, systemctl service-log-level reaches the program.
func (s *Service) Ready(status string) {
	if s.busDone != nil {
		<-s.busDone
	}
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

// ExtendTimeout asks systemd for d more time (EXTEND_TIMEOUT_USEC=) for
// what the unit is doing: starting (before Ready, TimeoutStartSec=),
// reloading, running (RuntimeMaxSec=), or stopping (after SIGTERM,
// TimeoutStopSec=). systemd then waits until d from now before it fails
// the unit, even past the timeout the unit file sets, and as long as the
// program keeps asking: call it again before d is up, at each step of a
// slow migration or cache warm-up, so that a program that hangs is still
// failed — not in a loop that asks for ever. Within the unit's own
// timeout it changes nothing.
//
//	for i, step := range migrations {
//		if err := svc.ExtendTimeout(30 * time.Second); err != nil { … }
//		svc.Status(fmt.Sprintf("migrating %d/%d", i+1, len(migrations)))
//		if err := step(ctx); err != nil { … }
//	}
//	svc.Ready("serving")
//
// The watchdog is fed meanwhile (its own goroutine, while Health passes).
// A stop is bounded by Options.ShutdownTimeout too, which ExtendTimeout
// does not change: for a long stop, set ShutdownTimeout to the whole
// time a stop may take and extend systemd's TimeoutStopSec= step by step
// from the OnStop hooks.
//
// d is rounded up to a whole microsecond and must be positive. Outside
// systemd (no NOTIFY_SOCKET) it does nothing and returns nil; otherwise
// it returns the notification's error.
func (s *Service) ExtendTimeout(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("service: ExtendTimeout(%v): the duration must be positive", d)
	}
	usec := d / time.Microsecond
	if d%time.Microsecond != 0 {
		usec++
	}
	if err := s.notify("EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(int64(usec), 10)); err != nil {
		return fmt.Errorf("service: EXTEND_TIMEOUT_USEC: %w", err)
	}
	return nil
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
	s.notifyf(reloadingState(daemon.SdNotifyMonotonicUsec()))
	s.logger.Info("service: reloading")
	s.mu.Lock()
	status := s.status
	s.mu.Unlock()
	if s.opts.Reload != nil {
		err := s.opts.Reload(ctx)
		if ctx.Err() != nil {
			// A stop cut the reload short. READY=1 now would contradict
			// the STOPPING=1 already sent.
			s.logger.Info("service: reload cut short by the stop", "err", err)
			return
		}
		if err != nil {
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
		s.logPanic(v, panicTrace())
		s.exit(ExitPanic)
	}
}

func (s *Service) logPanic(v any, trace []byte) {
	err, ok := v.(error)
	if !ok {
		err = fmt.Errorf("%v", v)
	}
	s.logger.Log(context.Background(), newstyle.LevelCritical, "service: panic: "+err.Error(),
		"panic", newstyle.WithTrace(err, trace))
}

// panicTrace returns the stack of the panicking goroutine, formatted as
// every TRACEBACK of the module, from the frame that panicked down. It
// must be called by the deferred function that recovered: the goroutine's
// stack is still the panic's then, under the recovery's own frames and
// runtime.gopanic, which are cut off, as are the runtime's frames that
// raised a run-time panic (a nil map, a nil pointer, an index) for the
// function that caused it. Go's own crash output leaves out the same.
func panicTrace() []byte {
	pcs := slogcore.Callers(0)
	for i, pc := range pcs {
		if !slices.Contains(frameFuncs(pc), "runtime.gopanic") {
			continue
		}
		rest := pcs[i+1:]
		for len(rest) > 1 && inRuntime(rest[0]) {
			rest = rest[1:]
		}
		return slogcore.AppendStack(nil, rest)
	}
	// Cannot happen after a recover that returned a value; should a
	// runtime change it, the recovery's frames beat an empty trace.
	return slogcore.AppendStack(nil, pcs)
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

// Listener returns the listening socket systemd passed under name
// (FileDescriptorName= in the .socket unit, "LISTEN_FDNAMES"). When the
// process was not socket-activated, it listens on TCP address fallback
// itself; an empty fallback is then an error. When it was activated but
// no socket has that name, the error says which names there are.
func (s *Service) Listener(name, fallback string) (net.Listener, error) {
	s.takeListeners()
	if s.listenErr != nil {
		return nil, fmt.Errorf("service: socket activation: %w", s.listenErr)
	}
	if len(s.listeners) == 0 {
		if fallback == "" {
			return nil, fmt.Errorf("%w, and no address to listen on for socket %q", ErrNotActivated, name)
		}
		return net.Listen("tcp", fallback)
	}
	if !s.Activated(name) {
		names := make([]string, 0, len(s.listeners))
		for n := range s.listeners {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("%w: %q (systemd passed %s)", ErrNoSuchSocket, name, strings.Join(names, ", "))
	}
	return s.listeners[name][0], nil
}

// Activated reports whether systemd passed a listening socket under name
// (socket activation): whether Listener(name, …) returns systemd's socket
// rather than listening itself or failing. A program cannot tell from
// LISTEN_FDNAMES itself: the first call of Activated or Listener takes
// the sockets and unsets the variables, so that a child process does not
// take them too.
func (s *Service) Activated(name string) bool {
	s.takeListeners()
	ls := s.listeners[name]
	return len(ls) > 0 && ls[0] != nil
}

// takeListeners takes the sockets systemd passed, once.
func (s *Service) takeListeners() {
	s.listenOnce.Do(func() {
		s.listeners, s.listenErr = activation.ListenersWithNames()
	})
}

// ErrNotActivated is returned, wrapped, by Listener when systemd passed
// no sockets and no fallback address was given. Give a fallback address
// for the program to run outside systemd too, or start it through its
// .socket unit.
var ErrNotActivated = errors.New("service: not socket-activated")

// ErrNoSuchSocket is returned, wrapped, by Listener when systemd passed
// sockets but none under the name asked for; the error lists the names
// it passed. The fallback address is not tried, since the unit and the
// program disagree: make the .socket unit's FileDescriptorName= and the
// name given to Listener the same.
var ErrNoSuchSocket = errors.New("service: no socket of that name")
