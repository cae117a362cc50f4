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
// A waiting sender is a goroutine parked in Go, never an OS thread
// blocked in sendto: however many goroutines log while journald stalls,
// the program keeps its usual few threads. Senders queue, oldest first,
// and one of them at a time, the leader, sends for all: it holds a second
// socket, connected to journald's, which Go's network poller watches. A
// connected datagram socket is the only kind the kernel reports writable
// when the receiver's queue has room again, so the leader sleeps in the
// poller, not in the kernel, and wakes when journald reads. It then sends
// every waiting entry it can, oldest first; where journald takes several
// entries in one datagram (see batchable), all of them in one. When its
// own entry is sent (or its time is up) it hands the lead to the oldest
// sender still waiting, and returns: each waiting sender is woken once,
// to learn its outcome or to lead, and a lone sender is its own leader,
// with no goroutine between it and the poller.
//
// Each sender waits at most its own timeout, then gives up its place. A
// sender whose entry the leader has taken for a send at that moment waits
// for the outcome of that one non-blocking system call (sendmsg) instead.
type congestion struct {
	mu      sync.Mutex
	queue   []*waiter // oldest first, from head on
	head    int
	leading bool          // a sender is the leader
	conn    *net.UnixConn // the leader's connected socket; nil until needed
	raw     syscall.RawConn
	closed  bool

	// batch: journald takes several entries in one datagram.
	batch bool

	// waiting counts the senders queued and not finished, for busy to
	// read without the lock.
	waiting atomic.Int64

	// The leader's own, set up once so that sending allocates nothing;
	// only the leader touches them.
	sendFn func(fd uintptr) bool
	me     *waiter   // the leader's own entry
	taken  []*waiter // the entries of the send under way
	msg    []byte    // the datagram of a batch
	lost   bool      // the connection's journald is gone
}

// A waiter is one sender's entry in the queue: a datagram (data) or a
// passed descriptor (oob). Waiters are pooled, so that a busy journald
// costs its senders no allocation: one that gave up may still be in the
// queue, and goes to the garbage collector instead.
type waiter struct {
	data, oob []byte
	state     atomic.Uint32
	errno     unix.Errno    // the outcome, once state is finished
	done      chan struct{} // one value once finished, or promoted to lead
	timer     *time.Timer
}

var waiterPool = sync.Pool{New: func() any { return &waiter{done: make(chan struct{}, 1)} }}

// The states of a waiter. The leader moves it from waiting to sending for
// one non-blocking send, then to finished, or back to waiting if
// journald's queue is still full; to hand over the lead, from waiting to
// promoted. The sender moves it from waiting to abandoned when its time
// is up.
const (
	waiting uint32 = iota
	sending
	abandoned
	finished
	promoted
)

// pollSlice is the longest the leader sleeps in the poller before it
// looks at its own time and at abort again, and at a journald that was
// restarted (its old socket never becomes writable again).
const pollSlice = 100 * time.Millisecond

// busy reports whether senders are waiting; a new sender then queues
// behind them rather than take the room journald makes for them.
func (q *congestion) busy() bool { return q.waiting.Load() != 0 }

// wait queues a datagram and waits until it is sent, or for at most
// timeout (< 0: without bound), or until abort is closed. It returns the
// send's errno, or EAGAIN when the time ran out (or abort) first.
func (q *congestion) wait(s *socket, data, oob []byte, timeout time.Duration, abort <-chan struct{}) unix.Errno {
	w := waiterPool.Get().(*waiter)
	w.data, w.oob = data, oob
	w.state.Store(waiting)
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return unix.EBADF
	}
	q.queue = append(q.queue, w)
	q.waiting.Add(1)
	lead := !q.leading
	q.leading = true
	q.mu.Unlock()
	if lead {
		return q.lead(s.path, w, deadline, abort)
	}

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
		return q.woken(s.path, w, deadline, abort)
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
		switch w.state.Load() {
		case finished, promoted:
			<-w.done
			return q.woken(s.path, w, deadline, abort)
		}
		// The leader is in the middle of one non-blocking send of w.
		runtime.Gosched()
	}
}

// woken returns the outcome of a waiter that was signalled: finished, or
// promoted to lead, which it then does.
func (q *congestion) woken(path string, w *waiter, deadline time.Time, abort <-chan struct{}) unix.Errno {
	if w.state.CompareAndSwap(promoted, waiting) {
		return q.lead(path, w, deadline, abort)
	}
	return w.recycle()
}

func (w *waiter) stopTimer() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// recycle returns the outcome of a finished waiter, which the leader has
// taken out of the queue, and puts it back in the pool.
func (w *waiter) recycle() unix.Errno {
	errno := w.errno
	w.data, w.oob, w.errno = nil, nil, 0
	waiterPool.Put(w)
	return errno
}

// lead sends for the queue, oldest first, until me, the leader's own
// entry, is sent or its deadline (zero: none) passes or abort is closed;
// then it hands the lead over and returns me's outcome.
func (q *congestion) lead(path string, me *waiter, deadline time.Time, abort <-chan struct{}) unix.Errno {
	if q.sendFn == nil {
		q.sendFn = q.send
	}
	q.me = me
	for me.state.Load() != finished {
		if expired(deadline) || closed(abort) {
			if me.state.CompareAndSwap(waiting, abandoned) {
				q.handOff()
				me.data, me.oob = nil, nil
				return unix.EAGAIN
			}
			continue // finished meanwhile
		}
		conn, errno := q.connection(path)
		if errno != 0 {
			// Nothing listens: no sender has anything to wait for, as a
			// send would fail at once.
			q.failWaiting(errno)
			continue
		}
		wake := time.Now().Add(pollSlice)
		if !deadline.IsZero() && deadline.Before(wake) {
			wake = deadline
		}
		_ = conn.SetWriteDeadline(wake)
		q.lost = false
		err := q.raw.Write(q.sendFn)
		if (err != nil && !os.IsTimeout(err)) || q.lost {
			q.dropConnection(conn)
		}
	}
	q.handOff()
	return me.recycle()
}

func expired(deadline time.Time) bool { return !deadline.IsZero() && !time.Now().Before(deadline) }

func closed(abort <-chan struct{}) bool {
	select {
	case <-abort:
		return true
	default:
		return false
	}
}

// handOff gives the lead to the oldest sender still waiting, or ends it.
func (q *congestion) handOff() {
	q.me = nil
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := q.head; i < len(q.queue); i++ {
		if w := q.queue[i]; w.state.CompareAndSwap(waiting, promoted) {
			w.done <- struct{}{}
			return
		}
	}
	q.leading = false
}

// send is the leader's part in the network poller: it sends for the
// waiters, oldest first, and returns false to sleep until journald reads.
func (q *congestion) send(fd uintptr) bool {
	for {
		n := q.take()
		if n == 0 {
			return true
		}
		errno := q.sendTaken(int(fd))
		switch errno {
		case unix.EAGAIN:
			q.giveBack(0)
			return false // sleep in the poller until journald reads
		case unix.ECONNREFUSED, unix.ENOTCONN, unix.ECONNRESET, unix.EPIPE:
			// The journald this socket was connected to is gone; a new
			// one may listen at the path.
			q.giveBack(0)
			q.lost = true
			return true
		}
		q.finishTaken(errno)
		if q.me.state.Load() == finished {
			return true // the leader's own is sent: hand over
		}
	}
}

// take moves the oldest waiting entries to taken, for one send: one
// entry, or where journald takes several a datagram, as many entries
// without descriptors as fit in maxBatchBytes. It drops the entries of
// senders that gave up, and returns how many it took.
func (q *congestion) take() int {
	q.taken = q.taken[:0]
	size := 0
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.head < len(q.queue) {
		w := q.queue[q.head]
		if st := w.state.Load(); st == abandoned {
			q.popLocked()
			continue
		} else if st != waiting {
			break // promoted: it leads next
		}
		if len(q.taken) > 0 && (!q.batch || w.oob != nil || q.taken[0].oob != nil ||
			size+1+len(w.data) > maxBatchBytes) {
			break
		}
		if !w.state.CompareAndSwap(waiting, sending) {
			continue // it just gave up; dropped in the next round
		}
		size += len(w.data) + 1
		q.taken = append(q.taken, w)
		q.popLocked()
	}
	return len(q.taken)
}

// sendTaken sends the taken entries, one datagram: a batch is built in
// msg, each entry followed by the empty line that separates entries.
func (q *congestion) sendTaken(fd int) unix.Errno {
	w := q.taken[0]
	if len(q.taken) == 1 {
		return sendmsg(fd, w.data, w.oob)
	}
	q.msg = q.msg[:0]
	for i, w := range q.taken {
		if i > 0 {
			q.msg = append(q.msg, '\n')
		}
		q.msg = append(q.msg, w.data...)
	}
	errno := sendmsg(fd, q.msg, nil)
	if cap(q.msg) > maxBatchBytes*2 {
		q.msg = nil
	}
	if errno == unix.EMSGSIZE || errno == unix.ENOBUFS {
		// Too large as one datagram for this socket's buffer: the
		// first entry alone, the others back in the queue.
		q.giveBack(1)
		return sendmsg(fd, w.data, w.oob)
	}
	return errno
}

// giveBack puts the taken entries from i on back at the head of the
// queue, in their order, for another send.
func (q *congestion) giveBack(i int) {
	back := q.taken[i:]
	q.taken = q.taken[:i]
	if len(back) == 0 {
		return
	}
	q.mu.Lock()
	q.prependLocked(back)
	q.waiting.Add(int64(len(back)))
	q.mu.Unlock()
	for _, w := range back {
		w.state.Store(waiting)
	}
}

// finishTaken gives every taken entry errno as its outcome.
func (q *congestion) finishTaken(errno unix.Errno) {
	for _, w := range q.taken {
		q.finish(w, errno)
	}
	q.taken = q.taken[:0]
}

// prependLocked puts back before the queue's head.
func (q *congestion) prependLocked(back []*waiter) {
	n := len(back)
	if q.head >= n {
		q.head -= n
		copy(q.queue[q.head:], back)
		return
	}
	rest := len(q.queue) - q.head
	q.queue = append(q.queue, back...) // room for n more
	copy(q.queue[n:], q.queue[q.head:q.head+rest])
	copy(q.queue, back)
	q.queue, q.head = q.queue[:n+rest], 0
}

func (q *congestion) popLocked() {
	q.queue[q.head] = nil
	q.head++
	q.waiting.Add(-1)
	if q.head == len(q.queue) {
		q.queue, q.head = q.queue[:0], 0
	} else if q.head > 1024 && q.head > len(q.queue)/2 {
		n := copy(q.queue, q.queue[q.head:])
		clear(q.queue[n:])
		q.queue, q.head = q.queue[:n], 0
	}
}

// finish gives w, out of the queue, its outcome. The leader's own entry
// is not signalled: the leader reads it itself.
func (q *congestion) finish(w *waiter, errno unix.Errno) {
	w.errno = errno
	w.state.Store(finished)
	if w != q.me {
		w.done <- struct{}{}
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

// connection returns the leader's connected socket, connecting it first
// if needed.
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
	for q.take() > 0 {
		q.finishTaken(errno)
	}
}

// close closes the leader's socket. The Writers are all closed and no
// send is under way (see Writer.users), so nobody waits.
func (q *congestion) close() {
	q.mu.Lock()
	q.closed = true
	conn := q.conn
	q.conn = nil
	q.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}
