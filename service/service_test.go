//go:build unix

package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/journaltest"
)

// notifySocket is a stand-in for systemd's NOTIFY_SOCKET: a datagram
// socket in a temp dir that keeps what it receives.
type notifySocket struct {
	path string
	conn *net.UnixConn

	mu        sync.Mutex
	msgs      []string
	sentinels int           // the test's own datagrams received (see settle)
	changed   chan struct{} // closed, and replaced, at each datagram
}

// sentinel starts the datagrams the test sends itself, which are not the
// program's notifications.
const sentinel = "TEST_SENTINEL="

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	n := listenNotify(t, filepath.Join(t.TempDir(), "notify"))
	t.Setenv("NOTIFY_SOCKET", n.path)
	return n
}

// listenNotify starts a notifySocket at path. It reads datagrams larger
// than systemd does, so that a test sees a notification systemd would
// ignore for its size.
func listenNotify(t *testing.T, path string) *notifySocket {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: path, conn: conn, changed: make(chan struct{})}
	go func() {
		buf := make([]byte, 1<<16)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			m := string(buf[:k])
			n.mu.Lock()
			if strings.HasPrefix(m, sentinel) {
				n.sentinels++
			} else {
				n.msgs = append(n.msgs, m)
			}
			close(n.changed)
			n.changed = make(chan struct{})
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return n
}

// await waits until done says the notifications so far are what the test
// waits for, and returns them.
func (n *notifySocket) await(t *testing.T, what string, done func(msgs []string, sentinels int) bool) []string {
	t.Helper()
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		n.mu.Lock()
		msgs, sentinels, changed := append([]string(nil), n.msgs...), n.sentinels, n.changed
		n.mu.Unlock()
		if done(msgs, sentinels) {
			return msgs
		}
		select {
		case <-changed:
		case <-timeout.C:
			t.Fatalf("waited 5s for %s; got %q", what, msgs)
		}
	}
}

// waitFor waits until a notification starting with prefix has arrived,
// and returns the first such.
func (n *notifySocket) waitFor(t *testing.T, prefix string) string {
	t.Helper()
	msgs := n.await(t, fmt.Sprintf("a notification starting %q", prefix), func(msgs []string, _ int) bool {
		return countPrefix(msgs, prefix) > 0
	})
	for _, m := range msgs {
		if strings.HasPrefix(m, prefix) {
			return m
		}
	}
	panic("unreachable")
}

// settle returns every notification sent before settle was called. A
// datagram is queued at the socket before the sender's write returns, so
// the test's own, sent now and waited for, comes after all of them: no
// guess of how long the reader may lag.
func (n *notifySocket) settle(t *testing.T) []string {
	t.Helper()
	n.mu.Lock()
	want := n.sentinels + 1
	n.mu.Unlock()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(sentinel + strconv.Itoa(want))); err != nil {
		t.Fatal(err)
	}
	return n.await(t, "the test's own datagram", func(_ []string, sentinels int) bool { return sentinels >= want })
}

// started waits until the program's function has said it is ready. Run
// calls signal.Notify before it starts the function, so signals may be
// sent from then on; before, one would kill the test binary.
func (n *notifySocket) started(t *testing.T) {
	t.Helper()
	n.waitFor(t, "READY=1")
}

func countPrefix(msgs []string, prefix string) int {
	k := 0
	for _, m := range msgs {
		if strings.HasPrefix(m, prefix) {
			k++
		}
	}
	return k
}

func count(msgs []string, want string) int {
	k := 0
	for _, m := range msgs {
		if m == want {
			k++
		}
	}
	return k
}

func testOptions(out *testutil.Buffer) Options {
	return Options{Log: &newstyle.Options{Target: newstyle.TargetStdout, Stdout: out}, ShutdownTimeout: 2 * time.Second}
}

// runAsync runs Run in a goroutine and returns its exit status's channel.
func runAsync(opts Options, fn func(ctx context.Context, svc *Service) error) <-chan int {
	code := make(chan int, 1)
	go func() { code <- Run(&opts, fn) }()
	return code
}

func wait(t *testing.T, code <-chan int) int {
	t.Helper()
	select {
	case c := <-code:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
		return -1
	}
}

func signalSelf(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
}

// released returns a channel closed when the test ends, for what must
// block past the point tested without outliving the test.
func released(t *testing.T) chan struct{} {
	c := make(chan struct{})
	t.Cleanup(func() { close(c) })
	return c
}

// rounds are the watchdog's rounds as the test reads them, each with
// what probe said right after it.
type rounds struct {
	c        chan round
	deadline <-chan time.Time
	// Changes of health so far, which the log must report one each.
	fed               bool
	failed, recovered int
}

type round struct {
	fed   bool
	probe int32
}

// watchRounds records the watchdog's rounds from now until the test ends;
// probe, if not nil, is read after each.
func watchRounds(t *testing.T, probe func() int32) *rounds {
	r := &rounds{c: make(chan round, 1000), deadline: time.After(10 * time.Second), fed: true}
	report := func(fed bool) {
		var p int32
		if probe != nil {
			p = probe()
		}
		select {
		case r.c <- round{fed, p}:
		default: // the test has what it wanted
		}
	}
	watchdogRound.Store(&report)
	t.Cleanup(func() { watchdogRound.Store(nil) })
	return r
}

// next returns the next round; all the rounds waited for in a test must
// come within 10 s.
func (r *rounds) next(t *testing.T) round {
	t.Helper()
	select {
	case x := <-r.c:
		switch {
		case r.fed && !x.fed:
			r.failed++
		case !r.fed && x.fed:
			r.recovered++
		}
		r.fed = x.fed
		return x
	case <-r.deadline:
		t.Fatal("the rounds waited for did not come in 10s")
		return round{}
	}
}

// checkLog checks that each change of health the test read was logged
// once: no more, as systemd acts on it, not on each tick.
func (r *rounds) checkLog(t *testing.T, log string) {
	t.Helper()
	if strings.Count(log, "health check failed") != r.failed || strings.Count(log, "health check passes again") != r.recovered {
		t.Errorf("want %d failures and %d recoveries logged:\n%s", r.failed, r.recovered, log)
	}
}

func TestReadyThenStopOnSIGTERM(t *testing.T) {
	n := newNotifySocket(t)
	var out testutil.Buffer
	stopped := false
	code := runAsync(testOptions(&out), func(ctx context.Context, svc *Service) error {
		svc.OnStop("cleanup", func(context.Context) error { stopped = true; return nil })
		svc.Ready("serving\non :8080") // a newline must not start an assignment
		<-ctx.Done()
		return ctx.Err()
	})
	n.started(t)
	signalSelf(t, syscall.SIGTERM)
	if c := wait(t, code); c != ExitOK {
		t.Fatalf("exit status %d, want 0; log:\n%s", c, out.String())
	}
	if !stopped {
		t.Error("the stop hook did not run")
	}
	// The newline is written as Go escapes it, one value still.
	want := []string{"READY=1\nSTATUS=serving\\non :8080", "STOPPING=1\nSTATUS=stopping"}
	if got := n.settle(t); !equal(got, want) {
		t.Errorf("notifications %q, want %q", got, want)
	}
	if !strings.Contains(out.String(), "<6>service: stopping signal=terminated") {
		t.Errorf("log lacks the stop:\n%s", out.String())
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// The reload's notifications, byte for byte: one assignment a line, no
// empty line, MONOTONIC_USEC= the time of the reload.
func TestReloadOnSIGHUP(t *testing.T) {
	n := newNotifySocket(t)
	var out testutil.Buffer
	opts := testOptions(&out)
	reloaded := make(chan struct{}, 1)
	opts.Reload = func(context.Context) error { reloaded <- struct{}{}; return nil }
	code := runAsync(opts, func(ctx context.Context, svc *Service) error {
		svc.Ready("")
		<-ctx.Done()
		return nil
	})
	n.started(t)
	before := monotonicUsec(t)
	signalSelf(t, syscall.SIGHUP)
	select {
	case <-reloaded:
	case <-time.After(5 * time.Second):
		t.Fatal("Reload was not called")
	}
	n.waitFor(t, "READY=1\nSTATUS=reloaded") // no status was set before
	after := monotonicUsec(t)
	msgs := n.settle(t)
	if len(msgs) != 3 || msgs[0] != "READY=1" || msgs[2] != "READY=1\nSTATUS=reloaded" {
		t.Fatalf("notifications %q, want READY=1, RELOADING=1…, READY=1\\nSTATUS=reloaded", msgs)
	}
	m := regexp.MustCompile(`\ARELOADING=1\nMONOTONIC_USEC=([0-9]+)\nSTATUS=reloading\z`).FindStringSubmatch(msgs[1])
	if m == nil {
		t.Fatalf("reloading notification %q", msgs[1])
	}
	if usec, _ := strconv.ParseInt(m[1], 10, 64); usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC=%d, not within the reload (%d to %d)", usec, before, after)
	}
	signalSelf(t, syscall.SIGTERM)
	if c := wait(t, code); c != ExitOK {
		t.Fatalf("exit status %d", c)
	}
}

func TestReloadingState(t *testing.T) {
	for in, want := range map[string]string{
		"MONOTONIC_USEC=42\n": "RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=reloading", // go-systemd's form
		"MONOTONIC_USEC=42":   "RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=reloading",
		"":                    "RELOADING=1\nSTATUS=reloading", // no monotonic clock
	} {
		if got := reloadingState(in); got != want {
			t.Errorf("reloadingState(%q) = %q, want %q", in, got, want)
		}
	}
}

// A healthy program feeds the watchdog at each round; one whose check
// hangs (until its context ends, as it should) does not, and says so
// once.
func TestWatchdogFollowsHealth(t *testing.T) {
	n := newNotifySocket(t)
	t.Setenv("WATCHDOG_USEC", "100000") // a round every 50 ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	var out testutil.Buffer
	opts := testOptions(&out)
	var hang atomic.Bool
	var hung atomic.Int32 // checks that hung
	opts.Health = func(ctx context.Context) error {
		if hang.Load() {
			hung.Add(1)
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}
	rounds := watchRounds(t, hung.Load)
	code := runAsync(opts, func(ctx context.Context, svc *Service) error {
		svc.Ready("")
		<-ctx.Done()
		return nil
	})
	n.started(t)

	for fed := 0; fed < 4; {
		if rounds.next(t).fed {
			fed++
		}
	}
	if k := count(n.settle(t), "WATCHDOG=1"); k < 4 {
		t.Fatalf("%d pings after 4 rounds that fed the watchdog", k)
	}

	hang.Store(true)
	// Checks run one at a time, so every round reported once one check
	// has hung saw a hanging check, or none.
	r := rounds.next(t)
	for r.probe == 0 {
		r = rounds.next(t)
	}
	pings := count(n.settle(t), "WATCHDOG=1")
	for i := 0; i < 4; i++ {
		if r.fed {
			t.Fatal("a round fed the watchdog while the check hangs")
		}
		r = rounds.next(t)
	}
	if k := count(n.settle(t), "WATCHDOG=1"); k != pings {
		t.Errorf("%d pings while the health check hangs, want none", k-pings)
	}
	signalSelf(t, syscall.SIGTERM)
	if c := wait(t, code); c != ExitOK {
		t.Errorf("exit status %d", c)
	}
	// The rounds after the last read fed nothing: no change is missed.
	rounds.checkLog(t, out.String())
}

// A Health check that ignores its context is not started again, and
// again, beside itself at every tick: one goroutine waits for it, not
// one per tick. The watchdog goes hungry meanwhile, is fed again once the
// check returns and a fresh one passes, and a hung check does not hold
// up shutdown.
func TestHealthCheckIgnoringItsContext(t *testing.T) {
	n := newNotifySocket(t)
	t.Setenv("WATCHDOG_USEC", "20000") // a round every 10 ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	var out testutil.Buffer
	opts := testOptions(&out)
	first, again := make(chan struct{}), released(t)
	var calls atomic.Int32
	var hangAgain atomic.Bool
	opts.Health = func(context.Context) error {
		if calls.Add(1) == 1 {
			<-first
		} else if hangAgain.Load() {
			<-again
		}
		return nil
	}
	rounds := watchRounds(t, nil)
	next := func() bool { t.Helper(); return rounds.next(t).fed }
	code := runAsync(opts, func(ctx context.Context, svc *Service) error {
		svc.Ready("")
		<-ctx.Done()
		return nil
	})
	n.started(t)

	for i := 0; i < 5; i++ {
		if next() {
			t.Fatal("a round fed the watchdog while the check hangs")
		}
	}
	goroutines := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		if next() {
			t.Fatal("a round fed the watchdog while the check hangs")
		}
	}
	if k := calls.Load(); k != 1 {
		t.Errorf("%d checks started in 55 rounds while the first hangs, want 1", k)
	}
	if g := runtime.NumGoroutine(); g > goroutines+2 {
		t.Errorf("%d goroutines after 50 more rounds, %d before: the hung checks pile up", g, goroutines)
	}
	if k := count(n.settle(t), "WATCHDOG=1"); k != 0 {
		t.Errorf("%d pings while the check hangs", k)
	}

	close(first)
	for !next() {
	}
	hangAgain.Store(true)
	for next() {
	}
	start := time.Now()
	signalSelf(t, syscall.SIGTERM)
	if c := wait(t, code); c != ExitOK {
		t.Errorf("exit status %d", c)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("stopping took %v with a hung check", took)
	}
	// The rounds after the last read fed nothing: no change is missed.
	rounds.checkLog(t, out.String())
	if rounds.failed != 2 || rounds.recovered != 1 {
		t.Errorf("%d failures and %d recoveries, want 2 and 1", rounds.failed, rounds.recovered)
	}
}

func TestExitStatuses(t *testing.T) {
	hold := released(t)
	tests := []struct {
		name    string
		fn      func(ctx context.Context, svc *Service) error
		want    int
		wantLog string
	}{
		{"returns nil", func(context.Context, *Service) error { return nil }, ExitOK, ""},
		{"returns an error", func(context.Context, *Service) error { return errors.New("config missing") },
			ExitError, "<3>service: the program ended with an error err=\"config missing\""},
		{"panics", func(context.Context, *Service) error { panic("boom") },
			ExitPanic, `<2>service: panic: boom panic=boom traceback="github.com/newstyle-go/newstyle/service.TestExitStatuses.func`},
		{"stop hook past the deadline", func(ctx context.Context, svc *Service) error {
			svc.OnStop("flush", func(ctx context.Context) error { <-hold; return nil })
			svc.OnStop("quick", func(context.Context) error { return nil })
			return nil
		}, ExitDeadline, "stop hooks still running hooks=flush"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newNotifySocket(t)
			var out testutil.Buffer
			opts := testOptions(&out)
			opts.ShutdownTimeout = 200 * time.Millisecond
			if c := wait(t, runAsync(opts, tt.fn)); c != tt.want {
				t.Fatalf("exit status %d, want %d; log:\n%s", c, tt.want, out.String())
			}
			if !strings.Contains(out.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, out.String())
			}
			if lines := strings.Count(out.String(), "\n"); tt.want == ExitPanic && lines != 1 {
				t.Errorf("the panic took %d lines, want 1", lines)
			}
		})
	}
}

func TestExitOnPanicInGoroutine(t *testing.T) {
	n := newNotifySocket(t)
	exited := make(chan int, 1)
	hold := released(t)
	orig := osExit
	osExit = func(code int) { exited <- code; <-hold } // the goroutine must not go on
	t.Cleanup(func() { osExit = orig })
	var out testutil.Buffer
	code := runAsync(testOptions(&out), func(ctx context.Context, svc *Service) error {
		svc.Ready("")
		svc.Go("worker", func() error { panic(errors.New("nil map")) })
		<-ctx.Done()
		return nil
	})
	n.started(t)
	select {
	case c := <-exited:
		if c != ExitPanic {
			t.Errorf("exit status %d, want %d", c, ExitPanic)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a panic in Go did not end the process")
	}
	log := out.String()
	if !strings.HasPrefix(log, "<2>service: panic: nil map") || strings.Count(log, "\n") != 1 {
		t.Errorf("log = %q, want one CRIT line", log)
	}
	checkTrace(t, log, "github.com/newstyle-go/newstyle/service.TestExitOnPanicInGoroutine.func")
	signalSelf(t, syscall.SIGTERM)
	wait(t, code)
}

// traceback returns the traceback field of a line of the stdout fallback.
func traceback(t *testing.T, line string) string {
	t.Helper()
	i := strings.Index(line, "traceback=")
	if i < 0 {
		t.Fatalf("no traceback: %q", line)
	}
	trace, err := strconv.Unquote(strings.TrimSuffix(line[i+len("traceback="):], "\n"))
	if err != nil {
		t.Fatalf("traceback of %q: %v", line, err)
	}
	return trace
}

// checkTrace checks that the traceback in line reads as every TRACEBACK
// of the module (slogcore.AppendStack's: a function, then its file and
// line, tab-indented, and so on) and starts at a function whose name
// starts with first: where the panic happened, not in its recovery.
func checkTrace(t *testing.T, line, first string) {
	t.Helper()
	trace := traceback(t, line)
	lines := strings.Split(strings.TrimSuffix(trace, "\n"), "\n")
	if !strings.HasSuffix(trace, "\n") || len(lines)%2 != 0 {
		t.Fatalf("traceback is not function and file:line lines, in pairs:\n%s", trace)
	}
	fileLine := regexp.MustCompile(`\A\t\S+\.(go|s):[0-9]+\z`)
	for i := 0; i < len(lines); i += 2 {
		if !strings.HasSuffix(lines[i], "(...)") || strings.HasPrefix(lines[i], "\t") || !fileLine.MatchString(lines[i+1]) {
			t.Fatalf("lines %d and %d are no frame (func(...), then \\tfile:line):\n%s", i+1, i+2, trace)
		}
	}
	if !strings.HasPrefix(lines[0], first) {
		t.Errorf("traceback starts at %s, want %s…:\n%s", lines[0], first, trace)
	}
	for _, recovery := range []string{"runtime.gopanic(", "service.(*Service).ExitOnPanic(", "service.panicTrace(",
		"service.(*Service).logPanic(", "service.(*Service).run.func2.1(", "runtime.Callers(", "slogcore.callers("} {
		if strings.Contains(trace, "\n"+recovery) || strings.Contains(trace, "/"+recovery) {
			t.Errorf("traceback holds the recovery's frames (%s):\n%s", recovery, trace)
		}
	}
}

func TestPanicTraceStartsAtThePanic(t *testing.T) {
	newNotifySocket(t)
	var out testutil.Buffer
	if c := Run(ptr(testOptions(&out)), func(context.Context, *Service) error { panicHere(); return nil }); c != ExitPanic {
		t.Fatalf("exit status %d", c)
	}
	checkTrace(t, out.String(), "github.com/newstyle-go/newstyle/service.panicHere(...)")
	if trace := traceback(t, out.String()); !strings.Contains(trace, "\ngithub.com/newstyle-go/newstyle/service.TestPanicTraceStartsAtThePanic.func1(...)\n\t") {
		t.Errorf("the panicking function's caller is not next:\n%s", trace)
	}
}

// A run-time panic is raised in the runtime (runtime.mapassign, sigpanic
// and so on), but it is the program's function that caused it.
func TestPanicTraceOfRuntimeError(t *testing.T) {
	for _, tt := range []struct {
		fn   func()
		name string
	}{
		{panicHere, "panicHere"},
		{nilMapHere, "nilMapHere"},
		{nilPointerHere, "nilPointerHere"},
		{indexHere, "indexHere"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out testutil.Buffer
			exited := false
			svc := &Service{logger: newstyle.NewLogger(&newstyle.Options{Target: newstyle.TargetStdout, Stdout: &out}),
				exit: func(int) { exited = true }}
			func() {
				defer svc.ExitOnPanic()
				tt.fn()
			}()
			if !exited || !strings.HasPrefix(out.String(), "<2>service: panic: ") {
				t.Fatalf("exited %v, log %q", exited, out.String())
			}
			checkTrace(t, out.String(), "github.com/newstyle-go/newstyle/service."+tt.name+"(...)")
		})
	}
}

func panicHere() { panic("here") }

var (
	nilMap     map[string]int
	nilPtr     *int
	outOfRange = 3
)

func nilMapHere()     { nilMap["x"] = 1 }
func nilPointerHere() { *nilPtr = 1 }
func indexHere()      { _ = []int{}[outOfRange] }

func TestShutdownWaitsForTheFunction(t *testing.T) {
	n := newNotifySocket(t)
	var out testutil.Buffer
	opts := testOptions(&out)
	opts.ShutdownTimeout = 200 * time.Millisecond
	hold := released(t)
	code := runAsync(opts, func(ctx context.Context, svc *Service) error {
		svc.Ready("")
		<-ctx.Done()
		<-hold // ignores the stop
		return nil
	})
	n.started(t)
	start := time.Now()
	signalSelf(t, syscall.SIGTERM)
	if c := wait(t, code); c != ExitDeadline {
		t.Fatalf("exit status %d, want %d", c, ExitDeadline)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("shutdown took %v, want about the 200ms deadline", took)
	}
	if !strings.Contains(out.String(), "the program's function has not returned") {
		t.Errorf("log:\n%s", out.String())
	}
}

func TestListenerErrors(t *testing.T) {
	if got, want := ErrNotActivated.Error(), "service: not socket-activated"; got != want {
		t.Errorf("ErrNotActivated = %q, want %q", got, want)
	}
	if got, want := ErrNoSuchSocket.Error(), "service: no socket of that name"; got != want {
		t.Errorf("ErrNoSuchSocket = %q, want %q", got, want)
	}
}

func TestListenerWithoutActivation(t *testing.T) {
	t.Setenv("LISTEN_FDS", "")
	svc := &Service{}
	if svc.Activated("http") {
		t.Error("Activated without LISTEN_FDS")
	}
	ln, err := svc.Listener("http", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	_, err = (&Service{}).Listener("http", "")
	if !errors.Is(err, ErrNotActivated) {
		t.Errorf("Listener without fallback = %v, want ErrNotActivated", err)
	}
	if want := `service: not socket-activated, and no address to listen on for socket "http"`; err == nil || err.Error() != want {
		t.Errorf("Listener without fallback = %v, want %q", err, want)
	}
}

// TestListenerActivated passes a listening socket as systemd does (fd 3,
// LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID) to a child, which is this test
// binary again.
func TestListenerActivated(t *testing.T) {
	if os.Getenv("SERVICE_TEST_ACTIVATED") == "1" {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid())) // systemd knows the pid; a parent here cannot
		svc := &Service{}
		// Asked before Listener, which must still hand the socket out.
		if !svc.Activated("http") || svc.Activated("admin") {
			t.Fatalf("Activated(http) = %v, Activated(admin) = %v; want true, false", svc.Activated("http"), svc.Activated("admin"))
		}
		if v, ok := os.LookupEnv("LISTEN_FDNAMES"); ok {
			t.Errorf("LISTEN_FDNAMES=%q is still set: a child would take the sockets too", v)
		}
		ln, err := svc.Listener("http", "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = svc.Listener("admin", "127.0.0.1:0")
		if want := `service: no socket of that name: "admin" (systemd passed http)`; !errors.Is(err, ErrNoSuchSocket) || err.Error() != want {
			t.Fatalf("Listener(admin) = %v, want %q", err, want)
		}
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("from the activated child"))
		c.Close()
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestListenerActivated$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SERVICE_TEST_ACTIVATED=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=http")
	cmd.ExtraFiles = []*os.File{f}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	addr := ln.Addr().String()
	ln.Close() // the child holds the socket now
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var got bytes.Buffer
	got.ReadFrom(conn)
	conn.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
	if got.String() != "from the activated child" {
		t.Errorf("got %q from the activated socket", got.String())
	}
}

func TestNotSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	var out testutil.Buffer
	c := Run(ptr(testOptions(&out)), func(ctx context.Context, svc *Service) error {
		svc.Ready("up")
		svc.Status("busy")
		return nil
	})
	if c != ExitOK || strings.Contains(out.String(), "sd_notify failed") {
		t.Errorf("exit %d, log:\n%s", c, out.String())
	}
}

// A reload keeps the program's status, and a stop during a reload stops
// at once, cancelling the reload.
func TestReloadKeepsStatusAndYieldsToStop(t *testing.T) {
	n := newNotifySocket(t)
	var out testutil.Buffer
	opts := testOptions(&out)
	calls := 0
	inReload := make(chan struct{})
	opts.Reload = func(ctx context.Context) error {
		calls++
		if calls == 1 {
			return nil
		}
		close(inReload)
		<-ctx.Done() // a reload that would hang
		return ctx.Err()
	}
	code := runAsync(opts, func(ctx context.Context, svc *Service) error {
		svc.Ready("serving on :8080")
		<-ctx.Done()
		return nil
	})
	n.started(t)
	signalSelf(t, syscall.SIGHUP)
	n.await(t, "READY=1 after the reload", func(msgs []string, _ int) bool {
		return count(msgs, "READY=1\nSTATUS=serving on :8080") == 2
	})
	signalSelf(t, syscall.SIGHUP)
	select {
	case <-inReload:
	case <-time.After(5 * time.Second):
		t.Fatal("the second reload did not start")
	}
	start := time.Now()
	signalSelf(t, syscall.SIGTERM)
	if c := wait(t, code); c != ExitOK {
		t.Fatalf("exit status %d; log:\n%s", c, out.String())
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("stop during a hung reload took %v", took)
	}
	var ready []string
	for _, m := range n.settle(t) {
		if strings.HasPrefix(m, "READY=1") {
			ready = append(ready, m)
		}
	}
	if len(ready) != 2 || ready[1] != "READY=1\nSTATUS=serving on :8080" {
		t.Errorf("READY notifications %q: the reload lost the status, or the cancelled one said READY", ready)
	}
}

func TestExitOnPanicLetsAbortHandlerThrough(t *testing.T) {
	var out testutil.Buffer
	svc := &Service{logger: newstyle.NewLogger(&newstyle.Options{Target: newstyle.TargetStdout, Stdout: &out}),
		exit: func(int) { t.Error("ErrAbortHandler ended the process") }}
	var got any
	func() {
		defer func() { got = recover() }()
		func() {
			defer svc.ExitOnPanic()
			panic(http.ErrAbortHandler)
		}()
	}()
	if got != http.ErrAbortHandler {
		t.Errorf("recovered %v, want http.ErrAbortHandler panicked again", got)
	}
	if out.String() != "" {
		t.Errorf("logged %q", out.String())
	}
}

// SIGABRT, systemd's watchdog signal, logs every goroutine's stack in one
// record, in the runtime's format, and exits 2.
func TestAbortLogsAllStacks(t *testing.T) {
	n := newNotifySocket(t)
	exited := make(chan int, 1)
	orig := osExit
	osExit = func(code int) { exited <- code }
	t.Cleanup(func() { osExit = orig })
	var out testutil.Buffer
	stuck := released(t)
	code := runAsync(testOptions(&out), func(ctx context.Context, svc *Service) error {
		go stuckHere(stuck)
		svc.Ready("")
		<-ctx.Done()
		return nil
	})
	n.started(t)
	signalSelf(t, syscall.SIGABRT)
	if c := wait(t, code); c != ExitPanic {
		t.Fatalf("exit status %d, want %d", c, ExitPanic)
	}
	if c := <-exited; c != ExitPanic {
		t.Errorf("exit %d", c)
	}
	line := out.String()
	if strings.Count(line, "\n") != 1 || !strings.HasPrefix(line, "<2>service: aborted") {
		t.Fatalf("log = %q, want one CRIT line", line)
	}
	trace := traceback(t, line)
	if !strings.Contains(trace, "service.stuckHere(") {
		t.Errorf("the dump lacks the stuck goroutine: %s", trace)
	}
	if !strings.HasPrefix(trace, "goroutine ") || !strings.Contains(trace, "\n\ngoroutine ") {
		t.Errorf("the dump is not in the runtime's format, goroutine by goroutine: %s", trace)
	}
}

func stuckHere(c chan struct{}) { <-c }

// asyncOptions log to a journald stand-in through an asynchronous Writer
// that holds records until it is flushed (Linger of an hour).
func asyncOptions(t *testing.T) (Options, *journaltest.Server) {
	srv := journaltest.NewServer(t)
	return Options{
		Log: &newstyle.Options{Target: newstyle.TargetJournal, SocketPath: srv.Path(), Stdout: io.Discard,
			Async: &journal.AsyncOptions{Linger: time.Hour, SyncPriority: journal.NoSyncPriority}},
		ShutdownTimeout: 2 * time.Second,
	}, srv
}

// hasMessage reports whether srv got an entry with MESSAGE msg.
func hasMessage(srv *journaltest.Server, msg string) bool {
	for _, e := range srv.Entries() {
		if m, _ := e.Get("MESSAGE"); m == msg {
			return true
		}
	}
	return false
}

// The records an asynchronous logger holds are in the journal before the
// program ends, whichever way it ends: fn returns, a goroutine of Go
// panics, systemd's watchdog sends SIGABRT.
func TestAsyncLogsFlushedOnEveryWayOut(t *testing.T) {
	t.Run("return", func(t *testing.T) {
		opts, srv := asyncOptions(t)
		newNotifySocket(t)
		code := Run(&opts, func(ctx context.Context, svc *Service) error {
			svc.Logger().Info("queued before the return")
			return nil
		})
		if code != ExitOK {
			t.Fatalf("exit status %d", code)
		}
		// Run flushed: the entry is in the socket; the stand-in reads it.
		if !testutil.Poll(5*time.Second, time.Millisecond, func() bool { return hasMessage(srv, "queued before the return") }) {
			t.Fatal("the queued record is not in the journal after Run returned")
		}
	})
	for _, way := range []string{"panic in Go", "SIGABRT"} {
		t.Run(way, func(t *testing.T) {
			opts, srv := asyncOptions(t)
			n := newNotifySocket(t)
			exited := make(chan bool, 1)
			hold := released(t)
			orig := osExit
			osExit = func(int) {
				// Checked when the process would end: nothing later counts.
				exited <- hasMessage(srv, "queued before the end")
				if way == "panic in Go" {
					<-hold // the panicking goroutine must not go on
				}
			}
			t.Cleanup(func() { osExit = orig })
			code := runAsync(opts, func(ctx context.Context, svc *Service) error {
				svc.Logger().Info("queued before the end")
				svc.Ready("")
				if way == "panic in Go" {
					svc.Go("worker", func() error { panic("boom") })
				}
				<-ctx.Done()
				return nil
			})
			n.started(t)
			if way == "SIGABRT" {
				signalSelf(t, syscall.SIGABRT)
			}
			var flushed bool
			select {
			case flushed = <-exited:
			case <-time.After(10 * time.Second):
				t.Fatal("the process did not end")
			}
			// The stand-in reads asynchronously: give it the moment it needs
			// before concluding the record was not in the socket.
			if !flushed && !testutil.Poll(5*time.Second, time.Millisecond, func() bool { return hasMessage(srv, "queued before the end") }) {
				t.Error("the queued record is not in the journal when the process ends")
			}
			if way == "panic in Go" {
				signalSelf(t, syscall.SIGTERM)
			}
			wait(t, code)
		})
	}
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }
