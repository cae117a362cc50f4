// Package service runs a Go program as a new-style daemon: in the
// foreground, supervised by systemd.
//
//	func main() {
//		service.Main(nil, func(ctx context.Context, svc *service.Service) error {
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
// Every notification is one systemd takes as it was meant. A status is
// one STATUS= value whatever it holds: control characters ('\r' and '\n'
// would start assignments of their own, such as MAINPID= or STOPPING=1;
// a NUL would make systemd ignore the whole notification, READY=1 with
// it), other runes that are not graphic and invalid UTF-8 are written as
// Go escapes them, and a status that would make the notification longer
// than the 4096 bytes systemd reads is cut to fit (see Service.Status).
// Each notification waits at most 2 s for systemd to take it, as a parked
// goroutine: a notify socket that does not read holds up neither the
// program nor its stop. A failed notification is logged once, and those
// that fail after it are counted, the count logged when one goes through
// again or the program ends. Once the stop has begun, nothing says the
// program is up or reloading again: no READY=1, no RELOADING=1, no call
// of Options.Reload; Ready stops waiting. SIGTERM and SIGINT come on a
// channel of their own, so that no flood of SIGHUPs can crowd a stop out.
// WATCHDOG_USEC is read as libsystemd reads it, with its range checked:
// an interval that is not one, or too long for a time.Duration, feeds no
// watchdog, and is logged once.
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
// That holds for a panic of any value: one whose Error or String method
// panics (a typed nil error) is written as the handlers write such a
// value, "<nil>" or "!PANIC: …". The program's function, Go's goroutines
// and the stop hooks ending without a return (runtime.Goexit, or
// panic(nil) under GODEBUG=panicnil=1) is a crash too, logged the same
// way. The stack starts at the function that panicked (or called
// runtime.Goexit) and reads as every other TRACEBACK of this module
// (newstyle.WithStack's): a function a line, its file:line on the next,
// tab-indented. The one exception is
// the dump logged on SIGABRT: it holds every goroutine, which only the
// runtime can list, so it keeps the runtime's own format, with a
// "goroutine N [state]:" line above each stack.
//
// The crashes no recover sees — a panic in a goroutine started with a
// plain go statement, the runtime's fatal errors (concurrent map writes,
// a stack overflow, out of memory) — are one entry each too: Run starts
// package crash's watcher, a copy of the program that outlives it and
// writes the runtime's whole crash output at CRIT, in TRACEBACK, under
// the same unit (see package crash; Options.DisableCrashCapture turns it
// off). A panic Run recovers, or the SIGABRT it catches, is logged by Run
// alone: the watcher writes nothing for a process that exits by itself.
//
// The exit status says how the program ended:
//
//	0  the function returned nil, and shutdown finished in time
//	1  the function returned an error (it is logged)
//	2  a panic, or an end without a return (it is logged with its
//	   stack), or SIGABRT, which systemd sends when the watchdog was not
//	   fed (logged with the stacks of all goroutines, one entry, to show
//	   where the program hung)
//	3  shutdown did not finish within Options.ShutdownTimeout (what did
//	   not finish is logged)
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/newstyle-go/newstyle"
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
	// the function's return when it returns by itself. Zero or a
	// negative value means DefaultShutdownTimeout: a stop is always
	// bounded (systemd's TimeoutStopSec bounds it anyway).
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

	// DisableCrashCapture turns off what Run does by default: capture
	// the crashes that no recover sees (a panic in a goroutine started
	// with a plain go statement, the runtime's fatal errors such as
	// concurrent map writes or a stack overflow) as one journal entry
	// each, at crit, with the runtime's whole output in TRACEBACK, by a
	// watcher process (see package crash). An operator turns it off with
	// NEWSTYLE_CRASH_CAPTURE=off.
	DisableCrashCapture bool
}

// Service is the running daemon, handed to the program's function.
type Service struct {
	opts   Options
	logger *slog.Logger

	listenOnce sync.Once
	passed     passedFDs // what systemd passed (LISTEN_FDS), once taken

	mu     sync.Mutex
	stops  []stopHook
	status string // the program's last STATUS=, restored after a reload
	exit   func(code int)
	flush  func() // delivers what the logger holds, for FlushTimeout at most

	shutdownOnce sync.Once     // Shutdown's: its hooks run once
	shutdownDone chan struct{} // closed when they have
	shutdownErr  error

	level   *slog.LevelVar // the logger's level, which LogControl1 sets
	ident   string         // the logger's SyslogIdentifier
	busName string         // where LogControl1 is served; empty: not at all
	// busDone is closed when LogControl1 is served, or failed to be;
	// nil without a bus name.
	busDone chan struct{}

	// stateMu orders the notifications that change the unit's state:
	// READY=1 and RELOADING=1 are each sent holding it, and only while
	// stopping is false; STOPPING=1 is sent holding it, after stopping
	// is set. So nothing systemd reads after STOPPING=1 says the program
	// is up again, or reloading.
	stateMu  sync.Mutex
	stopping atomic.Bool
	stopped  chan struct{} // closed when the stop begins

	fails notifyFailures
}

type stopHook struct {
	name string
	fn   func(context.Context) error
}

// Main runs fn as the daemon and exits the process with Run's status.
// opts may be nil: the defaults.
func Main(opts *Options, fn func(ctx context.Context, svc *Service) error) {
	os.Exit(Run(opts, fn))
}

// Run runs fn as the daemon and returns the exit status (see the package
// documentation). fn is given a context that is cancelled on SIGTERM or
// SIGINT, and should return soon after. With an asynchronous logger
// (Options.Log.Async), Run delivers the records it still holds, for at
// most FlushTimeout, on every way out: before it returns, and before the
// process exits on a panic or on SIGABRT. opts may be nil: the defaults;
// Run does not change *opts.
func Run(opts *Options, fn func(ctx context.Context, svc *Service) error) int {
	var o Options
	if opts != nil {
		o = *opts
	}
	return run(o, fn)
}

func run(opts Options, fn func(ctx context.Context, svc *Service) error) int {
	svc, logOpts := newService(opts)
	slog.SetDefault(svc.logger)
	svc.busName = busName(svc.opts)
	if !opts.DisableCrashCapture {
		svc.captureCrashes(logOpts)
	}
	code := svc.run(fn)
	svc.flush()
	return code
}

// newService makes the Service Run runs and New returns, with its logger
// (at debug level under DEBUG_INVOCATION=1), and returns the options the
// logger was made with.
func newService(opts Options) (*Service, *newstyle.Options) {
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	logOpts, level := logOptions(opts.Log)
	debug := debugInvocation()
	if debug {
		level.Set(min(level.Level(), slog.LevelDebug))
	}
	logger := newstyle.NewLogger(logOpts)
	ident := logOpts.SyslogIdentifier
	if ident == "" {
		ident = journal.ProgramName()
	}
	svc := &Service{opts: opts, logger: logger, flush: flusher(logger), level: level, ident: ident, stopped: make(chan struct{})}
	svc.exit = func(code int) {
		svc.flush()
		osExit(code)
	}
	if debug {
		logger.Debug("service: " + EnvDebugInvocation + " is set: logging at debug level")
	}
	return svc, logOpts
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

// run is Run's life of the program: the moving parts are started in
// turn, each a step of its own, then the program runs until it stops.
func (s *Service) run(fn func(ctx context.Context, svc *Service) error) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := watchSignals()
	defer sigs.release()
	stopWatchdog := s.startWatchdog(ctx)
	defer stopWatchdog()
	stopLogControl := s.startLogControl(ctx)
	defer stopLogControl()
	defer s.reportNotifyEnd()
	r := &lifecycle{cancel: cancel, signals: sigs, reloads: s.startReloads(ctx), done: s.startProgram(ctx, fn)}
	return s.serve(r)
}

// lifecycle is what the steps of a run share.
type lifecycle struct {
	cancel  context.CancelFunc // cancels the program's context
	signals signals
	reloads *reloader
	done    <-chan int // the function's exit status, once it has ended
}

// signals are the channels Run takes signals from, one for each kind, so
// that a flood of one cannot crowd out another: os/signal drops a signal
// whose channel is full, and a stop must never be dropped, whatever
// number of SIGHUPs come with it.
type signals struct {
	stop  chan os.Signal // SIGTERM, SIGINT
	hup   chan os.Signal // SIGHUP: reload
	abort chan os.Signal // SIGABRT: systemd's watchdog
}

func watchSignals() signals {
	s := signals{make(chan os.Signal, 1), make(chan os.Signal, 1), make(chan os.Signal, 1)}
	signal.Notify(s.stop, syscall.SIGTERM, syscall.SIGINT)
	signal.Notify(s.hup, syscall.SIGHUP)
	signal.Notify(s.abort, syscall.SIGABRT)
	return s
}

func (s signals) release() {
	signal.Stop(s.stop)
	signal.Stop(s.hup)
	signal.Stop(s.abort)
}

// startProgram runs fn in its goroutine, and returns the channel its exit
// status comes on: 0, 1 for an error it returned, 2 for a panic or for an
// end without a return (runtime.Goexit, panic(nil) under
// GODEBUG=panicnil=1), each logged.
func (s *Service) startProgram(ctx context.Context, fn func(ctx context.Context, svc *Service) error) <-chan int {
	done := make(chan int, 1)
	go func() {
		code := ExitOK
		returned := false
		defer func() {
			if v := recover(); v != nil || !returned {
				s.logAbnormalEnd("the program's function", v)
				code = ExitPanic
			}
			done <- code
		}()
		err := fn(ctx, s)
		returned = true
		if err != nil && !errors.Is(err, context.Canceled) {
			s.logger.Error("service: the program ended with an error", "err", err)
			code = ExitError
		}
	}()
	return done
}

// serve runs until the program stops: by itself, on a stop signal, or on
// SIGABRT; SIGHUP asks for a reload meanwhile.
func (s *Service) serve(r *lifecycle) int {
	for {
		select {
		case code := <-r.done:
			return s.shutdown(r, nil, code)
		case sig := <-r.signals.stop:
			return s.shutdown(r, sig, ExitOK)
		case <-r.signals.abort:
			return s.abort()
		case <-r.signals.hup:
			// select picks at random among what is ready: a stop that
			// came with the SIGHUP goes first.
			select {
			case sig := <-r.signals.stop:
				return s.shutdown(r, sig, ExitOK)
			default:
			}
			r.reloads.request()
		}
	}
}

// abort logs the stacks of all goroutines and exits: SIGABRT.
func (s *Service) abort() int {
	s.logAbort()
	s.exit(ExitPanic)
	return ExitPanic
}

// shutdown stops the program: on sig, or, sig being nil, when its
// function returned by itself with status code. The deadline starts
// first; then STOPPING=1 is sent, beside the rest, so that a socket that
// does not take it holds nothing up; the function's context is
// cancelled, and the stop hooks started. It returns when the function,
// the hooks, a reload under way and the notification have all ended, or
// at the deadline.
func (s *Service) shutdown(r *lifecycle, sig os.Signal, code int) int {
	deadline := time.Now().Add(s.opts.ShutdownTimeout)
	state := "STOPPING=1"
	if sig != nil {
		s.logger.Info("service: stopping", "signal", sig.String(), "timeout", s.opts.ShutdownTimeout)
		state = "STOPPING=1\nSTATUS=stopping"
	}
	notified := s.beginStop(state, deadline)
	r.cancel()
	hooks := make(chan int, 1)
	go func() { hooks <- s.runStopHooks(context.Background(), deadline) }()

	fnRunning, hooksRunning, reloading := sig != nil, true, true
	hooksCode := ExitOK
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for fnRunning || hooksRunning || reloading || notified != nil {
		select {
		case code = <-r.done:
			fnRunning = false
		case hooksCode = <-hooks:
			hooksRunning = false
		case <-r.reloads.done:
			reloading = false
		case <-notified:
			notified = nil
		case <-r.signals.abort:
			// systemd's TimeoutStopFailureMode=abort: where the stop hangs.
			return s.abort()
		case <-timer.C:
			if !fnRunning && !hooksRunning && !reloading {
				notified = nil // bounded by the deadline itself, and no fault of the program
				continue
			}
			if fnRunning {
				s.logger.Error("service: shutdown deadline passed; the program's function has not returned",
					"timeout", s.opts.ShutdownTimeout)
			}
			if reloading {
				s.logger.Error("service: shutdown deadline passed; Reload has not returned",
					"timeout", s.opts.ShutdownTimeout)
			}
			// The hooks' own report names those still running.
			if hooksRunning {
				<-hooks
			}
			if code != ExitOK && !fnRunning {
				return code
			}
			return ExitDeadline
		}
	}
	if code == ExitOK {
		code = hooksCode
	}
	if code == ExitOK && sig != nil {
		s.logger.Info("service: stopped")
	}
	return code
}

// beginStop marks the program as stopping (no READY=1 or RELOADING=1 is
// sent from now on, no reload starts, Ready no longer waits), and sends
// state (STOPPING=1) after any such notification already under way, in
// its own goroutine, within notifyTimeout and deadline. The channel it
// returns is closed once the notification is sent, or failed.
func (s *Service) beginStop(state string, deadline time.Time) <-chan struct{} {
	s.stopping.Store(true)
	close(s.stopped)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		until := time.Now().Add(notifyTimeout)
		if deadline.Before(until) {
			until = deadline
		}
		s.stateMu.Lock()
		defer s.stateMu.Unlock()
		s.reportNotify(state, sendNotify(context.Background(), state, until))
	}()
	return sent
}

// whileRunning runs send, which sends a notification that changes the
// unit's state, unless the stop has begun, and reports whether it did.
func (s *Service) whileRunning(send func()) bool {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.stopping.Load() {
		return false
	}
	send()
	return true
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
// STOPPING=1 is sent beside the hooks, not before them: a notify socket
// that does not take it (see Ready) delays neither the hooks nor the
// deadline.
//
// The hooks registered by then run concurrently, in no order; a hook
// registered once shutdown has begun does not run. Run returns when the
// function, all hooks and a Reload under way have returned, or at the
// deadline, without those still running: they are logged by name and
// left running, and the exit status is 3 (1 or 2 if the function failed
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
func (s *Service) runStopHooks(parent context.Context, deadline time.Time) int {
	s.mu.Lock()
	hooks := append([]stopHook(nil), s.stops...)
	s.mu.Unlock()
	if len(hooks) == 0 {
		return ExitOK
	}
	ctx, cancel := context.WithDeadline(parent, deadline)
	defer cancel()

	// running counts the hooks of each name still running; filled before
	// any starts, since each takes itself out when it returns.
	var mu sync.Mutex
	running := map[string]int{}
	for _, h := range hooks {
		running[h.name]++
	}
	failed := false
	var wg sync.WaitGroup
	for _, h := range hooks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.guard("stop hook "+strconv.Quote(h.name), func() {
				err := h.fn(ctx)
				mu.Lock()
				if running[h.name]--; running[h.name] == 0 {
					delete(running, h.name)
				}
				mu.Unlock()
				if err != nil {
					s.logger.Error("service: stop hook failed", "hook", h.name, "err", err)
					mu.Lock()
					failed = true
					mu.Unlock()
				}
			})
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

// LogStats returns the counters of the Service's logger (see
// newstyle.Stats): what went to the journal, to stdout, or was lost, and
// why. Publish them where operators look, with expvar for example:
//
//	expvar.Publish("newstyle", expvar.Func(func() any { return svc.LogStats() }))
func (s *Service) LogStats() newstyle.Stats {
	if h, ok := s.logger.Handler().(*newstyle.Handler); ok {
		return h.Stats()
	}
	return newstyle.Stats{}
}

// Ready tells systemd the program is ready (READY=1), with status as its
// STATUS= line when not empty. A Type=notify unit becomes active only now.
// With a bus name (Options.BusName), it first waits until
// org.freedesktop.LogControl1 is served, or failed to be: once the unit is
// active, systemctl service-log-level reaches the program. Once the stop
// has begun it neither waits nor sends anything: READY=1 after
// STOPPING=1 would tell systemd the program is up again.
//
// The status is sent as Status sends it. Like every notification, READY=1
// waits at most 2 s for systemd to take it (a notify socket whose queue
// is full); a failure is logged.
func (s *Service) Ready(status string) {
	if s.busDone != nil {
		select {
		case <-s.busDone:
		case <-s.stopped:
		}
	}
	if status != "" {
		s.setStatus(status)
	}
	s.whileRunning(func() {
		if status != "" {
			s.notifyf(withStatus("READY=1", status))
			return
		}
		s.notifyf("READY=1")
	})
}

// Status sets the text systemctl status shows (STATUS=). It is sent as
// one value, whatever it holds: control characters ('\n', '\r', NUL, …),
// other runes that are not graphic and invalid UTF-8 are written as Go
// escapes them ("\r", "\x00", "\u2028"), so that no status can add an
// assignment of its own to the notification (MAINPID=, STOPPING=1) or
// make systemd ignore it; a status longer than the notification's 4096
// bytes allow is cut and ends in "…".
func (s *Service) Status(status string) {
	s.setStatus(status)
	s.notifyf(withStatus("", status))
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
// it returns the notification's error (os.ErrDeadlineExceeded, wrapped,
// when systemd did not take it within 2 s).
func (s *Service) ExtendTimeout(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("service: ExtendTimeout(%v): the duration must be positive", d)
	}
	usec := d / time.Microsecond
	if d%time.Microsecond != 0 {
		usec++
	}
	if err := notify(context.Background(), "EXTEND_TIMEOUT_USEC="+strconv.FormatInt(int64(usec), 10)); err != nil {
		return fmt.Errorf("service: EXTEND_TIMEOUT_USEC: %w", err)
	}
	return nil
}

func (s *Service) setStatus(status string) {
	s.mu.Lock()
	s.status = status
	s.mu.Unlock()
}

func (s *Service) getStatus() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Go runs fn in a goroutine in which a panic, or an end without a return
// (runtime.Goexit), is logged and ends the process (see ExitOnPanic); an
// error fn returns is logged with name.
func (s *Service) Go(name string, fn func() error) {
	go s.guard("goroutine "+strconv.Quote(name), func() {
		if err := fn(); err != nil {
			s.logger.Error("service: goroutine failed", "goroutine", name, "err", err)
		}
	})
}
