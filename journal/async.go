package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/newstyle-go/newstyle/internal/slogcore"
)

// OnFull is what an asynchronous Writer's Send does when the queue is full.
type OnFull int

const (
	// OnFullBlock waits for room, at most SendTimeout, then returns
	// ErrTimeout. Nothing is lost while journald only stalls for less
	// than that.
	OnFullBlock OnFull = iota
	// OnFullDropNewest drops the entry at once: Send returns ErrDropped, Stats
	// counts it, and as soon as the queue has room again the Writer sends
	// an entry of its own that reports how many were dropped (see
	// DroppedMessageID).
	OnFullDropNewest
)

// Defaults of AsyncOptions.
const (
	DefaultQueueBytes = 4 << 20
	DefaultLinger     = time.Millisecond
)

// Values of AsyncOptions.SyncPriority that its zero value cannot say.
const (
	// NoSyncPriority makes no Send wait for delivery.
	NoSyncPriority Priority = -1
	// SyncEmergOnly makes Sends at PriEmerg alone wait for delivery
	// (PriEmerg is the zero value, which means the default, PriErr).
	SyncEmergOnly Priority = -2
)

// DroppedMessageID is the MESSAGE_ID of the entry an asynchronous Writer
// sends after it dropped entries (OnFullDropNewest, or entries it could
// not deliver): `journalctl MESSAGE_ID=7c4e1a0b54d74c1e9a2b6f3d8e5a1c42`
// lists every such report. The entry has PRIORITY 4 (warning), the
// Writer's SYSLOG_IDENTIFIER, a MESSAGE that says how many entries were
// lost since the last report, and that number in NEWSTYLE_DROPPED.
const DroppedMessageID = "7c4e1a0b54d74c1e9a2b6f3d8e5a1c42"

// ErrDropped: an asynchronous Writer with OnFullDropNewest found its
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
	// Zero or a negative value means DefaultQueueBytes (4 MiB). An entry
	// larger than the whole queue is queued alone, when the queue is empty.
	QueueBytes int

	// Linger is the longest an entry waits for others to share its
	// datagram: a queue that holds fewer than 64 entries is sent once its
	// oldest entry has waited that long. Zero means DefaultLinger (1 ms);
	// a negative value sends at once.
	Linger time.Duration

	// SyncPriority: Send returns only once journald has taken the entry
	// (or SendTimeout passed) for entries at this priority or a more
	// severe one (PRIORITY <= SyncPriority), so that an error logged just
	// before a crash is in the journal. The zero value (PriEmerg) means
	// the default, PriErr; NoSyncPriority makes no Send wait, and
	// SyncEmergOnly only those at PriEmerg.
	SyncPriority Priority

	// OnFull is what Send does when the queue is full: OnFullBlock (the
	// default) or OnFullDropNewest.
	OnFull OnFull

	// OnUndelivered, when not nil, is given each entry that journald did
	// not take (it was gone, or refused it), with the error, on the
	// Writer's sending goroutine. Its slices are only valid during the
	// call. newstyle.NewLogger writes them to stdout.
	//
	// A panic in it does not end the program: it is recovered, the entry
	// is counted as undelivered all the same, Stats.CallbackPanics counts
	// it, and the first one is reported in the journal, once, as soon as
	// journald takes entries again (see CallbackPanicMessageID). Once
	// Close's deadline has passed it is not called any more, and Close does
	// not wait for a call that blocks.
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

// closeGrace is how long Close waits past its deadline for the sender to
// give up what it could not deliver: the time to count it.
const closeGrace = 50 * time.Millisecond

// CallbackPanicMessageID is the MESSAGE_ID of the entry a Writer sends the
// first time an OnUndelivered callback panics: PRIORITY 3 (err), a
// MESSAGE with the panic's value, its stack in TRACEBACK, and the
// callback's name in NEWSTYLE_CALLBACK. Later panics are counted
// (Stats.CallbackPanics), not reported again.
const CallbackPanicMessageID = "4f1b8d2e9c6a47e3b5d0a7c1e2f93b68"

// asyncQueue is the queue of an asynchronous Writer, and its sender.
//
// Send appends its encoded entry to queue under mu; one goroutine, the
// sender (run), takes the whole queue, swapping in its spare, and sends
// it in datagrams of whole entries. It runs only while there is
// something to send.
type asyncQueue struct {
	w             *Writer
	limit         int
	linger        time.Duration
	syncPri       Priority
	onFull        OnFull
	onUndelivered func(string, Priority, []Field, error)

	mu       sync.Mutex
	queue    batch // entries queued and not taken by the sender
	spare    batch // the sender's, swapped with queue
	inflight int   // bytes the sender has taken and not finished
	firstAt  time.Time
	queued   uint64 // entries queued since the Writer was made
	done     uint64 // entries the sender has finished, in queue order
	waiters  []seqWaiter
	room     chan struct{} // closed when room is made; nil when nobody waits
	wake     chan struct{} // the sender's doorbell, capacity 1
	lost     uint64        // entries lost since the last report
	panicked []byte        // the report of a callback's panic, to send; nil for none
	reported bool          // a callback's panic was reported (or is queued to be)
	running  bool
	closing  bool
	deadline time.Time     // with closing: when the sender gives up
	closed   chan struct{} // closed when closing begins: the sender stops waiting
	// abandoned counts the entries given up at Close's deadline, without
	// a call of OnUndelivered.
	abandoned uint64
	stopped   chan struct{} // closed when a closing sender has finished
}

// batch is entries in the native format, each followed by the empty line
// that separates entries in a datagram, with what the sender must know
// of each, so that nothing is parsed back out of the bytes.
type batch struct {
	data    []byte
	entries []entryInfo
}

type entryInfo struct {
	end  int  // where the entry ends in data, its separator included
	own  bool // the Writer's own report, not a Send's entry
	lost uint64
	// lost: for a report of lost entries, how many it reports: should it
	// be lost too, they are reported again.
}

// A seqWaiter waits until entry seq is finished.
type seqWaiter struct {
	seq uint64
	ch  chan error
}

func newAsyncQueue(w *Writer, o *AsyncOptions) *asyncQueue {
	q := &asyncQueue{
		w: w, limit: o.QueueBytes, linger: o.Linger, syncPri: o.SyncPriority,
		onFull: o.OnFull, onUndelivered: o.OnUndelivered,
		wake: make(chan struct{}, 1), stopped: make(chan struct{}), closed: make(chan struct{}),
	}
	if q.limit <= 0 {
		q.limit = DefaultQueueBytes
	}
	if q.linger == 0 {
		q.linger = DefaultLinger
	}
	switch q.syncPri {
	case PriEmerg:
		q.syncPri = PriErr
	case SyncEmergOnly:
		q.syncPri = PriEmerg
	}
	return q
}

// enqueue queues one encoded entry (without its separator); for a
// priority at or above SyncPriority it waits until the entry is
// delivered. The caller holds a use of the Writer (acquire).
func (q *asyncQueue) enqueue(entry []byte, pri Priority) error {
	need := len(entry) + 1
	q.mu.Lock()
	var expired <-chan time.Time // nil while Send may wait without bound
	waited := false
	for !q.closing && q.size() > 0 && q.size()+need > q.limit {
		if q.onFull == OnFullDropNewest {
			q.lost++
			q.mu.Unlock()
			q.w.stats.drop()
			return ErrDropped
		}
		if !waited && q.w.timeout >= 0 {
			t := time.NewTimer(q.w.timeout)
			defer t.Stop()
			expired = t.C
		}
		waited = true
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-expired:
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
	q.appendLocked(entry, entryInfo{})
	q.w.stats.queued.Add(1)
	var ch chan error
	if pri <= q.syncPri {
		ch = make(chan error, 1)
		q.waiters = append(q.waiters, seqWaiter{q.queued, ch})
	}
	ring := q.readyLocked()
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
func (q *asyncQueue) size() int { return len(q.queue.data) + q.inflight }

// appendLocked queues an entry; info.end is set here.
func (q *asyncQueue) appendLocked(entry []byte, info entryInfo) {
	if len(q.queue.entries) == 0 {
		q.firstAt = time.Now()
	}
	if info.own {
		q.firstAt = time.Time{} // a report is news now: no lingering
	}
	q.queue.data = append(q.queue.data, entry...)
	q.queue.data = append(q.queue.data, '\n')
	info.end = len(q.queue.data)
	q.queue.entries = append(q.queue.entries, info)
	q.queued++
}

// readyLocked reports whether the queue is to be sent now rather than
// wait, up to Linger, for more entries to share its datagrams: it is
// large enough, someone waits for it, the Writer is closing, it holds a
// report, or lingering is off.
func (q *asyncQueue) readyLocked() bool {
	return q.closing || len(q.waiters) > 0 || q.linger < 0 || q.firstAt.IsZero() ||
		len(q.queue.entries) >= minBatchEntries || len(q.queue.data) >= minBatchBytes
}

func (q *asyncQueue) ring() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// startLocked starts the sender if it is not running. The caller holds a
// use of the Writer, so the sender may take one of its own.
func (q *asyncQueue) startLocked() {
	if !q.running {
		q.running = true
		q.w.users.Add(1)
		go q.run()
	}
}

// wait waits for a seqWaiter's outcome: at most SendTimeout, and ctx.
func (q *asyncQueue) wait(ctx context.Context, ch chan error) error {
	var expired <-chan time.Time // nil: without bound
	if q.w.timeout >= 0 {
		t := time.NewTimer(q.w.timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case err := <-ch:
		return err
	case <-expired:
		return &sendError{kind: ErrTimeout, path: q.w.path}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush waits until every entry queued before it is finished.
func (q *asyncQueue) flush(ctx context.Context) error {
	q.mu.Lock()
	if q.done == q.queued {
		q.mu.Unlock()
		return nil
	}
	// Entries are queued and not finished: the sender is running, and
	// finishes them.
	ch := make(chan error, 1)
	q.waiters = append(q.waiters, seqWaiter{q.queued, ch})
	q.mu.Unlock()
	q.ring()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close stops taking entries and lets the sender deliver what is queued
// until deadline; it waits for the sender until then, and a moment more
// for it to give up the rest. It returns how many entries were not
// delivered (or are still being handed to OnUndelivered).
func (q *asyncQueue) close(deadline time.Time) (undelivered uint64) {
	q.mu.Lock()
	q.closing = true
	q.deadline = deadline
	close(q.closed)
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
		t := time.NewTimer(time.Until(deadline) + closeGrace)
		select {
		case <-q.stopped:
		case <-t.C:
		}
		t.Stop()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.queued - q.done + q.abandoned
}

// pastDeadline reports whether the Writer is closing and its deadline has
// passed: then nothing more is sent or handed to OnUndelivered.
func (q *asyncQueue) pastDeadline() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pastDeadlineLocked()
}

func (q *asyncQueue) pastDeadlineLocked() bool {
	return q.closing && !time.Now().Before(q.deadline)
}

// run is the sender: it takes what is queued and sends it, a datagram at
// a time, until the queue is empty.
func (q *asyncQueue) run() {
	defer q.w.unref()
	q.mu.Lock()
	for {
		if len(q.queue.entries) > 0 && !q.readyLocked() {
			if wait := time.Until(q.firstAt.Add(q.linger)); wait > 0 {
				q.mu.Unlock()
				t := time.NewTimer(wait)
				select {
				case <-q.wake:
				case <-t.C:
				}
				t.Stop()
				q.mu.Lock()
				continue
			}
		}
		if len(q.queue.entries) == 0 {
			q.running = false
			if q.closing {
				close(q.stopped)
			}
			q.mu.Unlock()
			return
		}
		b := q.queue
		q.queue, q.spare = q.spare, batch{}
		q.queue.data, q.queue.entries = q.queue.data[:0], q.queue.entries[:0]
		q.inflight = len(b.data)
		q.mu.Unlock()

		delivered := q.sendBatch(b)

		q.mu.Lock()
		q.spare = b
		if delivered {
			// journald takes entries: the reports will reach it. While
			// it does not, they would only fail and report themselves.
			q.reportLocked()
		}
	}
}

// sendBatch sends b in datagrams of whole entries, several to a datagram
// where journald keeps them all (see batchable), and reports whether
// journald took the last one.
func (q *asyncQueue) sendBatch(b batch) (delivered bool) {
	start, first := 0, 0
	many := false
	if s, err := q.w.socket(); err == nil {
		many = s.batches()
	}
	for i, e := range b.entries {
		if many && i+1 < len(b.entries) && b.entries[i+1].end-start <= maxBatchBytes {
			continue // the next entry fits in this datagram too
		}
		delivered = q.sendDatagram(b.data[start:e.end], b.entries[first:i+1], start)
		start, first = e.end, i+1
	}
	return delivered
}

// sendDatagram sends one datagram of entries (data, separators included;
// base is where it starts in its batch), finishes them (counted,
// reported to whoever waits for them), and reports whether journald took
// it.
func (q *asyncQueue) sendDatagram(data []byte, entries []entryInfo, base int) bool {
	var err error
	if q.pastDeadline() {
		err = q.giveUp(entries)
	} else {
		var viaFile bool
		// The datagram ends with its last entry: the separator after it
		// would be an empty entry.
		viaFile, err = q.deliver(data[:len(data)-1])
		if err == nil {
			sends, own := count(entries)
			q.w.stats.sentBatch(len(data)-1, sends, own, viaFile)
		} else if q.pastDeadline() {
			err = q.giveUp(entries)
		} else {
			q.undelivered(data, entries, base, err)
		}
	}
	q.mu.Lock()
	q.inflight -= len(data)
	q.done += uint64(len(entries))
	for len(q.waiters) > 0 && q.waiters[0].seq <= q.done {
		q.waiters[0].ch <- err
		q.waiters = q.waiters[1:]
	}
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	q.mu.Unlock()
	return err == nil
}

// count returns how many of entries are Sends' and how many the Writer's
// own reports.
func count(entries []entryInfo) (sends, own int) {
	for _, e := range entries {
		if e.own {
			own++
		}
	}
	return len(entries) - own, own
}

// giveUp gives up entries at Close's deadline: they are counted as timed
// out and reported, without a call of OnUndelivered, and its error is
// returned.
func (q *asyncQueue) giveUp(entries []entryInfo) error {
	err := &sendError{kind: ErrTimeout, path: q.w.path}
	q.mu.Lock()
	for _, e := range entries {
		if e.own {
			q.lost += e.lost
			continue
		}
		q.w.stats.queued.Add(-1)
		q.w.stats.fail(err)
		q.lost++
		q.abandoned++
	}
	q.mu.Unlock()
	return err
}

// deliver sends a datagram, waiting for a stalled journald as long as it
// takes: entries that Send has queued are not given up while journald
// only stalls. A Writer being closed waits until its deadline.
func (q *asyncQueue) deliver(data []byte) (viaFile bool, err error) {
	for {
		wait, abort := time.Duration(-1), q.closed
		q.mu.Lock()
		closing, deadline := q.closing, q.deadline
		q.mu.Unlock()
		if closing {
			wait, abort = time.Until(deadline), nil
			if wait <= 0 {
				return false, &sendError{kind: ErrTimeout, path: q.w.path}
			}
		}
		s, err := q.w.socket()
		if err != nil {
			return false, err
		}
		viaFile, err = s.send(data, wait, abort)
		if err == nil || !errors.Is(err, ErrTimeout) {
			return viaFile, err
		}
	}
}

// reportLocked queues the reports due, now that journald takes entries:
// of entries lost since the last report, and of a callback's panic. They
// are sent at once, without lingering, also when the Writer is being
// closed.
func (q *asyncQueue) reportLocked() {
	if q.panicked != nil {
		q.appendLocked(q.panicked, entryInfo{own: true})
		q.panicked = nil
	}
	if q.lost == 0 {
		return
	}
	n := q.lost
	q.lost = 0
	q.appendLocked(q.w.droppedReport(n), entryInfo{own: true, lost: n})
}

// droppedReport encodes the entry that reports n lost entries (see
// DroppedMessageID).
func (w *Writer) droppedReport(n uint64) []byte {
	msg := "journal: " + strconv.FormatUint(n, 10) + " entries dropped since the last report (queue full, journald unreachable, or the Writer closed)"
	b := appendStringField(nil, "MESSAGE", msg)
	b = append(b, priorityFields[PriWarning]...)
	b = append(b, w.ident...)
	b = appendStringField(b, "MESSAGE_ID", DroppedMessageID)
	b = append(b, "NEWSTYLE_DROPPED="...)
	b = strconv.AppendUint(b, n, 10)
	return append(b, '\n')
}

// undelivered counts the entries of a datagram journald did not take
// (base is where data starts in its batch) and gives each of a Send to
// OnUndelivered; the reports among them are reported again later.
func (q *asyncQueue) undelivered(data []byte, entries []entryInfo, base int, err error) {
	start := 0
	for _, e := range entries {
		entry := data[start : e.end-base-1]
		start = e.end - base
		q.mu.Lock()
		if e.own {
			q.lost += e.lost
			q.mu.Unlock()
			continue
		}
		past := q.pastDeadlineLocked()
		q.lost++
		if past {
			q.abandoned++
		}
		q.mu.Unlock()
		q.w.stats.queued.Add(-1)
		q.w.stats.fail(err)
		if q.onUndelivered != nil && !past {
			q.callUndelivered(entry, err)
		}
	}
}

// callUndelivered gives one entry to OnUndelivered, recovering a panic in
// it (see AsyncOptions.OnUndelivered).
func (q *asyncQueue) callUndelivered(entry []byte, err error) {
	defer func() {
		if v := recover(); v != nil {
			stack, _ := slogcore.AbnormalStack()
			q.callbackPanicked("OnUndelivered", v, stack)
		}
	}()
	msg, pri, fields := decodeForCallback(entry)
	q.onUndelivered(msg, pri, fields, err)
}

// callbackPanicked counts a panic in a callback of the program's, and
// queues the report of the first one.
func (q *asyncQueue) callbackPanicked(name string, v any, stack []byte) {
	q.w.stats.callbackPanics.Add(1)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.reported {
		return
	}
	q.reported = true
	value := string(slogcore.AppendValue(nil, slog.AnyValue(v)))
	msg := "journal: the " + name + " callback panicked: " + value +
		" (later panics are counted in Stats.CallbackPanics, not reported)"
	b := appendStringField(nil, "MESSAGE", msg)
	b = append(b, priorityFields[PriErr]...)
	b = append(b, q.w.ident...)
	b = appendStringField(b, "MESSAGE_ID", CallbackPanicMessageID)
	b = appendStringField(b, "NEWSTYLE_CALLBACK", name)
	q.panicked = appendBytesField(b, DefaultTracebackField, stack)
}

// decodeForCallback reads an entry of this package's encoding back into
// what OnUndelivered is given: its MESSAGE, its PRIORITY, and its other
// fields in order.
func decodeForCallback(entry []byte) (msg string, pri Priority, fields []Field) {
	pri = PriInfo
	decodeEntry(entry, func(name string, value []byte) {
		switch name {
		case "MESSAGE":
			msg = string(value)
		case "PRIORITY":
			if len(value) == 1 && value[0] >= '0' && value[0] <= '7' {
				pri = Priority(value[0] - '0')
			}
		default:
			fields = append(fields, Field{Name: name, Value: value})
		}
	})
	return msg, pri, fields
}

// decodeEntry reads one entry of this package's encoding from data,
// calling fn for each field, and returns what follows the entry and its
// separator.
func decodeEntry(data []byte, fn func(name string, value []byte)) []byte {
	for len(data) > 0 {
		if data[0] == '\n' {
			return data[1:]
		}
		i := bytes.IndexAny(data, "=\n")
		if i < 0 {
			return nil
		}
		name := string(data[:i])
		rest := data[i+1:]
		if data[i] == '=' {
			j := bytes.IndexByte(rest, '\n')
			if j < 0 {
				fn(name, rest)
				return nil
			}
			fn(name, rest[:j])
			data = rest[j+1:]
			continue
		}
		if len(rest) < 8 {
			return nil
		}
		n := binary.LittleEndian.Uint64(rest)
		rest = rest[8:]
		if n >= uint64(len(rest)) {
			return nil
		}
		fn(name, rest[:n])
		data = rest[n+1:]
	}
	return nil
}
