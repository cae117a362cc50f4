// Package crash makes a Go program's own crash one journal entry: the
// crashes no recover sees — a panic in a goroutine started with a plain
// go statement (the program's or a library's), the runtime's fatal
// errors (concurrent map writes, a stack overflow, out of memory, an
// unexpected signal in cgo code), a signal the program does not handle
// (SIGQUIT, SIGABRT) — which otherwise leave only the runtime's text on
// stderr, one journal entry per line at the unit's default priority.
//
//	func main() {
//		if err := crash.Capture(nil); err != nil {
//			slog.Warn("crashes are not captured", "err", err)
//		}
//		…
//	}
//
// Package service does it by itself in Run (Options.DisableCrashCapture
// turns it off); Capture is for the programs that do not use it. An
// operator turns it off with NEWSTYLE_CRASH_CAPTURE=off.
//
// # The entry
//
// One entry per crash, under the program's unit (journalctl -u UNIT -p
// crit finds it), with:
//
//	PRIORITY=2                  crit
//	MESSAGE                     what the runtime's first lines call the crash:
//	                            "panic: …" (and the "[signal …]" line that follows a
//	                            nil dereference's), "fatal error: concurrent map writes",
//	                            "fatal error: stack overflow", "SIGQUIT: quit", …
//	TRACEBACK                   the crash output, exactly as the runtime wrote it
//	MESSAGE_ID                  MessageID, the same for every crash
//	SYSLOG_IDENTIFIER           the program's (Options.SyslogIdentifier)
//	SYSLOG_PID                  the crashed process's PID
//	NEWSTYLE_CRASH_PID          the same (FieldPID)
//	NEWSTYLE_CRASH_KIND         panic, fatal error or signal (FieldKind)
//	NEWSTYLE_TRACEBACK_CUT      only when the output was over the cap (FieldCut)
//
// journald's own _PID, _COMM and _EXE are the watcher's (see below): its
// PID is not the program's, which SYSLOG_PID gives, but its command and
// executable are the program's. The module's message catalog (catalog/newstyle.catalog;
// install it in /usr/lib/systemd/catalog/ or /usr/local/lib/systemd/catalog/
// and run journalctl --update-catalog) explains the entry in journalctl -x.
//
// A fatal error's name is a line the runtime writes to stderr alone, not
// to the crash output a program can ask for (golang/go#76859): TRACEBACK
// starts with it and with the lines of context the runtime writes before
// it ("runtime: goroutine stack exceeds 1000000000-byte limit"), as
// stderr showed them. Without stderr (Options.LeaveStderr, or stderr a
// terminal), such a crash is named from the function its trace shows
// throwing, marked "(read from the trace)", or "fatal error (its message
// went to stderr)" when none tells.
//
// The crash output goes whole into TRACEBACK (a big entry goes to journald
// as a sealed memfd, as package journal sends any) up to
// Options.MaxTraceback, DefaultMaxTraceback (8 MiB) by default: a stack
// overflow's few hundred lines, or GOTRACEBACK=all with some 30,000 idle
// goroutines. A longer one keeps its first and last halves, cut at line
// boundaries, with a line between them that says how many bytes are
// missing, "[… 1234567 bytes of the crash output cut here …]", and the
// count in NEWSTYLE_TRACEBACK_CUT.
//
// The entry goes where the program's records go (newstyle.Detect's rule,
// Options.Target). Where that is stdout (no journal socket), or journald
// does not take the entry, it is one line of the stdout fallback's format,
// at <2>, at most 48 KiB long (journald's LineMax=; the trace is cut
// head and tail to fit):
//
//	<2>panic: boom MESSAGE_ID=ead3cc56… NEWSTYLE_CRASH_PID=1234 NEWSTYLE_CRASH_KIND=panic traceback="panic: boom\n\ngoroutine 7 [running]:\n…"
//
// Exactly one entry per crash, and none when there was no crash: a
// process that ends by os.Exit (a panic service.Run recovered and logged,
// the watchdog's SIGABRT that service.Run catches and logs), by SIGKILL,
// or by a clean stop writes no crash output, and the watcher nothing.
// The runtime's own lines on stderr are there as before, at the unit's
// default priority. The exit status is the runtime's, as before.
//
// # The watcher
//
// The runtime writes a crash's output to runtime/debug.SetCrashOutput's
// file while the process dies; the one to read it must outlive the
// process. So Capture starts a watcher, as the documentation of
// SetCrashOutput and golang.org/x/telemetry's crash monitor do: the
// program's own binary again (/proc/self/exe, "PROGRAM
// --newstyle-crash-watcher" in ps and systemctl status), which holds the
// read end of the crash pipe. It becomes the watcher in this package's
// init function, before main and before the init functions of the
// packages that import this one (service, main's), and never returns from
// it: what runs in it is the init functions of the packages initialized
// before this one (the ones it imports — the standard library's, package
// journal's — and others whose import paths sort before it and do not
// depend on it). Keep init functions free of side effects, as Go advises.
//
// When the program is gone (the crash pipe's last writer closed), the
// watcher writes the entry, if there was a crash, and waits, at most 5 s,
// until journald has read it: journald learns an entry's unit from its
// sender's /proc/PID/cgroup when it reads it, and an entry read after its
// sender exited has no _SYSTEMD_UNIT, which journalctl -u selects by (a
// journald that restarts, or is started by its socket after it was
// stopped, reads it late). Then it ends, once the program's stderr has no
// writer left.
//
// Towards systemd the watcher is nothing: NOTIFY_SOCKET, WATCHDOG_USEC,
// WATCHDOG_PID, LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES are not in its
// environment, so it never notifies and is not the main PID
// (NotifyAccess=main works as before); it holds /dev/null, the program's
// stdout and stderr, and its three pipes, and closes first thing any other
// descriptor it inherited (sockets systemd passed that the program had
// not taken yet). It ignores SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGABRT,
// SIGUSR1, SIGUSR2 and SIGPIPE, which systemd sends to every process of
// the unit (systemctl stop, kill, the watchdog), to outlive the program,
// and ends when the program has: on systemctl stop, within a few
// milliseconds of it. systemd restarts a unit once all its processes are
// gone, so a crash delays Restart= by the watcher's report, milliseconds
// (5 s at worst, with journald not reading). With KillMode=mixed, systemd
// sends SIGKILL to the rest of the unit as soon as the main process has
// exited: the watcher may be killed before it reports. Keep the default,
// KillMode=control-group, or process. Until its init function runs (the
// runtime's start and the init functions before it: a few milliseconds)
// the watcher is the program's binary with what it inherited: a stop
// signal then ends it, and the program takes stderr back (see below).
//
// If the watcher ends while the program runs (SIGKILL, the OOM killer),
// the program takes everything back: the crash output goes nowhere again,
// stderr is the original, and Options.OnWatcherExit (or a line on stderr)
// says so.
//
// # stderr
//
// Unless Options.LeaveStderr is set or stderr is a terminal, the
// program's stderr (descriptor 2) becomes a pipe to the watcher, which
// writes what it reads on to the original stderr at once, unchanged (a
// read and a write: no buffering, no latency worth measuring), and keeps
// the last 128 KiB, to find the "fatal error: …" line before a crash.
// What changes:
//
//   - JOURNAL_STREAM, when it named stderr, names the pipe: what is
//     written there still reaches the journal, and the program
//     (newstyle.Detect, a LogControl1 target of auto) and the programs it
//     starts still find that stderr is the journal.
//   - journald takes a stream's lines with the credentials of the
//     process that wrote them: the program's stderr lines in the journal
//     have the watcher's _PID (and _CMDLINE; _COMM and _EXE are the
//     program's), as the fallback's crash line does. journalctl -u and
//     -t find them as before; journalctl _PID=MAINPID finds only what
//     the program sends itself (its records, its stdout).
//   - stderr's lines take one more hop than stdout's: lines written to
//     both at the same time may reach a shared stream in another order.
//   - A program's last stderr lines reach a file a moment after it exits
//     (the watcher writes them); a pipe's reader sees them before its end
//     of file.
//   - A write to stderr no longer fails when the original stderr is gone
//     (EPIPE, which ends a Go program with SIGPIPE): the watcher drops what
//     it cannot write on.
//   - If the watcher dies, nothing written to stderr is lost but what it
//     had read and not yet written (one read, at most 32 KiB): the
//     program keeps the pipe's read end, puts the original stderr back at
//     once (and JOURNAL_STREAM), and writes on what was left in the pipe
//     or is still written to it (by processes it started).
//
// # What it costs
//
// Measured on a 2-vCPU machine (Go 1.26, cmd/newstyle-demo under systemd
// 252 and 257, integration/container): the watcher's RSS 3.2–3.4 MiB,
// 1.1–1.2 MiB of it its own (it gives back the pages of the program's
// binary it touched starting, shared with the program anyway); the
// program's start to READY=1 no slower beyond the noise of systemd's own
// start (medians of 9 starts each way: −3.3, +0.2 and +11.9 ms in three
// runs; Capture itself, a fork and an exec, takes well under 1 ms, and
// the watcher starts beside the program); nothing per record: records go
// to the journal's socket or stdout, never through the watcher. The program holds three descriptors more (the pipe that
// tells it the watcher ended, stderr's, and the original stderr).
//
// # Limits
//
// Linux only: elsewhere Capture returns ErrUnsupported and does nothing.
// The runtime has one crash output: a later debug.SetCrashOutput of the
// program's replaces the watcher's (and a crash then goes uncaptured).
// With GOTRACEBACK=crash, a crash also dumps core, and systemd-coredump
// logs an entry of its own. A program that execs another keeps its stderr
// pipe: the watcher forwards the new program's stderr as long as it runs,
// and captures none of its crashes (the crash pipe is closed on exec).
package crash
