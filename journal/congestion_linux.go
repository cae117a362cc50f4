//go:build linux

package journal

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// congestion orders the senders of one socket, so that however many
// goroutines log while journald is busy, stalled on a slow disk, or
// stopped, the program keeps its usual few OS threads.
//
// One sender at a time, the leader, sends: a blocking system call, which
// the kernel ends as soon as journald's socket queue
// (net.unix.max_dgram_qlen datagrams, 10 by default) has room, or after
// sliceTimeout (the socket's SO_SNDTIMEO), when the leader looks at its
// own time and tries again. When journald keeps up, that is the whole
// cost of a send: one system call, with no goroutine or poller in
// between. A sender that comes while another leads queues, oldest first,
// as a goroutine parked on a channel, never as a thread blocked in the
// kernel: only the leader holds a thread. The leader sends its own entry,
// then, in order, the entries of those queued behind it meanwhile; where
// journald takes several entries in one datagram (see batchable), all of
// them in one. When its own entry is sent (or its time is up) it sends
// once more for those queued behind it, if journald's queue has room at
// once (help), then hands the lead to the oldest sender still queued,
// and returns: each queued sender is woken once, to learn its outcome or
// to lead.
//
// Each sender waits at most its own timeout, then gives up its place. A
// sender whose entry the leader is sending at that moment learns the
// outcome of that send, at most sliceTimeout later.
type congestion struct {
	leading atomic.Bool // a sender is the leader

	mu     sync.Mutex
	queue  []*waiter // oldest first, from head on
	head   int
	closed bool

	// batch: journald takes several entries in one datagram.
	batch bool

	// waiting counts the senders queued and not finished, for busy and
	// release to read without the lock.
	waiting atomic.Int64

	// The leader's own; only the leader touches them.
	me    *waiter   // the leader's queued entry while it leads from the queue (lead)
	taken []*waiter // the entries of the send under way
	late  []*waiter // those of them whose time ran out meanwhile
	msg   []byte    // the datagram of a batch
}

// sliceTimeout is the socket's SO_SNDTIMEO: the longest the leader waits
// in the kernel before it looks at its own time (and abort) again. A
// Send may so return up to this much after its SendTimeout.
const sliceTimeout = 20 * time.Millisecond

// A waiter is one queued sender: a datagram (data) or a passed descriptor
// (oob). Waiters are pooled, so that a busy journald costs its senders no
// allocation: one that gave up may still be in the queue, and goes to the
// garbage collector instead.
type waiter struct {
	data, oob []byte
	state     atomic.Uint32
	deadline  time.Time     // when its time is up; zero: never
	expired   atomic.Bool   // its time is up: the leader gives it back finished
	errno     unix.Errno    // the outcome, once state is finished
	done      chan struct{} // one value once finished, or promoted to lead
	timer     *time.Timer
}

var waiterPool = sync.Pool{New: func() any { return &waiter{done: make(chan struct{}, 1)} }}

// The states of a waiter. The leader moves it from waiting to sending for
// one send, then to finished, or back to waiting if the send's slice of
// time ran out; to hand over the lead, from waiting to promoted. The
// sender moves it from waiting to abandoned when its time is up.
const (
	waiting uint32 = iota
	sending
	abandoned
	finished
	promoted
)

// busy reports whether senders are queued.
func (q *congestion) busy() bool { return q.waiting.Load() != 0 }

// send sends one datagram, data or the descriptor in oob: itself when no
// other sender leads (see congestion), else through the leader. It waits
// at most timeout (< 0: without bound), and returns when abort is closed.
// It returns the send's errno, or EAGAIN when the time ran out (or
// abort) first.
func (q *congestion) send(s *socket, data, oob []byte, timeout time.Duration, abort <-chan struct{}) unix.Errno {
	if q.leading.CompareAndSwap(false, true) {
		errno := q.sendOwn(s, data, oob, timeout, abort)
		for i := 0; i < maxHelps && q.busy() && q.help(s); i++ {
		}
		q.release()
		return errno
	}
	return q.wait(s, data, oob, timeout, abort)
}

// help sends, once, for those who queued while the leader sent its own
// entry (in one datagram where journald takes batches), when journald's
// queue has room at once: what the sender to be promoted would have
// sent, without waking it to send it. Its own Send is delayed by one
// system call that does not wait.
func (q *congestion) help(s *socket) (sent bool) {
	if q.take() == 0 {
		return false
	}
	switch errno := q.sendTaken(s, unix.MSG_DONTWAIT); errno {
	case unix.EAGAIN, unix.EINTR:
		q.giveBack(0)
		return false
	default:
		q.finishTaken(errno, nil)
		return true
	}
}

// maxHelps bounds the sends a leader makes for others after its own: a
// few system calls that do not wait.
const maxHelps = 4

// sendOwn is the leader's send of its own datagram when nobody is queued:
// the common case, and the whole of it when journald keeps up.
func (q *congestion) sendOwn(s *socket, data, oob []byte, timeout time.Duration, abort <-chan struct{}) unix.Errno {
	var deadline time.Time
	for {
		errno := s.sendBlocking(data, oob)
		if errno != unix.EAGAIN && errno != unix.EINTR {
			return errno
		}
		// The slice ran out (or a signal came): journald is slow.
		if deadline.IsZero() && timeout >= 0 {
			deadline = time.Now().Add(timeout - sliceTimeout)
		}
		if expired(deadline) || closed(abort) {
			return unix.EAGAIN
		}
	}
}

// wait queues a datagram behind the leader and waits until it is sent,
// at most timeout (< 0: without bound), or until abort is closed.
func (q *congestion) wait(s *socket, data, oob []byte, timeout time.Duration, abort <-chan struct{}) unix.Errno {
	w := waiterPool.Get().(*waiter)
	w.data, w.oob = data, oob
	w.expired.Store(false)
	w.state.Store(waiting)
	var deadline time.Time
	if timeout >= 0 {
		deadline = time.Now().Add(timeout)
	}
	w.deadline = deadline
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return unix.EBADF
	}
	q.queue = append(q.queue, w)
	q.waiting.Add(1)
	q.mu.Unlock()
	// The leader may have left between the first look and queueing:
	// then this sender leads, from the oldest queued on.
	if q.leading.CompareAndSwap(false, true) {
		return q.lead(s, w, deadline, abort)
	}

	var expiry <-chan time.Time // nil: without bound
	if timeout >= 0 {
		if w.timer == nil {
			w.timer = time.NewTimer(timeout)
		} else {
			w.timer.Reset(timeout)
		}
		expiry = w.timer.C
	}
	select {
	case <-w.done:
		w.stopTimer()
		return q.woken(s, w, deadline, abort)
	case <-expiry:
	case <-abort:
		w.stopTimer()
	}
	// Its time is up. The leader gives an entry it is sending back
	// finished with EAGAIN once it sees expired (see giveBack).
	w.expired.Store(true)
	for {
		if w.state.CompareAndSwap(waiting, abandoned) {
			// Still queued: not for reuse.
			w.data, w.oob = nil, nil
			return unix.EAGAIN
		}
		if w.state.Load() != waiting {
			// Being sent, sent, or promoted: one more signal comes.
			<-w.done
			return q.woken(s, w, deadline, abort)
		}
	}
}

// woken returns the outcome of a waiter that was signalled: finished, or
// promoted to lead, which it then does.
func (q *congestion) woken(s *socket, w *waiter, deadline time.Time, abort <-chan struct{}) unix.Errno {
	if w.state.CompareAndSwap(promoted, waiting) {
		return q.lead(s, w, deadline, abort)
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
	select {
	case <-w.done: // a signal left over must not wake its next user
	default:
	}
	waiterPool.Put(w)
	return errno
}

// lead sends for the queue, oldest first, until me, the leader's own
// queued entry, is sent or its deadline (zero: none) passes or abort is
// closed; then it hands the lead over and returns me's outcome.
func (q *congestion) lead(s *socket, me *waiter, deadline time.Time, abort <-chan struct{}) unix.Errno {
	q.me = me // until the lead is released: then it is the next leader's
	for me.state.Load() != finished {
		if expired(deadline) || closed(abort) {
			if me.state.CompareAndSwap(waiting, abandoned) {
				q.me = nil
				q.release()
				me.data, me.oob = nil, nil
				return unix.EAGAIN
			}
			continue // finished meanwhile
		}
		if q.take() == 0 {
			continue // the queue ahead of me was senders who gave up
		}
		errno := q.sendTaken(s, 0)
		switch errno {
		case unix.EAGAIN, unix.EINTR:
			// The slice ran out, or a signal came: look at the time,
			// and at those who gave up, before trying again.
			q.giveBack(0)
		default:
			q.finishTaken(errno, me)
		}
	}
	q.me = nil
	q.release()
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

// release ends the lead: it gives it to the oldest sender still queued,
// or leaves it to the next sender. A sender queueing meanwhile looks at
// leading after it is counted in waiting, and release at waiting after
// it cleared leading, so that one of the two always leads.
func (q *congestion) release() {
	for {
		q.leading.Store(false)
		if q.waiting.Load() == 0 || !q.leading.CompareAndSwap(false, true) {
			return
		}
		if q.promote() {
			return
		}
	}
}

// promote hands the lead to the oldest queued sender whose time is not
// up, dropping those that gave up and finishing those whose time is up
// (with EAGAIN: else each would be woken to lead only to give up, one
// after the other), and reports whether there was one.
func (q *congestion) promote() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	for q.head < len(q.queue) {
		w := q.queue[q.head]
		if !w.deadline.IsZero() && !now.Before(w.deadline) {
			if w.state.CompareAndSwap(waiting, finished) {
				w.errno = unix.EAGAIN
				q.popLocked()
				w.done <- struct{}{}
				continue
			}
		} else if w.state.CompareAndSwap(waiting, promoted) {
			w.done <- struct{}{}
			return true
		}
		// The queue holds only the waiting and those who gave up. Were
		// anything else at its head, it is taken out all the same: a
		// release that found nobody to promote while the queue is not
		// empty would try again without end.
		if w.state.Load() == promoted {
			return true // (cannot be) already told to lead: the lead is its
		}
		q.popLocked()
	}
	return false
}

// take moves the oldest queued entries to taken, for one send: one
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
		if !w.state.CompareAndSwap(waiting, sending) {
			if w.state.Load() == abandoned {
				q.popLocked()
				continue
			}
			break
		}
		if len(q.taken) > 0 && (!q.batch || w.oob != nil || q.taken[0].oob != nil ||
			size+1+len(w.data) > maxBatchBytes) {
			w.state.Store(waiting)
			break
		}
		size += len(w.data) + 1
		q.taken = append(q.taken, w)
		q.popLocked()
	}
	return len(q.taken)
}

// sendTaken sends the taken entries as one datagram, blocking for at most
// sliceTimeout (not at all with flags MSG_DONTWAIT): a batch is built in
// msg, entries separated by an empty line.
func (q *congestion) sendTaken(s *socket, flags int) unix.Errno {
	w := q.taken[0]
	if len(q.taken) == 1 {
		return s.sendto(w.data, w.oob, flags)
	}
	q.msg = q.msg[:0]
	for i, w := range q.taken {
		if i > 0 {
			q.msg = append(q.msg, '\n')
		}
		q.msg = append(q.msg, w.data...)
	}
	errno := s.sendto(q.msg, nil, flags)
	if cap(q.msg) > 2*maxBatchBytes {
		q.msg = nil
	}
	if errno == unix.EMSGSIZE || errno == unix.ENOBUFS {
		// Too large as one datagram for this socket's buffer: the
		// first entry alone, the others back in the queue.
		q.giveBack(1)
		return s.sendto(w.data, w.oob, flags)
	}
	return errno
}

// giveBack puts the taken entries from i on back at the head of the
// queue, in their order, for another send; those whose time is up are
// finished with EAGAIN instead, and not queued again.
func (q *congestion) giveBack(i int) {
	back := q.taken[i:]
	q.taken = q.taken[:i]
	if len(back) == 0 {
		return
	}
	q.mu.Lock()
	for _, w := range back {
		w.state.Store(waiting)
	}
	// The sender sets expired before it looks at state, and this looks
	// at expired after setting state: of the two, at least one sees the
	// other's write (and CompareAndSwap decides between them).
	kept := back[:0]
	q.late = q.late[:0]
	for _, w := range back {
		// The leader's own is never finished here: it is not parked on
		// its done channel to be told, and it watches its own time.
		if w != q.me && w.expired.Load() && w.state.CompareAndSwap(waiting, finished) {
			w.errno = unix.EAGAIN
			q.late = append(q.late, w)
			continue
		}
		kept = append(kept, w)
	}
	q.prependLocked(kept)
	q.waiting.Add(int64(len(kept)))
	q.mu.Unlock()
	for _, w := range q.late {
		w.done <- struct{}{}
	}
	clear(q.late)
}

// finishTaken gives every taken entry errno as its outcome; the leader's
// own (me) is not signalled: the leader reads it itself.
func (q *congestion) finishTaken(errno unix.Errno, me *waiter) {
	for _, w := range q.taken {
		w.errno = errno
		w.state.Store(finished)
		if w != me {
			w.done <- struct{}{}
		}
	}
	q.taken = q.taken[:0]
}

// prependLocked puts back before the queue's head.
func (q *congestion) prependLocked(back []*waiter) {
	n := len(back)
	if n == 0 {
		return
	}
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

// close marks the queue closed: the Writers are all closed and no send is
// under way (see Writer.users), so nobody waits.
func (q *congestion) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}
