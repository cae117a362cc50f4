//go:build linux

package newstyle

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journaltest"
)

// stderrStream returns JOURNAL_STREAM's value for this process's stderr.
func stderrStream(t *testing.T) string {
	var st syscall.Stat_t
	if err := syscall.Fstat(2, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

func TestDetect(t *testing.T) {
	srv := journaltest.NewServer(t)
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name       string
		env        string // NEWSTYLE_LOG_TARGET
		stream     string // JOURNAL_STREAM; "stderr" for the real one
		target     Target
		socket     string
		want       Target
		wantReason string
	}{
		{"not under systemd", "", "", TargetAuto, srv.Path(), TargetStdout, "JOURNAL_STREAM is not set"},
		{"stderr is the journal", "", "stderr", TargetAuto, srv.Path(), TargetJournal, "stderr is the journal"},
		{"stderr redirected", "", "1:2", TargetAuto, srv.Path(), TargetStdout, "is not stderr"},
		{"malformed JOURNAL_STREAM", "", "x", TargetAuto, srv.Path(), TargetStdout, "is not stderr"},
		{"socket unreachable", "", "stderr", TargetAuto, missing, TargetStdout, "socket is unreachable"},
		{"option forces journal", "", "", TargetJournal, missing, TargetJournal, "Options.Target"},
		{"option forces stdout", "", "stderr", TargetStdout, srv.Path(), TargetStdout, "Options.Target"},
		{"environment forces stdout over the option", "stdout", "stderr", TargetJournal, srv.Path(), TargetStdout, EnvTarget + "=stdout"},
		{"environment forces journal", "JOURNAL", "", TargetAuto, missing, TargetJournal, EnvTarget + "=JOURNAL"},
		{"environment auto", "auto", "stderr", TargetAuto, srv.Path(), TargetJournal, "stderr is the journal"},
		{"environment typo ignored and said", "jornal", "stderr", TargetAuto, srv.Path(), TargetJournal, `invalid target "jornal": the targets are auto, journal, stdout (or console) and null; ignored`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvTarget, tt.env)
			stream := tt.stream
			if stream == "stderr" {
				stream = stderrStream(t)
			}
			t.Setenv("JOURNAL_STREAM", stream)
			var out bytes.Buffer
			h := NewHandler(&Options{Target: tt.target, SocketPath: tt.socket, Stdout: &out, Quiet: true})
			d := h.Detection()
			if d.Target != tt.want || !strings.Contains(d.Reason, tt.wantReason) {
				t.Errorf("Detection = %v, want %v with %q", d, tt.want, tt.wantReason)
			}
			// Every Handler has its journal Writer, whatever it chose
			// (it takes a socket only when it sends); quiet, it sends
			// nothing but the warning of a value of NEWSTYLE_LOG_TARGET
			// it cannot read, to where it logs.
			warned := 0
			if _, err := ParseTarget(tt.env); tt.env != "" && err != nil {
				warned = 1
			}
			onJournal := 0
			if tt.want == TargetJournal {
				onJournal = warned
			}
			if st, ok := h.JournalStats(); !ok || st.Entries+st.Errors.Total() != uint64(onJournal) {
				t.Errorf("JournalStats = %+v, %v", st, ok)
			}
			if tt.want == TargetStdout && strings.Count(out.String(), "\n") != warned {
				t.Errorf("stdout: %q", out.String())
			}
		})
	}
}

// A journal that goes away mid-run: every record still arrives somewhere,
// and each switch is reported once.
func TestFailover(t *testing.T) {
	old := retryInterval
	retryInterval = 50 * time.Millisecond
	t.Cleanup(func() { retryInterval = old })

	srv := journaltest.NewServer(t)
	path := srv.Path()
	var out testutil.Buffer
	logger := NewLogger(&Options{Target: TargetJournal, SocketPath: path, Stdout: &out}).With("app", "shop")

	logger.Info("one")
	srv.Wait(t, 1, 5*time.Second)
	srv.Close()
	for i := 0; i < 5; i++ {
		logger.Warn("while down", "i", i)
	}
	lines := out.Lines()
	if len(lines) != 6 {
		t.Fatalf("stdout has %d lines, want the switch reported once and 5 records:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	if !strings.HasPrefix(lines[0], "<4>newstyle: the journal cannot be reached") || !strings.Contains(lines[0], "error=") {
		t.Errorf("first line %q does not report the switch with its error", lines[0])
	}
	for i, l := range lines[1:] {
		if !strings.HasPrefix(l, "<4>while down") || !strings.Contains(l, fmt.Sprintf("i=%d", i)) || !strings.Contains(l, "app=shop") {
			t.Errorf("line %d = %q", i+1, l)
		}
	}

	again := journaltest.NewServerAt(t, path)
	time.Sleep(2 * retryInterval)
	logger.Info("back")
	got := again.Wait(t, 2, 5*time.Second)
	if m, _ := got[0].Get("MESSAGE"); !strings.HasPrefix(m, "newstyle: the journal can be reached again") {
		t.Errorf("first entry after the return = %q, want the report", m)
	}
	if n, _ := got[0].Get("RECORDS_ON_STDOUT"); n != "5" {
		t.Errorf("RECORDS_ON_STDOUT = %q, want 5", n)
	}
	if m, _ := got[1].Get("MESSAGE"); m != "back" {
		t.Errorf("MESSAGE = %q, want back", m)
	}
	if n := len(out.Lines()); n != 6 {
		t.Errorf("stdout got more lines after the journal came back: %d", n)
	}
}

// A record the journal refuses for its size goes to stdout without
// declaring the journal down.
func TestTooLargeGoesToStdout(t *testing.T) {
	srv := journaltest.NewServer(t)
	var out testutil.Buffer
	logger := NewLogger(&Options{Target: TargetJournal, SocketPath: srv.Path(), Stdout: &out})
	args := make([]any, 0, 2100)
	for i := 0; i < 1050; i++ {
		args = append(args, fmt.Sprintf("k%d", i), i)
	}
	logger.Info("huge", args...)
	logger.Info("small")
	lines := out.Lines()
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "<6>huge ") || !strings.Contains(lines[0], "k1049=1049") {
		t.Fatalf("stdout = %q, want the one huge record", lines)
	}
	if m, _ := srv.Wait(t, 1, 5*time.Second)[0].Get("MESSAGE"); m != "small" {
		t.Errorf("journal got %q, want small", m)
	}
}

func TestWithStack(t *testing.T) {
	base := errors.New("disk full")
	err := WithStack(base)
	if err.Error() != "disk full" || !errors.Is(err, base) {
		t.Fatalf("WithStack changed the error: %v", err)
	}
	var st StackTracer
	if !errors.As(err, &st) {
		t.Fatal("no StackTracer in the chain")
	}
	stack := string(st.Stack())
	if !strings.HasPrefix(stack, "github.com/newstyle-go/newstyle.TestWithStack(") {
		t.Errorf("stack does not start at the caller:\n%s", stack)
	}
	if WithStack(fmt.Errorf("wrapped: %w", err)).(interface{ Unwrap() error }).Unwrap() != err {
		t.Error("a second WithStack added another stack")
	}
	if WithStack(nil) != nil {
		t.Error("WithStack(nil) != nil")
	}
	if string(WithTrace(base, []byte("t")).(StackTracer).Stack()) != "t" {
		t.Error("WithTrace lost its trace")
	}
}

// The switch reports are the library's own records: they carry none of
// the attributes or groups of the logger whose record found the journal
// gone.
func TestReportsUseTheBaseLogger(t *testing.T) {
	old := retryInterval
	retryInterval = 20 * time.Millisecond
	t.Cleanup(func() { retryInterval = old })
	srv := journaltest.NewServer(t)
	path := srv.Path()
	var out testutil.Buffer
	logger := NewLogger(&Options{Target: TargetJournal, SocketPath: path, Stdout: &out}).
		With("component", "billing").WithGroup("req")
	srv.Close()
	logger.Info("lost?", "id", 1)
	lines := out.Lines()
	if len(lines) != 2 || strings.Contains(lines[0], "component") || !strings.Contains(lines[0], " error=") {
		t.Fatalf("stdout = %q, want a plain report then the record", lines)
	}
	if !strings.Contains(lines[1], "component=billing req.id=1") {
		t.Errorf("record = %q", lines[1])
	}
	again := journaltest.NewServerAt(t, path)
	time.Sleep(2 * retryInterval)
	logger.Info("back")
	got := again.Wait(t, 2, 5*time.Second)
	if got[0].Count("COMPONENT") != 0 || got[0].Count("RECORDS_ON_STDOUT") != 1 {
		t.Errorf("report entry has fields %v", got[0].Fields)
	}
}
