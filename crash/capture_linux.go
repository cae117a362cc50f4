//go:build linux

package crash

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle/journal"
)

// The watcher's descriptors: what the program gives it, at these numbers.
// 0 is /dev/null, 1 the program's stdout, 2 the program's stderr as it
// was before Capture.
const (
	fdCrash  = 3 // the crash pipe's read end (SetCrashOutput writes the other)
	fdStderr = 4 // the stderr pipe's read end; closed when stderr is left alone
	fdAlive  = 5 // the write end of a pipe whose end tells the program the watcher ended
	fdFirst  = 6 // every inherited descriptor from here on is closed
)

// watcherArg is the watcher's one argument, which shows what it is in ps
// and systemctl status, beside the program's own name.
const watcherArg = "--newstyle-crash-watcher"

// The watcher's configuration, in its environment (and taken out of it).
const (
	envPrefix    = "NEWSTYLE_CRASH_"
	envWatcher   = envPrefix + "WATCHER" // "PID:INODE": the program's, and the crash pipe's
	envIdent     = envPrefix + "IDENTIFIER"
	envTarget    = envPrefix + "TARGET"
	envSocket    = envPrefix + "SOCKET"
	envNamespace = envPrefix + "NAMESPACE"
	envMax       = envPrefix + "MAX_TRACEBACK"
	envStderr    = envPrefix + "STDERR" // "1": fdStderr is the program's stderr
)

// notForWatcher are left out of the watcher's environment: with them it
// could pass for the program towards systemd (sd_notify, the watchdog,
// socket activation). The watcher never notifies and takes no socket.
var notForWatcher = []string{"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"}

// capturing is set while a watcher runs.
var capturing atomic.Bool

func capture(o *Options) error {
	if !capturing.CompareAndSwap(false, true) {
		return ErrCapturing
	}
	if err := startWatcher(o); err != nil {
		capturing.Store(false)
		return err
	}
	return nil
}

// startWatcher starts the watcher, gives the runtime the crash pipe, and
// puts the stderr pipe in place of stderr (unless stderr stays).
func startWatcher(o *Options) (err error) {
	// Every descriptor made here, closed on the way out if the watcher
	// could not be started.
	var made []int
	defer func() {
		if err != nil {
			for _, fd := range made {
				unix.Close(fd)
			}
		}
	}()
	pipe := func() ([2]int, error) {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			return p, fmt.Errorf("crash: pipe: %w", err)
		}
		made = append(made, p[0], p[1])
		return p, nil
	}
	crashPipe, err := pipe()
	if err != nil {
		return err
	}
	alivePipe, err := pipe()
	if err != nil {
		return err
	}
	intercept := !o.LeaveStderr && pipeable(2)
	stderr := 2 // the watcher's stderr: the program's, as it is now
	stderrPipe := [2]int{-1, -1}
	if intercept {
		if stderrPipe, err = pipe(); err != nil {
			return err
		}
		if stderr, err = unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, fdFirst); err != nil {
			return fmt.Errorf("crash: copying stderr: %w", err)
		}
		made = append(made, stderr)
	}
	var st unix.Stat_t
	if err := unix.Fstat(crashPipe[0], &st); err != nil {
		return fmt.Errorf("crash: %w", err)
	}
	stdin := -1
	if fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		stdin = fd
		defer unix.Close(fd)
	}
	argv0 := "/proc/self/exe"
	if len(os.Args) > 0 && os.Args[0] != "" {
		argv0 = os.Args[0]
	}
	// /proc/self/exe is this very binary, even if the file it was started
	// from has been replaced since (a package upgrade). -1: closed.
	pid, err := syscall.ForkExec("/proc/self/exe", []string{argv0, watcherArg}, &syscall.ProcAttr{
		Env:   watcherEnv(o, os.Getpid(), st.Ino, intercept),
		Files: fds(stdin, 1, stderr, crashPipe[0], stderrPipe[0], alivePipe[1]),
	})
	if err != nil {
		return fmt.Errorf("crash: starting the watcher: %w", err)
	}
	// The watcher's ends are its own now.
	unix.Close(crashPipe[0])
	unix.Close(alivePipe[1])

	// SetCrashOutput takes a copy.
	crashOut := os.NewFile(uintptr(crashPipe[1]), "crash pipe")
	err = debug.SetCrashOutput(crashOut, debug.CrashOptions{})
	crashOut.Close()
	if err != nil {
		unix.Kill(pid, unix.SIGKILL)
		reap(pid)
		made = []int{alivePipe[0]} // the rest are closed
		if intercept {
			made = append(made, stderrPipe[0], stderrPipe[1], stderr)
		}
		return fmt.Errorf("crash: SetCrashOutput: %w", err)
	}
	w := &watched{pid: pid, alive: pollable(alivePipe[0], "crash watcher"), orig: -1, onExit: o.OnWatcherExit}
	if intercept {
		w.orig, w.spare = stderr, stderrPipe[0]
		w.redirect(stderrPipe[1])
		unix.Close(stderrPipe[1])
	}
	go w.wait()
	return nil
}

// fds makes ProcAttr.Files of descriptors, -1 for none.
func fds(list ...int) []uintptr {
	files := make([]uintptr, len(list))
	for i, fd := range list {
		files[i] = uintptr(fd) // -1 is all ones: closed in the child
	}
	return files
}

// reap waits for the child pid to end.
func reap(pid int) (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			return ws, err
		}
	}
}

// pipeable reports whether the descriptor is open and not a terminal: a
// program's stderr that can be read through a pipe without anyone
// noticing. A terminal is left alone, since programs look at it
// (isatty) to choose colours and prompts.
func pipeable(fd int) bool {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return false
	}
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err != nil
}

// pollable returns a *os.File for fd, non-blocking and so read through
// Go's poller: a read that waits parks a goroutine, not a thread.
func pollable(fd int, name string) *os.File {
	_ = unix.SetNonblock(fd, true)
	return os.NewFile(uintptr(fd), name)
}

// watcherEnv returns the watcher's environment: the program's, without
// what systemd meant for the program alone (notForWatcher) or any
// NEWSTYLE_CRASH_ variable it may have, with the watcher's configuration.
func watcherEnv(o *Options, pid int, ino uint64, intercept bool) []string {
	parent := os.Environ()
	env := make([]string, 0, len(parent)+7)
	for _, kv := range parent {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix) || contains(notForWatcher, name) {
			continue
		}
		env = append(env, kv)
	}
	ident := o.SyslogIdentifier
	if ident == "" {
		ident = journal.ProgramName()
	}
	env = append(env,
		envWatcher+"="+strconv.Itoa(pid)+":"+strconv.FormatUint(ino, 10),
		envIdent+"="+ident,
		envTarget+"="+o.Target.String(),
		envSocket+"="+o.SocketPath,
		envNamespace+"="+o.Namespace,
		envMax+"="+strconv.Itoa(o.MaxTraceback),
	)
	if intercept {
		env = append(env, envStderr+"=1")
	}
	return env
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// watched is the running watcher, as the program sees it.
type watched struct {
	pid   int
	alive *os.File // EOF when the watcher has ended

	// With stderr through the watcher: the original stderr, the stderr
	// pipe's read end (kept so that writes to stderr never meet a pipe
	// with no reader, should the watcher die), and JOURNAL_STREAM, the
	// program's and the one Capture set ("" when it set none).
	orig, spare         int
	origStream, streamd string

	onExit func(error)
}

// redirect puts the stderr pipe's write end in place of stderr. When
// systemd's JOURNAL_STREAM named stderr, it names the pipe from now on:
// what is written there still reaches the journal, unchanged, and the
// program (newstyle.Detect, service-log-target auto) and the programs it
// starts must still find stderr is the journal.
func (w *watched) redirect(writeEnd int) {
	old := devIno(2)
	// Not close-on-exec: it is stderr, for the programs this one starts.
	_ = unix.Dup3(writeEnd, 2, 0)
	stream := os.Getenv("JOURNAL_STREAM")
	if stream != "" && stream == old {
		w.origStream, w.streamd = stream, devIno(2)
		os.Setenv("JOURNAL_STREAM", w.streamd)
	}
}

// devIno returns fd's "DEVICE:INODE", as JOURNAL_STREAM names a stream.
func devIno(fd int) string {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil {
		return ""
	}
	return strconv.FormatUint(st.Dev, 10) + ":" + strconv.FormatUint(st.Ino, 10)
}

// wait waits for the watcher to end, which it does only after the
// program (or killed): then the program takes everything back. The crash
// output goes nowhere again; stderr is the original one, and what the
// watcher had not read of the pipe, or is written to it still (by the
// program's children, or a write under way), goes there too; then the
// watcher's end is reported.
func (w *watched) wait() {
	var b [1]byte
	for {
		if _, err := w.alive.Read(b[:]); err != nil {
			break
		}
	}
	w.alive.Close()
	_ = debug.SetCrashOutput(nil, debug.CrashOptions{})
	if w.orig >= 0 {
		_ = unix.Dup3(w.orig, 2, 0)
		unix.Close(w.orig)
		if w.streamd != "" && os.Getenv("JOURNAL_STREAM") == w.streamd {
			os.Setenv("JOURNAL_STREAM", w.origStream)
		}
		// What is in the pipe now goes first, before anyone is told;
		// what comes later, as it comes.
		_ = unix.SetNonblock(w.spare, true)
		drain(w.spare, 2)
		spare := pollable(w.spare, "stderr pipe")
		go func() {
			forward(spare, 2, nil)
			spare.Close()
		}()
	}
	ws, err := reap(w.pid)
	if err == nil {
		err = errors.New(exitText(ws))
	}
	capturing.Store(false)
	err = fmt.Errorf("crash: the watcher (pid %d) ended: %w; crashes are no longer captured", w.pid, err)
	if w.onExit != nil {
		w.onExit(err)
		return
	}
	writeAll(2, []byte(err.Error()+"\n"))
}

// drain copies what the non-blocking descriptor r holds now to out.
func drain(r, out int) {
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Read(r, buf)
		if n <= 0 || err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		if writeAll(out, buf[:n]) != nil {
			return
		}
	}
}

// exitText says how a process ended, as os.ProcessState does.
func exitText(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "signal: " + ws.Signal().String()
	}
	return "exit status " + strconv.Itoa(ws.ExitStatus())
}

// forward copies r to the descriptor out until r ends, calling seen (when
// not nil) with each part first. A write that fails (out gone: EPIPE)
// stops the copying, not the reading: r's writers must never block on a
// pipe nobody reads.
func forward(r *os.File, out int, seen func([]byte)) {
	buf := make([]byte, 32<<10)
	broken := false
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if seen != nil {
				seen(buf[:n])
			}
			if !broken && writeAll(out, buf[:n]) != nil {
				broken = true
			}
		}
		if err != nil {
			return
		}
	}
}

// writeAll writes b to fd whole, waiting for a descriptor set
// non-blocking (by whoever shares it) to take it. It writes the
// descriptor directly: an os.File for stderr would end the process with
// SIGPIPE when the reader is gone.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, -1)
			continue
		case err != nil:
			return err
		}
		b = b[n:]
	}
	return nil
}
