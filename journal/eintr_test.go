//go:build linux

package journal

import (
	"errors"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Signals that keep interrupting a blocked Send must not stretch its wait
// past the bound SendTimeout promises (less than twice the timeout).
func TestSendTimeoutUnderSignals(t *testing.T) {
	// A socket nobody reads: its queue fills and senders block.
	path := filepath.Join(t.TempDir(), "stalled")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	const timeout = 200 * time.Millisecond
	w := newTestWriter(t, path, WriterOptions{SendTimeout: timeout})

	type result struct {
		err  error
		took time.Duration
	}
	tids := make(chan int, 1)
	done := make(chan result, 1)
	go func() {
		// The sender stays on one thread, so that the signals reach it
		// while it waits in the kernel.
		runtime.LockOSThread()
		tids <- unix.Gettid()
		for i := 0; i < 10000; i++ {
			start := time.Now()
			if err := w.Send("fill", PriInfo); err != nil {
				done <- result{err, time.Since(start)}
				return
			}
		}
		done <- result{errors.New("the queue never filled"), 0}
	}()
	tid := <-tids
	stop := time.After(4 * timeout * 3)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-done:
			if !errors.Is(r.err, ErrTimeout) {
				t.Fatalf("Send = %v, want ErrTimeout", r.err)
			}
			if r.took >= 2*timeout+100*time.Millisecond {
				t.Fatalf("Send waited %v under signals, want less than twice the %v timeout", r.took, timeout)
			}
			return
		case <-tick.C:
			// SIGURG: the Go runtime's own preemption signal, harmless.
			unix.Tgkill(unix.Getpid(), tid, unix.SIGURG)
		case <-stop:
			t.Fatal("Send still blocked after 2.4 s of signals")
		}
	}
}
