//go:build integration

package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/slogopts"
)

// The slog loggers of the root package against the real journald: fields
// and priorities of the native handler read back with journalctl, a long
// traceback in one entry, auto-detection in a child process whose stderr
// is (or is not) what JOURNAL_STREAM names, the stdout fallback through a
// real stdout stream (systemd-cat), and the switch to stdout and back when
// journald dies and comes back.

// Child processes are this test binary run again, with childEnv naming
// what to do; TestMain hands them to runChild before anything else.
const (
	childEnv       = "NEWSTYLE_IT_CHILD"  // "auto" or "stdout-records"
	childIdentEnv  = "NEWSTYLE_IT_IDENT"  // the SYSLOG_IDENTIFIER to log with
	childCopyEnv   = "NEWSTYLE_IT_COPY"   // stdout-records: a file that gets a copy of every line
	childSocketEnv = "NEWSTYLE_IT_SOCKET" // auto: Options.SocketPath, when set
)

// callerLine returns the line of its caller's call.
func callerLine() int {
	_, _, line, _ := runtime.Caller(1)
	return line
}

// thisFunc returns the name of its caller, as CODE_FUNC shows it.
func thisFunc() string {
	pc, _, _, _ := runtime.Caller(1)
	return runtime.FuncForPC(pc).Name()
}

// wantFields checks that e has each field of want exactly once, with that
// value, and no other field that a client may set (journald's trusted
// fields, starting with '_', aside).
func wantFields(t *testing.T, e entry, want map[string]string) {
	t.Helper()
	for name, w := range want {
		got, err := e.Value(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got != w {
			t.Errorf("%s = %q, want %q", name, got, w)
		}
	}
	for name, values := range e {
		if _, ok := want[name]; !ok && !strings.HasPrefix(name, "_") {
			t.Errorf("unexpected field %s = %q", name, values)
		}
	}
}

// levelCases are the eight syslog priorities as slog levels.
var levelCases = []struct {
	level    slog.Level
	priority int
}{
	{slog.LevelDebug, 7},
	{slog.LevelInfo, 6},
	{newstyle.LevelNotice, 5},
	{slog.LevelWarn, 4},
	{slog.LevelError, 3},
	{newstyle.LevelCritical, 2},
	{newstyle.LevelAlert, 1},
	{newstyle.LevelEmergency, 0},
}

// TestLoggerFields logs a record at each of the eight priorities through
// newstyle.NewLogger with Target journal and AddSource, with attributes of
// every kind that needs care, and reads each entry back field by field.
func TestLoggerFields(t *testing.T) {
	ident := uniqueIdent(t)
	logger := newstyle.NewLogger(&newstyle.Options{
		Target:           newstyle.TargetJournal,
		SyslogIdentifier: ident,
		HandlerOptions:   slogopts.HandlerOptions{AddSource: true, Level: slog.LevelDebug},
		Stdout:           testutil.FailWriter{TB: t},
	}).With("component", "billing")

	const detail = "first line\nsecond line\n\n\tfourth, indented\n"
	raw := []byte("caf\xe9 \xff\xfe ok \x00 end")
	attrs := []any{
		slog.Group("req", slog.String("id", "r-7f3a"), slog.String("user.name", "alice")),
		slog.Int("count", 42),
		slog.Int("negative", -7),
		slog.Float64("ratio", 0.25),
		slog.Bool("ok", true),
		slog.Duration("took", 1500*time.Millisecond),
		slog.String("detail", detail),
		slog.Any("raw", raw),
		slog.String("user-agent", "curl/8.1"),
		slog.String("message", "not the message"), // reserved: F_MESSAGE
		slog.String("2fa", "on"),                  // starts with a digit: F_2FA
	}
	wantAttrs := map[string]string{
		"COMPONENT":     "billing",
		"REQ_ID":        "r-7f3a",
		"REQ_USER_NAME": "alice",
		"COUNT":         "42",
		"NEGATIVE":      "-7",
		"RATIO":         "0.25",
		"OK":            "true",
		"TOOK":          "1.5s",
		"DETAIL":        detail,
		"RAW":           string(raw),
		"USER_AGENT":    "curl/8.1",
		"F_MESSAGE":     "not the message",
		"F_2FA":         "on",
	}

	ctx := context.Background()
	fn := thisFunc()
	lines := make([]int, len(levelCases))
	for i, lc := range levelCases {
		lines[i] = callerLine() + 1
		logger.Log(ctx, lc.level, fmt.Sprintf("record %d at %v", i, lc.level), attrs...)
	}

	entries := waitEntries(t, query{ident: ident}, len(levelCases))
	if len(entries) != len(levelCases) {
		t.Fatalf("journal has %d entries for %s, want %d", len(entries), ident, len(levelCases))
	}
	for i, e := range entries {
		lc := levelCases[i]
		t.Run(lc.level.String(), func(t *testing.T) {
			want := map[string]string{
				"MESSAGE":           fmt.Sprintf("record %d at %v", i, lc.level),
				"PRIORITY":          strconv.Itoa(lc.priority),
				"SYSLOG_IDENTIFIER": ident,
				"CODE_LINE":         strconv.Itoa(lines[i]),
				"CODE_FUNC":         fn,
			}
			for k, v := range wantAttrs {
				want[k] = v
			}
			file, err := e.Value("CODE_FILE")
			if err != nil || !strings.HasSuffix(file, "/integration/logging_test.go") {
				t.Errorf("CODE_FILE = %q (%v), want a path ending in /integration/logging_test.go", file, err)
			}
			want["CODE_FILE"] = file
			wantFields(t, e, want)
			for name, value := range map[string]string{
				"_TRANSPORT": "journal",
				"_PID":       strconv.Itoa(os.Getpid()),
			} {
				if got, err := e.Value(name); err != nil || got != value {
					t.Errorf("%s = %q (%v), want %q", name, got, err, value)
				}
			}
		})
	}
}

// stackError is an error with a stack trace of its own making.
type stackError struct {
	msg   string
	stack []byte
}

func (e *stackError) Error() string { return e.msg }
func (e *stackError) Stack() []byte { return e.stack }

// recurse calls itself until depth frames of it are on the stack, then
// returns err with that stack attached.
//
//go:noinline
func recurse(depth int, err error) error {
	if depth <= 1 {
		return newstyle.WithStack(err)
	}
	return recurse(depth-1, err)
}

// TestLoggerTraceback logs errors carrying 40-line and 40-frame stack
// traces: each record must be one entry, with the whole trace in TRACEBACK
// and the message alone in MESSAGE.
func TestLoggerTraceback(t *testing.T) {
	t.Run("Stack method", func(t *testing.T) {
		var stack []byte
		for i := 1; i <= 40; i++ {
			stack = fmt.Appendf(stack, "\tline %02d of the stack: github.com/acme/app.step%02d(0x%x)\n", i, i, i*0x40)
		}
		ident := uniqueIdent(t)
		logger := newstyle.NewLogger(&newstyle.Options{Target: newstyle.TargetJournal, SyslogIdentifier: ident, Stdout: testutil.FailWriter{TB: t}})
		logger.Error("boom", "err", &stackError{msg: "disk on fire", stack: stack})

		e := oneEntry(t, ident)
		wantFields(t, e, map[string]string{
			"MESSAGE":           "boom",
			"PRIORITY":          "3",
			"SYSLOG_IDENTIFIER": ident,
			"ERR":               "disk on fire",
			"TRACEBACK":         string(stack),
		})
	})

	t.Run("WithStack", func(t *testing.T) {
		const depth = 40
		ident := uniqueIdent(t)
		logger := newstyle.NewLogger(&newstyle.Options{Target: newstyle.TargetJournal, SyslogIdentifier: ident, Stdout: testutil.FailWriter{TB: t}})
		err := recurse(depth, errors.New("disk on fire"))
		logger.Error("boom", "err", err)

		e := oneEntry(t, ident)
		trace, terr := e.Value("TRACEBACK")
		if terr != nil {
			t.Fatal(terr)
		}
		wantFields(t, e, map[string]string{
			"MESSAGE":           "boom",
			"PRIORITY":          "3",
			"SYSLOG_IDENTIFIER": ident,
			"ERR":               "disk on fire",
			"TRACEBACK":         trace,
		})
		// Each frame is a function line and a tab-indented file:line.
		lines := strings.Split(strings.TrimSuffix(trace, "\n"), "\n")
		frames := 0
		for i, l := range lines {
			if l != "github.com/newstyle-go/newstyle/integration.recurse(...)" {
				continue
			}
			frames++
			if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "\t") || !strings.Contains(lines[i+1], "/integration/logging_test.go:") {
				t.Errorf("frame %d of recurse is not followed by its file and line: %q", frames, lines[i:min(i+2, len(lines))])
			}
		}
		if frames != depth {
			t.Errorf("TRACEBACK has %d frames of recurse, want %d; TRACEBACK:\n%s", frames, depth, trace)
		}
		if !strings.Contains(trace, thisFunc()) {
			t.Errorf("TRACEBACK lacks the test function %s:\n%s", thisFunc(), trace)
		}
		t.Logf("TRACEBACK: %d lines, %d bytes", len(lines), len(trace))
	})

	t.Run("StackLevel and an error's stack", func(t *testing.T) {
		ident := uniqueIdent(t)
		logger := newstyle.NewLogger(&newstyle.Options{
			Target: newstyle.TargetJournal, SyslogIdentifier: ident, HandlerOptions: slogopts.HandlerOptions{StackLevel: slog.LevelError}, Stdout: testutil.FailWriter{TB: t},
		})
		errStack := []byte("the error's own stack\n\tline 2\n")
		logger.Warn("below StackLevel")
		logger.Error("boom", "err", &stackError{msg: "disk on fire", stack: errStack})

		entries := waitEntries(t, query{ident: ident}, 2)
		if len(entries) != 2 {
			t.Fatalf("journal has %d entries for %s, want 2", len(entries), ident)
		}
		wantFields(t, entries[0], map[string]string{"MESSAGE": "below StackLevel", "PRIORITY": "4", "SYSLOG_IDENTIFIER": ident})
		trace, err := entries[1].Value("TRACEBACK")
		if err != nil {
			t.Fatal(err)
		}
		wantFields(t, entries[1], map[string]string{
			"MESSAGE": "boom", "PRIORITY": "3", "SYSLOG_IDENTIFIER": ident, "ERR": "disk on fire", "TRACEBACK": trace,
		})
		// Both stacks, in the one field, an empty line between them; the
		// logging goroutine's starts at the function that logged.
		errPart, own, ok := strings.Cut(trace, "\n\n")
		if !ok || errPart+"\n" != string(errStack) || !strings.HasPrefix(own, thisFunc()+"(...)\n") {
			t.Errorf("TRACEBACK = %q, want %q, an empty line, then the stack of %s", trace, errStack, thisFunc())
		}
	})
}

// oneEntry returns the one entry of ident, failing the test unless there
// is exactly one: it waits for the first, then long enough for a second,
// split off, to have arrived.
func oneEntry(t *testing.T, ident string) entry {
	t.Helper()
	entries := waitEntries(t, query{ident: ident}, 1)
	syncJournal(t)
	if again, err := readJournal(query{ident: ident}); err == nil {
		entries = again
	}
	if len(entries) != 1 {
		for _, e := range entries {
			m, _ := e.Value("MESSAGE")
			t.Logf("entry: MESSAGE=%q", m)
		}
		t.Fatalf("journal has %d entries for %s, want 1", len(entries), ident)
	}
	return entries[0]
}

// syncJournal waits until journald has written everything it received
// before (journalctl --sync).
func syncJournal(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("journalctl", "--sync").CombinedOutput(); err != nil {
		t.Fatalf("journalctl --sync: %v: %s", err, out)
	}
}

// childCommand returns a command that runs this test binary again in
// helper mode, with a clean environment: none of the variables that steer
// detection but those in env.
func childCommand(t *testing.T, mode, ident string, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "JOURNAL_STREAM" || name == newstyle.EnvTarget || name == "GORACE" || strings.HasPrefix(name, "NEWSTYLE_IT_") {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	// Under -race, a process sleeps 1 s at exit for late reports, unless
	// told not to.
	cmd.Env = append(cmd.Env, childEnv+"="+mode, childIdentEnv+"="+ident, "GORACE=atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// runChild runs the helper mode of a child process and returns its exit
// status.
func runChild(mode string) int {
	ident := os.Getenv(childIdentEnv)
	switch mode {
	case "auto":
		// What a daemon does: the default options, and an identifier.
		h := newstyle.NewHandler(&newstyle.Options{SyslogIdentifier: ident, SocketPath: os.Getenv(childSocketEnv)})
		fmt.Fprintf(os.Stderr, "detection: %v\n", h.Detection())
		slog.New(h).Info("auto-detected", "child_pid", os.Getpid())
		return 0
	case "stdout-records":
		copyFile, err := os.OpenFile(os.Getenv(childCopyEnv), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer copyFile.Close()
		logger := newstyle.NewLogger(&newstyle.Options{
			Target:           newstyle.TargetStdout,
			SyslogIdentifier: ident,
			HandlerOptions:   slogopts.HandlerOptions{Level: slog.LevelDebug},
			Stdout:           io.MultiWriter(os.Stdout, copyFile),
		})
		logStdoutRecords(logger)
		return 0
	case diffChildMode:
		return runDifferentialChild()
	}
	fmt.Fprintf(os.Stderr, "%s=%q: no such mode\n", childEnv, mode)
	return 2
}

// stdoutRecords are what the stdout-records child logs, in order, with
// the priority of each.
var stdoutRecords = []struct {
	level    slog.Level
	msg      string
	priority int
}{
	{slog.LevelInfo, "service started", 6},
	{slog.LevelWarn, "disk almost full", 4},
	{slog.LevelError, "payment failed\nsecond line of the message", 3},
	{newstyle.LevelCritical, "database unreachable", 2},
	{slog.LevelDebug, "cache miss", 7},
}

func logStdoutRecords(logger *slog.Logger) {
	ctx := context.Background()
	for _, r := range stdoutRecords {
		var args []any
		switch r.level {
		case slog.LevelInfo:
			args = []any{"port", 8080}
		case slog.LevelWarn:
			args = []any{"free", "5 %", "path", "/var/lib"}
		case slog.LevelError:
			args = []any{"err", recurse(5, errors.New("card declined\nby issuer")), "order", "A-1042"}
		case newstyle.LevelCritical:
			args = []any{"retry_in", 30 * time.Second}
		case slog.LevelDebug:
			args = []any{"key", "user:42"}
		}
		logger.Log(ctx, r.level, r.msg, args...)
	}
}

// streamOf returns JOURNAL_STREAM's value for f: its device and inode.
func streamOf(t *testing.T, f *os.File) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// TestAutoDetection runs a daemon's logger (default options, an
// identifier) in a child process whose stderr is a file, with
// JOURNAL_STREAM naming that file or not, as systemd names a service's
// stream, and checks where its record went: to the journal through the
// native socket, or to its stdout as a <N> line.
func TestAutoDetection(t *testing.T) {
	const (
		isStderr  = "stderr" // JOURNAL_STREAM: the child's stderr
		otherFile = "other"  // JOURNAL_STREAM: a file that is not its stderr
	)
	tests := []struct {
		name   string
		stream string // isStderr, otherFile, or "" for unset
		env    []string
		socket string // Options.SocketPath; "" for the default
		want   newstyle.Target
		reason string
	}{
		{name: "stderr is the journal", stream: isStderr, want: newstyle.TargetJournal, reason: "stderr is the journal"},
		{name: "JOURNAL_STREAM unset", want: newstyle.TargetStdout, reason: "JOURNAL_STREAM is not set"},
		{name: "stderr redirected", stream: otherFile, want: newstyle.TargetStdout, reason: "is not stderr"},
		{name: "socket unreachable", stream: isStderr, socket: "/run/systemd/journal/no-such-socket",
			want: newstyle.TargetStdout, reason: "socket is unreachable"},
		{name: "environment forces stdout", stream: isStderr, env: []string{newstyle.EnvTarget + "=stdout"},
			want: newstyle.TargetStdout, reason: newstyle.EnvTarget + "=stdout"},
		{name: "environment forces journal", env: []string{newstyle.EnvTarget + "=journal"},
			want: newstyle.TargetJournal, reason: newstyle.EnvTarget + "=journal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ident := uniqueIdent(t)
			dir := t.TempDir()
			stderr, err := os.Create(dir + "/stderr")
			if err != nil {
				t.Fatal(err)
			}
			defer stderr.Close()
			other, err := os.Create(dir + "/other")
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()

			env := append([]string(nil), tt.env...)
			switch tt.stream {
			case isStderr:
				env = append(env, "JOURNAL_STREAM="+streamOf(t, stderr))
			case otherFile:
				env = append(env, "JOURNAL_STREAM="+streamOf(t, other))
			}
			if tt.socket != "" {
				env = append(env, childSocketEnv+"="+tt.socket)
			}
			cmd := childCommand(t, "auto", ident, env...)
			var stdout bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, stderr
			err = cmd.Run()
			errOut, _ := os.ReadFile(stderr.Name())
			if err != nil {
				t.Fatalf("child: %v; its stderr:\n%s", err, errOut)
			}
			t.Logf("child %d: %s", cmd.Process.Pid, bytes.TrimSpace(errOut))
			wantDetection := "detection: " + tt.want.String() + ": "
			if !bytes.HasPrefix(errOut, []byte(wantDetection)) || !bytes.Contains(errOut, []byte(tt.reason)) {
				t.Errorf("child's stderr = %q, want %q… with %q", errOut, wantDetection, tt.reason)
			}
			pid := strconv.Itoa(cmd.Process.Pid)

			if tt.want == newstyle.TargetJournal {
				if stdout.Len() != 0 {
					t.Errorf("child wrote to stdout: %q", stdout.Bytes())
				}
				// The automatic choice is announced first, once.
				entries := waitEntries(t, query{ident: ident}, 2)
				syncJournal(t)
				if again, err := readJournal(query{ident: ident}); err == nil {
					entries = again
				}
				if len(entries) != 2 {
					t.Fatalf("journal has %d entries for %s, want the announcement and the record", len(entries), ident)
				}
				for name, value := range map[string]string{"MESSAGE": "newstyle: logging to the journal", "TARGET": "journal", "PRIORITY": "6"} {
					if got, err := entries[0].Value(name); err != nil || got != value {
						t.Errorf("the announcement's %s = %q (%v), want %q", name, got, err, value)
					}
				}
				if got, err := entries[0].Value("REASON"); err != nil || !strings.Contains(got, tt.reason) {
					t.Errorf("the announcement's REASON = %q (%v), want it to say %q", got, err, tt.reason)
				}
				e := entries[1]
				wantFields(t, e, map[string]string{
					"MESSAGE":           "auto-detected",
					"PRIORITY":          "6",
					"SYSLOG_IDENTIFIER": ident,
					"CHILD_PID":         pid,
				})
				for name, value := range map[string]string{"_TRANSPORT": "journal", "_PID": pid} {
					if got, err := e.Value(name); err != nil || got != value {
						t.Errorf("%s = %q (%v), want %q", name, got, err, value)
					}
				}
				return
			}
			// The automatic choice is announced first, once, with its reason.
			lines := strings.SplitAfter(stdout.String(), "\n")
			if len(lines) != 3 || !strings.HasPrefix(lines[0], "<6>newstyle: logging to stdout target=stdout reason=") ||
				lines[1] != "<6>auto-detected child_pid="+pid+"\n" {
				t.Errorf("child's stdout = %q, want the announcement, then %q", stdout.String(), "<6>auto-detected child_pid="+pid+"\n")
			}
			syncJournal(t)
			if entries, err := readJournal(query{ident: ident}); err != nil {
				t.Fatal(err)
			} else if len(entries) != 0 {
				t.Errorf("journal has %d entries for %s, want none", len(entries), ident)
			}
		})
	}
}

// TestStdoutThroughStream runs a child that logs with Target stdout under
// systemd-cat, which connects its stdout to a journald stdout stream, as
// systemd does for a service: each record must be one entry, of its
// record's priority, the whole line (escapes, traceback and all) its
// MESSAGE.
func TestStdoutThroughStream(t *testing.T) {
	ident := uniqueIdent(t)
	copyPath := t.TempDir() + "/lines"
	if err := os.WriteFile(copyPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	child := childCommand(t, "stdout-records", ident, childCopyEnv+"="+copyPath)
	cmd := exec.Command("systemd-cat", append([]string{"-t", ident}, child.Args...)...)
	cmd.Env = child.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-cat: %v: %s", err, out)
	}
	if len(out) != 0 {
		t.Errorf("systemd-cat wrote %q", out)
	}

	// The lines the child wrote, as it wrote them.
	data, err := os.ReadFile(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) != len(stdoutRecords) {
		t.Fatalf("child wrote %d lines, want %d:\n%s", len(lines), len(stdoutRecords), data)
	}

	entries := waitEntries(t, query{ident: ident}, len(stdoutRecords))
	// An entry split in two would show as more entries, a moment later.
	syncJournal(t)
	time.Sleep(200 * time.Millisecond)
	if again, err := readJournal(query{ident: ident}); err == nil {
		entries = again
	}
	if len(entries) != len(stdoutRecords) {
		for _, e := range entries {
			m, _ := e.Value("MESSAGE")
			t.Logf("entry: MESSAGE=%q", m)
		}
		t.Fatalf("journal has %d entries for %s, want %d, one per record", len(entries), ident, len(stdoutRecords))
	}
	for i, e := range entries {
		r := stdoutRecords[i]
		line := lines[i]
		wantPrefix := fmt.Sprintf("<%d>", r.priority)
		if !strings.HasPrefix(line, wantPrefix) || !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
			t.Errorf("line %d = %q, want %s… and one newline, at its end", i, line, wantPrefix)
			continue
		}
		// journald takes the prefix off (systemd-cat's --level-prefix)
		// and the newline.
		message := strings.TrimSuffix(strings.TrimPrefix(line, wantPrefix), "\n")
		wantFields(t, e, map[string]string{
			"MESSAGE":           message,
			"PRIORITY":          strconv.Itoa(r.priority),
			"SYSLOG_IDENTIFIER": ident,
		})
		if got, err := e.Value("_TRANSPORT"); err != nil || got != "stdout" {
			t.Errorf("entry %d: _TRANSPORT = %q (%v), want stdout", i, got, err)
		}
		escaped := strings.ReplaceAll(r.msg, "\n", `\n`)
		if !strings.HasPrefix(message, escaped) {
			t.Errorf("entry %d: MESSAGE = %q, want it to start with %q", i, message, escaped)
		}
		if r.level == slog.LevelError {
			for _, want := range []string{
				`err="card declined\nby issuer"`,
				` traceback="github.com/newstyle-go/newstyle/integration.recurse(...)\n\t`,
				`integration.logStdoutRecords(...)\n\t`,
			} {
				if !strings.Contains(message, want) {
					t.Errorf("entry %d: MESSAGE lacks %q: %q", i, want, message)
				}
			}
		}
	}
}

// TestRuntimeFailover kills journald under a logger with Target journal:
// records must go to its stdout (the switch reported once, first), and,
// once a new journald is up and the retry interval (1 s) has passed, to
// the journal again, the way back reported there with the number of
// records that went to stdout.
func TestRuntimeFailover(t *testing.T) {
	const whileDown = 5
	ident := uniqueIdent(t)
	keepSystemJournald(t) // whatever happens, for the tests after this one
	var stdout testutil.Buffer
	logger := newstyle.NewLogger(&newstyle.Options{
		Target:           newstyle.TargetJournal,
		SyslogIdentifier: ident,
		Stdout:           &stdout,
	})

	logger.Info("before journald dies", "seq", 0)
	// It must be stored before journald is killed, or it may die with it.
	if es := waitEntries(t, query{ident: ident}, 1); len(es) != 1 {
		t.Fatalf("journal has %d entries for %s, want 1", len(es), ident)
	}
	if stdout.String() != "" {
		t.Fatalf("stdout = %q with journald up", stdout.String())
	}

	if err := systemJournald.kill(); err != nil {
		t.Fatal(err)
	}
	for seq := 1; seq <= whileDown; seq++ {
		logger.Info("while journald is down", "seq", seq)
	}
	lines := strings.SplitAfter(stdout.String(), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) != 1+whileDown {
		t.Fatalf("stdout has %d lines, want %d (the report and %d records):\n%s",
			len(lines), 1+whileDown, whileDown, stdout.String())
	}
	if want := "<4>newstyle: the journal cannot be reached; logging to stdout until it can error="; !strings.HasPrefix(lines[0], want) {
		t.Errorf("stdout line 1 = %q, want %q…", lines[0], want)
	}
	for i, l := range lines[1:] {
		if want := fmt.Sprintf("<6>while journald is down seq=%d\n", i+1); l != want {
			t.Errorf("stdout line %d = %q, want %q", i+2, l, want)
		}
	}

	startSystemJournald(t)
	time.Sleep(1200 * time.Millisecond) // past the retry interval
	logger.Info("after journald is back", "seq", whileDown+1)

	if got := stdout.String(); strings.Count(got, "\n") != 1+whileDown {
		t.Errorf("stdout got more lines after journald came back:\n%s", got)
	}
	entries := waitEntries(t, query{ident: ident}, 3)
	syncJournal(t)
	if again, err := readJournal(query{ident: ident}); err == nil {
		entries = again
	}
	// Every entry once, whatever the order; then the order.
	want := []string{
		"before journald dies",
		"newstyle: the journal can be reached again; logging to it",
		"after journald is back",
	}
	var got []string
	byMessage := make(map[string]entry)
	for _, e := range entries {
		m, _ := e.Value("MESSAGE")
		got = append(got, m)
		byMessage[m] = e
	}
	if len(entries) != len(want) {
		t.Fatalf("journal holds %d entries, want %d:\n\t%s", len(entries), len(want), strings.Join(got, "\n\t"))
	}
	if e, ok := byMessage[want[1]]; !ok {
		t.Errorf("no entry %q", want[1])
	} else {
		wantFields(t, e, map[string]string{
			"MESSAGE":           want[1],
			"PRIORITY":          "6",
			"SYSLOG_IDENTIFIER": ident,
			"RECORDS_ON_STDOUT": strconv.Itoa(whileDown),
		})
	}
	if e, ok := byMessage[want[2]]; !ok {
		t.Errorf("no entry %q", want[2])
	} else {
		wantFields(t, e, map[string]string{
			"MESSAGE":           want[2],
			"PRIORITY":          "6",
			"SYSLOG_IDENTIFIER": ident,
			"SEQ":               strconv.Itoa(whileDown + 1),
		})
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("journal holds, in order:\n\t%s\nwant the report of the way back before the record that found it:\n\t%s",
			strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}
