//go:build linux

package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/newstyle-go/newstyle/journaltest"
)

// closeSlack is what Close may take past SendTimeout: closeGrace, and
// a scheduler on a loaded machine.
const closeSlack = closeGrace + 250*time.Millisecond

// An OnUndelivered that panics, every time: the program lives on, each
// panic is counted, the entries are counted as undelivered, and the first
// panic alone is reported in the journal once it takes entries again.
func TestAsyncCallbackPanicRecovered(t *testing.T) {
	srv := journaltest.NewServer(t, journaltest.Version(252))
	var calls atomic.Int64
	w := newAsyncWriter(t, srv.Path(), 2*time.Second, AsyncOptions{
		Linger: time.Hour,
		OnUndelivered: func(msg string, _ Priority, _ []Field, _ error) {
			calls.Add(1)
			panic(fmt.Errorf("callback bug on %q", msg))
		},
	})
	srv.Close()
	for i := 0; i < 5; i++ {
		require.NoError(t, w.Send("lost", PriWarning, StringField("N", fmt.Sprint(i))))
	}
	require.ErrorIs(t, w.Flush(context.Background()), ErrUnavailable)
	assert.EqualValues(t, 5, calls.Load(), "every undelivered entry is still given to the callback")
	st := w.Stats()
	assert.EqualValues(t, 5, st.CallbackPanics)
	assert.EqualValues(t, 5, st.Errors.NotListening+st.Errors.NoSocket)

	srv2 := journaltest.NewServerAt(t, srv.Path(), journaltest.Version(252))
	require.NoError(t, w.Send("back", PriInfo))
	require.NoError(t, w.Flush(context.Background()))
	var panics []journaltest.Received
	for _, r := range srv2.Wait(t, 3, 5*time.Second) {
		if id, _ := r.Get("MESSAGE_ID"); id == CallbackPanicMessageID {
			panics = append(panics, r)
		}
	}
	require.Len(t, panics, 1, "the first panic is reported, once")
	msg, _ := panics[0].Get("MESSAGE")
	assert.Contains(t, msg, `callback bug on "lost"`)
	assert.Contains(t, panics[0].All("PRIORITY"), "3")
	assert.Contains(t, panics[0].All("NEWSTYLE_CALLBACK"), "OnUndelivered")
	trace, _ := panics[0].Get("TRACEBACK")
	assert.Contains(t, trace, "TestAsyncCallbackPanicRecovered", "the trace starts where it panicked")
	assert.NotContains(t, trace, "runtime.gopanic")
	require.NoError(t, srv2.Err())

	// A panic whose value panics when printed is reported too.
	assert.EqualValues(t, 5, w.Stats().CallbackPanics)
}

// Close returns within SendTimeout (and a moment) whatever OnUndelivered
// does: here it blocks until the test ends. What was not handed over by
// then is counted and left, and no callback starts after the deadline.
func TestAsyncCloseBoundedBlockingCallback(t *testing.T) {
	srv := journaltest.NewServer(t, journaltest.Version(252))
	release := make(chan struct{})
	defer close(release)
	var calls atomic.Int64
	const timeout = 300 * time.Millisecond
	w, err := NewWriter(&WriterOptions{SocketPath: srv.Path(), SendTimeout: timeout, Async: &AsyncOptions{
		Linger: time.Hour,
		OnUndelivered: func(string, Priority, []Field, error) {
			calls.Add(1)
			<-release
		},
	}})
	require.NoError(t, err)
	srv.Close()
	pad := StringField("PAD", string(bytes.Repeat([]byte("p"), 300)))
	for i := 0; i < 3; i++ {
		require.NoError(t, w.Send("queued", PriInfo, pad))
	}

	start := time.Now()
	err = w.Close()
	took := time.Since(start)
	assert.LessOrEqual(t, took, timeout+closeSlack, "Close took %v", took)
	require.ErrorIs(t, err, ErrTimeout, "Close says entries were not delivered")
	assert.Contains(t, err.Error(), "not delivered")
	assert.EqualValues(t, 1, calls.Load(), "the callback under way blocks; no other starts")
	assert.ErrorIs(t, w.Send("after", PriInfo), ErrClosed)
}

// A stalled journald: Close gives up at its deadline, without handing
// the entries to OnUndelivered; they are counted as timed out.
func TestAsyncCloseBoundedStalledJournald(t *testing.T) {
	srv := journaltest.NewServer(t, journaltest.Version(252))
	var calls atomic.Int64
	const timeout = 300 * time.Millisecond
	w, err := NewWriter(&WriterOptions{SocketPath: srv.Path(), SendTimeout: timeout, Async: &AsyncOptions{
		OnUndelivered: func(string, Priority, []Field, error) { calls.Add(1) },
	}})
	require.NoError(t, err)
	srv.Pause()
	defer srv.Resume()
	// 2 MiB queued: more than the stalled socket's queue holds, less than
	// the Writer's queue (4 MiB), so no Send waits.
	const sends = 2000
	pad := StringField("PAD", string(bytes.Repeat([]byte("p"), 1<<10)))
	for i := 0; i < sends; i++ {
		require.NoError(t, w.Send("stalled", PriInfo, pad))
	}
	start := time.Now()
	err = w.Close()
	took := time.Since(start)
	assert.LessOrEqual(t, took, timeout+closeSlack, "Close took %v", took)
	require.ErrorIs(t, err, ErrTimeout)
	assert.Zero(t, calls.Load(), "nothing is handed to OnUndelivered after the deadline")
	st := w.Stats()
	assert.Positive(t, st.Errors.Timeout)
	assert.EqualValues(t, sends, st.Entries+st.Errors.Total()+st.Dropped, "every Send is counted once: %+v", st)
}

// A synchronous Writer's Close does not wait for a Send that waits for a
// stalled journald; that Send ends within its own bound, and the socket
// is given back after it.
func TestSyncCloseDoesNotWait(t *testing.T) {
	srv := journaltest.NewServer(t, journaltest.Version(252))
	const timeout = 500 * time.Millisecond
	w, err := NewWriter(&WriterOptions{SocketPath: srv.Path(), SendTimeout: timeout})
	require.NoError(t, err)
	srv.Pause()
	defer srv.Resume()
	pad := StringField("PAD", string(bytes.Repeat([]byte("p"), 200<<10)))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.Send("stalled", PriInfo, pad)
		}()
	}
	// Wait until some Sends are parked behind the full queue.
	require.Eventually(t, func() bool { return sockOf(t, w).q.busy() }, 5*time.Second, time.Millisecond)
	start := time.Now()
	require.NoError(t, w.Close())
	assert.Less(t, time.Since(start), 50*time.Millisecond, "Close waited for Sends under way")
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, ErrClosed) {
			assert.ErrorIs(t, err, ErrTimeout)
		}
	}
	assert.ErrorIs(t, w.Send("after", PriInfo), ErrClosed)
}

// '@' names an abstract address on every path: small entries, entries
// passed as a memfd, and Probe.
func TestAbstractSocketPath(t *testing.T) {
	name := fmt.Sprintf("@newstyle-test-%d-%s", os.Getpid(), t.Name())
	srv := journaltest.NewServerAt(t, name, journaltest.Version(252))
	w := newTestWriter(t, name, WriterOptions{})
	require.NoError(t, w.Probe())
	require.NoError(t, w.Send("small", PriInfo, StringField("KIND", "small")))
	big := bytes.Repeat([]byte("b"), 20<<20) // over any datagram: a memfd
	require.NoError(t, w.Send("large", PriInfo, Field{Name: "KIND", Value: []byte("large")}, Field{Name: "BIG", Value: big}))
	assert.EqualValues(t, 1, w.Stats().Memfd)
	got := srv.Wait(t, 2, 10*time.Second)
	require.Len(t, got, 2)
	k0, _ := got[0].Get("KIND")
	k1, _ := got[1].Get("KIND")
	assert.Equal(t, []string{"small", "large"}, []string{k0, k1})
	v, _ := got[1].Get("BIG")
	assert.Equal(t, len(big), len(v))
	require.NoError(t, srv.Err())

	// Nothing was made in the working directory under the name.
	_, err := os.Lstat(name)
	assert.ErrorIs(t, err, os.ErrNotExist)

	// A filesystem path that starts with '@' is not the abstract one.
	other := newTestWriter(t, name+"-absent", WriterOptions{})
	assert.ErrorIs(t, other.Probe(), ErrNotListening)
}
