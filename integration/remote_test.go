//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/slogopts"
)

// systemd's way to collect journals from many machines: journal-upload
// reads the local journal and sends it over HTTP to journal-remote, which
// writes it to journal files of its own. Here both run on this machine,
// the remote listening on 127.0.0.1 only.
const (
	journalRemotePath = "/lib/systemd/systemd-journal-remote"
	journalUploadPath = "/lib/systemd/systemd-journal-upload"

	// remoteArriveTimeout bounds the wait for every entry to be in the
	// central journal; a 16 MiB entry takes a few seconds.
	remoteArriveTimeout = 2 * time.Minute
)

// TestRemoteJournal logs through journal.Writer and a newstyle logger to
// the local journald while systemd-journal-upload ships the local journal
// to a systemd-journal-remote on loopback, and checks each entry in the
// central journal, field by field and byte for byte, against what was sent
// and against the local journal's copy: a 40-line TRACEBACK, a field sent
// three times (its values in their order), a value with a NUL, bytes that
// are not UTF-8 and a newline, a trace's ids from the record's context, and
// a 16 MiB entry that went by memfd.
func TestRemoteJournal(t *testing.T) {
	for _, path := range []string{journalRemotePath, journalUploadPath} {
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("%v: package systemd-journal-remote, pinned to systemd's version, is needed "+
				"(scripts/deps.sh installs it)", err)
		}
	}
	r := startRemote(t)
	start := time.Now()
	r.sendSmall(t)
	smallSent := len(r.entries)
	smallAt := r.wait(t, start, r.messages())

	// 16 MiB, too large for a datagram: by memfd.
	payload := randomValue(16<<20, false)
	sum := sha256.Sum256(payload)
	before := r.w.Stats().Memfd
	bigStart := time.Now()
	r.send(t, "remote: 16 MiB", journal.PriInfo,
		map[string][]string{"PAYLOAD": {string(payload)}, "PAYLOAD_SHA256": {hex.EncodeToString(sum[:])}},
		journal.Field{Name: "PAYLOAD", Value: payload},
		journal.StringField("PAYLOAD_SHA256", hex.EncodeToString(sum[:])))
	if got := r.w.Stats().Memfd - before; got != 1 {
		t.Fatalf("the 16 MiB entry went by memfd %d times, want once", got)
	}
	bigSent := time.Now()
	bigAt := r.wait(t, bigSent, []string{"remote: 16 MiB"})
	t.Logf("in the central journal: the %d small entries %v after the first was sent; "+
		"the 16 MiB entry (Send took %v) %v after its Send returned",
		smallSent, smallAt.Round(time.Millisecond), bigSent.Sub(bigStart).Round(time.Millisecond), bigAt.Round(time.Millisecond))

	// journal-upload keeps following the journal: it is still running.
	select {
	case <-r.upload.exited:
		t.Errorf("journal-upload exited by itself (%v); it follows the journal by default", r.upload.waitErr)
	default:
	}

	central, local := r.stored(t)
	for i, s := range r.entries {
		t.Run(strings.TrimPrefix(strings.SplitN(s.message, "\n", 2)[0], "remote: "), func(t *testing.T) {
			checkRemoteEntry(t, r.ident, s, central[i], local[i])
		})
	}
	if v := central[len(central)-1]["PAYLOAD"]; len(v) == 1 {
		if s := sha256.Sum256(v[0]); s != sum {
			t.Errorf("PAYLOAD's sha256 in the central journal = %x, want %x", s, sum)
		}
		t.Logf("PAYLOAD in the central journal: %d bytes, sha256 as sent", len(v[0]))
	}

	// Both stop cleanly on SIGTERM.
	if err := r.upload.stop(); err != nil {
		t.Error(err)
	}
	if err := r.remote.stop(); err != nil {
		t.Error(err)
	}
	size, files := dirSize(t, r.outDir)
	t.Logf("central journal: %d file(s), %d bytes on disk; journal-remote said: %q; state file: %s",
		files, size, strings.TrimSpace(r.remote.output.String()), fileState(r.stateFile))
}

// remoteRun is one run of TestRemoteJournal: the writer that logs, the
// two daemons that ship its entries, and what was sent, in order.
type remoteRun struct {
	ident             string
	w                 *journal.Writer
	outDir, stateFile string
	remote, upload    *remoteDaemon
	entries           []remoteSent
}

// remoteSent is an entry sent: want holds its fields (a name's values in
// order) besides SYSLOG_IDENTIFIER.
type remoteSent struct {
	message string
	want    map[string][]string
}

// startRemote logs a marker, and starts journal-remote and a journal-upload
// that uploads what the local journal holds after it (--after-cursor): the
// local journal may hold many entries of earlier tests. (The journal-upload
// of systemd 252 uploads the cursor's entry too.)
func startRemote(t *testing.T) *remoteRun {
	// Registered before the daemons start, so removed after they stop.
	dir := t.TempDir()
	r := &remoteRun{ident: uniqueIdent(t), outDir: filepath.Join(dir, "remote"), stateFile: filepath.Join(dir, "upload.state")}
	if err := os.Mkdir(r.outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.w = newWriter(t, journal.WriterOptions{SyslogIdentifier: r.ident})
	if err := r.w.Send(remoteMarker, journal.PriInfo); err != nil {
		t.Fatal(err)
	}
	marks := waitEntries(t, query{ident: r.ident}, 1)
	if len(marks) != 1 {
		t.Fatalf("local journal has %d entries for %s, want the marker", len(marks), r.ident)
	}
	cursor, err := marks[0].Value("__CURSOR")
	if err != nil {
		t.Fatal(err)
	}

	var port int
	r.remote, port = startJournalRemote(t, r.outDir)
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	r.upload = startRemoteDaemon(t, journalUploadPath,
		"--url="+url, "--save-state="+r.stateFile, "--after-cursor="+cursor)
	t.Logf("%s --listen-http=127.0.0.1:%d --output=%s/", journalRemotePath, port, r.outDir)
	t.Logf("%s --url=%s --save-state=%s --after-cursor=…", journalUploadPath, url, r.stateFile)
	return r
}

// remoteMarker is the entry after which journal-upload uploads.
const remoteMarker = "remote: marker"

// send sends an entry through the Writer and records what the journal
// should hold of it.
func (r *remoteRun) send(t *testing.T, message string, pri journal.Priority, want map[string][]string, fields ...journal.Field) {
	t.Helper()
	if err := r.w.Send(message, pri, fields...); err != nil {
		t.Fatalf("Send %q: %v", message, err)
	}
	want["MESSAGE"] = []string{message}
	want["PRIORITY"] = []string{strconv.Itoa(int(pri))}
	r.entries = append(r.entries, remoteSent{message, want})
}

// sendSmall sends the entries that fit in a datagram: through
// journal.Writer, a 40-line TRACEBACK, a field three times and bytes that
// are not text; through a newstyle logger, an error with a stack and the
// trace's ids from the context.
func (r *remoteRun) sendSmall(t *testing.T) {
	var traceback strings.Builder // 40 lines
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&traceback, "\tline %02d of the traceback: github.com/acme/app.step%02d(0x%x)\n", i, i, i*0x40)
	}
	tb := traceback.String()
	r.send(t, "remote: a traceback\nin a multi-line message", journal.PriErr,
		map[string][]string{"TRACEBACK": {tb}},
		journal.StringField("TRACEBACK", tb))
	// Values of this test alone: journald stores a value once per file and
	// lists an entry's values in the order the file got them.
	repeated := []string{r.ident + " third-sorted zulu", r.ident + " first-sorted alpha", r.ident + " second-sorted mike"}
	r.send(t, "remote: a field three times", journal.PriNotice,
		map[string][]string{"TAG": repeated},
		journal.StringField("TAG", repeated[0]),
		journal.StringField("TAG", repeated[1]),
		journal.StringField("TAG", repeated[2]))
	raw := "NUL:\x00 FF FE:\xff\xfe newline:\nend"
	r.send(t, "remote: bytes", journal.PriInfo,
		map[string][]string{"RAW": {raw}},
		journal.Field{Name: "RAW", Value: []byte(raw)})

	// Through a newstyle logger, the trace's ids from the context.
	h := newstyle.NewHandler(&newstyle.Options{
		Target:           newstyle.TargetJournal,
		SyslogIdentifier: r.ident,
		HandlerOptions:   slogopts.HandlerOptions{ContextAttrs: remoteTraceAttrs},
		Stdout:           testutil.FailWriter{TB: t},
	})
	t.Cleanup(func() { _ = h.Close() })
	ctx := withRemoteTrace(context.Background(), remoteTrace{
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", Flags: "01",
	})
	const slogMsg = "remote: through slog"
	slog.New(h).ErrorContext(ctx, slogMsg, "err", &stackError{msg: "disk on fire", stack: []byte(tb)}, "order", "A-1042")
	if st, ok := h.JournalStats(); !ok || st.Entries != 1 || st.Errors.Total() != 0 {
		t.Fatalf("logger's JournalStats() = %+v, %v; want 1 entry, no errors", st, ok)
	}
	r.entries = append(r.entries, remoteSent{slogMsg, map[string][]string{
		"MESSAGE":     {slogMsg},
		"PRIORITY":    {"3"},
		"ERR":         {"disk on fire"},
		"TRACEBACK":   {tb},
		"ORDER":       {"A-1042"},
		"TRACE_ID":    {"4bf92f3577b34da6a3ce929d0e0e4736"},
		"SPAN_ID":     {"00f067aa0ba902b7"},
		"TRACE_FLAGS": {"01"},
	}})
}

// messages returns the MESSAGE of every entry sent so far.
func (r *remoteRun) messages() []string {
	var ms []string
	for _, s := range r.entries {
		ms = append(ms, s.message)
	}
	return ms
}

// wait waits, reading MESSAGE alone (cheap), until the central journal
// has the entries of messages, and returns how long it took from since.
// It fails the test at once if either daemon exits.
func (r *remoteRun) wait(t *testing.T, since time.Time, messages []string) time.Duration {
	t.Helper()
	var (
		es  []entry
		err error
	)
	if !testutil.Poll(remoteArriveTimeout, 100*time.Millisecond, func() bool {
		es, err = readJournal(query{ident: r.ident, directory: r.outDir, fields: []string{"MESSAGE"}})
		if err == nil {
			got := make(map[string]bool)
			for _, e := range es {
				got[e.Get("MESSAGE")] = true
			}
			if !slices.ContainsFunc(messages, func(m string) bool { return !got[m] }) {
				return true
			}
		}
		select {
		case <-r.remote.exited:
			t.Fatalf("journal-remote exited (%v); its output:\n%s", r.remote.waitErr, r.remote.output)
		case <-r.upload.exited:
			t.Fatalf("journal-upload exited (%v); its output:\n%s", r.upload.waitErr, r.upload.output)
		default:
		}
		return false
	}) {
		t.Fatalf("after %v the central journal has %d entries for %s (%v), want those of %q; "+
			"journal-remote's output:\n%s\njournal-upload's output:\n%s",
			remoteArriveTimeout, len(es), r.ident, err, messages, r.remote.output, r.upload.output)
	}
	return time.Since(since)
}

// stored returns the entries sent, as the central journal and the local
// one hold them, in the order sent: exactly one each, the marker left out.
func (r *remoteRun) stored(t *testing.T) (central, local []entry) {
	central, err := readJournal(query{ident: r.ident, directory: r.outDir})
	if err != nil {
		t.Fatal(err)
	}
	if len(central) > 0 && central[0].Get("MESSAGE") == remoteMarker {
		t.Logf("the marker, the entry of --after-cursor's cursor, was uploaded too")
		central = central[1:]
	}
	if len(central) != len(r.entries) {
		for _, e := range central {
			t.Logf("central journal: MESSAGE=%s", short(bytes.Join(e["MESSAGE"], []byte("|"))))
		}
		t.Fatalf("central journal has %d entries for %s after the marker, want %d", len(central), r.ident, len(r.entries))
	}
	local, err = readJournal(query{ident: r.ident})
	if err != nil {
		t.Fatal(err)
	}
	if len(local) != len(r.entries)+1 {
		t.Fatalf("local journal has %d entries for %s, want %d", len(local), r.ident, len(r.entries)+1)
	}
	return central, local[1:] // the marker
}

// checkRemoteEntry checks an entry of the central journal, e, against what
// was sent, s, and against the local journal's copy, l.
func checkRemoteEntry(t *testing.T, ident string, s remoteSent, e, l entry) {
	// What was sent, byte for byte, and nothing else a client sets.
	want := s.want
	want["SYSLOG_IDENTIFIER"] = []string{ident}
	for name, values := range want {
		gotValues := e[name]
		if len(gotValues) != len(values) {
			t.Errorf("%s has %d values, want %d", name, len(gotValues), len(values))
			continue
		}
		for j, v := range values {
			if string(gotValues[j]) != v {
				t.Errorf("%s value %d = %s, want %s", name, j, short(gotValues[j]), short([]byte(v)))
			}
		}
	}
	for name, values := range e {
		if _, ok := want[name]; !ok && !strings.HasPrefix(name, "_") {
			t.Errorf("unexpected field %s = %s", name, short(bytes.Join(values, []byte("|"))))
		}
	}
	// The sender's trusted fields, as journald stamped them.
	for name, value := range map[string]string{
		"_TRANSPORT": "journal",
		"_PID":       strconv.Itoa(os.Getpid()),
		"_UID":       strconv.Itoa(os.Getuid()),
	} {
		if v, err := e.Value(name); err != nil || v != value {
			t.Errorf("%s = %q (%v), want %q", name, v, err, value)
		}
	}
	for _, name := range []string{"_HOSTNAME", "_BOOT_ID", "_MACHINE_ID", "_COMM", "__REALTIME_TIMESTAMP"} {
		if !e.Has(name) {
			t.Errorf("no field %s", name)
		}
	}
	// Every field of the local entry, but its place in its journal, is the same.
	names := slices.Sorted(maps.Keys(l))
	for n := range e {
		if _, ok := l[n]; !ok {
			names = append(names, n)
		}
	}
	for _, name := range names {
		// Where the entry is in its journal: the central journal's own.
		// (journalctl 254 and later also show __SEQNUM and __SEQNUM_ID.)
		if name == "__CURSOR" || name == "__SEQNUM" || name == "__SEQNUM_ID" {
			continue
		}
		lv, rv := bytes.Join(l[name], []byte{0, '|', 0}), bytes.Join(e[name], []byte{0, '|', 0})
		if len(l[name]) != len(e[name]) || !bytes.Equal(lv, rv) {
			t.Errorf("%s: local journal has %s, central journal %s", name, short(lv), short(rv))
		}
	}
}

// remoteTrace is a trace's ids and flags in a context: a stand-in, as
// testutil.Trace is, for an OpenTelemetry span context.
type remoteTrace struct{ TraceID, SpanID, Flags string }

type remoteTraceKey struct{}

func withRemoteTrace(ctx context.Context, tr remoteTrace) context.Context {
	return context.WithValue(ctx, remoteTraceKey{}, tr)
}

// remoteTraceAttrs is a ContextAttrs hook: trace_id, span_id and
// trace_flags from a context made by withRemoteTrace.
func remoteTraceAttrs(ctx context.Context, dst []slog.Attr) []slog.Attr {
	tr, ok := ctx.Value(remoteTraceKey{}).(remoteTrace)
	if !ok {
		return dst
	}
	return append(dst, slog.String("trace_id", tr.TraceID), slog.String("span_id", tr.SpanID),
		slog.String("trace_flags", tr.Flags))
}

// remoteDaemon is a systemd-journal-remote or -upload the test started.
type remoteDaemon struct {
	name    string
	cmd     *exec.Cmd
	output  *testutil.Buffer
	exited  chan struct{}
	waitErr error // read after exited is closed
}

// startRemoteDaemon starts path with args, its own messages on its
// stderr (not the journal it may be reading); it is stopped when the test
// ends, however it ends.
func startRemoteDaemon(t *testing.T, path string, args ...string) *remoteDaemon {
	t.Helper()
	d, err := launchRemoteDaemon(path, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Error(err)
		}
	})
	return d
}

func launchRemoteDaemon(path string, args ...string) (*remoteDaemon, error) {
	d := &remoteDaemon{
		name:   filepath.Base(path),
		cmd:    exec.Command(path, args...),
		output: new(testutil.Buffer),
		exited: make(chan struct{}),
	}
	d.cmd.Env = append(os.Environ(), "SYSTEMD_LOG_TARGET=console")
	d.cmd.Stdout, d.cmd.Stderr = d.output, d.output
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

// stop stops the daemon with SIGTERM (SIGKILL after 10 s) and reports an
// exit other than a clean one. Stopping twice is not an error.
func (d *remoteDaemon) stop() error {
	select {
	case <-d.exited:
		return nil
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
		if d.waitErr != nil {
			return fmt.Errorf("%s[%d]: %v; its output:\n%s", d.name, d.cmd.Process.Pid, d.waitErr, d.output)
		}
		return nil
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("%s[%d] did not exit within 10s of SIGTERM; its output:\n%s", d.name, d.cmd.Process.Pid, d.output)
	}
}

// startJournalRemote starts systemd-journal-remote writing to dir and
// listening for HTTP on a free port of 127.0.0.1, and returns once it
// accepts connections. The port is chosen here, so another program may
// take it in between: then it tries another.
func startJournalRemote(t *testing.T, dir string) (*remoteDaemon, int) {
	t.Helper()
	var lastErr error
	for range 3 {
		port, err := freeLoopbackPort()
		if err != nil {
			t.Fatal(err)
		}
		d, err := launchRemoteDaemon(journalRemotePath,
			"--listen-http=127.0.0.1:"+strconv.Itoa(port), "--output="+dir+"/")
		if err != nil {
			t.Fatal(err)
		}
		if lastErr = waitTCP(d, port); lastErr == nil {
			t.Cleanup(func() {
				if err := d.stop(); err != nil {
					t.Error(err)
				}
			})
			return d, port
		}
		_ = d.stop()
		if !strings.Contains(d.output.String(), "in use") {
			break
		}
	}
	t.Fatal(lastErr)
	return nil, 0
}

// freeLoopbackPort returns a TCP port of 127.0.0.1 that nothing listened
// on a moment ago.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitTCP waits up to 10 s until d accepts connections on 127.0.0.1:port.
func waitTCP(d *remoteDaemon, port int) error {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var exited bool
	if !testutil.Poll(10*time.Second, 20*time.Millisecond, func() bool {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return true
		}
		select {
		case <-d.exited:
			exited = true
			return true // no use waiting
		default:
			return false
		}
	}) {
		return fmt.Errorf("%s not listening on %s after 10s; its output:\n%s", d.name, addr, d.output)
	}
	if exited {
		return fmt.Errorf("%s exited (%v) before listening on %s; its output:\n%s", d.name, d.waitErr, addr, d.output)
	}
	return nil
}

// short quotes a value for a failure message, cut to 200 bytes.
func short(v []byte) string {
	if len(v) > 200 {
		return fmt.Sprintf("%q… (%d bytes)", v[:200], len(v))
	}
	return strconv.Quote(string(v))
}

// dirSize returns the bytes on disk and the number of files under dir.
func dirSize(t *testing.T, dir string) (size int64, files int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			return err
		}
		size += st.Blocks * 512
		files++
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	return size, files
}

// fileState says whether path exists and how large it is.
func fileState(path string) string {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "none"
	} else if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d bytes", st.Size())
}
