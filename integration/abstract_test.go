//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle/journal"
)

// TestAbstractSocketPath sends through SocketPath "@name", an abstract
// address, a small entry and one passed as a memfd, and finds both in the
// real journal, whole. journald itself only binds paths, so a relay bound
// at the abstract address passes each datagram on to journald as it came,
// descriptors included: what journald stores is what the Writer sent
// there, the memfd's seals checked by journald itself.
func TestAbstractSocketPath(t *testing.T) {
	name := fmt.Sprintf("@newstyle-it-abstract-%d", os.Getpid())
	relayed := startRelay(t, name, journal.DefaultSocketPath)

	ident := uniqueIdent(t)
	w := newWriter(t, journal.WriterOptions{SocketPath: name, SyslogIdentifier: ident})
	require.NoError(t, w.Probe())
	require.NoError(t, w.Send("small through @", journal.PriInfo, journal.StringField("KIND", "small")))
	big := bytes.Repeat([]byte("0123456789abcde\n"), 1<<20) // 16 MiB: a memfd
	require.NoError(t, w.Send("large through @", journal.PriInfo,
		journal.StringField("KIND", "large"), journal.Field{Name: "BIG", Value: big}))
	st := w.Stats()
	assert.EqualValues(t, 2, st.Entries)
	assert.EqualValues(t, 1, st.Memfd, "the large entry went by memfd")

	entries := waitEntries(t, query{ident: ident}, 2)
	require.Len(t, entries, 2)
	for i, want := range []string{"small", "large"} {
		kind, err := entries[i].Value("KIND")
		require.NoError(t, err)
		assert.Equal(t, want, kind)
	}
	got, err := entries[1].Value("BIG")
	require.NoError(t, err)
	assert.True(t, got == string(big), "BIG came back with %d bytes, want %d", len(got), len(big))
	assert.Equal(t, 2, relayed(), "datagrams relayed")
	assert.EqualValues(t, 1, countFDs(t, 2), "one datagram carried a descriptor")

	// Nothing of that name was made in the working directory.
	_, err = os.Lstat(name)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// relayStats is what the relay saw, by datagram: how many descriptors
// each carried.
var relayFDs = make(chan int, 16)

func countFDs(t *testing.T, n int) (withFD int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case k := <-relayFDs:
			if k > 0 {
				withFD++
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the relay did not report")
		}
	}
	return withFD
}

// startRelay binds from (an abstract address) and sends every datagram
// it receives, with the descriptors passed with it, on to the path to.
// It returns how many it relayed so far.
func startRelay(t *testing.T, from, to string) func() int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	require.NoError(t, unix.Bind(fd, &unix.SockaddrUnix{Name: from}))
	require.NoError(t, unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 16<<20))
	out, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	count := make(chan int, 1)
	count <- 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 32<<20)
		oob := make([]byte, unix.CmsgSpace(4*8))
		for {
			n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return // closed at the end of the test
			}
			var fds []int
			if oobn > 0 {
				msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
				for _, m := range msgs {
					got, _ := unix.ParseUnixRights(&m)
					fds = append(fds, got...)
				}
			}
			var rights []byte
			if len(fds) > 0 {
				rights = unix.UnixRights(fds...)
			}
			if err := unix.Sendmsg(out, buf[:n], rights, &unix.SockaddrUnix{Name: to}, 0); err != nil {
				t.Errorf("relaying to %s: %v", to, err)
			}
			for _, f := range fds {
				unix.Close(f)
			}
			c := <-count
			count <- c + 1
			relayFDs <- len(fds)
		}
	}()
	t.Cleanup(func() {
		unix.Shutdown(fd, unix.SHUT_RDWR)
		unix.Close(fd)
		<-done
		unix.Close(out)
	})
	return func() int {
		c := <-count
		count <- c
		return c
	}
}
