//go:build linux

package crash

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/internal/testutil"
)

// The tests run the test binary again as a program that captures its
// crashes (helper) and does what the test asks: crash one way or another,
// or wait. Its watcher is the test binary once more, made one by this
// package's init function, as in any program.
const (
	helperEnv     = "CRASH_TEST_HELPER"     // what the helper does
	helperOptsEnv = "CRASH_TEST_OPTIONS"    // "leave-stderr", "max=N"
	helperNEnv    = "CRASH_TEST_GOROUTINES" // how many goroutines "many" starts
)

func TestMain(m *testing.M) {
	if what := os.Getenv(helperEnv); what != "" {
		os.Exit(helper(what))
	}
	dir, err := os.MkdirTemp("", "newstyle-crash-race-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	raceLog = filepath.Join(dir, "report")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// raceLog is where the race detector writes the helpers' reports: under
// -race, the helper's concurrent map writes are also a data race, and a
// report on stderr would cut into the runtime's crash text the tests read.
var raceLog string

// helper is the program the tests run: it captures crashes, with the
// stdout fallback as its target, says so on stderr, and does what.
func helper(what string) int {
	opts := &Options{Target: newstyle.TargetStdout}
	for _, o := range strings.Fields(os.Getenv(helperOptsEnv)) {
		switch {
		case o == "leave-stderr":
			opts.LeaveStderr = true
		case strings.HasPrefix(o, "max="):
			opts.MaxTraceback, _ = strconv.Atoi(o[len("max="):])
		}
	}
	ended := make(chan error, 1)
	opts.OnWatcherExit = func(err error) { ended <- err }
	if what == "journal-stream" {
		// As systemd sets it: stderr is the journal's stream.
		os.Setenv("JOURNAL_STREAM", devIno(2))
		fmt.Println("before:", os.Getenv("JOURNAL_STREAM"))
	}
	if err := Capture(opts); err != nil {
		fmt.Fprintln(os.Stderr, "capture:", err)
		return 99
	}
	fmt.Fprintln(os.Stderr, "helper: capturing")
	switch what {
	case "panic":
		go panicInGoroutine()
	case "map":
		writeMapConcurrently()
	case "overflow":
		recurse(0)
	case "nil":
		go dereferenceNil(nil)
	case "oom":
		allocateTooMuch()
	case "quit":
		syscall.Kill(os.Getpid(), syscall.SIGQUIT)
	case "many":
		n, _ := strconv.Atoi(os.Getenv(helperNEnv))
		panicAmongMany(n)
	case "exit":
		os.Exit(3)
	case "return":
		return 0
	case "twice":
		fmt.Println("again:", Capture(opts))
		return 0
	case "exec":
		err := syscall.Exec("/bin/sh", []string{"sh", "-c", "echo from the exec\\'d program >&2; exit 4"}, os.Environ())
		fmt.Fprintln(os.Stderr, "exec:", err)
		return 98
	case "journal-stream":
		fmt.Println("after:", os.Getenv("JOURNAL_STREAM"), "stderr:", devIno(2))
		return 0
	case "wait":
		// Until the test closes stdin.
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		return 0
	case "kill-watcher":
		return killWatcher(ended)
	}
	time.Sleep(10 * time.Second) // the goroutine crashes the process meanwhile
	return 97
}

func panicInGoroutine() { panic("boom in a goroutine") }

func writeMapConcurrently() {
	m := map[int]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				m[i%1000] = i
			}
		}()
	}
	wg.Wait()
}

func recurse(n int) int {
	var pad [128]byte
	pad[n%128] = byte(n)
	//lint:ignore SA5007 the stack overflow the watcher must report
	return recurse(n+1) + int(pad[3])
}

// allocateTooMuch runs out of memory as a program does that meets its
// limit: its address space is capped (RLIMIT_AS) at what it maps now and
// 512 MiB more, and it asks for 1 GiB. The runtime's mmap fails, and it
// dies with "fatal error: out of memory", whatever the machine's memory
// and overcommit policy (and with -race, whose shadow is mapped at start).
func allocateTooMuch() {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		panic(err)
	}
	var vmSize uint64 // kB
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			vmSize, _ = strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
		}
	}
	limit := vmSize<<10 + 512<<20
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		panic(err)
	}
	b := make([]byte, oneGiB)
	b[len(b)-1] = 1
	fmt.Println(b[0])
}

// outOfMemory is how the runtime names allocateTooMuch's end. With
// -race, the heap must lie in a range of its own, and the runtime names a
// failed mapping there after that.
var outOfMemory = map[bool]string{
	false: "fatal error: out of memory",
	true:  "fatal error: too many address space collisions for -race mode",
}[testutil.RaceEnabled]

// oneGiB is a variable, so that the allocation is made at run time.
var oneGiB = 1 << 30

type point struct{ x int }

func dereferenceNil(p *point) { fmt.Println(p.x) }

// panicAmongMany starts n goroutines that wait, and panics with every
// goroutine in the trace.
func panicAmongMany(n int) {
	block := make(chan struct{})
	var started sync.WaitGroup
	for range n {
		started.Add(1)
		go func() {
			started.Done()
			<-block
		}()
	}
	started.Wait()
	debug.SetTraceback("all")
	panic(fmt.Sprintf("boom among %d goroutines", n))
}

// killWatcher kills the watcher, and shows that the program took stderr
// back: a line written after goes straight to it, and a crash is the
// runtime's text alone.
func killWatcher(ended chan error) int {
	fmt.Fprintln(os.Stderr, "before the watcher's end")
	w := watcherOf(os.Getpid())
	if w == 0 {
		fmt.Println("no watcher")
		return 96
	}
	syscall.Kill(w, syscall.SIGKILL)
	select {
	case err := <-ended:
		fmt.Println("ended:", err)
	case <-time.After(10 * time.Second):
		fmt.Println("OnWatcherExit was not called")
		return 95
	}
	fmt.Fprintln(os.Stderr, "after the watcher's end")
	panic("boom, uncaptured")
}

// watcherOf returns the PID of the child of pid that is a watcher, 0 for
// none. A child is listed under the thread that started it: any of them.
// sockets returns the sockets process pid holds, by fd: "socket:[inode]".
func sockets(t *testing.T, pid int) map[string]string {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	m := make(map[string]string)
	for _, fd := range fds {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if strings.HasPrefix(target, "socket:") {
			m[fd.Name()] = target
		}
	}
	return m
}

func watcherOf(pid int) int {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var children []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		children = append(children, strings.Fields(string(b))...)
	}
	for _, f := range children {
		child, _ := strconv.Atoi(f)
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child))
		if args := strings.Split(string(cmdline), "\x00"); len(args) > 1 && args[1] == watcherArg {
			return child
		}
	}
	return 0
}

// run is a run of the helper.
type run struct {
	pid            int
	code           int
	stdout, stderr string
}

// helperCmd returns the helper's command doing what, with env added.
func helperCmd(ctx context.Context, what string, env ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NEWSTYLE_") && !strings.HasPrefix(kv, "JOURNAL_STREAM=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// The race detector makes a process sleep a second as it exits
	// (atexit_sleep_ms): not the watcher's time.
	cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0 log_path="+raceLog, helperEnv+"="+what)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// runHelper runs the helper to its end, and its watcher's: the watcher
// holds stdout and stderr, which end only when it has.
func runHelper(t *testing.T, what string, env ...string) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := helperCmd(ctx, what, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Start()
	require.NoError(t, err)
	err = cmd.Wait()
	require.NoError(t, ctx.Err(), "the helper or its watcher did not end")
	r := run{pid: cmd.Process.Pid, stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		r.code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return r
}

// crashLine returns the one <2> line of the run's stdout, read back.
func (r run) crashLine(t *testing.T) stdoutRecord {
	t.Helper()
	var lines []string
	for _, l := range strings.SplitAfter(r.stdout, "\n") {
		if strings.HasPrefix(l, "<2>") {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 1, "one crash line on stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	return parseStdoutLine(t, lines[0])
}

const pkg = "github.com/newstyle-go/newstyle/crash."

func TestWatcherReportsCrashes(t *testing.T) {
	for _, tc := range []struct {
		what, kind, message, function string
	}{
		{"panic", kindPanic, "panic: boom in a goroutine", pkg + "panicInGoroutine()"},
		{"map", kindFatal, "fatal error: concurrent map writes", pkg + "writeMapConcurrently.func1()"},
		{"overflow", kindFatal, "fatal error: stack overflow", pkg + "recurse("},
		{"nil", kindPanic, "panic: runtime error: invalid memory address or nil pointer dereference [signal SIGSEGV: segmentation violation",
			pkg + "dereferenceNil("},
		{"quit", kindSignal, "SIGQUIT: quit", "goroutine "},
		{"oom", kindFatal, outOfMemory, pkg + "allocateTooMuch()"},
	} {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			r := runHelper(t, tc.what)
			assert.Equal(t, 2, r.code, "the runtime's exit status, as without a watcher")
			rec := r.crashLine(t)
			assert.True(t, strings.HasPrefix(rec.message, tc.message), "MESSAGE %q, want %q…", rec.message, tc.message)
			assert.Equal(t, tc.kind, rec.attrs[FieldKind])
			assert.Equal(t, MessageID, rec.attrs["MESSAGE_ID"])
			assert.Equal(t, strconv.Itoa(r.pid), rec.attrs[FieldPID], "the crashed process's PID")
			tb := rec.attrs["traceback"]
			assert.Contains(t, tb, tc.function, "the crashing function")
			assert.NotContains(t, rec.attrs, FieldCut)
			// stderr has all of it, unchanged, and TRACEBACK is the crash
			// as stderr shows it, the lines stderr alone got included.
			assert.True(t, strings.HasPrefix(r.stderr, "helper: capturing\n"), "stderr:\n%s", r.stderr)
			assert.True(t, strings.HasSuffix(r.stderr, tb), "TRACEBACK is the end of stderr:\n%s\n---\n%s", tb, r.stderr)
			if tc.kind == kindFatal {
				assert.True(t, strings.Contains(tb, tc.message+"\n"), "TRACEBACK has the line that names it")
			}
		})
	}
}

func TestWatcherIsSilentWithoutACrash(t *testing.T) {
	for _, tc := range []struct {
		what string
		code int
	}{
		{"exit", 3},
		{"return", 0},
	} {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			r := runHelper(t, tc.what)
			assert.Equal(t, tc.code, r.code)
			assert.Empty(t, r.stdout)
			assert.Equal(t, "helper: capturing\n", r.stderr, "stderr still written, through the watcher")
		})
	}
}

func TestWatcherWithoutStderr(t *testing.T) {
	r := runHelper(t, "map", helperOptsEnv+"=leave-stderr")
	assert.Equal(t, 2, r.code)
	rec := r.crashLine(t)
	assert.Equal(t, "fatal error: concurrent map access (read from the trace)", rec.message)
	tb := rec.attrs["traceback"]
	assert.True(t, strings.HasPrefix(tb, "\ngoroutine "), "the crash output alone: %q", tb)
	assert.True(t, strings.HasSuffix(r.stderr, tb))
	assert.Contains(t, r.stderr, "fatal error: concurrent map writes\n", "stderr as it was")
}

func TestWatcherCutsALongCrash(t *testing.T) {
	const goroutines = 2000
	r := runHelper(t, "many", helperNEnv+"="+strconv.Itoa(goroutines), helperOptsEnv+"=max=65536")
	assert.Equal(t, 2, r.code)
	assert.Greater(t, strings.Count(r.stderr, "\ngoroutine "), goroutines, "stderr has every goroutine")
	rec := r.crashLine(t)
	assert.Equal(t, "panic: boom among 2000 goroutines", rec.message)
	cut, err := strconv.Atoi(rec.attrs[FieldCut])
	require.NoError(t, err)
	tb := rec.attrs["traceback"]
	assert.LessOrEqual(t, len(tb), 65536)
	head, tail, ok := strings.Cut(tb, "[… "+strconv.Itoa(cut)+" bytes of the crash output cut here …]\n")
	require.True(t, ok, "the cut is marked in the trace with its count")
	out := r.stderr[strings.Index(r.stderr, "panic: boom among"):]
	assert.True(t, strings.HasPrefix(out, head))
	assert.True(t, strings.HasSuffix(out, tail))
	assert.Equal(t, len(out), len(head)+len(tail)+cut, "every byte of the output kept or counted")
}

func TestWatcherAfterExec(t *testing.T) {
	r := runHelper(t, "exec")
	assert.Equal(t, 4, r.code)
	assert.Empty(t, r.stdout)
	assert.Equal(t, "helper: capturing\nfrom the exec'd program\n", r.stderr, "the new program's stderr, through the watcher")
}

func TestWatcherJournalStream(t *testing.T) {
	r := runHelper(t, "journal-stream")
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2)
	before := strings.TrimPrefix(lines[0], "before: ")
	f := strings.Fields(strings.TrimPrefix(lines[1], "after: "))
	require.Len(t, f, 3)
	assert.NotEqual(t, before, f[0], "JOURNAL_STREAM follows stderr to the pipe")
	assert.Equal(t, f[2], f[0], "JOURNAL_STREAM names stderr, as systemd set it")
}

func TestCaptureTwice(t *testing.T) {
	r := runHelper(t, "twice")
	assert.Equal(t, 0, r.code)
	assert.Equal(t, "again: "+ErrCapturing.Error()+"\n", r.stdout)
}

func TestCaptureTurnedOff(t *testing.T) {
	for _, v := range []string{"off", "0", "false", "NO"} {
		r := runHelper(t, "panic", EnvCapture+"="+v)
		assert.Equal(t, 99, r.code)
		assert.Equal(t, "capture: "+ErrDisabled.Error()+"\n", r.stderr)
	}
	assert.False(t, disabled(""))
	assert.False(t, disabled("on"))
}

func TestWatcherEndsProgramTakesOver(t *testing.T) {
	r := runHelper(t, "kill-watcher")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stdout, "ended: crash: the watcher (pid ")
	assert.Contains(t, r.stdout, ") ended: signal: killed; crashes are no longer captured\n")
	assert.NotContains(t, r.stdout, "<2>", "no watcher, no crash line")
	assert.True(t, strings.HasPrefix(r.stderr, "helper: capturing\nbefore the watcher's end\nafter the watcher's end\npanic: boom, uncaptured\n"),
		"nothing written to stderr is lost:\n%s", r.stderr)
}

// procStat returns the state letter of pid ("S", "Z", …), "" when it is
// gone.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && len(s) > i+2 {
		return s[i+2 : i+3]
	}
	return ""
}

// TestWatcherAsSystemdSeesIt: the watcher holds none of the program's
// sockets, has none of the variables systemd means for the main process,
// is named as the program, outlives the signals systemd sends a whole
// unit, and ends within a second of the program.
func TestWatcherAsSystemdSeesIt(t *testing.T) {
	var listeners []*os.File
	for range 5 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		f, err := ln.(*net.TCPListener).File()
		require.NoError(t, err)
		ln.Close()
		t.Cleanup(func() { f.Close() })
		listeners = append(listeners, f)
	}
	cmd := helperCmd(context.Background(), "wait", "NOTIFY_SOCKET=/run/notify-test", "LISTEN_FDS=5", "LISTEN_FDNAMES=a:b:c:d:e",
		"LISTEN_PID=1", "WATCHDOG_USEC=1000000", "WATCHDOG_PID=1")
	cmd.ExtraFiles = listeners // fds 3 to 7, not close-on-exec, as systemd passes them
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	// A file: Wait returns when the helper has ended, not its watcher.
	stderr, err := os.CreateTemp(t.TempDir(), "stderr")
	require.NoError(t, err)
	cmd.Stderr = stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill() })
	out := bufio.NewReader(stdout)
	line, err := out.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "ready\n", line)
	w := watcherOf(cmd.Process.Pid)
	require.NotZero(t, w, "the helper has a watcher")
	// The watcher's first milliseconds are the runtime's start, the init
	// functions before this package's: then it is the program's binary
	// with what it inherited. Wait until it is a watcher.
	progComm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
	require.True(t, testutil.Poll(10*time.Second, time.Millisecond, func() bool {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", w))
		return string(comm) == string(progComm)
	}), "the watcher did not start in 10 s")

	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", w))
	require.NoError(t, err)
	for _, kv := range strings.Split(string(environ), "\x00") {
		name, _, _ := strings.Cut(kv, "=")
		assert.NotContains(t, notForWatcher, name, "the watcher's environment")
	}
	// None of the program's sockets (the notify socket, listeners) is
	// held by the watcher, which would keep them open past the program's
	// end. (A socket of the watcher's own, such as its probe of
	// journald's, is not the program's.)
	programs := make(map[string]bool)
	for _, target := range sockets(t, cmd.Process.Pid) {
		programs[target] = true
	}
	require.NotEmpty(t, programs, "the helper holds sockets, for the watcher not to inherit")
	// The watcher closes them first thing, before it reads anything; the
	// runtime's start comes before that.
	held := func() (n int, which string) {
		for fd, target := range sockets(t, w) {
			if programs[target] {
				n++
				which += " fd " + fd + ": " + target
			}
		}
		return n, which
	}
	var which string
	released := testutil.Poll(5*time.Second, time.Millisecond, func() bool {
		var n int
		n, which = held()
		return n == 0
	})
	require.True(t, released, "the watcher still holds the program's sockets after 5 s:%s", which)

	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGABRT,
		syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE} {
		require.NoError(t, syscall.Kill(w, sig))
	}
	// The program ends; the watcher, having outlived the signals, ends
	// within a second of it, writing nothing.
	require.NoError(t, stdin.Close())
	require.NoError(t, cmd.Wait())
	ended := time.Now()
	require.True(t, testutil.Poll(time.Second, time.Millisecond, func() bool {
		s := procState(w)
		return s == "" || s == "Z"
	}), "the watcher outlived the program by a second")
	t.Logf("the watcher ended %v after the program", time.Since(ended).Round(time.Millisecond))
	rest, _ := io.ReadAll(out)
	assert.Empty(t, string(rest))
	written, err := os.ReadFile(stderr.Name())
	require.NoError(t, err)
	assert.Equal(t, "helper: capturing\n", string(written), "no watcher end, no crash")
}
