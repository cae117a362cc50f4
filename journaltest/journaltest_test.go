package journaltest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle/internal/testutil"
)

// bin builds a binary-form field by hand, so malformed variants are easy.
func bin(name string, length uint64, value string) string {
	return name + "\n" + string(binary.LittleEndian.AppendUint64(nil, length)) + value
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sameEntries(t testing.TB, got, want []Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range got {
		if g, w := fields(got[i]), fields(want[i]); !reflect.DeepEqual(g, w) {
			t.Errorf("entry %d = %q, want %q", i, g, w)
		}
	}
}

func fields(e Entry) [][2]string {
	var out [][2]string
	for _, f := range e.Fields {
		out = append(out, [2]string{f.Name, string(f.Value)})
	}
	return out
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Entry
	}{
		{"text without separator", "MESSAGE=hello\nPRIORITY=6\n",
			[]Entry{NewEntry("MESSAGE", "hello", "PRIORITY", "6")}},
		{"text with separator", "MESSAGE=hello\n\n", []Entry{NewEntry("MESSAGE", "hello")}},
		{"empty value", "MESSAGE=\n", []Entry{NewEntry("MESSAGE", "")}},
		{"value with equals", "A=b=c\n", []Entry{NewEntry("A", "b=c")}},
		{"binary", bin("MESSAGE", 11, "hello\nworld") + "\n", []Entry{NewEntry("MESSAGE", "hello\nworld")}},
		{"binary empty", bin("A", 0, "") + "\n", []Entry{NewEntry("A", "")}},
		{"binary value with newline at end", bin("A", 2, "x\n") + "\n", []Entry{NewEntry("A", "x\n")}},
		{"binary then text", bin("A", 1, "\n") + "\nB=2\n", []Entry{NewEntry("A", "\n", "B", "2")}},
		{"multi entry, repeated names", "A=1\n\nB=2\nB=3\n\nC=4\n",
			[]Entry{NewEntry("A", "1"), NewEntry("B", "2", "B", "3"), NewEntry("C", "4")}},
		{"NUL in text", "MESSAGE=a\x00b\n", []Entry{NewEntry("MESSAGE", "a\x00b")}},
		{"NUL in binary", bin("MESSAGE", 3, "\x00\n\x00") + "\n", []Entry{NewEntry("MESSAGE", "\x00\n\x00")}},
		{"invalid UTF-8", "MESSAGE=\xff\xfe\n", []Entry{NewEntry("MESSAGE", "\xff\xfe")}},
		{"64-char name", strings.Repeat("A", 64) + "=x\n", []Entry{NewEntry(strings.Repeat("A", 64), "x")}},
		{"digits and underscore after first", "A_1=x\n", []Entry{NewEntry("A_1", "x")}},
		{"max fields", strings.Repeat("A=1\n", EntryFieldCountMax), []Entry{{Fields: bytes2fields(EntryFieldCountMax)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			noErr(t, err)
			sameEntries(t, got, tt.want)
		})
	}
}

func bytes2fields(n int) []Field {
	fs := make([]Field, n)
	for i := range fs {
		fs[i] = Field{Name: "A", Value: []byte("1")}
	}
	return fs
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		offset  int
		reason  string
		entries int // complete entries returned before the error
	}{
		{"empty input", "", 0, "empty input", 0},
		{"lowercase name", "message=x\n", 0, "invalid field name", 0},
		{"protected name", "_PID=1\n", 0, "invalid field name", 0},
		{"leading digit", "1A=x\n", 0, "invalid field name", 0},
		{"empty name", "=x\n", 0, "invalid field name", 0},
		{"dash in name", "A-B=x\n", 0, "invalid field name", 0},
		{"65-char name", strings.Repeat("A", 65) + "=x\n", 0, "invalid field name", 0},
		{"invalid binary name", bin("a", 1, "x") + "\n", 0, "invalid field name", 0},
		{"invalid name in second entry", "A=1\n\nb=2\n", 5, "invalid field name", 1},
		{"trailing bytes", "A=1\nB=2", 4, "trailing bytes", 0},
		{"trailing bytes after entry", "A=1\n\nB", 5, "trailing bytes", 1},
		{"truncated length", "A\n\x01\x00\x00", 0, "truncated length", 0},
		{"length without value newline", bin("A", 0, ""), 0, "truncated length", 0},
		{"truncated value", bin("A", 10, "abc"), 0, "truncated", 0},
		{"value without newline at end", bin("A", 3, "abc"), 0, "truncated", 0},
		{"value not followed by newline", bin("A", 3, "abcX") + "\n", 13, "not followed by newline", 0},
		{"binary length over limit", bin("A", DataSizeMax+1, "x"), 0, "exceeds", 0},
		{"binary length huge", bin("A", 1<<63, "x\n"), 0, "exceeds", 0},
		{"dot line", ".control\nA=1\n", 0, "control and comment", 0},
		{"dot line with equals", "A=1\n.A=1\n", 4, "control and comment", 0},
		{"hash line", "A=1\n#comment\n", 4, "control and comment", 0},
		{"leading empty line", "\nA=1\n", 0, "empty entry", 0},
		{"double separator", "A=1\n\n\nB=2\n", 5, "empty entry", 1},
		{"only separator", "\n", 0, "empty entry", 0},
		{"too many fields", strings.Repeat("A=1\n", EntryFieldCountMax+1), 4 * EntryFieldCountMax, "more than 1024 fields", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %v, want a *ParseError", err)
			}
			if pe.Offset != tt.offset || !strings.Contains(pe.Reason, tt.reason) {
				t.Errorf("Parse = %v, want offset %d and reason containing %q", err, tt.offset, tt.reason)
			}
			if len(got) != tt.entries {
				t.Errorf("Parse returned %d entries with the error, want %d", len(got), tt.entries)
			}
		})
	}
}

// TestParseLimits checks the size accounting with small limits, since the real
// ones would need 770 MiB of input.
func TestParseLimits(t *testing.T) {
	lim := limits{data: 8, entry: 40, fields: 5}
	tests := []struct {
		name   string
		in     string
		offset int    // -1: no error
		reason string // substring of the error's reason
	}{
		{"text at data limit", "AAA=1234\n", -1, ""},
		// journald compares the whole NAME=value line, not just the value
		{"text over data limit", "AAA=12345\n", 0, "text field of 9 bytes"},
		{"binary at data limit", bin("A", 8, "12345678") + "\n", -1, ""},
		{"binary over data limit", bin("A", 9, "123456789") + "\n", 0, "length 9 exceeds"},
		// 8+8 bytes, +18 for _TRANSPORT=journal, +3 fields +1 trailer = 38
		{"entry at limit with transport", "AAA=1234\nBBB=1234\n", -1, ""},
		// 8+8+3 = 19, +18, +4, +1 = 42: only the final check catches it
		{"entry over limit with transport", "AAA=1234\nBBB=1234\nC=1\n", 0, "with _TRANSPORT=journal exceeds"},
		// running check at EE=1: 32+4 bytes, +4 fields before it, +1 = 41
		{"entry over limit at a field", "AAA=1234\nBBB=1234\nCCC=1234\nDDD=1234\nEE=1\n", 36, "entry exceeds 40"},
		// journald checks the entry size before noticing the value is missing
		{"binary over entry limit before truncation", "AAA=1234\nBBB=1234\nCCC=1234\nDDD=1234\n" + bin("E", 8, "x"), 36, "entry exceeds 40"},
		{"field count", "A=1\nB=2\nC=3\nD=4\nE=5\nF=6\n", 20, "more than 5 fields"},
		{"second entry over limit", "A=1\n\nAAA=1234\nBBB=1234\nCCC=1234\n", 5, "with _TRANSPORT=journal exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse([]byte(tt.in), lim)
			if tt.offset < 0 {
				noErr(t, err)
				return
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Offset != tt.offset || !strings.Contains(pe.Reason, tt.reason) {
				t.Fatalf("parse = %v, want a *ParseError at offset %d containing %q", err, tt.offset, tt.reason)
			}
		})
	}
}

func TestEntryAccessors(t *testing.T) {
	e := NewEntry("A", "1", "B", "2", "A", "3")
	if v, ok := e.Get("A"); v != "1" || !ok {
		t.Errorf("Get(A) = %q, %v; want 1, true", v, ok)
	}
	if v, ok := e.Get("C"); v != "" || ok {
		t.Errorf("Get(C) = %q, %v; want \"\", false", v, ok)
	}
	if got := e.All("A"); !reflect.DeepEqual(got, []string{"1", "3"}) {
		t.Errorf("All(A) = %q", got)
	}
	if got := e.All("C"); got != nil {
		t.Errorf("All(C) = %q, want nil", got)
	}
	if a, c := e.Count("A"), e.Count("C"); a != 2 || c != 0 {
		t.Errorf("Count(A), Count(C) = %d, %d; want 2, 0", a, c)
	}
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"text", []Entry{NewEntry("A", "1", "B", "")}, "A=1\nB=\n\n"},
		{"binary for newline", []Entry{NewEntry("A", "x\ny")}, bin("A", 3, "x\ny") + "\n\n"},
		{"two entries", []Entry{NewEntry("A", "1"), NewEntry("B", "2")}, "A=1\n\nB=2\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Encode(tt.entries...)
			if string(got) != tt.want {
				t.Errorf("Encode = %q, want %q", got, tt.want)
			}
			back, err := Parse(got)
			noErr(t, err)
			sameEntries(t, back, tt.entries)
		})
	}
}

func FuzzEncodeParse(f *testing.F) {
	f.Add("MESSAGE", []byte("hello"))
	f.Add("A", []byte(""))
	f.Add("CODE_LINE", []byte("a\nb\x00\xff"))
	f.Add("X", []byte("\n"))
	f.Add("message", []byte("x"))
	f.Add("A", []byte("A=1\n\nB\n\x01\x00\x00\x00\x00\x00\x00\x00x\n"))
	f.Fuzz(func(t *testing.T, name string, value []byte) {
		// Arbitrary bytes must never make Parse panic, and whatever it accepts
		// must survive a re-encoding unchanged.
		if got, err := Parse(value); err == nil {
			again, err := Parse(Encode(got...))
			noErr(t, err)
			sameEntries(t, again, got)
		}
		if !ValidName(name) {
			return
		}
		got, err := Parse(Encode(Entry{Fields: []Field{{Name: name, Value: value}}}))
		if err != nil {
			t.Fatalf("Parse(Encode(%q=%q)): %v", name, value, err)
		}
		if len(got) != 1 || len(got[0].Fields) != 1 {
			t.Fatalf("Parse(Encode(%q=%q)) = %v", name, value, got)
		}
		if f := got[0].Fields[0]; f.Name != name || !bytes.Equal(f.Value, value) {
			t.Fatalf("Parse(Encode(%q=%q)) = %q=%q", name, value, f.Name, f.Value)
		}
	})
}

// sender returns a unixgram socket whose send buffer allows large datagrams.
func sender(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	noErr(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	// A unix datagram must fit the sender's SO_SNDBUF; SO_SNDBUFFORCE (root)
	// bypasses net.core.wmem_max.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 16<<20); err != nil {
		testutil.CannotRun(t, "SO_SNDBUFFORCE: "+err.Error()+" (needs CAP_NET_ADMIN)")
	}
	return fd
}

func send(t *testing.T, fd int, s *Server, data []byte, fds ...int) {
	t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	noErr(t, unix.Sendmsg(fd, data, oob, &unix.SockaddrUnix{Name: s.Path()}, 0))
}

// memfd returns a memfd holding data, with the given seals added.
func memfd(t *testing.T, data []byte, seals int) int {
	t.Helper()
	fd, err := unix.MemfdCreate("journal-test", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	noErr(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	_, err = unix.Write(fd, data)
	noErr(t, err)
	if seals != 0 {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals)
		noErr(t, err)
	}
	return fd
}

// shmFile returns an fd of a file in dir holding data, unlinked if asked.
func shmFile(t *testing.T, dir string, data []byte, unlink bool, flags int) int {
	t.Helper()
	if _, err := os.Stat(dir); err != nil {
		testutil.CannotRun(t, err.Error())
	}
	f, err := os.CreateTemp(dir, "journaltest")
	noErr(t, err)
	_, err = f.Write(data)
	noErr(t, err)
	f.Close()
	fd, err := unix.Open(f.Name(), unix.O_RDONLY|unix.O_CLOEXEC|flags, 0)
	noErr(t, err)
	t.Cleanup(func() { unix.Close(fd); os.Remove(f.Name()) })
	if unlink {
		noErr(t, os.Remove(f.Name()))
	}
	return fd
}

func TestServerReceives(t *testing.T) {
	big := Encode(NewEntry("MESSAGE", strings.Repeat("x", 3<<20), "PRIORITY", "6"))
	huge := Encode(NewEntry("MESSAGE", strings.Repeat("y\n", 12<<20))) // 24 MiB: too big for a datagram
	plain := Encode(NewEntry("MESSAGE", "hello", "PRIORITY", "6"), NewEntry("MESSAGE", "second"))

	tests := []struct {
		name   string
		data   []byte
		fd     func(t *testing.T) int // passed with SCM_RIGHTS if non-nil, data then goes in the file
		viaFD  bool
		sealed bool
	}{
		{name: "plain datagram", data: plain},
		{name: "datagram over 1 MiB", data: big},
		{name: "sealed memfd", data: huge, viaFD: true, sealed: true,
			fd: func(t *testing.T) int { return memfd(t, huge, requiredSeals|unix.F_SEAL_SEAL) }},
		{name: "unlinked /dev/shm file", data: plain, viaFD: true,
			fd: func(t *testing.T) int { return shmFile(t, "/dev/shm", plain, true, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(t)
			w := sender(t)
			if tt.fd != nil {
				send(t, w, s, nil, tt.fd(t))
			} else {
				send(t, w, s, tt.data)
			}
			want, err := Parse(tt.data)
			noErr(t, err)
			got := s.Wait(t, len(want), 10*time.Second)
			noErr(t, s.Err())
			var entries []Entry
			for _, r := range got {
				if r.ViaFD != tt.viaFD || r.Sealed != tt.sealed || r.Size != len(tt.data) {
					t.Errorf("ViaFD, Sealed, Size = %v, %v, %d; want %v, %v, %d",
						r.ViaFD, r.Sealed, r.Size, tt.viaFD, tt.sealed, len(tt.data))
				}
				entries = append(entries, r.Entry)
			}
			sameEntries(t, entries, want)
		})
	}
}

func TestServerRejects(t *testing.T) {
	data := Encode(NewEntry("MESSAGE", "hello"))
	tests := []struct {
		name    string
		payload []byte
		fds     func(t *testing.T) []int
		want    string // substring of Err
		entries int    // entries still recorded
	}{
		{name: "unsealed memfd", want: "not sealed",
			fds: func(t *testing.T) []int { return []int{memfd(t, data, 0)} }},
		{name: "memfd without write seal", want: "not sealed",
			fds: func(t *testing.T) []int { return []int{memfd(t, data, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW)} }},
		{name: "linked /dev/shm file", want: "still has 1 links",
			fds: func(t *testing.T) []int { return []int{shmFile(t, "/dev/shm", data, false, 0)} }},
		{name: "unlinked file outside /dev/shm", want: "not directly under /dev/shm",
			fds: func(t *testing.T) []int { return []int{shmFile(t, t.TempDir(), data, true, 0)} }},
		{name: "O_APPEND fd", want: "unexpected file status flags",
			fds: func(t *testing.T) []int { return []int{shmFile(t, "/dev/shm", data, true, unix.O_APPEND)} }},
		{name: "pipe", want: "not a regular file",
			fds: func(t *testing.T) []int {
				var p [2]int
				noErr(t, unix.Pipe2(p[:], unix.O_CLOEXEC))
				t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
				return p[:1]
			}},
		{name: "empty memfd", want: "empty file",
			fds: func(t *testing.T) []int { return []int{memfd(t, nil, requiredSeals)} }},
		{name: "payload and fd", payload: data, want: "with 1 fds",
			fds: func(t *testing.T) []int { return []int{memfd(t, data, requiredSeals)} }},
		{name: "two fds", want: "with 2 fds",
			fds: func(t *testing.T) []int { return []int{memfd(t, data, requiredSeals), memfd(t, data, requiredSeals)} }},
		{name: "empty datagram", want: "empty (journald ignores it)"},
		{name: "malformed datagram", payload: []byte("A=1\n\nb=2\n"), want: "invalid field name", entries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(t)
			w := sender(t)
			var fds []int
			if tt.fds != nil {
				fds = tt.fds(t)
			}
			send(t, w, s, tt.payload, fds...)
			deadline := time.Now().Add(5 * time.Second)
			for s.Err() == nil && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if err := s.Err(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Err() = %v, want it to contain %q", err, tt.want)
			}
			if got := s.Received(); len(got) != tt.entries {
				t.Errorf("received %d entries, want %d", len(got), tt.entries)
			}
		})
	}
}

func TestServerPauseResume(t *testing.T) {
	s := NewServer(t)
	w := sender(t)
	s.Pause()
	s.Pause() // idempotent
	// With the reader paused the kernel queue fills up and a non-blocking
	// sender gets EAGAIN, just as a blocking one would block.
	sent := 0
	for ; sent < 100000; sent++ {
		err := unix.Sendmsg(w, Encode(NewEntry("N", "x")), nil, &unix.SockaddrUnix{Name: s.Path()}, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		noErr(t, err)
	}
	if sent == 0 || sent == 100000 {
		t.Fatalf("sender got EAGAIN after %d datagrams", sent)
	}
	// Pause returned once the reader was parked: nothing can have been
	// read since.
	if got := s.Received(); len(got) != 0 {
		t.Fatalf("read %d entries while paused", len(got))
	}
	s.Resume()
	if got := s.Wait(t, sent, 10*time.Second); len(got) != sent {
		t.Errorf("received %d entries, want %d", len(got), sent)
	}
	noErr(t, s.Err())
}

func TestServerClose(t *testing.T) {
	s := NewServer(t)
	w := sender(t)
	s.Pause()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs while paused")
	}
	s.Close() // idempotent
	s.Resume()
	s.Pause() // must not hang once the reader is gone
	if _, err := os.Stat(s.Path()); !os.IsNotExist(err) {
		t.Errorf("socket path left behind: %v", err)
	}
	err := unix.Sendmsg(w, Encode(NewEntry("A", "1")), nil, &unix.SockaddrUnix{Name: s.Path()}, 0)
	if !errors.Is(err, unix.ENOENT) {
		t.Errorf("send after Close: %v, want ENOENT", err)
	}
	noErr(t, s.Err())
}

func TestServerAt(t *testing.T) {
	first := NewServer(t)
	path := first.Path()
	first.Close()
	again := NewServerAt(t, path)
	first.Close() // must not remove the successor's socket
	w := sender(t)
	send(t, w, again, Encode(NewEntry("MESSAGE", "after")))
	if v, _ := again.Wait(t, 1, 5*time.Second)[0].Get("MESSAGE"); v != "after" {
		t.Errorf("MESSAGE = %q, want after", v)
	}
	noErr(t, again.Err())
}

// The reader must not allocate per datagram, or testing.AllocsPerRun (which
// counts the whole process) could not be used on a writer sending to a Server.
func TestServerReaderDoesNotAllocate(t *testing.T) {
	s := NewServer(t)
	w := sender(t)
	noErr(t, unix.Connect(w, &unix.SockaddrUnix{Name: s.Path()}))
	msg := Encode(NewEntry("MESSAGE", strings.Repeat("m", 200), "PRIORITY", "3"))
	seen := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.seq
	}
	const n = 1000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		if _, err := unix.Write(w, msg); err != nil {
			t.Fatal(err)
		}
	}
	for seen() < n {
		runtime.Gosched()
	}
	runtime.ReadMemStats(&after)
	if allocs := after.Mallocs - before.Mallocs; allocs > n/10 { // a few from the runtime
		t.Errorf("%d allocations for %d datagrams", allocs, n)
	}
	s.Wait(t, n, 5*time.Second) // seq counts a datagram just before it is stored
	noErr(t, s.Err())
}
