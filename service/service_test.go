package service

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle"
)

// notifySocket is a stand-in for systemd's NOTIFY_SOCKET: a datagram
// socket in a temp dir that keeps what it receives.
type notifySocket struct {
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{conn: conn}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			n.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return n
}

func (n *notifySocket) messages() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.msgs...)
}

// waitFor polls until a message with prefix has arrived.
func (n *notifySocket) waitFor(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range n.messages() {
			if strings.HasPrefix(m, prefix) {
				return m
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no notification starting %q; got %q", prefix, n.messages())
	return ""
}

// lockedBuffer collects the log lines of the stdout fallback.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func testOptions(out *lockedBuffer) Options {
	return Options{Log: &newstyle.Options{Target: newstyle.TargetStdout, Stdout: out}, ShutdownTimeout: 2 * time.Second}
}

// runAsync runs Run in a goroutine and returns its exit status's channel.
func runAsync(opts Options, fn func(ctx context.Context, svc *Service) error) <-chan int {
	code := make(chan int, 1)
	go func() { code <- Run(opts, fn) }()
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

func TestReadyThenStopOnSIGTERM(t *testing.T) {
	n := newNotifySocket(t)
	var out lockedBuffer
	stopped := false
	code := runAsync(testOptions(&out), func(ctx context.Context, svc *Service) error {
		svc.OnStop("cleanup", func(context.Context) error { stopped = true; return nil })
		svc.Ready("serving\non :8080") // a newline must not add an assignment
		<-ctx.Done()
		return ctx.Err()
	})
	if m := n.waitFor(t, "READY=1"); m != "READY=1\nSTATUS=serving on :8080" {
		t.Errorf("ready notification = %q", m)
	}
	signalSelf(t, syscall.SIGTERM)
	if c := wait(t, code); c != ExitOK {
		t.Fatalf("exit status %d, want 0; log:\n%s", c, out.String())
	}
	if !stopped {
		t.Error("the stop hook did not run")
	}
	msgs := n.messages()
	if last := msgs[len(msgs)-1]; last != "STOPPING=1\nSTATUS=stopping" {
		t.Errorf("last notification = %q, want STOPPING=1", last)
	}
	if !strings.Contains(out.String(), "<6>service: stopping signal=terminated") {
		t.Errorf("log lacks the stop:\n%s", out.String())
	}
}

func TestReloadOnSIGHUP(t *testing.T) {
	n := newNotifySocket(t)
	var out lockedBuffer
	opts := testOptions(&out)
	reloaded := make(chan struct{}, 1)
	opts.Reload = func(context.Context) error { reloaded <- struct{}{}; return nil }
	code := runAsync(opts, func(ctx context.Context, svc *Service) error {
		svc.Ready("")
		<-ctx.Done()
		return nil
	})
	n.waitFor(t, "READY=1")
	signalSelf(t, syscall.SIGHUP)
	select {
	case <-reloaded:
	case <-time.After(5 * time.Second):
		t.Fatal("Reload was not called")
	}
	m := n.waitFor(t, "RELOADING=1")
	if !strings.Contains(m, "\nMONOTONIC_USEC=") {
		t.Errorf("reloading notification %q lacks MONOTONIC_USEC", m)
	}
	n.waitFor(t, "READY=1\nSTATUS=reloaded") // no status was set before
	signalSelf(t, syscall.SIGTERM)
	if c := wait(t, code); c != ExitOK {
		t.Fatalf("exit status %d", c)
	}
}

func TestWatchdogFollowsHealth(t *testing.T) {
	n := newNotifySocket(t)
	t.Setenv("WATCHDOG_USEC", "100000") // pings every 50 ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	var out lockedBuffer
	opts := testOptions(&out)
	var mu sync.Mutex
	hang := false
	opts.Health = func(ctx context.Context) error {
		mu.Lock()
		h := hang
		mu.Unlock()
		if h {
			<-ctx.Done() // a hung check
			return ctx.Err()
		}
		return nil
	}
	code := runAsync(opts, func(ctx context.Context, svc *Service) error {
		<-ctx.Done()
		return nil
	})
	count := func() int {
		k := 0
		for _, m := range n.messages() {
			if m == "WATCHDOG=1" {
				k++
			}
		}
		return k
	}
	time.Sleep(400 * time.Millisecond)
	if k := count(); k < 4 {
		t.Fatalf("%d watchdog pings in 400 ms of a healthy program, want about 8", k)
	}
	mu.Lock()
	hang = true
	mu.Unlock()
	time.Sleep(150 * time.Millisecond) // a ping under way may still land
	before := count()
	time.Sleep(400 * time.Millisecond)
	if k := count(); k != before {
		t.Errorf("%d pings while the health check hangs, want none", k-before)
	}
	if !strings.Contains(out.String(), "health check failed") {
		t.Errorf("the failing check was not logged:\n%s", out.String())
	}
	signalSelf(t, syscall.SIGTERM)
	wait(t, code)
}

func TestExitStatuses(t *testing.T) {
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
			ExitPanic, "<2>service: panic: boom panic=boom traceback=\"goroutine "},
		{"stop hook past the deadline", func(ctx context.Context, svc *Service) error {
			svc.OnStop("flush", func(ctx context.Context) error { time.Sleep(time.Hour); return nil })
			svc.OnStop("quick", func(context.Context) error { return nil })
			return nil
		}, ExitDeadline, "stop hooks still running hooks=flush"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newNotifySocket(t)
			var out lockedBuffer
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
	newNotifySocket(t)
	exited := make(chan int, 1)
	orig := osExit
	osExit = func(code int) { exited <- code; select {} } // the goroutine must not go on
	t.Cleanup(func() { osExit = orig })
	var out lockedBuffer
	code := runAsync(testOptions(&out), func(ctx context.Context, svc *Service) error {
		svc.Go("worker", func() error { panic(errors.New("nil map")) })
		<-ctx.Done()
		return nil
	})
	select {
	case c := <-exited:
		if c != ExitPanic {
			t.Errorf("exit status %d, want %d", c, ExitPanic)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a panic in Go did not end the process")
	}
	if s := out.String(); !strings.HasPrefix(s, "<2>service: panic: nil map") || !strings.Contains(s, "TestExitOnPanicInGoroutine") {
		t.Errorf("log = %q, want a CRIT line with the goroutine's stack", s)
	}
	signalSelf(t, syscall.SIGTERM)
	wait(t, code)
}

func TestShutdownWaitsForTheFunction(t *testing.T) {
	newNotifySocket(t)
	var out lockedBuffer
	opts := testOptions(&out)
	opts.ShutdownTimeout = 200 * time.Millisecond
	code := runAsync(opts, func(ctx context.Context, svc *Service) error {
		svc.Ready("")
		<-ctx.Done()
		time.Sleep(time.Hour) // ignores the stop
		return nil
	})
	time.Sleep(50 * time.Millisecond)
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

func TestListenerWithoutActivation(t *testing.T) {
	t.Setenv("LISTEN_FDS", "")
	svc := &Service{}
	ln, err := svc.Listener("http", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if _, err := (&Service{}).Listener("http", ""); !errors.Is(err, ErrNotActivated) {
		t.Errorf("Listener without fallback = %v, want ErrNotActivated", err)
	}
}

// TestListenerActivated passes a listening socket as systemd does (fd 3,
// LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID) to a child, which is this test
// binary again.
func TestListenerActivated(t *testing.T) {
	if os.Getenv("SERVICE_TEST_ACTIVATED") == "1" {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid())) // systemd knows the pid; a parent here cannot
		svc := &Service{}
		ln, err := svc.Listener("http", "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Listener("admin", ""); !errors.Is(err, ErrNoSuchSocket) || !strings.Contains(err.Error(), "systemd passed http") {
			t.Fatalf("Listener(admin) = %v", err)
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
	var out lockedBuffer
	c := Run(testOptions(&out), func(ctx context.Context, svc *Service) error {
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
	var out lockedBuffer
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
	n.waitFor(t, "READY=1")
	signalSelf(t, syscall.SIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for k := 0; k < 2 && time.Now().Before(deadline); {
		k = 0
		for _, m := range n.messages() {
			if m == "READY=1\nSTATUS=serving on :8080" {
				k++
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	signalSelf(t, syscall.SIGHUP)
	<-inReload
	start := time.Now()
	signalSelf(t, syscall.SIGTERM)
	if c := wait(t, code); c != ExitOK {
		t.Fatalf("exit status %d; log:\n%s", c, out.String())
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("stop during a hung reload took %v", took)
	}
	var ready []string
	for _, m := range n.messages() {
		if strings.HasPrefix(m, "READY=1") {
			ready = append(ready, m)
		}
	}
	if len(ready) < 2 || ready[1] != "READY=1\nSTATUS=serving on :8080" {
		t.Errorf("READY notifications %q: the reload lost the status", ready)
	}
}

func TestPanicTraceStartsAtThePanic(t *testing.T) {
	newNotifySocket(t)
	var out lockedBuffer
	Run(testOptions(&out), func(context.Context, *Service) error { panicHere(); return nil })
	line := out.String()
	i := strings.Index(line, `traceback="`)
	if i < 0 {
		t.Fatalf("no traceback: %q", line)
	}
	trace := line[i:]
	if !strings.HasPrefix(trace, `traceback="goroutine `) || strings.Contains(trace, "debug.Stack") || strings.Contains(trace, "ExitOnPanic") {
		t.Errorf("traceback holds the recovery's frames: %s", trace)
	}
	if !strings.Contains(trace, `[running]:\ngithub.com/newstyle-go/newstyle/service.panicHere(`) {
		t.Errorf("traceback does not start at the panicking function: %s", trace)
	}
}

func panicHere() { panic("here") }

func TestExitOnPanicLetsAbortHandlerThrough(t *testing.T) {
	var out lockedBuffer
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
// record and exits 2.
func TestAbortLogsAllStacks(t *testing.T) {
	newNotifySocket(t)
	exited := make(chan int, 1)
	orig := osExit
	osExit = func(code int) { exited <- code }
	t.Cleanup(func() { osExit = orig })
	var out lockedBuffer
	stuck := make(chan struct{})
	defer close(stuck)
	code := runAsync(testOptions(&out), func(ctx context.Context, svc *Service) error {
		go stuckHere(stuck)
		svc.Ready("")
		<-ctx.Done()
		return nil
	})
	time.Sleep(50 * time.Millisecond)
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
	if !strings.Contains(line, "service.stuckHere(") {
		t.Errorf("the dump lacks the stuck goroutine: %s", line)
	}
}

func stuckHere(c chan struct{}) { <-c }
