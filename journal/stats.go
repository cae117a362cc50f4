package journal

import (
	"errors"
	"math/bits"
	"sync/atomic"
)

// Stats counts what a Writer did since it was made. Every call to Send
// (and every record a Handler writes through the Writer) is in exactly
// one of Entries, Errors, Dropped and Queued, in both modes:
//
//	Entries + Errors.Total() + Dropped + Queued == calls to Send
//
// whenever no Send is running (a snapshot taken while an asynchronous
// Writer's sender finishes a datagram may be short by that datagram's
// entries for a moment). A synchronous Writer knows each entry's
// fate when Send returns, so its Dropped and Queued stay 0. An
// asynchronous Writer (WriterOptions.Async) counts an entry in Queued
// from Send until its sender has sent it (Entries) or given up on it
// (Errors), and in Dropped when a full queue dropped it (OnFullDropNewest);
// after Flush or Close, Queued is 0. The Writer's own reports are in
// Reports and nowhere else.
type Stats struct {
	Entries uint64      // entries of Send that journald's socket took
	Bytes   uint64      // the size of the datagrams it took, as encoded
	Memfd   uint64      // datagrams passed as a memfd (or /dev/shm file)
	Errors  ErrorCounts // entries not sent, by reason
	Dropped uint64      // entries a full queue dropped (OnFullDropNewest)
	Queued  uint64      // entries queued and not sent or given up yet

	// Reports counts the entries of the Writer's own that journald took:
	// the reports of lost entries (DroppedMessageID) and of a callback's
	// panic (CallbackPanicMessageID). They are not Sends, and not in
	// Entries.
	Reports uint64

	// CallbackPanics counts the panics recovered in the program's
	// callbacks (AsyncOptions.OnUndelivered).
	CallbackPanics uint64

	// Datagrams is how many datagrams carried Entries, and Batches how
	// many entries they carried: Batches[i] counts the datagrams of
	// 2^i to 2^(i+1)-1 entries (the last, 128 or more), so batching can
	// be seen working. A synchronous Writer counts one datagram an entry,
	// although while journald is saturated one sender may carry the
	// entries of several, of any Writer of the process, in one datagram
	// (to a journald that keeps them all: see WriterOptions).
	Datagrams uint64
	Batches   [8]uint64
}

// ErrorCounts counts entries not sent, by the sentinel error Send returned.
type ErrorCounts struct {
	InvalidField    uint64 // ErrInvalidFieldName
	InvalidPriority uint64 // ErrInvalidPriority
	TooLarge        uint64 // ErrTooLarge
	NoSocket        uint64 // ErrNoSocket
	NotListening    uint64 // ErrNotListening
	Permission      uint64 // ErrPermission
	Timeout         uint64 // ErrTimeout
	Closed          uint64 // ErrClosed
	Other           uint64 // any other error the kernel returned
}

// Total is the number of entries not sent.
func (c ErrorCounts) Total() uint64 {
	return c.InvalidField + c.InvalidPriority + c.TooLarge + c.NoSocket +
		c.NotListening + c.Permission + c.Timeout + c.Closed + c.Other
}

type counters struct {
	entries, bytes, memfd, dropped, datagrams atomic.Uint64
	reports, callbackPanics                   atomic.Uint64
	queued                                    atomic.Int64
	errs                                      [numKinds]atomic.Uint64
	batches                                   [8]atomic.Uint64
}

// The error kinds, in the order of errorKinds.
const (
	kindInvalidField = iota
	kindInvalidPriority
	kindTooLarge
	kindNoSocket
	kindNotListening
	kindPermission
	kindTimeout
	kindClosed
	kindOther
	numKinds
)

var errorKinds = [numKinds - 1]error{
	ErrInvalidFieldName, ErrInvalidPriority, ErrTooLarge, ErrNoSocket,
	ErrNotListening, ErrPermission, ErrTimeout, ErrClosed,
}

func (c *counters) sent(n int, viaFile bool) {
	c.entries.Add(1)
	c.bytes.Add(uint64(n))
	c.datagrams.Add(1)
	c.batches[0].Add(1)
	if viaFile {
		c.memfd.Add(1)
	}
}

// sentBatch counts a datagram of size bytes that carried the entries of
// sends Sends and own reports of the Writer's.
func (c *counters) sentBatch(size, sends, own int, viaFile bool) {
	c.queued.Add(-int64(sends))
	c.entries.Add(uint64(sends))
	c.reports.Add(uint64(own))
	c.bytes.Add(uint64(size))
	if viaFile {
		c.memfd.Add(1)
	}
	c.datagrams.Add(1)
	c.batches[min(bits.Len(uint(sends+own))-1, len(c.batches)-1)].Add(1)
}

func (c *counters) drop() { c.dropped.Add(1) }

func (c *counters) fail(err error) {
	k := kindOther
	for i, kind := range errorKinds {
		if errors.Is(err, kind) {
			k = i
			break
		}
	}
	c.errs[k].Add(1)
}

// Stats returns a snapshot of the Writer's counters.
func (w *Writer) Stats() Stats {
	c := &w.stats
	st := Stats{
		Entries:   c.entries.Load(),
		Bytes:     c.bytes.Load(),
		Memfd:     c.memfd.Load(),
		Dropped:   c.dropped.Load(),
		Queued:    uint64(max(c.queued.Load(), 0)),
		Reports:   c.reports.Load(),
		Datagrams: c.datagrams.Load(),

		CallbackPanics: c.callbackPanics.Load(),
		Errors: ErrorCounts{
			InvalidField:    c.errs[kindInvalidField].Load(),
			InvalidPriority: c.errs[kindInvalidPriority].Load(),
			TooLarge:        c.errs[kindTooLarge].Load(),
			NoSocket:        c.errs[kindNoSocket].Load(),
			NotListening:    c.errs[kindNotListening].Load(),
			Permission:      c.errs[kindPermission].Load(),
			Timeout:         c.errs[kindTimeout].Load(),
			Closed:          c.errs[kindClosed].Load(),
			Other:           c.errs[kindOther].Load(),
		},
	}
	for i := range st.Batches {
		st.Batches[i] = c.batches[i].Load()
	}
	return st
}
