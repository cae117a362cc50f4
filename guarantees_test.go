package newstyle

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/journaltest"
	"github.com/newstyle-go/newstyle/slogopts"
)

// A thousand loggers cost one socket; closing them, or dropping them,
// gives it back.
func TestLoggersLeakNoDescriptors(t *testing.T) {
	srv := journaltest.NewServer(t)
	opts := &Options{Target: TargetJournal, SocketPath: srv.Path(), Stdout: &bytes.Buffer{}}
	base := testutil.OpenFDs(t)

	var hs []*Handler
	for i := 0; i < 1000; i++ {
		hs = append(hs, NewHandler(opts))
		_ = NewLogger(opts)
	}
	if n := testutil.OpenFDs(t); n > base+1 {
		t.Errorf("2000 loggers: %d descriptors open, %d before", n, base)
	}
	for _, h := range hs {
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		if err := h.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	hs = nil
	var open int
	if !testutil.Poll(5*time.Second, 10*time.Millisecond, func() bool {
		if open = testutil.OpenFDs(t); open <= base {
			return true
		}
		runtime.GC()
		return false
	}) {
		t.Fatalf("closed and dropped loggers still hold %d descriptors", open-base)
	}

	for i := 0; i < 1000; i++ {
		_ = NewLogger(&Options{Target: TargetStdout, Stdout: &bytes.Buffer{}})
		_ = Detect()
	}
	if n := testutil.OpenFDs(t); n > base {
		t.Errorf("1000 stdout loggers and Detect calls: %d descriptors open, %d before", n, base)
	}
}

// A value whose method panics keeps its record, through either target.
func TestRootHandlerPanickyValues(t *testing.T) {
	for _, tc := range testutil.PanickyValues() {
		t.Run(tc.Name+"/journal", func(t *testing.T) {
			srv := journaltest.NewServer(t)
			h := NewHandler(&Options{Target: TargetJournal, SocketPath: srv.Path(), Stdout: &bytes.Buffer{}})
			defer h.Close()
			l := slog.New(h)
			l.With("w", tc.Value).Error("kept", "v", tc.Value, "after", 2)
			e := srv.Wait(t, 1, 5*time.Second)[0].Entry
			for name, want := range map[string]string{"MESSAGE": "kept", "W": tc.Want, "V": tc.Want, "AFTER": "2"} {
				if v, _ := e.Get(name); v != want {
					t.Errorf("%s = %q, want %q", name, v, want)
				}
			}
		})
		t.Run(tc.Name+"/stdout", func(t *testing.T) {
			var out bytes.Buffer
			l := NewLogger(&Options{Target: TargetStdout, Stdout: &out})
			l.With("w", tc.Value).Error("kept", "v", tc.Value, "after", 2)
			line := out.String()
			if !strings.HasPrefix(line, "<3>kept ") || !strings.Contains(line, "after=2") ||
				strings.Count(line, tc.Want) < 2 || strings.Count(line, "\n") != 1 {
				t.Errorf("line %q: want the record with %q twice", line, tc.Want)
			}
		})
	}
}

// Through an asynchronous Writer: records keep their own time (TIME), go
// one a datagram to a socket that is not the system's journald (whose
// version says whether it keeps several: see journal's batchable), and
// those journald did not take go to stdout.
func TestRootAsync(t *testing.T) {
	srv := journaltest.NewServer(t)
	var out testutil.Buffer
	h := NewHandler(&Options{Target: TargetJournal, SocketPath: srv.Path(), Stdout: &out, Async: &journal.AsyncOptions{}})
	defer h.Close()
	l := slog.New(h)
	for i := 0; i < 1000; i++ {
		l.Info("batched", "i", i)
	}
	if err := h.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := srv.Wait(t, 1000, 5*time.Second)
	if v, _ := got[999].Get("TIME"); v == "" {
		t.Errorf("entry without TIME: %v", got[999].Entry)
	}
	if st, _ := h.JournalStats(); st.Datagrams != 1000 {
		t.Errorf("1000 records in %d datagrams", st.Datagrams)
	}

	srv.Close()
	l.Warn("journald gone", "k", "v")
	if err := h.Flush(context.Background()); err == nil {
		t.Error("Flush with journald gone: no error")
	}
	lines := out.Lines()
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "<4>journald gone ") || !strings.Contains(lines[0], " K=v") {
		t.Errorf("stdout: %q, want the undelivered record", lines)
	}
}

// ContextAttrs: a record's context adds attributes, outside any group,
// in the journal (TRACE_ID) and on stdout (trace_id=) alike.
func TestContextAttrs(t *testing.T) {
	tr := &testutil.Trace{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7"}
	ctx := testutil.WithTrace(context.Background(), tr)

	srv := journaltest.NewServer(t)
	h := NewHandler(&Options{Target: TargetJournal, SocketPath: srv.Path(), HandlerOptions: slogopts.HandlerOptions{ContextAttrs: testutil.TraceAttrs}, Stdout: &bytes.Buffer{}})
	defer h.Close()
	l := slog.New(h).WithGroup("req")
	l.InfoContext(ctx, "traced", "id", 7)
	l.Info("not traced")
	got := srv.Wait(t, 2, 5*time.Second)
	want := []string{"MESSAGE=traced", "PRIORITY=6", "REQ_ID=7", "TRACE_ID=" + tr.TraceID, "SPAN_ID=" + tr.SpanID}
	var have []string
	for _, f := range got[0].Fields {
		if f.Name != "SYSLOG_IDENTIFIER" {
			have = append(have, f.Name+"="+string(f.Value))
		}
	}
	if strings.Join(have, "|") != strings.Join(want, "|") {
		t.Errorf("fields %q, want %q", have, want)
	}
	if got[1].Count("TRACE_ID") != 0 {
		t.Errorf("a record without a trace has TRACE_ID: %v", got[1].Entry)
	}

	var out bytes.Buffer
	slog.New(NewHandler(&Options{Target: TargetStdout, Stdout: &out, HandlerOptions: slogopts.HandlerOptions{ContextAttrs: testutil.TraceAttrs}})).WithGroup("req").InfoContext(ctx, "traced", "id", 7)
	if want := "<6>traced req.id=7 trace_id=" + tr.TraceID + " span_id=" + tr.SpanID + "\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
}
