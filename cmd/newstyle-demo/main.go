// Command newstyle-demo is a small HTTP service run as a new-style daemon
// with package service: socket activation, READY=1 after a warm-up, a
// watchdog fed while a health check passes, reload on SIGHUP, a clean
// stop, and every request logged to the journal as one entry with fields.
//
// Its endpoints show what systemd and the journal do with each case:
//
//	/        a greeting (reloaded on SIGHUP from the greeting file)
//	/error   500, and one entry at priority err with the error's stack
//	         in its TRACEBACK field
//	/panic   a panic in the handler: one entry at priority crit with the
//	         goroutine's stack, exit status 2, Restart=on-failure
//	/hang    the health check blocks from now on: the watchdog goes
//	         hungry and systemd kills and restarts the service
//	/crash?kind=KIND
//	         a crash that no recover sees, on purpose: package crash's
//	         watcher writes one entry at priority crit with the runtime's
//	         whole output in TRACEBACK, and Restart=on-failure brings the
//	         service back. KIND is goroutine (a panic in a goroutine
//	         started with go), map (concurrent map writes), overflow (a
//	         stack overflow), nil (a nil dereference in a goroutine), all
//	         (a panic with GOTRACEBACK=all and n goroutines, &n=10000 by
//	         default), exit (os.Exit(3): no crash, no entry) or recovered
//	         (a panic in the handler, which package service recovers and
//	         logs itself, as /panic)
//	/slow    answers after 3 s: a request in flight when systemctl stop
//	         comes is finished before the process exits
//
// Every request is also logged at debug level, which is off by default:
// its unit names the D-Bus name (BusName=, and NEWSTYLE_BUS_NAME for
// package service), so that an operator turns it on and off while it runs,
// and moves its records between the journal and stdout:
//
//	systemctl service-log-level newstyle-demo debug
//	systemctl service-log-level newstyle-demo info
//	systemctl service-log-target newstyle-demo console
//
// or, without D-Bus, over HTTP from the same host (service.LevelHandler
// on svc.Level()):
//
//	curl -X PUT -d debug localhost:8080/debug/level
//
// newstyle-demo.service and newstyle-demo.socket beside this file are its
// units; io.github.newstyle_go.Demo1.conf is the system bus's policy for
// its name (in /etc/dbus-1/system.d/ or /usr/share/dbus-1/system.d/,
// then systemctl reload dbus), and newstyle-demo.sysusers (in
// /etc/sysusers.d/newstyle-demo.conf, then systemd-sysusers) makes the
// user that policy names. `make demo` runs it in a throwaway systemd
// container (scripts/demo-container.sh). Outside systemd it listens on
// -listen itself and logs to stdout:
//
//	go run ./cmd/newstyle-demo -listen 127.0.0.1:8080
//
// -warmup sets how long it takes to start; with a warm-up longer than the
// unit's TimeoutStartSec=, -extend-timeout makes it ask systemd for more
// time as it goes (EXTEND_TIMEOUT_USEC), as a slow migration would.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/service"
)

// identifier is the SYSLOG_IDENTIFIER of the entries (journalctl -t).
const identifier = "newstyle-demo"

const defaultGreeting = "hello from newstyle-demo"

func main() {
	listen := flag.String("listen", ":8080", "TCP address to listen on when not socket-activated")
	warmup := flag.Duration("warmup", 2*time.Second, "how long starting (before READY=1) and reloading take")
	extend := flag.Duration("extend-timeout", 0,
		"while warming up at start, ask systemd for this much more time at each step (EXTEND_TIMEOUT_USEC), every half of it; 0: never")
	greetingFile := flag.String("greeting-file", defaultGreetingFile(),
		"file whose first line is the greeting, read at start and on SIGHUP; empty for the built-in one")
	flag.Parse()

	d := &demo{greetingFile: *greetingFile, warmup: *warmup, extend: *extend}
	logOpts := &newstyle.Options{SyslogIdentifier: identifier}
	// NEWSTYLE_DEMO_ASYNC=LINGER (a drop-in's Environment=) logs through the
	// asynchronous Writer, each record waiting up to LINGER for others:
	// what the container tier uses to show that records still queued when
	// the process panics or the watchdog aborts it reach the journal.
	if v := os.Getenv("NEWSTYLE_DEMO_ASYNC"); v != "" {
		linger, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(os.Stderr, "NEWSTYLE_DEMO_ASYNC=%q: %v\n", v, err)
			os.Exit(service.ExitError)
		}
		logOpts.Async = &journal.AsyncOptions{Linger: linger, SyncPriority: journal.NoSyncPriority}
	}
	service.Main(&service.Options{
		Log:             logOpts,
		ShutdownTimeout: 10 * time.Second, // within the unit's TimeoutStopSec=15s
		Reload:          d.reload,
		Health:          d.health,
	}, func(ctx context.Context, svc *service.Service) error {
		return d.run(ctx, svc, *listen)
	})
}

// defaultGreetingFile is the greeting file in the unit's
// ConfigurationDirectory= (/etc/newstyle-demo), when systemd set one.
func defaultGreetingFile() string {
	if dir := os.Getenv("CONFIGURATION_DIRECTORY"); dir != "" {
		return filepath.Join(strings.SplitN(dir, ":", 2)[0], "greeting")
	}
	return ""
}

type demo struct {
	greetingFile string
	warmup       time.Duration
	extend       time.Duration // see -extend-timeout
	greeting     atomic.Pointer[string]

	// state stands for the lock a real service's handlers share: the
	// health check takes it, and /hang takes it for good — a deadlock
	// that only the watchdog sees.
	state sync.Mutex
}

func (d *demo) run(ctx context.Context, svc *service.Service, listen string) error {
	log := svc.Logger()
	activated := svc.Activated("http")
	ln, err := svc.Listener("http", listen)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "socket_activated", activated)

	if err := d.loadGreeting(); err != nil {
		return err
	}
	// With socket activation, connections made meanwhile wait in the
	// socket's queue: none is refused.
	svc.Status("warming up")
	log.Info("warming up", "duration", d.warmup, "extend_timeout", d.extend)
	if err := d.warmUp(ctx, svc); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", d.hello)
	mux.HandleFunc("GET /error", d.fail)
	mux.HandleFunc("GET /panic", d.crash)
	mux.HandleFunc("GET /hang", d.hang)
	mux.HandleFunc("GET /crash", d.crashOnPurpose)
	mux.HandleFunc("GET /slow", slow)
	// The log level, read and set over HTTP, from this host only:
	// curl -X PUT -d debug localhost:8080/debug/level
	mux.Handle("/debug/level", loopbackOnly(service.LevelHandler(svc.Level())))
	// A panic in a handler ends the process through svc.ExitOnPanic —
	// logged at crit with its stack, one entry, exit status 2 — rather
	// than net/http's recovery, which logs it line by line and serves on
	// in a state nobody knows (svc.RecoverHTTP logs it the same way and
	// serves on).
	srv := &http.Server{
		Handler:           logRequests(log, svc.ExitOnHTTPPanic(mux)),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          svc.ErrorLog(),
	}
	svc.OnStop("http", srv.Shutdown)
	svc.Ready("serving on " + ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// warmUp waits for the warm-up, or until ctx ends. With -extend-timeout
// it goes in steps of half that, asking systemd before each for that
// much more time: a start longer than TimeoutStartSec= that systemd lets
// finish, because the program keeps saying it is still at it.
func (d *demo) warmUp(ctx context.Context, svc *service.Service) error {
	end := time.Now().Add(d.warmup)
	for {
		left := time.Until(end)
		if left <= 0 {
			return nil
		}
		step := left
		if d.extend > 0 {
			if err := svc.ExtendTimeout(d.extend); err != nil {
				return err
			}
			step = min(step, d.extend/2)
		}
		select {
		case <-time.After(step):
		case <-ctx.Done():
			return nil
		}
	}
}

func (d *demo) hello(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintln(w, *d.greeting.Load())
}

func (d *demo) fail(w http.ResponseWriter, r *http.Request) {
	err := lookUpOrder("A-1042")
	slog.ErrorContext(r.Context(), "order lookup failed", "order_id", "A-1042", "err", err)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

// lookUpOrder fails, with its stack attached: the entry's TRACEBACK.
func lookUpOrder(id string) error {
	return newstyle.WithStack(fmt.Errorf("order %s: %w", id, errors.New("database unreachable")))
}

// crash has a bug of the kind that panics: a write to a nil map.
func (d *demo) crash(w http.ResponseWriter, r *http.Request) {
	slog.InfoContext(r.Context(), "updating the order counts")
	var orders map[string]int
	//lint:ignore SA5000 the crash this handler exists to show: a write to a nil map
	orders["A-1042"]++
}

// crashKinds are the crashes /crash makes, by kind.
var crashKinds = map[string]func(r *http.Request){
	"goroutine": func(*http.Request) { go panicInGoroutine() },
	"map":       func(*http.Request) { go writeMapConcurrently() },
	"overflow":  func(*http.Request) { go recurse(0) },
	"nil":       func(*http.Request) { go dereferenceNil(nil) },
	"all": func(r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n <= 0 {
			n = 10000
		}
		go panicAmongMany(n)
	},
	"exit":      func(*http.Request) { os.Exit(3) },
	"recovered": func(*http.Request) { panic("crash on purpose: a panic in the handler") },
}

// crashOnPurpose crashes the process as ?kind= says (see the package
// documentation), once the response is on its way.
func (d *demo) crashOnPurpose(w http.ResponseWriter, r *http.Request) {
	kind := r.URL.Query().Get("kind")
	crash, ok := crashKinds[kind]
	if !ok {
		kinds := make([]string, 0, len(crashKinds))
		for k := range crashKinds {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		http.Error(w, "kind: one of "+strings.Join(kinds, ", "), http.StatusBadRequest)
		return
	}
	slog.WarnContext(r.Context(), "crashing on purpose", "kind", kind)
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintln(w, "crashing:", kind)
	http.NewResponseController(w).Flush()
	crash(r)
}

func panicInGoroutine() { panic("crash on purpose: a panic in a goroutine") }

func writeMapConcurrently() {
	counts := map[int]int{}
	for range 4 {
		go func() {
			for i := 0; ; i++ {
				counts[i%100]++
			}
		}()
	}
	select {}
}

func recurse(depth int) int {
	var frame [64]byte
	frame[depth%64] = byte(depth)
	//lint:ignore SA5007 the stack overflow /crash?kind=overflow exists to show
	return recurse(depth+1) + int(frame[1])
}

type order struct{ id string }

func dereferenceNil(o *order) { fmt.Println(o.id) }

// panicAmongMany panics with n goroutines waiting beside it, every one
// of them in the crash output.
func panicAmongMany(n int) {
	block := make(chan struct{})
	for range n {
		go func() { <-block }()
	}
	debug.SetTraceback("all")
	panic(fmt.Sprintf("crash on purpose: a panic among %d goroutines", n))
}

func (d *demo) hang(w http.ResponseWriter, r *http.Request) {
	d.state.Lock() // never unlocked
	slog.WarnContext(r.Context(), "the state lock is taken for good: the health check will hang")
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintln(w, "hanging: the watchdog will restart the service")
}

// slow takes its time, unless the client goes away.
func slow(w http.ResponseWriter, r *http.Request) {
	select {
	case <-time.After(3 * time.Second):
		fmt.Fprintln(w, "done, slowly")
	case <-r.Context().Done():
	}
}

// health is the watchdog's check: it hangs once /hang took the lock.
func (d *demo) health(ctx context.Context) error {
	d.state.Lock()
	defer d.state.Unlock()
	return ctx.Err()
}

// reload re-reads the greeting and warms up again, between RELOADING=1
// and READY=1.
func (d *demo) reload(ctx context.Context) error {
	if err := d.loadGreeting(); err != nil {
		return err
	}
	select {
	case <-time.After(d.warmup):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *demo) loadGreeting() error {
	g := defaultGreeting
	source := "built-in"
	if d.greetingFile != "" {
		b, err := os.ReadFile(d.greetingFile)
		switch {
		case err == nil:
			g, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
			source = d.greetingFile
		case errors.Is(err, os.ErrNotExist):
			// No file: the built-in greeting.
		default:
			return fmt.Errorf("greeting: %w", err)
		}
	}
	d.greeting.Store(&g)
	slog.Info("greeting loaded", "greeting", g, "source", source)
	return nil
}

// loopbackOnly refuses requests that do not come from this host.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// logRequests logs each request as one record: info, or warning for a
// server error; and, at debug level, its arrival with its headers.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		log.LogAttrs(r.Context(), slog.LevelDebug, "request received",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.String("user_agent", r.UserAgent()),
			slog.String("remote", r.RemoteAddr),
		)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelWarn
		}
		log.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", rec.status),
			slog.Duration("duration", time.Since(start)),
			slog.String("remote", r.RemoteAddr),
		)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wroteHeader {
		s.status, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
