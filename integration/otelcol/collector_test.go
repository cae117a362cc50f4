//go:build integration

package otelcol_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/otel"
	"github.com/newstyle-go/newstyle/slogopts"
	"go.opentelemetry.io/otel/trace"
)

const (
	socketPath = "/run/systemd/journal/socket"
	configFile = "newstyle.yaml" // the shipped configuration, used as it is

	runCommand = "scripts/private-ns.sh --journald sh -c 'cd integration/otelcol && go test -tags integration -count=1 -v ./...'"

	// arriveTimeout bounds the wait for every record in the exported file.
	arriveTimeout = 60 * time.Second
	// settle is how long the test goes on reading after every record has
	// arrived, to see any record that would arrive twice: several of the
	// file exporter's flushes (one a second).
	settle = 3 * time.Second
)

// The span of the traced records.
var (
	traceID = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	spanID  = trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}
)

// severity is the OTel severity newstyle.yaml gives each PRIORITY.
var severity = [8]struct {
	number int
	text   string
}{
	0: {21, "emerg"},   // FATAL
	1: {19, "alert"},   // ERROR3
	2: {18, "crit"},    // ERROR2
	3: {17, "err"},     // ERROR
	4: {13, "warning"}, // WARN
	5: {10, "notice"},  // INFO2
	6: {9, "info"},     // INFO
	7: {5, "debug"},    // DEBUG
}

// levels are slog levels, one for each PRIORITY.
var levels = [8]slog.Level{
	newstyle.LevelEmergency, newstyle.LevelAlert, newstyle.LevelCritical, slog.LevelError,
	slog.LevelWarn, newstyle.LevelNotice, slog.LevelInfo, slog.LevelDebug,
}

// want is what one record must arrive as.
type want struct {
	priority int
	fields   map[string]string // body fields, exactly
	traced   bool              // trace and span ids (and flags) set
}

func TestCollector(t *testing.T) {
	checkEnvironment(t)
	bin := collectorBinary(t)

	ident := fmt.Sprintf("newstyle-otelcol-%d", time.Now().UnixNano())
	h := newstyle.NewHandler(&newstyle.Options{
		Target:           newstyle.TargetJournal,
		SyslogIdentifier: ident,
		HandlerOptions: slogopts.HandlerOptions{
			Level:        slog.LevelDebug,
			ContextAttrs: otel.ContextAttrs,
		},
	})
	defer h.Close()
	if d := h.Detection(); d.Target != newstyle.TargetJournal {
		t.Fatalf("the logger does not write to the journal: %v", d)
	}
	logger := slog.New(h)
	wants := make(map[string]want) // by MESSAGE

	// Before the collector starts: it must read them from the journal
	// (start_at: beginning).
	for p, l := range levels {
		msg := fmt.Sprintf("priority %d", p)
		logger.Log(context.Background(), l, msg, "prio", p)
		wants[msg] = want{priority: p, fields: map[string]string{"PRIO": fmt.Sprint(p)}}
	}
	logger.Info("with attributes", "user.id", 42, slog.Group("req", "method", "GET", "path", "/orders"),
		"ratio", 0.25, "ok", true, "note", "two\nlines")
	wants["with attributes"] = want{priority: 6, fields: map[string]string{
		"USER_ID": "42", "REQ_METHOD": "GET", "REQ_PATH": "/orders", "RATIO": "0.25", "OK": "true",
		"NOTE": "two\nlines",
	}}
	stack := traceback(40)
	if len(stack) <= 4096 {
		t.Fatalf("the traceback is %d bytes; it must be over 4,096 to need all: true", len(stack))
	}
	logger.Error("with a traceback", "err", newstyle.WithTrace(errors.New("disk full"), stack))
	wants["with a traceback"] = want{priority: 3, fields: map[string]string{"ERR": "disk full", "TRACEBACK": string(stack)}}

	// A TRACE_ID that is not a trace id: the transform's set fails, and
	// with error_mode: ignore the record arrives all the same.
	logger.Warn("bad trace id", "trace_id", "not-a-trace-id")
	wants["bad trace id"] = want{priority: 4, fields: map[string]string{"TRACE_ID": "not-a-trace-id"}}

	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))
	logger.InfoContext(ctx, "traced before start", "step", 1)
	wants["traced before start"] = want{priority: 6, traced: true, fields: map[string]string{
		"STEP": "1", "TRACE_ID": traceID.String(), "SPAN_ID": spanID.String(), "TRACE_FLAGS": "01",
	}}

	dir := t.TempDir()
	out := filepath.Join(dir, "logs.jsonl")
	stop := startCollector(t, bin, out, filepath.Join(dir, "collector.log"))

	// Once the collector has exported what was logged before it started,
	// log more: it must follow the journal.
	waitFor(t, out, ident, arriveTimeout, func(got map[string][]record) bool { return len(got) >= 1 })
	logger.ErrorContext(ctx, "traced after start", "step", 2)
	wants["traced after start"] = want{priority: 3, traced: true, fields: map[string]string{
		"STEP": "2", "TRACE_ID": traceID.String(), "SPAN_ID": spanID.String(), "TRACE_FLAGS": "01",
	}}
	logger.Debug("debug after start")
	wants["debug after start"] = want{priority: 7, fields: map[string]string{}}

	waitFor(t, out, ident, arriveTimeout, func(got map[string][]record) bool { return len(got) >= len(wants) })
	time.Sleep(settle)
	stop()
	got := readExported(t, out, ident)

	for msg, w := range wants {
		recs := got[msg]
		if len(recs) != 1 {
			t.Errorf("%q arrived %d times, want once", msg, len(recs))
			if len(recs) == 0 {
				continue
			}
		}
		checkRecord(t, msg, recs[0], w, ident)
	}
	for msg, recs := range got {
		if _, ok := wants[msg]; !ok {
			t.Errorf("unexpected record %q (%d times)", msg, len(recs))
		}
	}
	t.Logf("%d records, each exported once, checked", len(wants))
}

func checkRecord(t *testing.T, msg string, r record, w want, ident string) {
	t.Helper()
	fields := map[string]string{
		"MESSAGE":           msg,
		"PRIORITY":          fmt.Sprint(w.priority),
		"SYSLOG_IDENTIFIER": ident,
		"_TRANSPORT":        "journal",
	}
	for k, v := range w.fields {
		fields[k] = v
	}
	for k, v := range fields {
		got, ok := r.body[k]
		if !ok {
			t.Errorf("%q: body has no %s", msg, k)
		} else if got != v {
			t.Errorf("%q: body %s = %q (%d bytes), want %q (%d bytes)", msg, k, got, len(got), v, len(v))
		}
	}
	sev := severity[w.priority]
	if r.SeverityNumber != sev.number || r.SeverityText != sev.text {
		t.Errorf("%q (PRIORITY %d): severity %d %q, want %d %q",
			msg, w.priority, r.SeverityNumber, r.SeverityText, sev.number, sev.text)
	}
	if w.traced {
		if r.TraceID != traceID.String() || r.SpanID != spanID.String() || r.Flags != 1 {
			t.Errorf("%q: traceId %q spanId %q flags %d, want %s %s 1",
				msg, r.TraceID, r.SpanID, r.Flags, traceID, spanID)
		}
	} else if r.TraceID != "" || r.SpanID != "" || r.Flags != 0 {
		t.Errorf("%q: traceId %q spanId %q flags %d, want none", msg, r.TraceID, r.SpanID, r.Flags)
	}
	if r.TimeUnixNano == "" {
		t.Errorf("%q: no timeUnixNano", msg)
	}
}

// traceback returns a stack trace of n frames, two lines each, as Go
// prints them, with long names: over 4 KiB for 40 frames.
func traceback(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "example.com/shop/internal/orders/payments.(*Processor).chargeCardWithRetriesAndBackoff%02d(...)\n", i)
		fmt.Fprintf(&b, "\t/src/shop/internal/orders/payments/processor.go:%d\n", 100+i)
	}
	return b.Bytes()
}

// checkEnvironment fails the test, with the command to run, when it is
// not in the private namespace of scripts/private-ns.sh --journald.
func checkEnvironment(t *testing.T) {
	t.Helper()
	if os.Getenv("NEWSTYLE_PRIVATE_NS") != "1" {
		t.Fatalf("NEWSTYLE_PRIVATE_NS is not 1: this test reads the journal of a journald of its own and must run "+
			"in the private namespace of scripts/private-ns.sh, from the repository root:\n\t%s", runCommand)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("not root: the collector's journalctl reads the whole journal; run:\n\t%s", runCommand)
	}
	c, err := net.Dial("unixgram", socketPath)
	if err != nil {
		t.Fatalf("no journald at %s (%v): run scripts/private-ns.sh with --journald:\n\t%s", socketPath, err, runCommand)
	}
	c.Close()
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Fatalf("the journald receiver runs journalctl: %v (package systemd)", err)
	}
}

// collectorBinary returns NEWSTYLE_OTELCOL_BIN, or builds the collector.
func collectorBinary(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("NEWSTYLE_OTELCOL_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("NEWSTYLE_OTELCOL_BIN: %v", err)
		}
		return bin
	}
	bin := filepath.Join(t.TempDir(), "otelcol-newstyle")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/otelcol-newstyle")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the collector: %v\n%s", err, out)
	}
	t.Logf("built the collector in %v", time.Since(start).Round(time.Millisecond))
	return bin
}

// startCollector runs the collector with the shipped configuration,
// exporting to out, its own log to logPath. The function it returns stops
// it (SIGTERM, then SIGKILL after 10 s) and may be called more than once;
// the test's cleanup calls it too.
func startCollector(t *testing.T, bin, out, logPath string) (stop func()) {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config="+configFile)
	cmd.Env = append(os.Environ(), "NEWSTYLE_OTELCOL_OUTPUT="+out)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the collector: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var done bool
	stop = func() {
		if done {
			return
		}
		done = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("the collector exited: %v", err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("the collector did not stop within 10 s of SIGTERM; killed")
		}
		logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("the collector's log:\n%s", b)
			}
		}
	}
	t.Cleanup(stop)
	// A collector that exits at once (a bad configuration) fails the test
	// here rather than at the deadline.
	select {
	case err := <-exited:
		done = true
		logFile.Close()
		b, _ := os.ReadFile(logPath)
		t.Fatalf("the collector exited at start (%v):\n%s", err, b)
	case <-time.After(500 * time.Millisecond):
	}
	return stop
}

// record is one OTLP log record, as the file exporter writes it, with its
// body (a map of the journal entry's fields) flattened.
type record struct {
	TimeUnixNano   string `json:"timeUnixNano"`
	SeverityNumber int    `json:"severityNumber"`
	SeverityText   string `json:"severityText"`
	TraceID        string `json:"traceId"`
	SpanID         string `json:"spanId"`
	Flags          int    `json:"flags"`
	Body           struct {
		KvlistValue struct {
			Values []struct {
				Key   string          `json:"key"`
				Value json.RawMessage `json:"value"` // an AnyValue
			} `json:"values"`
		} `json:"kvlistValue"`
	} `json:"body"`

	body map[string]string
}

// exportRequest is one line of the file exporter's output.
type exportRequest struct {
	ResourceLogs []struct {
		ScopeLogs []struct {
			LogRecords []record `json:"logRecords"`
		} `json:"scopeLogs"`
	} `json:"resourceLogs"`
}

// readExported returns the records of ident in the exported file, by
// MESSAGE; a missing file is no record yet.
func readExported(t *testing.T, path, ident string) map[string][]record {
	t.Helper()
	got := make(map[string][]record)
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return got
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 256<<20)
	for n := 1; sc.Scan(); n++ {
		var req exportRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			// The exporter may be writing this line now: the last one
			// is read again at the next poll.
			continue
		}
		for _, rl := range req.ResourceLogs {
			for _, sl := range rl.ScopeLogs {
				for _, r := range sl.LogRecords {
					r.body = make(map[string]string)
					for _, kv := range r.Body.KvlistValue.Values {
						var v struct {
							StringValue *string `json:"stringValue"`
						}
						if json.Unmarshal(kv.Value, &v) == nil && v.StringValue != nil {
							r.body[kv.Key] = *v.StringValue
						} else {
							r.body[kv.Key] = "(not a string: " + string(kv.Value) + ")"
						}
					}
					if r.body["SYSLOG_IDENTIFIER"] == ident {
						got[r.body["MESSAGE"]] = append(got[r.body["MESSAGE"]], r)
					}
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return got
}

// waitFor polls the exported file until done accepts its records of
// ident, and fails the test at the deadline.
func waitFor(t *testing.T, path, ident string, timeout time.Duration, done func(map[string][]record) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := readExported(t, path, ident)
		if done(got) {
			return
		}
		if time.Now().After(deadline) {
			msgs := make([]string, 0, len(got))
			for m := range got {
				msgs = append(msgs, m)
			}
			t.Fatalf("after %v the collector had exported %d records of %s: %s",
				timeout, len(got), ident, strings.Join(msgs, ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
