//go:build linux

package crash

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/journal"
)

// init makes this process the watcher when Capture started it as one:
// it never returns then, and so no package initialized after this one
// (those that import it, main's, and main itself) runs in the watcher.
// Any other process goes on at once: one environment variable looked up.
func init() {
	v, ok := os.LookupEnv(envWatcher)
	if !ok {
		return
	}
	cfg, err := takeConfig(v)
	if len(os.Args) != 2 || os.Args[1] != watcherArg {
		// A variable that leaked into some program's environment: it is
		// no watcher, and runs as itself (without the variables).
		return
	}
	if err != nil {
		writeAll(2, []byte("crash: watcher: "+err.Error()+"\n"))
		os.Exit(1)
	}
	os.Exit(watch(cfg))
}

// config is what the watcher knows of the program.
type config struct {
	pid               int    // the program's
	ino               uint64 // the crash pipe's inode
	ident             string
	target            newstyle.Target
	socket, namespace string
	max               int  // Options.MaxTraceback
	stderr            bool // fdStderr is the program's stderr
}

// takeConfig reads the watcher's configuration (envWatcher's value v)
// and takes it out of the environment, and checks that the crash pipe is
// where it should be.
func takeConfig(v string) (*config, error) {
	get := func(name string) string {
		s := os.Getenv(name)
		os.Unsetenv(name)
		return s
	}
	c := &config{ident: get(envIdent), socket: get(envSocket), namespace: get(envNamespace), stderr: get(envStderr) == "1"}
	target, maxText := get(envTarget), get(envMax)
	os.Unsetenv(envWatcher)
	pid, ino, _ := strings.Cut(v, ":")
	var err error
	if c.pid, err = strconv.Atoi(pid); err != nil {
		return nil, fmt.Errorf("%s=%q: %w", envWatcher, v, err)
	}
	if c.ino, err = strconv.ParseUint(ino, 10, 64); err != nil {
		return nil, fmt.Errorf("%s=%q: %w", envWatcher, v, err)
	}
	if c.max, err = strconv.Atoi(maxText); err != nil || c.max <= 0 {
		c.max = DefaultMaxTraceback
	}
	switch target {
	case "journal":
		c.target = newstyle.TargetJournal
	case "stdout":
		c.target = newstyle.TargetStdout
	case "null":
		c.target = newstyle.TargetNull
	}
	var st unix.Stat_t
	if err := unix.Fstat(fdCrash, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO || st.Ino != c.ino {
		return nil, errors.New("descriptor 3 is not the crash pipe")
	}
	return c, nil
}

// ignoredSignals are those the watcher ignores: systemd sends a unit's
// stop signal (and the watchdog's SIGABRT, and systemctl kill's) to every
// process of the unit, and the watcher must outlive the program to report
// its crash. It ends by itself once the program is gone.
var ignoredSignals = []os.Signal{
	syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGABRT, syscall.SIGTERM,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE, syscall.SIGALRM, syscall.SIGVTALRM,
	syscall.SIGXCPU, syscall.SIGXFSZ, syscall.SIGIO, syscall.SIGPWR,
}

// Bounds of the watcher's waits.
const (
	// alignWait: for the program's stderr to show the lines before its
	// crash output, once that has ended.
	alignWait = time.Second
	// journaldReadWait: for journald to have read the entry (see
	// awaitRead). systemd restarts the unit only once the watcher is
	// gone, so this is how much later it may restart it at worst.
	journaldReadWait = 5 * time.Second
	// stdoutWait: for stdout to take the fallback's line.
	stdoutWait = 5 * time.Second
)

// startLen is how many of the crash output's first bytes are looked for
// in stderr, to find where the crash began there.
const startLen = 256

// stderrWindow is how much of the end of stderr is kept, to find the
// lines the runtime wrote there alone before its crash output.
const stderrWindow = 128 << 10

// watcher is the watcher's state: the crash output as it comes, and the
// end of the program's stderr.
type watcher struct {
	cfg *config

	mu      sync.Mutex
	out     cutter // the crash output
	window  []byte // the end of stderr
	start   []byte // the crash output's first bytes, once there are enough
	prefix  []byte // what the runtime wrote to stderr alone before them
	aligned bool   // start was found in stderr
	found   chan struct{}

	stderrDone chan struct{} // closed when stderr has ended (or is not read)
}

// watch is the watcher's life: it reads the crash pipe until the program
// is gone, reports a crash if there was one, forwards stderr until every
// writer of it is gone, and returns its exit status.
func watch(c *config) int {
	signal.Ignore(ignoredSignals...)
	closeInherited()
	unix.CloseOnExec(fdAlive)
	setName(journal.ProgramName())
	w := &watcher{cfg: c, found: make(chan struct{}), stderrDone: make(chan struct{})}
	w.out.init(c.max)
	if c.stderr {
		go func() {
			forward(pollable(fdStderr, "stderr pipe"), 2, w.seen)
			close(w.stderrDone)
		}()
	} else {
		close(w.stderrDone)
	}
	crash := pollable(fdCrash, "crash pipe")
	// Idle, the watcher allocates nothing: collect garbage only if its
	// heap nears 64 MiB (a crash's output, cut to its cap), not every two
	// minutes, which would bring the pages trimCode gives back again.
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(64 << 20)
	trimCode()
	w.readCrash(crash)
	if w.out.total > 0 {
		w.report()
	}
	<-w.stderrDone
	return 0
}

// setName makes the watcher's command name (/proc/PID/comm, journald's
// _COMM) the program's rather than "exe", from /proc/self/exe. It runs in
// an init function, on the main thread, whose name is the process's.
func setName(name string) {
	if name == "" {
		return
	}
	b := []byte(name)
	if len(b) > 15 {
		b = b[:15]
	}
	b = append(b, 0)
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
}

// closeInherited closes every descriptor the watcher inherited and does
// not use: those of the program's that were not close-on-exec (sockets
// systemd passed, LISTEN_FDS, that the program had not taken yet). The
// Go runtime's own are close-on-exec, and stay.
func closeInherited() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < fdFirst {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
}

// readCrash reads the crash output until the program has closed the
// pipe: it ended, or it exec'd another program.
func (w *watcher) readCrash(f *os.File) {
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			w.mu.Lock()
			w.out.Write(buf[:n])
			if w.start == nil && len(w.out.head) >= startLen {
				w.start = bytes.Clone(w.out.start(startLen))
				w.align()
			}
			w.mu.Unlock()
		}
		if err != nil {
			break
		}
	}
	f.Close()
	w.mu.Lock()
	if w.start == nil && w.out.total > 0 {
		w.start = bytes.Clone(w.out.start(startLen))
		w.align()
	}
	w.mu.Unlock()
}

// seen keeps the end of stderr, p being what came last.
func (w *watcher) seen(p []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.window = append(w.window, p...)
	if len(w.window) > 2*stderrWindow {
		w.window = w.window[:copy(w.window, w.window[len(w.window)-stderrWindow:])]
	}
	w.align()
}

// align looks for where the crash output began in stderr, and takes what
// the runtime wrote before it. The caller holds mu.
func (w *watcher) align() {
	if w.aligned || w.start == nil {
		return
	}
	if prefix, found := findPrefix(w.window, w.start); found {
		w.prefix, w.aligned = prefix, true
		close(w.found)
	}
}

// report writes the crash: once the lines the runtime wrote to stderr
// before it have been seen, or stderr ended, or alignWait passed.
func (w *watcher) report() {
	if w.cfg.stderr {
		t := time.NewTimer(alignWait)
		select {
		case <-w.found:
		case <-w.stderrDone:
		case <-t.C:
		}
		t.Stop()
	}
	w.mu.Lock()
	w.align()
	prefix := w.prefix
	w.mu.Unlock()
	w.deliver(newReport(prefix, &w.out))
}

// deliver writes r where the program's records go: to the journal, or
// else, or when journald does not take it, to stdout as the fallback's
// line.
func (w *watcher) deliver(r *report) {
	switch w.target() {
	case newstyle.TargetNull:
		return
	case newstyle.TargetJournal:
		if w.sendJournal(r) == nil {
			return
		}
	}
	line := r.stdoutLine(w.cfg.pid, maxStdoutLine)
	done := make(chan struct{})
	go func() {
		writeAll(1, line)
		close(done)
	}()
	t := time.NewTimer(stdoutWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// target chooses the journal or stdout as the program's logger would
// (newstyle.Detect's rule: NEWSTYLE_LOG_TARGET, Options.Target,
// JOURNAL_STREAM against stderr, which is the program's own here, and
// journald's socket).
func (w *watcher) target() newstyle.Target {
	h := newstyle.NewHandler(&newstyle.Options{
		Target: w.cfg.target, SocketPath: w.cfg.socket, Namespace: w.cfg.namespace,
		SyslogIdentifier: w.cfg.ident, Stdout: io.Discard,
	})
	defer h.Close()
	return h.Detection().Target
}

// sendJournal sends r as one entry, and waits for journald to read it.
func (w *watcher) sendJournal(r *report) error {
	path := w.cfg.socket
	if path == "" {
		p, err := journal.NamespaceSocketPath(w.cfg.namespace)
		if err != nil {
			return err
		}
		path = p
	}
	jw, err := journal.NewWriter(&journal.WriterOptions{SocketPath: path, SyslogIdentifier: w.cfg.ident})
	if err != nil {
		return err
	}
	err = jw.Send(r.message, journal.PriCrit, r.journalFields(w.cfg.pid)...)
	jw.Close()
	if err == nil {
		awaitRead(path, journaldReadWait)
	}
	return err
}
