//go:build linux

package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/internal/testutil"
)

// systemdSees returns the assignments systemd reads from a notification
// (src/core/manager.c, manager_dispatch_notify_fd), or ok false when it
// ignores it whole: a datagram over 4096 bytes, or with a NUL in it. The
// rest is split into lines at '\n' and at '\r'.
func systemdSees(msg string) (assignments []string, ok bool) {
	if len(msg) > 4096 || strings.IndexByte(msg, 0) >= 0 {
		return nil, false
	}
	return strings.FieldsFunc(msg, func(r rune) bool { return r == '\n' || r == '\r' }), true
}

// ours are the assignments the library sends, with the one value each
// may have ("" for any).
var ours = map[string]string{
	"READY": "1", "RELOADING": "1", "STOPPING": "1", "WATCHDOG": "1",
	"STATUS": "", "MONOTONIC_USEC": "", "EXTEND_TIMEOUT_USEC": "",
}

// assertSystemdSees checks msgs, the notifications of one run, as systemd
// reads them: none it would ignore, no assignment but the library's own,
// one STATUS= a notification at most, in UTF-8, one STOPPING=1 at most,
// and nothing after it that says the program is up or reloading. It
// returns the assignments, in order.
func assertSystemdSees(t *testing.T, msgs []string) []string {
	t.Helper()
	var all []string
	stopping := false
	for _, m := range msgs {
		as, ok := systemdSees(m)
		if !assert.Truef(t, ok, "systemd ignores the notification (%d bytes) %q", len(m), m) {
			continue
		}
		statuses := 0
		for _, a := range as {
			name, value, _ := strings.Cut(a, "=")
			want, known := ours[name]
			assert.Truef(t, known && (want == "" || value == want), "assignment %q of %q is not the library's", a, m)
			if name == "STATUS" {
				statuses++
				assert.Truef(t, utf8.ValidString(value), "systemd ignores a STATUS= that is not UTF-8: %q", a)
			}
			if stopping {
				assert.NotContainsf(t, []string{"READY=1", "RELOADING=1", "STOPPING=1"}, a, "%q after STOPPING=1 in %q", a, msgs)
			}
			stopping = stopping || a == "STOPPING=1"
		}
		assert.LessOrEqualf(t, statuses, 1, "STATUS= %d times in %q", statuses, m)
		all = append(all, as...)
	}
	return all
}

// statuses returns the STATUS= values among assignments.
func statuses(assignments []string) []string {
	var s []string
	for _, a := range assignments {
		if v, ok := strings.CutPrefix(a, "STATUS="); ok {
			s = append(s, v)
		}
	}
	return s
}

// viewProbe is what a case of TestWhatSystemdSees drives Run with.
type viewProbe struct {
	n    *notifySocket // the notify socket that records; nil if the case has none
	out  testutil.Buffer
	opts Options
}

func (p *viewProbe) run(fn func(ctx context.Context, svc *Service) error) <-chan int {
	return runAsync(p.opts, fn)
}

// stop sends SIGTERM, and returns Run's exit status, checking that Run
// returned within bound.
func (p *viewProbe) stop(t *testing.T, code <-chan int, bound time.Duration) int {
	t.Helper()
	start := time.Now()
	signalSelf(t, syscall.SIGTERM)
	c := wait(t, code)
	assert.LessOrEqualf(t, time.Since(start), bound, "the stop took longer than its bound")
	return c
}

// crit counts the CRIT entries logged (stdout lines <2>).
func (p *viewProbe) crit() int {
	k := 0
	for _, line := range p.out.Lines() {
		if strings.HasPrefix(line, "<2>") {
			k++
		}
	}
	return k
}

// viewCase is a case of TestWhatSystemdSees: one of issue 22's, with its
// inputs.
type viewCase struct {
	name     string
	wantExit int // Run's
	wantCrit int // CRIT entries: one for each panic
	// run drives a real Run and returns its exit status.
	run func(t *testing.T, p *viewProbe) int
	// child, when set, is what runs in a child process of the test
	// binary, which run starts: socket activation passes fds from 3 on.
	child func(t *testing.T)
}

// childCase names the case a child process of TestWhatSystemdSees runs.
const childCase = "SERVICE_TEST_VIEW_CASE"

// TestWhatSystemdSees drives a real Run through each case of issue 22,
// with its inputs, against a notify socket that records what arrives, and
// checks what systemd makes of it: no assignment but the library's own,
// no notification systemd would ignore, nothing after STOPPING=1 that
// says the program is up or reloading; every stop within its bound; one
// CRIT entry for each panic, of any value; every passed socket served or
// refused with an error.
func TestWhatSystemdSees(t *testing.T) {
	cases := viewCases()
	if name := os.Getenv(childCase); name != "" {
		for _, c := range cases {
			if c.name == name {
				c.child(t)
				return
			}
		}
		t.Fatalf("no case %q", name)
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			p := &viewProbe{opts: Options{ShutdownTimeout: 2 * time.Second}}
			p.opts.Log = &newstyle.Options{Target: newstyle.TargetStdout, Stdout: &p.out}
			code := tt.run(t, p)
			assert.Equalf(t, tt.wantExit, code, "exit status; log:\n%s", p.out.String())
			assert.Equalf(t, tt.wantCrit, p.crit(), "CRIT entries; log:\n%s", p.out.String())
			if p.n != nil {
				assertSystemdSees(t, p.n.settle(t))
			}
		})
	}
}

func viewCases() []viewCase {
	cases := []viewCase{
		// 1. A status can add no assignment: every control character is
		// escaped, in the program's status and in the library's own text
		// that quotes a reload's error.
		{name: "1 status with CR", run: func(t *testing.T, p *viewProbe) int {
			p.n = newNotifySocket(t)
			const injected = "ok\rMAINPID=1\rWATCHDOG=trigger\rSTOPPING=1"
			var controls string
			for c := 0; c < 0x20; c++ {
				controls += string(rune(c))
			}
			controls += "\x7f\u0085\u2028\u202e\xff é ok"
			code := p.run(func(ctx context.Context, svc *Service) error {
				svc.Ready(injected)
				svc.Status(injected)
				svc.Status(controls)
				<-ctx.Done()
				return nil
			})
			p.n.await(t, "three statuses", func(msgs []string, _ int) bool { return len(msgs) == 3 })
			c := p.stop(t, code, p.opts.ShutdownTimeout)
			escaped := `ok\rMAINPID=1\rWATCHDOG=trigger\rSTOPPING=1`
			assert.Equal(t, []string{escaped, escaped,
				`\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f\u0085\u2028\u202e\xff é ok`,
				"stopping"}, statuses(assertSystemdSees(t, p.n.settle(t))))
			return c
		}},
		{name: "1 reload error with CR", run: func(t *testing.T, p *viewProbe) int {
			c, seen := reloadFailing(t, p, errors.New("bad\rMAINPID=1\nSTOPPING=1"))
			assert.Equal(t, []string{"serving", "reloading", `serving (last reload failed: bad\rMAINPID=1\nSTOPPING=1)`, "stopping"},
				statuses(seen))
			return c
		}},

		// 2. A notification systemd would ignore is never sent: NULs are
		// escaped, a status is cut to fit 4096 bytes; READY=1 arrives.
		{name: "2 NUL in the status", run: func(t *testing.T, p *viewProbe) int {
			p.n = newNotifySocket(t)
			code := p.run(untilStopped("a\x00b"))
			p.n.started(t)
			c := p.stop(t, code, p.opts.ShutdownTimeout)
			assert.Equal(t, []string{"READY=1", `STATUS=a\x00b`, "STOPPING=1", "STATUS=stopping"}, assertSystemdSees(t, p.n.settle(t)))
			return c
		}},
		{name: "2 status over 4096 bytes", run: func(t *testing.T, p *viewProbe) int {
			p.n = newNotifySocket(t)
			code := p.run(func(ctx context.Context, svc *Service) error {
				svc.Ready(strings.Repeat("x", 5000))
				svc.Status(strings.Repeat("é", 3000))
				svc.Status(strings.Repeat("\x00", 2000))
				<-ctx.Done()
				return nil
			})
			p.n.await(t, "three notifications", func(msgs []string, _ int) bool { return len(msgs) == 3 })
			c := p.stop(t, code, p.opts.ShutdownTimeout)
			msgs := p.n.settle(t)
			as := assertSystemdSees(t, msgs)
			require.Len(t, msgs, 4)
			assert.Len(t, msgs[0], 4096, "cut to fit exactly")
			assert.Equal(t, "READY=1", as[0])
			st := statuses(as)
			require.Len(t, st, 4)
			assert.Equal(t, strings.Repeat("x", 4096-len("READY=1\nSTATUS=")-len("…"))+"…", st[0])
			assert.Regexp(t, `\A(é)+…\z`, st[1])
			assert.Regexp(t, `\A(\\x00)+…\z`, st[2], "cut between escapes")
			return c
		}},
		{name: "2 reload error over 4096 bytes", run: func(t *testing.T, p *viewProbe) int {
			c, seen := reloadFailing(t, p, errors.New(strings.Repeat("e", 5000)))
			assert.Equal(t, 2, count(seen, "READY=1"), "the reload's READY=1 is lost: %q", seen)
			return c
		}},

		// 3. A notify socket that does not read holds nothing up for
		// longer than a notification's bound: not Ready, not the stop
		// hooks, not the stop; failures are logged once, then counted.
		{name: "3 notify socket that does not read", run: func(t *testing.T, p *viewProbe) int {
			stuckNotifySocket(t)
			t.Setenv("WATCHDOG_USEC", "100000")
			t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
			p.opts.ShutdownTimeout = notifyTimeout + time.Second
			entered := make(chan struct{})
			var readyTook time.Duration
			hookStarted := make(chan time.Time, 1)
			code := p.run(func(ctx context.Context, svc *Service) error {
				svc.OnStop("hook", func(context.Context) error { hookStarted <- time.Now(); return nil })
				close(entered)
				start := time.Now()
				svc.Ready("up")
				readyTook = time.Since(start)
				<-ctx.Done()
				return nil
			})
			<-entered
			stopped := time.Now()
			c := p.stop(t, code, p.opts.ShutdownTimeout)
			assert.LessOrEqual(t, readyTook, notifyTimeout+time.Second, "Ready waited longer than a notification's bound")
			select {
			case at := <-hookStarted:
				assert.Less(t, at.Sub(stopped), time.Second, "the stop hook waited for STOPPING=1")
			default:
				t.Error("the stop hook did not run")
			}
			log := p.out.String()
			assert.Equal(t, 1, strings.Count(log, "sd_notify failed"), log)
			assert.Contains(t, log, "i/o timeout")
			return c
		}},
		{name: "3 notify socket gone, then back", run: func(t *testing.T, p *viewProbe) int {
			path := filepath.Join(t.TempDir(), "notify")
			t.Setenv("NOTIFY_SOCKET", path)
			t.Setenv("WATCHDOG_USEC", "20000") // a ping every 10 ms
			t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
			rounds := watchRounds(t, nil)
			code := p.run(untilStopped(""))
			for i := 0; i < 30; i++ {
				rounds.next(t)
			}
			p.n = listenNotify(t, path)
			p.n.waitFor(t, "WATCHDOG=1")
			c := p.stop(t, code, p.opts.ShutdownTimeout)
			log := p.out.String()
			assert.Equal(t, 1, strings.Count(log, "sd_notify failed"), log)
			m := regexp.MustCompile(`sd_notify works again failed=([0-9]+)`).FindStringSubmatch(log)
			if assert.NotNil(t, m, log) {
				failed, _ := strconv.Atoi(m[1])
				assert.GreaterOrEqual(t, failed, 30, "READY=1 and a ping a round failed")
			}
			return c
		}},

		// 5. Several sockets under one name are all served; a socket that
		// does not listen is refused with an error, and logged.
		{name: "5 two sockets under one name, a datagram socket and a FIFO", child: childTwoSockets, run: runTwoSockets},

		// 6 and 11. In a flood of SIGHUPs, SIGTERM is never lost, and no
		// reload starts once the stop has begun.
		{name: "6 and 11 SIGHUP flood around SIGTERM", run: runHangupFlood},

		// 7. Ready, waiting for the bus, gives way to a stop: no 5 s
		// wait, no READY=1 after STOPPING=1.
		{name: "7 stop while Ready waits for a bus that does not answer", run: func(t *testing.T, p *viewProbe) int {
			p.n = newNotifySocket(t)
			muteBus(t)
			t.Setenv(EnvBusName, "")
			p.opts.BusName = testBusName
			entered, readied := make(chan struct{}), make(chan struct{})
			code := p.run(func(ctx context.Context, svc *Service) error {
				close(entered)
				svc.Ready("up")
				close(readied)
				<-ctx.Done()
				return nil
			})
			<-entered
			c := p.stop(t, code, p.opts.ShutdownTimeout)
			select {
			case <-readied:
			default:
				t.Error("Ready still waits")
			}
			assert.Equal(t, []string{"STOPPING=1", "STATUS=stopping"}, assertSystemdSees(t, p.n.settle(t)))
			return c
		}},

		// 8. A LISTEN_FDS that counts descriptors systemd did not pass
		// takes none of Go's own: the program goes on.
		{name: "8 LISTEN_FDS=99999 with our own LISTEN_PID", child: childBogusListenFDs, run: runBogusListenFDs},

		// 9. An end without a return is a crash: logged, exit status 2.
		{name: "9 runtime.Goexit in the program's function", wantExit: ExitPanic, wantCrit: 1, run: func(t *testing.T, p *viewProbe) int {
			return runCrash(t, p, goexitHere, "<2>service: the program's function ended without returning: runtime.Goexit panic=runtime.Goexit",
				"github.com/newstyle-go/newstyle/service.goexitHere(...)")
		}},
		{name: "9 panic(nil) under GODEBUG=panicnil=1", wantExit: ExitPanic, wantCrit: 1, run: func(t *testing.T, p *viewProbe) int {
			t.Setenv("GODEBUG", "panicnil=1")
			return runCrash(t, p, panicNilHere, "<2>service: panic: panic called with nil argument panic=\"panic called with nil argument\"",
				"github.com/newstyle-go/newstyle/service.panicNilHere(...)")
		}},
		{name: "9 panic(nil)", wantExit: ExitPanic, wantCrit: 1, run: func(t *testing.T, p *viewProbe) int {
			return runCrash(t, p, panicNilHere, "<2>service: panic: panic called with nil argument panic=\"panic called with nil argument\"",
				"github.com/newstyle-go/newstyle/service.panicNilHere(...)")
		}},
		{name: "9 runtime.Goexit in a goroutine of Go", wantCrit: 1, run: func(t *testing.T, p *viewProbe) int {
			p.n = newNotifySocket(t)
			exited := make(chan int, 1)
			orig := osExit
			osExit = func(code int) { exited <- code }
			t.Cleanup(func() { osExit = orig })
			code := p.run(func(ctx context.Context, svc *Service) error {
				svc.Ready("")
				svc.Go("worker", func() error { goexitHere(); return nil })
				<-ctx.Done()
				return nil
			})
			select {
			case c := <-exited:
				assert.Equal(t, ExitPanic, c)
			case <-time.After(5 * time.Second):
				t.Fatal("runtime.Goexit in Go did not end the process")
			}
			line := p.out.Lines()[0]
			assert.True(t, strings.HasPrefix(line, `<2>service: goroutine "worker" ended without returning: runtime.Goexit`), line)
			checkTrace(t, line, "github.com/newstyle-go/newstyle/service.goexitHere(...)")
			return p.stop(t, code, p.opts.ShutdownTimeout)
		}},
	}

	// 4. A panic of any value is one CRIT entry, with the value written
	// as the handlers write a value whose method panics.
	panics := append(testutil.PanickyValues(), testutil.PanickyValue{Name: "string", Value: "boom", Want: "boom"})
	for _, v := range panics {
		cases = append(cases, viewCase{name: "4 panic with " + v.Name, wantExit: ExitPanic, wantCrit: 1,
			run: func(t *testing.T, p *viewProbe) int {
				return runCrash(t, p, func() { panic(v.Value) }, "<2>service: panic: "+v.Want, "")
			}})
	}

	// 10. WATCHDOG_USEC out of range: no watchdog, one warning; none for
	// one in range, which is fed.
	for _, usec := range []string{"9223372036854776", "18446744073709552", "18446744073709551615", "0", "-1", "1e6"} {
		cases = append(cases, viewCase{name: "10 WATCHDOG_USEC=" + usec, run: func(t *testing.T, p *viewProbe) int {
			return runWatchdogUsec(t, p, usec, false)
		}})
	}
	cases = append(cases, viewCase{name: "10 WATCHDOG_USEC=200000", run: func(t *testing.T, p *viewProbe) int {
		return runWatchdogUsec(t, p, "200000", true)
	}})
	// In the order.
	sort.SliceStable(cases, func(i, j int) bool { return caseNumber(cases[i].name) < caseNumber(cases[j].name) })
	return cases
}

// caseNumber is the number of the case a name starts with.
func caseNumber(name string) int {
	n, _ := strconv.Atoi(strings.Fields(name)[0])
	return n
}

// untilStopped is a program that says Ready, with status, and runs until
// it is stopped.
func untilStopped(status string) func(context.Context, *Service) error {
	return func(ctx context.Context, svc *Service) error {
		svc.Ready(status)
		<-ctx.Done()
		return nil
	}
}

// reloadFailing runs a program that is ready ("serving"), reloads once,
// Reload failing with err, and is stopped; it returns Run's exit status
// and what systemd read.
func reloadFailing(t *testing.T, p *viewProbe, err error) (int, []string) {
	p.n = newNotifySocket(t)
	p.opts.Reload = func(context.Context) error { return err }
	code := p.run(untilStopped("serving"))
	p.n.started(t)
	signalSelf(t, syscall.SIGHUP)
	p.n.await(t, "READY=1 after the reload", func(msgs []string, _ int) bool { return countPrefix(msgs, "READY=1") == 2 })
	c := p.stop(t, code, p.opts.ShutdownTimeout)
	return c, assertSystemdSees(t, p.n.settle(t))
}

func goexitHere()   { runtime.Goexit() }
func panicNilHere() { panic(nil) }

// runCrash runs a program whose function calls crash after Ready, and
// checks the one line it logs (starting with want), its traceback
// (starting at the function first, when not empty), that STOPPING=1 was
// sent and the stop hooks ran.
func runCrash(t *testing.T, p *viewProbe, crash func(), want, first string) int {
	p.n = newNotifySocket(t)
	hooked := false
	c := wait(t, p.run(func(ctx context.Context, svc *Service) error {
		svc.OnStop("hook", func(context.Context) error { hooked = true; return nil })
		svc.Ready("")
		crash()
		return nil
	}))
	lines := p.out.Lines()
	require.Len(t, lines, 1, "one entry")
	assert.True(t, strings.HasPrefix(lines[0], want), "log %q, want %q…", lines[0], want)
	if first != "" {
		checkTrace(t, lines[0], first)
	}
	assert.True(t, hooked, "the stop hook did not run")
	assert.Contains(t, assertSystemdSees(t, p.n.settle(t)), "STOPPING=1")
	return c
}

// runWatchdogUsec runs a program with WATCHDOG_USEC=usec, and checks that
// the watchdog is fed, or else not fed and said so once.
func runWatchdogUsec(t *testing.T, p *viewProbe, usec string, fed bool) int {
	p.n = newNotifySocket(t)
	t.Setenv("WATCHDOG_USEC", usec)
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	code := p.run(untilStopped(""))
	if fed {
		p.n.waitFor(t, "WATCHDOG=1")
	} else {
		p.n.started(t)
		// A watchdog of a few nanoseconds pings many times in the time
		// of one more notification, and another goroutine.
		p.n.settle(t)
	}
	c := p.stop(t, code, p.opts.ShutdownTimeout)
	pings := count(assertSystemdSees(t, p.n.settle(t)), "WATCHDOG=1")
	warned := strings.Count(p.out.String(), "watchdog settings unreadable")
	if fed {
		assert.Positive(t, pings)
		assert.Zero(t, warned, p.out.String())
	} else {
		assert.Zero(t, pings, "pings with WATCHDOG_USEC=%s", usec)
		assert.Equal(t, 1, warned, p.out.String())
	}
	return c
}

// stuckNotifySocket makes NOTIFY_SOCKET a socket that does not read, its
// queue full: every send to it blocks.
func stuckNotifySocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stuck")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	require.NoError(t, unix.Bind(fd, &unix.SockaddrUnix{Name: path}))
	c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(c)
	require.NoError(t, unix.Connect(c, &unix.SockaddrUnix{Name: path}))
	for i := 0; ; i++ {
		err := unix.Send(c, []byte("X=1"), 0)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		require.NoError(t, err)
		require.Less(t, i, 100000, "the queue does not fill")
	}
	t.Setenv("NOTIFY_SOCKET", path)
}

// muteBus makes the system bus one that accepts connections and never
// answers.
func muteBus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mute")
	ln, err := net.Listen("unix", path)
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+path)
}

// runHangupFlood floods the process with SIGHUP around a SIGTERM, as the
// probe did, several times over: the stop is never lost (Run returns
// within its bound), and no reload starts once it has begun (no
// RELOADING=1 or READY=1 after STOPPING=1, and Reload is called only
// after a RELOADING=1 of its own).
func runHangupFlood(t *testing.T, p *viewProbe) int {
	// SIGHUPs that come after Run has stopped taking them must not end
	// the test binary.
	spare := make(chan os.Signal, 1)
	signal.Notify(spare, syscall.SIGHUP)
	defer signal.Stop(spare)
	p.opts.ShutdownTimeout = time.Second
	for i := 0; i < 12; i++ {
		n := newNotifySocket(t)
		var calls atomic.Int32
		reloaded := make(chan struct{}, 1)
		p.opts.Reload = func(context.Context) error {
			calls.Add(1)
			select {
			case reloaded <- struct{}{}:
			default:
			}
			return nil
		}
		code := p.run(untilStopped(""))
		n.started(t)
		var stop atomic.Bool
		flooded := make(chan struct{})
		go func() {
			defer close(flooded)
			for !stop.Load() {
				syscall.Kill(os.Getpid(), syscall.SIGHUP)
				runtime.Gosched()
			}
		}()
		<-reloaded
		<-reloaded
		c := p.stop(t, code, p.opts.ShutdownTimeout)
		stop.Store(true)
		<-flooded
		require.Equal(t, ExitOK, c, "run %d; log:\n%s", i, p.out.String())
		as := assertSystemdSees(t, n.settle(t))
		require.Equal(t, 1, count(as, "STOPPING=1"), "run %d: %q", i, as)
		reloads := count(as, "RELOADING=1")
		assert.LessOrEqual(t, int(calls.Load()), reloads, "run %d: Reload called without RELOADING=1", i)
		assert.GreaterOrEqual(t, int(calls.Load()), reloads-1, "run %d: RELOADING=1 without Reload, more than once", i)
		if t.Failed() {
			break
		}
	}
	return ExitOK
}

// runTwoSockets passes two listening TCP sockets under the name http, a
// UDP socket under dns and a pipe under fifo to a child
// (LISTEN_FDNAMES=http:http:dns:fifo), which serves one connection on
// each of the two, and is refused the others.
func runTwoSockets(t *testing.T, p *viewProbe) int {
	p.n = newNotifySocket(t)
	var files []*os.File
	var addrs []string
	for i := 0; i < 2; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		f, err := ln.(*net.TCPListener).File()
		require.NoError(t, err)
		addrs = append(addrs, ln.Addr().String())
		ln.Close() // the child holds the socket now
		files = append(files, f)
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	f, err := udp.(*net.UDPConn).File()
	require.NoError(t, err)
	udp.Close()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer w.Close()
	files = append(files, f, r)
	child := startChild(t, p, "5 two sockets under one name, a datagram socket and a FIFO", files,
		"LISTEN_FDS=4", "LISTEN_FDNAMES=http:http:dns:fifo")
	for _, addr := range addrs {
		conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
		require.NoError(t, err)
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(conn)
		conn.Close()
		require.NoError(t, err)
		assert.Equal(t, "from "+addr, string(got))
	}
	require.NoError(t, child(), "child; log:\n%s", p.out.String())
	assert.Contains(t, statuses(assertSystemdSees(t, p.n.settle(t))), "serving on "+addrs[0]+", "+addrs[1])
	assert.Contains(t, p.out.String(), `<4>service: systemd passed descriptors that are not listening sockets; Listener does not serve them, and leaves them open descriptors="dns: fd 5, a datagram socket; fifo: fd 6, a FIFO"`)
	return ExitOK
}

func childTwoSockets(t *testing.T) {
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid())) // systemd knows the pid; a parent here cannot
	code := Run(&Options{Log: &newstyle.Options{Target: newstyle.TargetStdout, Stdout: os.Stdout}},
		func(ctx context.Context, svc *Service) error {
			ln, err := svc.Listener("http", "")
			if err != nil {
				return err
			}
			defer ln.Close()
			for name, what := range map[string]string{"dns": "fd 5, a datagram socket", "fifo": "fd 6, a FIFO"} {
				_, err = svc.Listener(name, "127.0.0.1:0")
				if want := `service: not a listening socket: systemd passed "` + name + `" as ` + what; !errors.Is(err, ErrNotListener) || err.Error() != want {
					return fmt.Errorf("Listener(%s) = %v, want %q", name, err, want)
				}
			}
			if _, err := svc.Listener("admin", ""); !errors.Is(err, ErrNoSuchSocket) ||
				err.Error() != `service: no socket of that name: "admin" (systemd passed dns (not listening), fifo (not listening), http)` {
				return fmt.Errorf("Listener(admin) = %v", err)
			}
			svc.Ready("serving on " + ln.Addr().String())
			for i := 0; i < 2; i++ {
				c, err := ln.Accept()
				if err != nil {
					return err
				}
				_, err = c.Write([]byte("from " + c.LocalAddr().String()))
				c.Close()
				if err != nil {
					return err
				}
			}
			return nil
		})
	require.Equal(t, ExitOK, code)
}

// runBogusListenFDs has a child take LISTEN_FDS=99999 for itself, and
// then exercise the garbage collector and the poller. Its fd 3 is a pipe,
// and it listens itself before, so that Go's poller's descriptors and a
// listening socket of the program's own are in the range LISTEN_FDS
// counts: none may be taken.
func runBogusListenFDs(t *testing.T, p *viewProbe) int {
	p.n = newNotifySocket(t)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer w.Close()
	child := startChild(t, p, "8 LISTEN_FDS=99999 with our own LISTEN_PID", []*os.File{r})
	require.NoError(t, child(), "child; log:\n%s", p.out.String())
	assert.Regexp(t, `\A<4>service: LISTEN_FDS counts descriptors that are not open: the environment is not systemd's; no socket taken listen_fds=99999 fd=[0-9]+ err="bad file descriptor"\n`,
		p.out.String())
	assert.Contains(t, assertSystemdSees(t, p.n.settle(t)), "READY=1")
	return ExitOK
}

func childBogusListenFDs(t *testing.T) {
	own, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer own.Close()
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	os.Setenv("LISTEN_FDS", "99999")
	before := openFDs(t)
	code := Run(&Options{Log: &newstyle.Options{Target: newstyle.TargetStdout, Stdout: os.Stdout}},
		func(ctx context.Context, svc *Service) error {
			ln, err := svc.Listener("http", "127.0.0.1:0") // its own: nothing was passed
			if err != nil {
				return err
			}
			defer ln.Close()
			collectGarbage(t)
			// The poller still works, the program's own socket too, and no
			// descriptor was closed.
			for _, l := range []net.Listener{ln, own} {
				if err := roundTrip(l); err != nil {
					return err
				}
			}
			after := openFDs(t)
			for fd := range before {
				if !after[fd] {
					return fmt.Errorf("fd %d was closed", fd)
				}
			}
			svc.Ready("")
			return nil
		})
	require.Equal(t, ExitOK, code)
}

// roundTrip sends a few bytes through a connection to ln.
func roundTrip(ln net.Listener) error {
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Write([]byte("through the poller"))
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "through the poller" {
		return fmt.Errorf("read %q, %v", got, err)
	}
	return nil
}

// collectGarbage runs the garbage collector until the finalizers it
// queued have run: an os.File wrapped around a descriptor and dropped is
// closed by one.
func collectGarbage(t *testing.T) {
	for i := 0; i < 3; i++ {
		done := make(chan struct{})
		sentinel := new([16]byte)
		runtime.SetFinalizer(sentinel, func(*[16]byte) { close(done) })
		sentinel = nil
		runtime.GC()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("finalizers did not run")
		}
	}
}

// openFDs returns the process's open descriptors.
func openFDs(t *testing.T) map[int]bool {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	fds := map[int]bool{}
	for _, e := range ents {
		fd, _ := strconv.Atoi(e.Name())
		fds[fd] = true
	}
	return fds
}

// startChild starts the test binary again, to run the case name, with
// files from fd 3 on and env; its log (stdout and stderr) goes to p.out.
// It returns what waits for it to end.
func startChild(t *testing.T, p *viewProbe, name string, files []*os.File, env ...string) func() error {
	cmd := exec.Command(os.Args[0], "-test.run=^TestWhatSystemdSees$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), childCase+"="+name), env...)
	cmd.ExtraFiles = files
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &p.out, &stderr
	require.NoError(t, cmd.Start())
	for _, f := range files {
		f.Close()
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return func() error {
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("%w: %s", err, stderr.String())
			}
			return nil
		case <-time.After(20 * time.Second):
			return errors.New("the child did not end")
		}
	}
}
