//go:build unix

package journaltest

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle/internal/testutil"
)

// dgramSender returns an unbound unixgram socket, closed when the test ends.
func dgramSender(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func send(t *testing.T, fd int, s *Server, data []byte, fds ...int) {
	t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	require.NoError(t, unix.Sendmsg(fd, data, oob, &unix.SockaddrUnix{Name: s.Path()}, 0))
}

// waitErr waits until the Server has recorded a problem, and returns it.
func waitErr(t *testing.T, s *Server) error {
	t.Helper()
	testutil.Poll(5*time.Second, time.Millisecond, func() bool { return s.Err() != nil })
	return s.Err()
}

// TestServerStoresAsJournald: a Server stores what journald stores of a
// partly invalid datagram, and says what journald did in Err.
func TestServerStoresAsJournald(t *testing.T) {
	s := NewServer(t)
	w := dgramSender(t)
	send(t, w, s, []byte("A=1\nb=2\nDUP=x\nDUP=x\n\nC=3\nxyz"))
	got := s.Wait(t, 2, 5*time.Second)
	assert.Equal(t, [][]string{{"A=1", "DUP=x"}, {"C=3"}}, pairs(got[0].Entry, got[1].Entry))
	err := s.Err()
	var de *DatagramError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, 1, de.Datagram)
	assert.Equal(t, 4, de.Offset)
	assert.EqualError(t, de, `journaltest: datagram #1 (28 bytes): offset 4: invalid field name "b": journald skips this line and keeps the rest of the entry`)
	assert.ErrorContains(t, err, "datagram #1 (28 bytes): offset 25: 3 bytes after the last newline: journald stores the fields before them")
}

func TestServerPauseResume(t *testing.T) {
	s := NewServer(t)
	w := dgramSender(t)
	s.Pause()
	s.Pause() // idempotent
	// With the reader paused the kernel queue fills up and a non-blocking
	// sender gets EAGAIN, just as a blocking one would block.
	sent := 0
	for ; sent < 100000; sent++ {
		err := unix.Sendmsg(w, Encode(NewEntry("N", "x")), nil, &unix.SockaddrUnix{Name: s.Path()}, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ENOBUFS) {
			break
		}
		require.NoError(t, err)
	}
	require.True(t, sent > 0 && sent < 100000, "sender got EAGAIN after %d datagrams", sent)
	// Pause returned once the reader was parked: nothing can have been
	// read since.
	require.Empty(t, s.Received(), "read while paused")
	s.Resume()
	assert.Len(t, s.Wait(t, sent, 10*time.Second), sent)
	assert.NoError(t, s.Err())
}

func TestServerClose(t *testing.T) {
	s := NewServer(t)
	w := dgramSender(t)
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
	_, err := os.Stat(s.Path())
	assert.True(t, os.IsNotExist(err), "socket path left behind: %v", err)
	err = unix.Sendmsg(w, Encode(NewEntry("A", "1")), nil, &unix.SockaddrUnix{Name: s.Path()}, 0)
	assert.ErrorIs(t, err, unix.ENOENT)
	assert.NoError(t, s.Err())
}

func TestServerAt(t *testing.T) {
	first := NewServer(t)
	path := first.Path()
	first.Close()
	again := NewServerAt(t, path)
	first.Close() // must not remove the successor's socket
	w := dgramSender(t)
	send(t, w, again, Encode(NewEntry("MESSAGE", "after")))
	v, _ := again.Wait(t, 1, 5*time.Second)[0].Get("MESSAGE")
	assert.Equal(t, "after", v)
	assert.NoError(t, again.Err())
}

func TestServerEmptyDatagram(t *testing.T) {
	s := NewServer(t)
	send(t, dgramSender(t), s, nil)
	assert.ErrorContains(t, waitErr(t, s), "datagram #1: empty: journald ignores it")
	assert.Empty(t, s.Received())
}

// TestServerModelsVersion: a Server of journald 257 stores of a datagram
// the entries up to the first with MESSAGE, as that journald does; one of
// journald 252 stores them all.
func TestServerModelsVersion(t *testing.T) {
	in := Encode(NewEntry("MESSAGE", "one"), NewEntry("MESSAGE", "two"))
	v257 := NewServer(t, Version(257))
	strict := NewServer(t, Version(252))
	w := dgramSender(t)
	send(t, w, v257, in)
	send(t, w, strict, in)
	assert.Len(t, strict.Wait(t, 2, 5*time.Second), 2)
	assert.NoError(t, strict.Err())
	assert.ErrorContains(t, waitErr(t, v257), "datagram #1 (26 bytes): offset 13: journald 257 reads nothing more of a datagram after an entry with a MESSAGE field (253 and later: its LogFilterPatterns= check ends the loop): 1 entry after it lost")
	got := v257.Received()
	require.Len(t, got, 1)
	v, _ := got[0].Get("MESSAGE")
	assert.Equal(t, "one", v)
}

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// its goroutine, as testing's does, so that a test can read what Wait
// says when it gives up.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// waitMessage runs srv.Wait for n entries on a recorder and returns what
// it failed with ("" when it returned).
func waitMessage(t *testing.T, srv *Server, n int) string {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Wait(r, n, 20*time.Millisecond)
	}()
	<-done
	return r.msg
}

// TestWaitSaysWhereToLook: when fewer entries came than a test waits for,
// Wait names the socket the client should send to and, when set, the
// environment variable that sends a newstyle logger elsewhere.
func TestWaitSaysWhereToLook(t *testing.T) {
	srv := NewServer(t)

	t.Setenv("NEWSTYLE_LOG_TARGET", "")
	msg := waitMessage(t, srv, 1)
	assert.Contains(t, msg, "got 0 entries")
	assert.Contains(t, msg, "want 1")
	assert.Contains(t, msg, "is the client sending to "+srv.Path()+"?")
	assert.NotContains(t, msg, "NEWSTYLE_LOG_TARGET")

	t.Setenv("NEWSTYLE_LOG_TARGET", "stdout")
	msg = waitMessage(t, srv, 1)
	assert.Contains(t, msg, "NEWSTYLE_LOG_TARGET=stdout is set")
	assert.Contains(t, msg, "Options.IgnoreEnv")

	fd := dgramSender(t)
	require.NoError(t, unix.Sendto(fd, []byte("MESSAGE=m\n"), 0, &unix.SockaddrUnix{Name: srv.Path()}))
	assert.Empty(t, waitMessage(t, srv, 1), "Wait returns once the entries are there")
}
