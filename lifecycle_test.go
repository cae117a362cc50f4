//go:build linux

package newstyle

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/journaltest"
)

// A namespace name from a configuration file never leads records to a
// socket outside /run/systemd: an invalid one makes the logger write to
// stdout, says why, and opens no socket, even with the journal forced.
func TestInvalidNamespace(t *testing.T) {
	// A listener where the traversal would lead: it must get nothing.
	dir := t.TempDir()
	evil := journaltest.NewServerAt(t, filepath.Join(dir, "socket"))
	traversal := "probe/../../../../../../../.." + dir

	names := []struct{ name, why string }{
		{traversal, "'/'"},
		{"a/b", "'/'"},
		{".", "starts with '.'"},
		{"..", "starts with '.'"},
		{"@x", "starts with '@'"},
		{"a\x00b", `\x00`},
		{strings.Repeat("n", 223), "longer than 222"},
	}
	for _, forced := range []string{"option", "environment"} {
		for _, tt := range names {
			t.Run(forced+"/"+strings.ToValidUTF8(tt.name[:min(len(tt.name), 20)], "?"), func(t *testing.T) {
				opts := &Options{Namespace: tt.name, Stdout: &bytes.Buffer{}}
				t.Setenv(EnvTarget, "")
				if forced == "option" {
					opts.Target = TargetJournal
				} else {
					t.Setenv(EnvTarget, "journal")
				}
				out := opts.Stdout.(*bytes.Buffer)
				h := NewHandler(opts)
				defer h.Close()

				d := h.Detection()
				assert.Equal(t, TargetStdout, d.Target)
				assert.Equal(t, TargetStdout, h.Target())
				assert.Contains(t, d.Reason, "Options.Namespace")
				assert.Contains(t, d.Reason, "invalid namespace name")
				assert.Contains(t, d.Reason, tt.why)
				assert.NotContains(t, d.Reason, "\x00")
				_, ok := h.JournalStats()
				assert.False(t, ok, "no journal Writer is made")

				slog.New(h).Info("to stdout, not to the namespace")
				assert.Contains(t, out.String(), "to stdout, not to the namespace")

				_, err := h.SetTarget(TargetJournal)
				require.ErrorIs(t, err, journal.ErrInvalidNamespace)
				_, err = h.SetTarget(TargetAuto)
				require.ErrorIs(t, err, journal.ErrInvalidNamespace)
				assert.Equal(t, TargetStdout, h.Target())
			})
		}
	}
	assert.Empty(t, evil.Received(), "nothing reached the socket the traversal leads to")
	require.NoError(t, evil.Err())
}

// fullPipe returns the write end of a pipe whose buffer is full and that
// nobody reads: a stdout that takes nothing.
func fullPipe(t *testing.T) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { r.Close(); w.Close() })
	fd := int(w.Fd()) // Fd puts the descriptor in blocking mode
	require.NoError(t, syscall.SetNonblock(fd, true))
	chunk := bytes.Repeat([]byte("x"), 4096)
	for {
		if _, err := syscall.Write(fd, chunk); err != nil {
			break
		}
	}
	require.NoError(t, syscall.SetNonblock(fd, false))
	return w
}

// closeSlack is what Close may take past SendTimeout on a loaded machine.
const closeSlack = 300 * time.Millisecond

// Handler.Close returns within SendTimeout (and a moment) with journald
// stalled and stdout a pipe nobody reads, and SetTarget does not wait
// behind it.
func TestCloseBoundedStalledJournaldBlockedStdout(t *testing.T) {
	for _, n := range []int{3, 20, 2000} {
		t.Run(fmt.Sprint(n, " records"), func(t *testing.T) {
			t.Setenv(EnvTarget, "")
			srv := journaltest.NewServer(t)
			const timeout = 400 * time.Millisecond
			h := NewHandler(&Options{
				Target: TargetJournal, SocketPath: srv.Path(), SendTimeout: timeout,
				Stdout: fullPipe(t), Async: &journal.AsyncOptions{Linger: time.Hour},
			})
			srv.Pause()
			defer srv.Resume()
			logger := slog.New(h)
			pad := strings.Repeat("p", 1<<10) // 2,000 of them fit in the queue
			for i := 0; i < n; i++ {
				logger.Info("queued", "i", i, "pad", pad)
			}

			setTarget := make(chan time.Duration, 1)
			start := time.Now()
			go func() {
				time.Sleep(50 * time.Millisecond) // while Close waits
				t0 := time.Now()
				h.SetTarget(TargetStdout)
				setTarget <- time.Since(t0)
			}()
			err := h.Close()
			took := time.Since(start)
			assert.LessOrEqual(t, took, timeout+closeSlack, "Close took %v", took)
			if err != nil {
				assert.ErrorIs(t, err, journal.ErrTimeout)
			}
			select {
			case d := <-setTarget:
				assert.Less(t, d, 100*time.Millisecond, "SetTarget waited behind Close")
			case <-time.After(timeout + closeSlack):
				t.Fatal("SetTarget still waits")
			}
			assert.Equal(t, TargetStdout, h.Target())
			st, _ := h.JournalStats()
			assert.EqualValues(t, n, st.Entries+st.Errors.Total()+st.Dropped, "every record is counted once: %+v", st)
		})
	}
}

// A user's OnUndelivered that blocks for ever does not hold Close, nor
// SetTarget; one that panics does not end the program.
func TestCloseBoundedUserCallback(t *testing.T) {
	t.Setenv(EnvTarget, "")
	for _, tt := range []struct {
		name string
		fn   func(chan struct{}) func(string, journal.Priority, []journal.Field, error)
	}{
		{"blocks", func(release chan struct{}) func(string, journal.Priority, []journal.Field, error) {
			return func(string, journal.Priority, []journal.Field, error) { <-release }
		}},
		{"panics", func(chan struct{}) func(string, journal.Priority, []journal.Field, error) {
			return func(msg string, _ journal.Priority, _ []journal.Field, _ error) { panic("user callback: " + msg) }
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := journaltest.NewServer(t)
			release := make(chan struct{})
			defer close(release)
			var out bytes.Buffer
			const timeout = 400 * time.Millisecond
			h := NewHandler(&Options{
				Target: TargetJournal, SocketPath: srv.Path(), SendTimeout: timeout, Stdout: &out,
				Async: &journal.AsyncOptions{Linger: time.Hour, OnUndelivered: tt.fn(release)},
			})
			srv.Close() // journald gone: every entry is undelivered
			logger := slog.New(h)
			for i := 0; i < 3; i++ {
				logger.Warn("undelivered", "i", i)
			}
			start := time.Now()
			_ = h.Close()
			took := time.Since(start)
			assert.LessOrEqual(t, took, timeout+closeSlack, "Close took %v", took)
			_, err := h.SetTarget(TargetStdout)
			require.NoError(t, err)
			if tt.name == "panics" {
				st, _ := h.JournalStats()
				assert.EqualValues(t, 3, st.CallbackPanics)
				assert.Equal(t, 3, strings.Count(out.String(), "<4>undelivered "),
					"the records journald did not take are on stdout all the same:\n%s", out.String())
			}
		})
	}
}

// After Close, records go to stdout without a false warning about the
// journal, and the journal cannot be chosen again, whatever the Handler
// was born on.
func TestClosedHandler(t *testing.T) {
	srv := journaltest.NewServer(t)
	for _, born := range []Target{TargetJournal, TargetStdout} {
		t.Run(born.String(), func(t *testing.T) {
			t.Setenv(EnvTarget, "")
			var out bytes.Buffer
			h := NewHandler(&Options{Target: born, SocketPath: srv.Path(), Stdout: &out})
			require.NoError(t, h.Close())
			assert.Equal(t, TargetStdout, h.Target())
			slog.New(h).Info("after close")
			assert.Contains(t, out.String(), "after close")
			assert.NotContains(t, out.String(), "cannot be reached")
			for _, target := range []Target{TargetJournal, TargetAuto} {
				_, err := h.SetTarget(target)
				assert.ErrorIs(t, err, journal.ErrClosed, "SetTarget(%v) after Close", target)
			}
			require.NoError(t, h.Close(), "closing twice")
		})
	}
	var got atomic.Int64
	for _, r := range srv.Received() {
		if m, _ := r.Get("MESSAGE"); m == "after close" {
			got.Add(1)
		}
	}
	assert.Zero(t, got.Load())
}
