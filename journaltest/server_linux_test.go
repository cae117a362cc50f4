package journaltest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle/internal/testutil"
)

// bigSender returns a unixgram socket whose send buffer allows large datagrams.
func bigSender(t *testing.T) int {
	t.Helper()
	fd := dgramSender(t)
	// A unix datagram must fit the sender's SO_SNDBUF; SO_SNDBUFFORCE (root)
	// bypasses net.core.wmem_max.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 16<<20); err != nil {
		testutil.CannotRun(t, "SO_SNDBUFFORCE: "+err.Error()+" (needs CAP_NET_ADMIN)")
	}
	return fd
}

// memfd returns a memfd holding data, with the given seals added.
func memfd(t *testing.T, data []byte, seals int) int {
	t.Helper()
	fd, err := unix.MemfdCreate("journal-test", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	_, err = unix.Write(fd, data)
	require.NoError(t, err)
	if seals != 0 {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals)
		require.NoError(t, err)
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
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	f.Close()
	fd, err := unix.Open(f.Name(), unix.O_RDONLY|unix.O_CLOEXEC|flags, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd); os.Remove(f.Name()) })
	if unlink {
		require.NoError(t, os.Remove(f.Name()))
	}
	return fd
}

const fourSeals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL

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
			fd: func(t *testing.T) int { return memfd(t, huge, fourSeals) }},
		{name: "unlinked /dev/shm file", data: plain, viaFD: true,
			fd: func(t *testing.T) int { return shmFile(t, "/dev/shm", plain, true, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(t, Version(252)) // which stores both entries of plain
			w := bigSender(t)
			if tt.fd != nil {
				send(t, w, s, nil, tt.fd(t))
			} else {
				send(t, w, s, tt.data)
			}
			want, err := Parse(tt.data)
			require.NoError(t, err)
			got := s.Wait(t, len(want), 10*time.Second)
			require.NoError(t, s.Err())
			var entries []Entry
			for _, r := range got {
				assert.Equal(t, []any{tt.viaFD, tt.sealed, len(tt.data)}, []any{r.ViaFD, r.Sealed, r.Size}, "ViaFD, Sealed, Size")
				entries = append(entries, r.Entry)
			}
			assert.Equal(t, pairs(want...), pairs(entries...))
		})
	}
}

// TestServerPassedFiles: which passed files a Server takes, by the model
// it applies. The tests run as root: the Server reads the sender's
// credentials and lets root pass any regular file, as journald does,
// unless its strict rules (the default) ask for more.
func TestServerPassedFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.CannotRun(t, "not root: the rules for root senders are what is tested")
	}
	data := Encode(NewEntry("MESSAGE", "hello"))
	tests := []struct {
		name string
		fd   func(t *testing.T) int
		// want is a substring of Err for each model (0: strict); "" for
		// an entry stored without error.
		want map[int]string
	}{
		{"sealed memfd", func(t *testing.T) int { return memfd(t, data, fourSeals) },
			map[int]string{0: "", 252: "", 257: ""}},
		{"unsealed memfd", func(t *testing.T) int { return memfd(t, data, 0) },
			map[int]string{0: `memfd "/memfd:journal-test (deleted)" with seals none: journald 252 takes it only from root, copying it (journaltest's strict rules`, 252: "", 257: ""}},
		{"memfd without SEAL", func(t *testing.T) int {
			return memfd(t, data, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE)
		}, map[int]string{0: "with seals SHRINK|GROW|WRITE: journald 252 takes it only from root", 252: "", 257: ""}},
		{"O_NONBLOCK memfd", func(t *testing.T) int {
			fd := memfd(t, data, fourSeals)
			require.NoError(t, unix.SetNonblock(fd, true))
			return fd
		}, map[int]string{0: "file status flags 04000 besides the access mode", 252: "", 255: "", 256: "journald 256 ignores the file", 257: "journald 257 ignores the file"}},
		{"linked /dev/shm file", func(t *testing.T) int { return shmFile(t, "/dev/shm", data, false, 0) },
			map[int]string{0: "still has 1 links", 252: "", 257: ""}},
		{"unlinked file outside /dev/shm", func(t *testing.T) int { return shmFile(t, t.TempDir(), data, true, 0) },
			map[int]string{0: "is not directly in /dev/shm: journald takes it only from root", 252: "", 257: ""}},
		{"O_APPEND fd", func(t *testing.T) int { return shmFile(t, "/dev/shm", data, true, unix.O_APPEND) },
			map[int]string{0: "file status flags", 252: "", 257: "file status flags 02000"}},
		{"pipe", func(t *testing.T) int {
			var p [2]int
			require.NoError(t, unix.Pipe2(p[:], unix.O_CLOEXEC))
			t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
			return p[0]
		}, map[int]string{0: "not a regular file", 252: "not a regular file: journald 252 ignores the file"}},
		{"empty memfd", func(t *testing.T) int { return memfd(t, nil, fourSeals) },
			map[int]string{0: "an empty file", 257: "an empty file: journald 257 ignores the file"}},
	}
	for _, tt := range tests {
		for v, want := range tt.want {
			model := fmt.Sprintf("journald %d", v)
			if v == 0 {
				model = "strict"
			}
			t.Run(tt.name+"/"+model, func(t *testing.T) {
				s := NewServer(t, Version(v))
				send(t, bigSender(t), s, nil, tt.fd(t))
				if want == "" {
					got := s.Wait(t, 1, 5*time.Second)
					require.NoError(t, s.Err())
					assert.True(t, got[0].ViaFD)
					assert.Equal(t, [][]string{{"MESSAGE=hello"}}, pairs(got[0].Entry))
					return
				}
				assert.ErrorContains(t, waitErr(t, s), want)
				assert.Empty(t, s.Received())
			})
		}
	}
}

func TestServerRejects(t *testing.T) {
	data := Encode(NewEntry("MESSAGE", "hello"))
	tests := []struct {
		name    string
		payload []byte
		fds     func(t *testing.T) []int
		want    string // substring of Err
		entries int    // entries still stored
	}{
		{name: "payload and fd", payload: data, want: "15 bytes with 1 descriptors: journald takes one descriptor alone, and ignores the datagram",
			fds: func(t *testing.T) []int { return []int{memfd(t, data, fourSeals)} }},
		{name: "two fds", want: "0 bytes with 2 descriptors: journald takes one descriptor alone, and ignores the datagram",
			fds: func(t *testing.T) []int { return []int{memfd(t, data, fourSeals), memfd(t, data, fourSeals)} }},
		{name: "too many fds", want: "control data truncated (more than 8 descriptors): journald ignores the datagram",
			fds: func(t *testing.T) []int {
				var fds []int
				for range maxFDs + 1 {
					fds = append(fds, memfd(t, data, fourSeals))
				}
				return fds
			}},
		{name: "malformed datagram", payload: []byte("A=1\n\nb=2\n"), want: `offset 5: invalid field name "b"`, entries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(t)
			var fds []int
			if tt.fds != nil {
				fds = tt.fds(t)
			}
			send(t, bigSender(t), s, tt.payload, fds...)
			assert.ErrorContains(t, waitErr(t, s), tt.want)
			assert.Len(t, s.Received(), tt.entries)
		})
	}
}

// The reader must not allocate per datagram, or testing.AllocsPerRun (which
// counts the whole process) could not be used on a writer sending to a Server.
func TestServerReaderDoesNotAllocate(t *testing.T) {
	s := NewServer(t)
	w := dgramSender(t)
	require.NoError(t, unix.Connect(w, &unix.SockaddrUnix{Name: s.Path()}))
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
		_, err := unix.Write(w, msg)
		require.NoError(t, err)
	}
	for seen() < n {
		runtime.Gosched()
	}
	runtime.ReadMemStats(&after)
	assert.LessOrEqual(t, after.Mallocs-before.Mallocs, uint64(n/10), "allocations for %d datagrams", n) // a few from the runtime
	s.Wait(t, n, 5*time.Second)                                                                          // seq counts a datagram just before it is stored
	assert.NoError(t, s.Err())
}
