//go:build linux

package journal

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journaltest"
)

// threadCount reads the process's OS thread count from /proc.
func threadCount(t testing.TB) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads: line in /proc/self/status")
	return 0
}

// peakThreads samples the thread count every millisecond until stop is
// closed, and returns the highest it saw.
func peakThreads(t testing.TB, stop <-chan struct{}) <-chan int {
	peak := make(chan int, 1)
	go func() {
		max := threadCount(t)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				peak <- max
				return
			case <-tick.C:
				if n := threadCount(t); n > max {
					max = n
				}
			}
		}
	}()
	return peak
}

// stalledSocket binds a datagram socket that nobody reads, as journald
// stopped with SIGSTOP.
func stalledSocket(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "stalled")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	return path
}

// Thousands of goroutines sending to a stalled journald wait as parked
// goroutines: the thread count stays near GOMAXPROCS, every Send returns
// within its timeout plus a small margin, and every outcome is counted.
func TestStalledJournaldKeepsThreadsBounded(t *testing.T) {
	const (
		senders = 20000
		timeout = 300 * time.Millisecond
	)
	// Waking 20,000 goroutines whose time is up takes a while, the more
	// under the race detector; the integration tier measures the bound
	// without it (integration/threads_test.go).
	margin := 400 * time.Millisecond
	if testutil.RaceEnabled {
		margin = 2 * time.Second
	}
	w := newTestWriter(t, stalledSocket(t), WriterOptions{SendTimeout: timeout})
	base := threadCount(t)
	stop := make(chan struct{})
	peak := peakThreads(t, stop)

	var wg sync.WaitGroup
	var ok, timedOut, other, late atomic.Int64
	var slowest atomic.Int64
	for i := 0; i < senders; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			err := w.Send("stalled", PriInfo)
			took := time.Since(start)
			for {
				cur := slowest.Load()
				if int64(took) <= cur || slowest.CompareAndSwap(cur, int64(took)) {
					break
				}
			}
			if took > timeout+margin {
				late.Add(1)
			}
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrTimeout):
				timedOut.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	p := <-peak

	if got := ok.Load() + timedOut.Load(); got != senders || other.Load() != 0 {
		t.Errorf("%d sent, %d timed out, %d other errors; want %d in all, no other error", ok.Load(), timedOut.Load(), other.Load(), senders)
	}
	if ok.Load() > 100 {
		t.Errorf("%d entries sent to a socket nobody reads; its queue holds about 10", ok.Load())
	}
	if late.Load() > 0 {
		t.Errorf("%d Sends took longer than %v + %v (slowest %v)", late.Load(), timeout, margin, time.Duration(slowest.Load()))
	}
	if limit := base + runtime.GOMAXPROCS(0) + 32; p > limit {
		t.Errorf("peak of %d OS threads (%d before), want at most %d", p, base, limit)
	}
	st := w.Stats()
	if st.Entries != uint64(ok.Load()) || st.Errors.Timeout != uint64(timedOut.Load()) || st.Errors.Total() != uint64(timedOut.Load()) {
		t.Errorf("Stats = %+v, want %d entries and %d timeouts", st, ok.Load(), timedOut.Load())
	}
	t.Logf("%d senders: %d sent, %d timed out; threads %d before, peak %d; slowest Send %v",
		senders, ok.Load(), timedOut.Load(), base, p, time.Duration(slowest.Load()))
}

// Senders that wait while journald does not read are all delivered, in
// the order they queued, once it reads again.
func TestWaitersDeliveredWhenJournaldReads(t *testing.T) {
	srv := journaltest.NewServer(t)
	w := newTestWriter(t, srv.Path(), WriterOptions{SendTimeout: 10 * time.Second})
	srv.Pause()
	// Fill the queue so that the next senders must wait.
	filled := fillQueue(t, w)
	const waiters = 500
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for i := 0; i < waiters; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.Send("waited", PriInfo)
		}()
	}
	// Every sender waits before journald reads again: one as the leader,
	// in the kernel, the others queued.
	waitQueued(t, w, waiters-1, 5*time.Second)
	srv.Resume()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send after journald read again: %v", err)
		}
	}
	srv.Wait(t, filled+waiters, 5*time.Second)
	if err := srv.Err(); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Entries != waiters || st.Errors.Total() != 0 {
		t.Errorf("Stats = %+v, want %d entries", st, waiters)
	}
	if n := sockOf(t, w).q.waiting.Load(); n != 0 {
		t.Errorf("%d waiters left in the queue", n)
	}
}

// When journald goes away while senders wait, they learn it at once
// instead of waiting out their timeout; a journald at the same path
// afterwards gets the next entries.
func TestWaitersFailFastWhenJournaldGoes(t *testing.T) {
	srv := journaltest.NewServer(t)
	w := newTestWriter(t, srv.Path(), WriterOptions{SendTimeout: 30 * time.Second})
	srv.Pause()
	fillQueue(t, w)
	const waiters = 50
	errs := make(chan error, waiters)
	for i := 0; i < waiters; i++ {
		go func() { errs <- w.Send("waiting", PriInfo) }()
	}
	waitQueued(t, w, waiters-1, 10*time.Second) // and one leads
	start := time.Now()
	srv.Close()
	for i := 0; i < waiters; i++ {
		if err := <-errs; !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Send while journald went away = %v, want ErrUnavailable", err)
		}
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("waiters learnt journald was gone after %v", took)
	}
	srv2 := journaltest.NewServerAt(t, srv.Path())
	if err := w.Send("back", PriInfo); err != nil {
		t.Fatalf("Send to the new journald: %v", err)
	}
	srv2.Wait(t, 1, 5*time.Second)
}

// Writers share one socket per path: many Writers cost no descriptor each,
// closing them all gives every descriptor back, and a Writer dropped
// without Close gives its share back when it is collected.
func TestWritersShareOneSocket(t *testing.T) {
	srv := journaltest.NewServer(t)
	base := testutil.OpenFDs(t)
	var ws []*Writer
	for i := 0; i < 1000; i++ {
		w, err := NewWriter(&WriterOptions{SocketPath: srv.Path()})
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	if n := testutil.OpenFDs(t); n > base+1 {
		t.Errorf("1000 Writers on one path: %d descriptors open, %d before", n, base)
	}
	for _, w := range ws {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := testutil.OpenFDs(t); n != base {
		t.Errorf("after closing every Writer: %d descriptors open, %d before", n, base)
	}

	func() {
		for i := 0; i < 1000; i++ {
			if _, err := NewWriter(&WriterOptions{SocketPath: srv.Path()}); err != nil {
				t.Fatal(err)
			}
		}
	}()
	if n := testutil.OpenFDs(t); n > base+1 {
		t.Errorf("1000 unclosed Writers: %d descriptors open, %d before", n, base)
	}
	var open int
	if !testutil.Poll(5*time.Second, 10*time.Millisecond, func() bool {
		if open = testutil.OpenFDs(t); open == base {
			return true
		}
		runtime.GC()
		return false
	}) {
		t.Fatalf("unclosed, unreachable Writers still hold %d descriptors", open-base)
	}
}

// fill makes one attempt to send data as a datagram, without waiting:
// what the tests fill a socket's queue with.
func (s *socket) fill(data []byte) unix.Errno { return s.sendto(data, nil, unix.MSG_DONTWAIT) }

// fillQueue fills the socket queue of w's journald (a paused stand-in)
// with "MESSAGE=fill" datagrams until it refuses one, 10,000 at most, so
// that the next sends must wait; it returns how many went in.
func fillQueue(t testing.TB, w *Writer) int {
	t.Helper()
	s := sockOf(t, w)
	n := 0
	for n < 10000 && s.fill([]byte("MESSAGE=fill\n")) == 0 {
		n++
	}
	return n
}

// waitQueued waits, at most timeout, until n senders are queued on w's
// socket behind its leader.
func waitQueued(t testing.TB, w *Writer, n int64, timeout time.Duration) {
	t.Helper()
	var queued int64
	if !testutil.Poll(timeout, time.Millisecond, func() bool {
		queued = sockOf(t, w).q.waiting.Load()
		return queued >= n
	}) {
		t.Fatalf("%d senders queued after %v, want %d", queued, timeout, n)
	}
}

// Senders whose times run out at every point of a send — queued, taken
// for a send, promoted to lead — all return within their bound, and the
// queue is left empty with nobody leading: no sender is forgotten and
// no leader spins.
func TestCongestionTimeoutsAtEveryPoint(t *testing.T) {
	srv := journaltest.NewServer(t)
	w := newTestWriter(t, srv.Path(), WriterOptions{})
	// Writers of one path share its socket, and so its senders' queue.
	var ws []*Writer
	for ms := 1; ms <= 150; ms++ {
		ws = append(ws, newTestWriter(t, srv.Path(), WriterOptions{SendTimeout: time.Duration(ms) * time.Millisecond}))
	}
	pad := Field{Name: "PAD", Value: make([]byte, 16<<10)}
	for round := 0; round < 5; round++ {
		srv.Pause()
		var wg sync.WaitGroup
		var late atomic.Int64
		for i := 0; i < 2000; i++ {
			ww := ws[i%len(ws)]
			timeout := ww.timeout
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				_ = ww.Send("x", PriInfo, pad)
				if time.Since(start) > timeout+sliceTimeout+time.Second {
					late.Add(1)
				}
			}()
		}
		// Long enough for the leader's slices to run out with entries of
		// senders whose time ran out meanwhile.
		time.Sleep(200 * time.Millisecond)
		srv.Resume()
		wg.Wait()
		if n := late.Load(); n > 0 {
			t.Fatalf("round %d: %d Sends overran their bound", round, n)
		}
		if n := sockOf(t, w).q.waiting.Load(); n != 0 {
			t.Fatalf("round %d: %d senders left queued", round, n)
		}
		if sockOf(t, w).q.leading.Load() {
			t.Fatalf("round %d: the lead was never given back", round)
		}
	}
}

// sockOf returns w's socket, taking it if w has not sent yet.
func sockOf(t testing.TB, w *Writer) *socket {
	t.Helper()
	s, err := w.socket()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
