package journal

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"
)

// OnFull is what an asynchronous Writer's Send does when the queue is full.
type OnFull int

const (
	// Block waits for room, at most SendTimeout, then returns ErrTimeout.
	// Nothing is lost while journald only stalls for less than that.
	Block OnFull = iota
	// DropNewest drops the entry at once: Send returns ErrDropped, Stats
	// counts it, and as soon as the queue has room again the Writer sends
	// an entry of its own that reports how many were dropped (see
	// DroppedMessageID).
	DropNewest
)

// Defaults of AsyncOptions.
const (
	DefaultQueueBytes = 4 << 20
	DefaultLinger     = time.Millisecond
)

// NoSyncPriority, as AsyncOptions.SyncPriority, makes no Send wait for
// delivery.
const NoSyncPriority Priority = -1

// DroppedMessageID is the MESSAGE_ID of the entry an asynchronous Writer
// sends after it dropped entries (OnFull DropNewest, or entries it could
// not deliver): `journalctl MESSAGE_ID=7c4e1a0b54d74c1e9a2b6f3d8e5a1c42`
// lists every such report. The entry has PRIORITY 4 (warning), the
// Writer's SYSLOG_IDENTIFIER, a MESSAGE that says how many entries were
// lost since the last report, and that number in NEWSTYLE_DROPPED.
const DroppedMessageID = "7c4e1a0b54d74c1e9a2b6f3d8e5a1c42"

// ErrDropped: an asynchronous Writer with OnFull DropNewest found its
// queue full and dropped the entry. It is counted (Stats.Dropped) and
// reported in the journal.
var ErrDropped = errors.New("journal: entry dropped: queue full")

// AsyncOptions make a Writer asynchronous (WriterOptions.Async): Send
// checks and encodes the entry on the caller's goroutine, queues it, and
// returns; one goroutine of the Writer's own packs as many whole queued
// entries as fit into one datagram and sends it. journald spends about
// half the time on an entry that comes with others in a datagram, so a
// busy program gets about twice the entries into the journal, for a
// fraction of its own CPU.
//
// Entries reach the journal in the order their Send calls returned. All
// the entries of one datagram get the same journald timestamps
// (__REALTIME_TIMESTAMP, _SOURCE_REALTIME_TIMESTAMP is not set): to keep
// each record's own time, use the handlers' TimeField (newstyle.NewLogger
// turns it on with Async, as "TIME").
//
// The zero value is ready to use; each field documents its default.
type AsyncOptions struct {
	// QueueBytes bounds the encoded entries waiting to be sent, in bytes.
	// Zero means DefaultQueueBytes (4 MiB). An entry larger than the
	// whole queue is queued alone, when the queue is empty.
	QueueBytes int

	// Linger is the longest an entry waits for others to share its
	// datagram: a queue that holds fewer than 64 entries is sent once its
	// oldest entry has waited that long. Zero means DefaultLinger (1 ms);
	// a negative value sends at once.
	Linger time.Duration

	// SyncPriority: Send returns only once journald has taken the entry
	// (or SendTimeout passed) for entries at this priority or a more
	// severe one (PRIORITY <= SyncPriority), so that an error logged just
	// before a crash is in the journal. The zero value, PriEmerg, means
	// the default, PriErr; NoSyncPriority makes no Send wait.
	SyncPriority Priority

	// OnFull is what Send does when the queue is full: Block (the
	// default) or DropNewest.
	OnFull OnFull

	// OnUndelivered, when not nil, is given each entry that journald did
	// not take (it was gone, or refused it), with the error, on the
	// Writer's sending goroutine. Its slices are only valid during the
	// call. newstyle.NewLogger writes them to stdout.
	OnUndelivered func(message string, priority Priority, fields []Field, err error)
}

// Sizes of a batch: the sender waits (up to Linger) for this many entries
// or bytes before it sends, and a datagram carries at most maxBatchBytes
// (journald reads datagrams of megabytes; this keeps each send short).
const (
	minBatchEntries = 64
	minBatchBytes   = 64 << 10
	maxBatchBytes   = 256 << 10
)

// asyncQueue is the queue of an asynchronous Writer, and its sender.
type asyncQueue struct {
	w        *Writer
	limit    int
	linger   time.Duration
	syncPri  Priority
	onFull   OnFull
	undeliv  func(string, Priority, []Field, error)
	reportID []byte // the MESSAGE_ID field of drop reports

	mu       sync.Mutex
	buf      []byte // queued entries, each followed by an empty line's '\n'
	ends     []int  // where each queued entry ends in buf, its '\n' included
	inflight int    // bytes the sender has taken and not finished
	firstAt  time.Time
	queued   uint64 // entries queued since the Writer was made
	done     uint64 // entries the sender has finished, in queue order
	waiters  []seqWaiter
	room     chan struct{} // closed when room is made; nil when nobody waits
	wake     chan struct{} // the sender's doorbell, capacity 1
	dropped  uint64        // dropped since the last report
	running  bool
	closing  bool
	deadline time.Time     // with closing: when the sender gives up
	stopped  chan struct{} // closed when a closing sender has finished

	// The sender's own, swapped with buf and ends.
	spareBuf  []byte
	spareEnds []int
}

// A seqWaiter waits until entry seq is finished.
type seqWaiter struct {
	seq uint64
	ch  chan error
}

func newAsyncQueue(w *Writer, o *AsyncOptions) *asyncQueue {
	q := &asyncQueue{
		w: w, limit: o.QueueBytes, linger: o.Linger, syncPri: o.SyncPriority,
		onFull: o.OnFull, undeliv: o.OnUndelivered,
		wake: make(chan struct{}, 1), stopped: make(chan struct{}),
	}
	if q.limit <= 0 {
		q.limit = DefaultQueueBytes
	}
	if q.linger == 0 {
		q.linger = DefaultLinger
	}
	if q.syncPri == PriEmerg {
		q.syncPri = PriErr
	}
	q.reportID = appendStringField(nil, "MESSAGE_ID", DroppedMessageID)
	return q
}

// enqueue queues one encoded entry (without its separator); for a
// priority at or above SyncPriority it waits until the entry is
// delivered.
func (q *asyncQueue) enqueue(entry []byte, pri Priority) error {
	need := len(entry) + 1
	q.mu.Lock()
	var timer *time.Timer
	for !q.closing && q.size() > 0 && q.size()+need > q.limit {
		if q.onFull == DropNewest {
			q.dropped++
			q.mu.Unlock()
			q.w.stats.drop()
			return ErrDropped
		}
		if timer == nil {
			if q.w.timeout >= 0 {
				timer = time.NewTimer(q.w.timeout)
				defer timer.Stop()
			} else {
				timer = &time.Timer{} // a nil channel: wait without bound
			}
		}
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-timer.C:
			q.w.stats.fail(ErrTimeout)
			return &sendError{kind: ErrTimeout, path: q.w.path}
		}
		q.mu.Lock()
	}
	if q.closing {
		q.mu.Unlock()
		q.w.stats.fail(ErrClosed)
		return ErrClosed
	}
	q.appendLocked(entry)
	seq := q.queued
	var ch chan error
	if pri <= q.syncPri {
		ch = make(chan error, 1)
		q.waiters = append(q.waiters, seqWaiter{seq, ch})
	}
	ring := len(q.ends) == 1 || len(q.ends) == minBatchEntries || ch != nil || len(q.buf) >= minBatchBytes
	q.startLocked()
	q.mu.Unlock()
	if ring {
		q.ring()
	}
	if ch == nil {
		return nil
	}
	return q.wait(context.Background(), ch)
}

// size is what the queue holds, the sender's share included.
func (q *asyncQueue) size() int { return len(q.buf) + q.inflight }

func (q *asyncQueue) appendLocked(entry []byte) {
	if len(q.ends) == 0 && q.linger > 0 {
		q.firstAt = time.Now()
	}
	q.buf = append(q.buf, entry...)
	q.buf = append(q.buf, '\n')
	q.ends = append(q.ends, len(q.buf))
	q.queued++
}

func (q *asyncQueue) ring() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// startLocked starts the sender if it is not running.
func (q *asyncQueue) startLocked() {
	if !q.running {
		q.running = true
		go q.run()
	}
}

// wait waits for a seqWaiter's outcome: at most SendTimeout, and ctx.
func (q *asyncQueue) wait(ctx context.Context, ch chan error) error {
	var timeout <-chan time.Time
	if q.w.timeout >= 0 {
		t := time.NewTimer(q.w.timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case err := <-ch:
		return err
	case <-timeout:
		return &sendError{kind: ErrTimeout, path: q.w.path}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush waits until every entry queued before it is finished.
func (q *asyncQueue) flush(ctx context.Context) error {
	q.mu.Lock()
	// After close, the sender has finished every entry: done == queued.
	if q.done == q.queued {
		q.mu.Unlock()
		return nil
	}
	ch := make(chan error, 1)
	q.waiters = append(q.waiters, seqWaiter{q.queued, ch})
	q.startLocked()
	q.mu.Unlock()
	q.ring()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops taking entries and waits for the sender to deliver what is
// queued, until deadline; what it could not is counted as timed out.
func (q *asyncQueue) close(deadline time.Time) {
	q.mu.Lock()
	q.closing = true
	q.deadline = deadline
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	running := q.running
	if !running {
		close(q.stopped)
	}
	q.mu.Unlock()
	if running {
		q.ring()
		<-q.stopped
	}
}

// run is the sender: it takes what is queued and sends it, a datagram at
// a time, until the queue is empty.
func (q *asyncQueue) run() {
	for {
		q.mu.Lock()
		for len(q.ends) > 0 && !q.closing && len(q.waiters) == 0 &&
			len(q.ends) < minBatchEntries && len(q.buf) < minBatchBytes && q.linger > 0 {
			d := time.Until(q.firstAt.Add(q.linger))
			if d <= 0 {
				break
			}
			q.mu.Unlock()
			t := time.NewTimer(d)
			select {
			case <-q.wake:
			case <-t.C:
			}
			t.Stop()
			q.mu.Lock()
		}
		if len(q.ends) == 0 {
			q.running = false
			if q.closing {
				close(q.stopped)
			}
			q.mu.Unlock()
			return
		}
		batch, ends := q.buf, q.ends
		q.buf, q.ends = q.spareBuf[:0], q.spareEnds[:0]
		q.inflight = len(batch)
		q.mu.Unlock()

		delivered := q.sendBatch(batch, ends)

		q.mu.Lock()
		q.spareBuf, q.spareEnds = batch, ends
		if delivered {
			// journald takes entries: the report will reach it. While it
			// does not, reports would only fail and report themselves.
			q.reportDropsLocked()
		}
		q.mu.Unlock()
	}
}

// sendBatch sends batch, whose entries end at ends, in datagrams of whole
// entries, and reports whether journald took the last one.
func (q *asyncQueue) sendBatch(batch []byte, ends []int) (delivered bool) {
	start, first := 0, 0
	for i, end := range ends {
		next := len(batch)
		if i+1 < len(ends) {
			next = ends[i+1]
		}
		if i+1 < len(ends) && next-start <= maxBatchBytes {
			continue // the next entry fits in this datagram too
		}
		delivered = q.sendDatagram(batch[start:end-1], i+1-first)
		start, first = end, i+1
	}
	return delivered
}

// sendDatagram sends one datagram of n entries, separated by empty lines,
// finishes them (counted, reported to whoever waits for them), and
// reports whether journald took it.
func (q *asyncQueue) sendDatagram(data []byte, n int) bool {
	viaFile, err := q.deliver(data)
	st := &q.w.stats
	var lost uint64
	if err == nil {
		st.sentBatch(len(data), n, viaFile)
	} else {
		for i := 0; i < n; i++ {
			st.fail(err)
		}
		lost = q.undelivered(data, err)
	}
	q.mu.Lock()
	q.inflight -= len(data) + 1
	q.done += uint64(n)
	for len(q.waiters) > 0 && q.waiters[0].seq <= q.done {
		q.waiters[0].ch <- err
		q.waiters = q.waiters[1:]
	}
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.dropped += lost
	q.mu.Unlock()
	return err == nil
}

// deliver sends a datagram, waiting for a stalled journald as long as it
// takes: entries that Send has queued are not given up while journald
// only stalls. A Writer being closed waits until its deadline.
func (q *asyncQueue) deliver(data []byte) (viaFile bool, err error) {
	for {
		wait := time.Second
		q.mu.Lock()
		closing, deadline := q.closing, q.deadline
		q.mu.Unlock()
		if closing {
			wait = time.Until(deadline)
			if wait <= 0 {
				return false, &sendError{kind: ErrTimeout, path: q.w.path}
			}
		}
		viaFile, err = q.w.sock.send(data, wait)
		if err == nil || !errors.Is(err, ErrTimeout) {
			return viaFile, err
		}
	}
}

// reportDropsLocked queues the report of dropped entries, now that the
// queue has room for it and journald takes entries, to be sent at once,
// without lingering: also when the Writer is being closed.
func (q *asyncQueue) reportDropsLocked() {
	if q.dropped == 0 {
		return
	}
	n := q.dropped
	q.dropped = 0
	msg := "journal: " + strconv.FormatUint(n, 10) + " entries dropped since the last report (queue full or journald unreachable)"
	b := appendStringField(nil, "MESSAGE", msg)
	b = append(b, priorityFields[PriWarning]...)
	b = append(b, q.w.ident...)
	b = append(b, q.reportID...)
	b = append(b, "NEWSTYLE_DROPPED="...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, '\n')
	q.appendLocked(b)
	q.firstAt = time.Time{} // no linger: the loss is news now
}

// undelivered gives the entries of a datagram journald did not take to
// OnUndelivered, and returns how many entries they stand for: one each,
// and for a drop report, the entries it reported, which are to be
// reported again.
func (q *asyncQueue) undelivered(data []byte, err error) (lost uint64) {
	var fields []Field
	for len(data) > 0 {
		var msg string
		pri := PriInfo
		var report bool
		var reported uint64
		fields = fields[:0]
		data = decodeEntry(data, func(name string, value []byte) {
			switch name {
			case "MESSAGE":
				msg = string(value)
			case "PRIORITY":
				if len(value) == 1 && value[0] >= '0' && value[0] <= '7' {
					pri = Priority(value[0] - '0')
				}
			default:
				fields = append(fields, Field{Name: name, Value: value})
				switch name {
				case "MESSAGE_ID":
					report = string(value) == DroppedMessageID
				case "NEWSTYLE_DROPPED":
					reported, _ = strconv.ParseUint(string(value), 10, 64)
				}
			}
		})
		if report && reported > 0 {
			lost += reported
		} else {
			lost++
		}
		if q.undeliv != nil {
			q.undeliv(msg, pri, fields, err)
		}
	}
	return lost
}

// decodeEntry reads one entry of this package's encoding from data,
// calling fn for each field, and returns what follows the entry and its
// separator.
func decodeEntry(data []byte, fn func(name string, value []byte)) []byte {
	for len(data) > 0 {
		if data[0] == '\n' {
			return data[1:]
		}
		i := 0
		for i < len(data) && data[i] != '=' && data[i] != '\n' {
			i++
		}
		name := string(data[:i])
		if i == len(data) {
			return nil
		}
		if data[i] == '=' {
			rest := data[i+1:]
			j := 0
			for j < len(rest) && rest[j] != '\n' {
				j++
			}
			fn(name, rest[:j])
			if j == len(rest) {
				return nil
			}
			data = rest[j+1:]
			continue
		}
		rest := data[i+1:]
		if len(rest) < 8 {
			return nil
		}
		n := int(uint64(rest[0]) | uint64(rest[1])<<8 | uint64(rest[2])<<16 | uint64(rest[3])<<24 |
			uint64(rest[4])<<32 | uint64(rest[5])<<40 | uint64(rest[6])<<48 | uint64(rest[7])<<56)
		rest = rest[8:]
		if n < 0 || n+1 > len(rest) {
			return nil
		}
		fn(name, rest[:n])
		data = rest[n+1:]
	}
	return nil
}
