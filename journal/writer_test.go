//go:build linux

package journal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journaltest"
)

func newTestWriter(t *testing.T, path string, opts WriterOptions) *Writer {
	t.Helper()
	opts.SocketPath = path
	if opts.SyslogIdentifier == "" {
		opts.SyslogIdentifier = "journal-test"
	}
	return testutil.Open(t, func() (*Writer, error) { return NewWriter(&opts) })
}

// fieldsOf lists an entry's fields as "NAME=value" strings, in order.
func fieldsOf(e journaltest.Entry) []string {
	var out []string
	for _, f := range e.Fields {
		out = append(out, f.Name+"="+string(f.Value))
	}
	return out
}

func TestSendRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		message string
		pri     Priority
		fields  []Field
		want    []string
	}{
		{
			name: "plain", message: "hello", pri: PriInfo,
			fields: []Field{StringField("USER", "ada")},
			want:   []string{"MESSAGE=hello", "PRIORITY=6", "SYSLOG_IDENTIFIER=journal-test", "USER=ada"},
		},
		{
			name: "multi-line message and trace", message: "panic: boom\n\ngoroutine 1", pri: PriCrit,
			fields: []Field{StringField("TRACEBACK", "a()\n\tx.go:1\nb()\n\ty.go:2\n")},
			want: []string{"MESSAGE=panic: boom\n\ngoroutine 1", "PRIORITY=2", "SYSLOG_IDENTIFIER=journal-test",
				"TRACEBACK=a()\n\tx.go:1\nb()\n\ty.go:2\n"},
		},
		{
			name: "binary values", message: "bin", pri: PriDebug,
			fields: []Field{{Name: "NUL", Value: []byte("a\x00b")}, {Name: "UTF8", Value: []byte{0xff, 0xc3}}, {Name: "EMPTY", Value: []byte{}}},
			want:   []string{"MESSAGE=bin", "PRIORITY=7", "SYSLOG_IDENTIFIER=journal-test", "NUL=a\x00b", "UTF8=\xff\xc3", "EMPTY="},
		},
		{
			name: "own identifier replaces the default", message: "m", pri: PriNotice,
			fields: []Field{StringField("A", "1"), StringField("SYSLOG_IDENTIFIER", "other")},
			want:   []string{"MESSAGE=m", "PRIORITY=5", "A=1", "SYSLOG_IDENTIFIER=other"},
		},
		{
			name: "repeated names keep their order", message: "m", pri: PriEmerg,
			fields: []Field{StringField("TAG", "a"), StringField("TAG", "b")},
			want:   []string{"MESSAGE=m", "PRIORITY=0", "SYSLOG_IDENTIFIER=journal-test", "TAG=a", "TAG=b"},
		},
		{
			name: "content that looks like fields stays content", message: "m\nPRIORITY=0\n\nMESSAGE=forged", pri: PriInfo,
			fields: []Field{StringField("A", "x\n_PID=1\n\nB=2")},
			want: []string{"MESSAGE=m\nPRIORITY=0\n\nMESSAGE=forged", "PRIORITY=6", "SYSLOG_IDENTIFIER=journal-test",
				"A=x\n_PID=1\n\nB=2"},
		},
	}
	srv := journaltest.NewServer(t)
	w := newTestWriter(t, srv.Path(), WriterOptions{})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := w.Send(tt.message, tt.pri, tt.fields...); err != nil {
				t.Fatal(err)
			}
			got := srv.Wait(t, i+1, 5*time.Second)[i]
			if got.ViaFD {
				t.Error("a small entry went by file descriptor")
			}
			if g, w := strings.Join(fieldsOf(got.Entry), "|"), strings.Join(tt.want, "|"); g != w {
				t.Errorf("received\n%q\nwant\n%q", g, w)
			}
		})
	}
	if err := srv.Err(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Entries != uint64(len(tests)) || st.Errors.Total() != 0 || st.Memfd != 0 {
		t.Errorf("Stats = %+v, want %d entries and no errors", st, len(tests))
	}
}

func TestSendLargeEntry(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef\n"), (20<<20)/17) // larger than any datagram here
	tests := []struct {
		name       string
		noMemfd    bool
		wantSealed bool
	}{
		{name: "sealed memfd", wantSealed: true},
		{name: "unlinked /dev/shm file without memfd", noMemfd: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.noMemfd {
				orig := memfdCreate
				memfdCreate = func(string, int) (int, error) { return -1, unix.ENOSYS }
				t.Cleanup(func() { memfdCreate = orig })
			}
			srv := journaltest.NewServer(t)
			w := newTestWriter(t, srv.Path(), WriterOptions{})
			if err := w.Send("large", PriInfo, Field{Name: "BIG", Value: big}); err != nil {
				t.Fatal(err)
			}
			got := srv.Wait(t, 1, 10*time.Second)[0]
			if err := srv.Err(); err != nil {
				t.Fatal(err) // the server checks seals, or that the file is unlinked under /dev/shm
			}
			if !got.ViaFD || got.Sealed != tt.wantSealed {
				t.Errorf("ViaFD=%v Sealed=%v, want true %v", got.ViaFD, got.Sealed, tt.wantSealed)
			}
			if v, _ := got.Get("BIG"); v != string(big) {
				t.Errorf("BIG came back with %d bytes, want %d identical", len(v), len(big))
			}
			if st := w.Stats(); st.Memfd != 1 || st.Entries != 1 {
				t.Errorf("Stats = %+v, want 1 entry by memfd", st)
			}
		})
	}
}

// boundSocketFile leaves a socket file that nobody listens on, as a
// journald that died does.
func boundSocketFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "socket")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	return path
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name    string
		path    func(t *testing.T) string
		fields  []Field
		closed  bool
		want    []error
		counter func(ErrorCounts) uint64
	}{
		{
			name:    "no socket",
			path:    func(t *testing.T) string { return filepath.Join(t.TempDir(), "missing") },
			want:    []error{ErrNoSocket, ErrUnavailable, syscall.ENOENT},
			counter: func(c ErrorCounts) uint64 { return c.NoSocket },
		},
		{
			name: "a file on the path is not a directory",
			path: func(t *testing.T) string {
				p := filepath.Join(t.TempDir(), "f")
				os.WriteFile(p, nil, 0o600)
				return p + "/socket"
			},
			want:    []error{ErrNoSocket, ErrUnavailable, syscall.ENOTDIR},
			counter: func(c ErrorCounts) uint64 { return c.NoSocket },
		},
		{
			name:    "journald gone, socket file left",
			path:    boundSocketFile,
			want:    []error{ErrNotListening, ErrUnavailable, syscall.ECONNREFUSED},
			counter: func(c ErrorCounts) uint64 { return c.NotListening },
		},
		{
			name:    "invalid field name",
			path:    func(t *testing.T) string { return journaltest.NewServer(t).Path() },
			fields:  []Field{StringField("OK", "1"), StringField("not ok", "2")},
			want:    []error{ErrInvalidFieldName},
			counter: func(c ErrorCounts) uint64 { return c.InvalidField },
		},
		{
			name:    "closed writer",
			path:    func(t *testing.T) string { return journaltest.NewServer(t).Path() },
			closed:  true,
			want:    []error{ErrClosed},
			counter: func(c ErrorCounts) uint64 { return c.Closed },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newTestWriter(t, tt.path(t), WriterOptions{})
			if tt.closed {
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			err := w.Send("m", PriInfo, tt.fields...)
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("Send error %v does not match %v", err, want)
				}
			}
			st := w.Stats()
			if tt.counter(st.Errors) != 1 || st.Errors.Total() != 1 || st.Entries != 0 {
				t.Errorf("Stats = %+v, want exactly this one error counted", st)
			}
		})
	}
}

func TestInvalidEntrySendsNothing(t *testing.T) {
	srv := journaltest.NewServer(t)
	w := newTestWriter(t, srv.Path(), WriterOptions{})
	if err := w.Send("bad", PriInfo, StringField("A", "1"), StringField("B=C", "2")); !errors.Is(err, ErrInvalidFieldName) {
		t.Fatalf("Send = %v, want ErrInvalidFieldName", err)
	}
	if err := w.Send("bad", Priority(9)); !errors.Is(err, ErrInvalidPriority) {
		t.Fatalf("Send = %v, want ErrInvalidPriority", err)
	}
	if err := w.Send("good", PriInfo); err != nil {
		t.Fatal(err)
	}
	// The good entry is the sentinel: the socket keeps the order, so
	// anything sent by mistake before it would come first.
	got := srv.Wait(t, 1, 5*time.Second)
	if len(got) != 1 || got[0].Entry.Fields[0].Name != "MESSAGE" || string(got[0].Fields[0].Value) != "good" {
		t.Fatalf("received %+v, want only the good entry", got)
	}
}

// A journald that comes back is found again by the same Writer.
func TestSendAfterRestart(t *testing.T) {
	srv := journaltest.NewServer(t)
	path := srv.Path()
	w := newTestWriter(t, path, WriterOptions{})
	if err := w.Send("before", PriInfo); err != nil {
		t.Fatal(err)
	}
	srv.Wait(t, 1, 5*time.Second)
	srv.Close()
	if err := w.Send("while down", PriInfo); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Send while down = %v, want ErrUnavailable", err)
	}
	again := journaltest.NewServerAt(t, path)
	if err := w.Send("after", PriInfo); err != nil {
		t.Fatalf("Send after restart: %v", err)
	}
	if v, _ := again.Wait(t, 1, 5*time.Second)[0].Get("MESSAGE"); v != "after" {
		t.Errorf("MESSAGE = %q, want after", v)
	}
	if st := w.Stats(); st.Entries != 2 || st.Errors.Total() != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

// A journald that stops reading makes Send wait at most SendTimeout, then
// fail with ErrTimeout; when it reads again, nothing sent before is lost.
func TestSendTimeout(t *testing.T) {
	srv := journaltest.NewServer(t)
	w := newTestWriter(t, srv.Path(), WriterOptions{SendTimeout: 100 * time.Millisecond})
	srv.Pause()
	var sent int
	var err error
	var took time.Duration
	for sent < 10000 {
		start := time.Now()
		err = w.Send("queued", PriInfo)
		took = time.Since(start)
		if err != nil {
			break
		}
		sent++
	}
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("after %d entries Send = %v, want ErrTimeout", sent, err)
	}
	if took < 90*time.Millisecond || took > time.Second {
		t.Errorf("the failing Send took %v, want about the 100ms SendTimeout", took)
	}
	if st := w.Stats(); st.Errors.Timeout != 1 || st.Entries != uint64(sent) {
		t.Errorf("Stats = %+v, want %d entries and one timeout", st, sent)
	}
	srv.Resume()
	if err := w.Send("after", PriInfo); err != nil {
		t.Fatalf("Send after resume: %v", err)
	}
	srv.Wait(t, sent+1, 5*time.Second)
	if err := srv.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestSendConcurrent(t *testing.T) {
	const goroutines, each = 8, 300
	srv := journaltest.NewServer(t)
	w := newTestWriter(t, srv.Path(), WriterOptions{})
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := w.Send("concurrent", PriInfo, StringField("G", string(rune('A'+g)))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := srv.Wait(t, goroutines*each, 10*time.Second)
	perG := map[string]int{}
	for _, r := range got {
		v, _ := r.Get("G")
		perG[v]++
	}
	for g := 0; g < goroutines; g++ {
		if n := perG[string(rune('A'+g))]; n != each {
			t.Errorf("goroutine %c: %d entries, want %d", 'A'+g, n, each)
		}
	}
	if err := srv.Err(); err != nil {
		t.Fatal(err)
	}
}

// Close may run while other goroutines send: each Send then either
// succeeds or returns ErrClosed, and every call is counted.
func TestCloseWhileSending(t *testing.T) {
	srv := journaltest.NewServer(t)
	w := newTestWriter(t, srv.Path(), WriterOptions{})
	var wg sync.WaitGroup
	var sending sync.WaitGroup // each sender has sent once: Close meets sends under way
	sending.Add(4)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				if err := w.Send("m", PriInfo); err != nil && !errors.Is(err, ErrClosed) {
					t.Error(err)
				}
				if i == 0 {
					sending.Done()
				}
			}
		}()
	}
	sending.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	st := w.Stats()
	if st.Entries+st.Errors.Closed != 4*500 || st.Errors.Total() != st.Errors.Closed {
		t.Errorf("Stats = %+v, want 2000 calls as entries or ErrClosed", st)
	}
}

func TestProbe(t *testing.T) {
	srv := journaltest.NewServer(t)
	tests := []struct {
		name string
		path string
		want error
	}{
		{"listening", srv.Path(), nil},
		{"no socket", filepath.Join(t.TempDir(), "missing"), ErrNoSocket},
		{"not listening", boundSocketFile(t), ErrNotListening},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newTestWriter(t, tt.path, WriterOptions{})
			err := w.Probe()
			if (tt.want == nil) != (err == nil) || !errors.Is(err, tt.want) {
				t.Fatalf("Probe = %v, want %v", err, tt.want)
			}
			if tt.want != nil && !errors.Is(err, ErrUnavailable) {
				t.Errorf("Probe = %v, not ErrUnavailable", err)
			}
		})
	}
	// A sentinel, sent after the probes: the socket keeps the order, so
	// anything a probe sent would come first.
	if err := newTestWriter(t, srv.Path(), WriterOptions{}).Send("sentinel", PriInfo); err != nil {
		t.Fatal(err)
	}
	if got := srv.Wait(t, 1, 5*time.Second); len(got) != 1 {
		t.Errorf("Probe sent %d entries", len(got)-1)
	} else if v, _ := got[0].Get("MESSAGE"); v != "sentinel" {
		t.Errorf("Probe sent an entry: %v", got[0].Entry)
	}
}

// TestSocketErrorKinds checks the errno → sentinel table that every failed
// send goes through, EBADF (a socket closed under a send, or the
// congestion queue of a closed socket) included: it is counted as Closed,
// not as Other.
func TestSocketErrorKinds(t *testing.T) {
	s := &socket{path: "/run/x"}
	for _, tt := range []struct {
		errno unix.Errno
		want  error
	}{
		{unix.ENOENT, ErrNoSocket},
		{unix.ENOTDIR, ErrNoSocket},
		{unix.ECONNREFUSED, ErrNotListening},
		{unix.EACCES, ErrPermission},
		{unix.EPERM, ErrPermission},
		{unix.EAGAIN, ErrTimeout},
		{unix.EBADF, ErrClosed},
		{unix.EMSGSIZE, errSend},
	} {
		err := s.error(tt.errno)
		require.ErrorIs(t, err, tt.want, "errno %v", tt.errno)
		require.ErrorIs(t, err, tt.errno)
		var got, want counters
		got.fail(err)
		want.fail(tt.want)
		for k := range got.errs {
			require.Equal(t, want.errs[k].Load(), got.errs[k].Load(), "errno %v is counted as %v", tt.errno, tt.want)
		}
	}
}
