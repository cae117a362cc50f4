//go:build linux

package journal

import (
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// congestion is where senders wait while journald's socket queue is full
// (net.unix.max_dgram_qlen datagrams, 10 by default): journald is busy,
// or stalled on a slow disk, or stopped.
//
// A waiting sender is a goroutine parked on a channel, never an OS thread
// blocked in sendto: however many goroutines log while journald stalls,
// the program keeps its usual few threads. One goroutine, the pump, sends
// for all of them, oldest first: it holds a second socket, connected to
// journald's, which Go's network poller watches. A connected datagram
// socket is the only kind the kernel reports writable when the receiver's
// queue has room again, so the pump sleeps in the poller, not in the
// kernel, and wakes when journald reads. It runs only while senders wait.
//
// Each sender waits at most its own timeout, then gives up its place; a
// sender the pump is sending for at that moment gets the outcome of that
// one non-blocking attempt.
type congestion struct {
	mu      sync.Mutex
	queue   []*waiter // oldest first, from head on
	head    int
	pumping bool
	conn    *net.UnixConn // the pump's connected socket; nil until needed
	raw     syscall.RawConn
	closed  bool

	// The pump's own, made once so that draining allocates nothing.
	drainFn func(fd uintptr) bool
	lost    bool

	// waiting is len(queue)-head, for busy to read without the lock.
	waiting atomic.Int64
}

// A waiter is one sender's entry in the queue: a datagram (data) or a
// passed descriptor (oob). Waiters are pooled, so that a busy journald
// costs its senders no allocation: one that gave up may still be in the
// queue, and goes to the garbage collector instead.
type waiter struct {
	data, oob []byte
	state     atomic.Uint32
	errno     unix.Errno    // the outcome, once state is finished
	done      chan struct{} // one value once finished
	timer     *time.Timer
}

var waiterPool = sync.Pool{New: func() any { return &waiter{done: make(chan struct{}, 1)} }}

// The states of a waiter. The pump moves it from waiting to sending for
// one non-blocking attempt, and back if journald's queue is still full;
// the sender moves it from waiting to abandoned when its time is up.
const (
	waiting uint32 = iota
	sending
	abandoned
	finished
)

// pumpRecheck is how long the pump sleeps in the poller before it looks
// at its queue again, for senders that gave up and for a journald that
// was restarted (its old socket never becomes writable again).
const pumpRecheck = 100 * time.Millisecond

// busy reports whether senders are waiting; a new sender then queues
// behind them rather than take the room journald makes for them.
func (q *congestion) busy() bool { return q.waiting.Load() != 0 }

// wait queues a datagram and waits until the pump has sent it, or for at
// most timeout (< 0: without bound), or until abort is closed. It returns
// the send's errno, or EAGAIN when the time ran out (or abort) first.
func (q *congestion) wait(s *socket, data, oob []byte, timeout time.Duration, abort <-chan struct{}) unix.Errno {
	w := waiterPool.Get().(*waiter)
	w.data, w.oob = data, oob
	w.state.Store(waiting)
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return unix.EBADF
	}
	q.queue = append(q.queue, w)
	q.waiting.Add(1)
	if !q.pumping {
		q.pumping = true
		go q.pump(s.path)
	}
	q.mu.Unlock()

	var expired <-chan time.Time // nil: without bound
	if timeout >= 0 {
		if w.timer == nil {
			w.timer = time.NewTimer(timeout)
		} else {
			w.timer.Reset(timeout)
		}
		expired = w.timer.C
	}
	select {
	case <-w.done:
		w.stopTimer()
		return w.recycle()
	case <-expired:
	case <-abort:
		w.stopTimer()
	}
	for {
		if w.state.CompareAndSwap(waiting, abandoned) {
			// Still queued: not for reuse.
			w.data, w.oob = nil, nil
			return unix.EAGAIN
		}
		if w.state.Load() == finished {
			<-w.done
			return w.recycle()
		}
		// The pump is in the middle of one non-blocking send for w.
		runtime.Gosched()
	}
}

func (w *waiter) stopTimer() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// recycle returns the outcome of a finished waiter, which the pump has
// taken out of the queue, and puts it back in the pool.
func (w *waiter) recycle() unix.Errno {
	errno := w.errno
	w.data, w.oob, w.errno = nil, nil, 0
	waiterPool.Put(w)
	return errno
}

// next returns the oldest waiter still waiting, dropping those that gave
// up, or nil.
func (q *congestion) next() *waiter {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.nextLocked()
}

func (q *congestion) nextLocked() *waiter {
	for q.head < len(q.queue) {
		w := q.queue[q.head]
		if st := w.state.Load(); st == waiting || st == sending {
			return w
		}
		q.popLocked()
	}
	return nil
}

// stop stops the pump when nobody waits: the next sender to wait starts
// another. Deciding under the lock that queues is what keeps it to one.
func (q *congestion) stop() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.nextLocked() != nil {
		return false
	}
	q.pumping = false
	return true
}

func (q *congestion) popLocked() {
	q.queue[q.head] = nil
	q.head++
	q.waiting.Add(-1)
	if q.head == len(q.queue) {
		q.queue, q.head = q.queue[:0], 0
	} else if q.head > 1024 && q.head > len(q.queue)/2 {
		q.queue, q.head = append(q.queue[:0], q.queue[q.head:]...), 0
	}
}

// finish gives w its outcome. Only the pump calls it, for the waiter at
// the head, in state sending.
func (q *congestion) finish(w *waiter, errno unix.Errno) {
	q.mu.Lock()
	q.popLocked()
	q.mu.Unlock()
	w.errno = errno
	w.state.Store(finished)
	w.done <- struct{}{}
}

// pump sends for the waiters, oldest first, until none is left.
func (q *congestion) pump(path string) {
	for !q.stop() {
		conn, errno := q.connection(path)
		if errno != 0 {
			// Nothing listens: no waiter has anything to wait for, as a
			// send would fail at once.
			q.failWaiting(errno)
			continue
		}
		if q.drain(conn) {
			q.dropConnection(conn)
		}
	}
}

// drain sends queued datagrams on conn until the queue is empty or
// journald's stays full for pumpRecheck. It reports whether conn lost its
// peer (journald was restarted) and must be made anew.
func (q *congestion) drain(conn *net.UnixConn) (lost bool) {
	if q.drainFn == nil {
		q.drainFn = q.send
	}
	q.lost = false
	_ = conn.SetWriteDeadline(time.Now().Add(pumpRecheck))
	err := q.raw.Write(q.drainFn)
	if err != nil && !os.IsTimeout(err) {
		return true
	}
	return q.lost
}

// send is the pump's part in the network poller: it sends for the
// waiters, oldest first, and returns false to sleep until journald reads.
func (q *congestion) send(fd uintptr) bool {
	for {
		w := q.next()
		if w == nil {
			return true
		}
		if !w.state.CompareAndSwap(waiting, sending) {
			continue // it just gave up; next drops it
		}
		errno := sendmsg(int(fd), w.data, w.oob)
		switch errno {
		case unix.EAGAIN:
			w.state.Store(waiting)
			return false // sleep in the poller until journald reads
		case unix.ECONNREFUSED, unix.ENOTCONN, unix.ECONNRESET, unix.EPIPE:
			// The journald this socket was connected to is gone; a new
			// one may listen at the path.
			w.state.Store(waiting)
			q.lost = true
			return true
		}
		q.finish(w, errno)
	}
}

func sendmsg(fd int, data, oob []byte) unix.Errno {
	for {
		_, err := unix.SendmsgN(fd, data, oob, nil, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
		if errno := errnoOf(err); errno != unix.EINTR {
			return errno
		}
	}
}

// connection returns the pump's connected socket, connecting it first if
// needed.
func (q *congestion) connection(path string) (*net.UnixConn, unix.Errno) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, unix.EBADF
	}
	if q.conn != nil {
		return q.conn, 0
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, errnoOf(err)
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, unix.EBADF
	}
	_ = raw.Control(func(fd uintptr) { raiseSendBuffer(int(fd), sendBufferSize) })
	q.conn, q.raw = conn, raw
	return conn, 0
}

func (q *congestion) dropConnection(conn *net.UnixConn) {
	q.mu.Lock()
	if q.conn == conn {
		q.conn = nil
	}
	q.mu.Unlock()
	conn.Close()
}

// failWaiting gives every waiting sender errno as its outcome.
func (q *congestion) failWaiting(errno unix.Errno) {
	for w := q.next(); w != nil; w = q.next() {
		if w.state.CompareAndSwap(waiting, sending) {
			q.finish(w, errno)
		}
	}
}

// close closes the pump's socket. The Writers are all closed, so nobody
// waits; a pump still running finds the queue empty, or only senders that
// gave up, and stops.
func (q *congestion) close() {
	q.mu.Lock()
	q.closed = true
	conn := q.conn
	q.conn = nil
	q.mu.Unlock()
	// Not under the lock: Close waits for the pump's system call, and
	// the pump may be about to take the lock.
	if conn != nil {
		conn.Close()
	}
}
