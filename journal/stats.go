package journal

import (
	"errors"
	"sync/atomic"
)

// Stats counts what a Writer did since it was made. Every Send adds to
// exactly one of Entries and the error counts, so
// Entries + Errors.Total() is the number of calls to Send.
type Stats struct {
	Entries uint64      // entries journald's socket took
	Bytes   uint64      // their size as encoded
	Memfd   uint64      // of Entries, those passed as a memfd (or /dev/shm file)
	Errors  ErrorCounts // entries not sent, by reason
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
	entries, bytes, memfd atomic.Uint64
	errs                  [numKinds]atomic.Uint64
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
	if viaFile {
		c.memfd.Add(1)
	}
}

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
	return Stats{
		Entries: c.entries.Load(),
		Bytes:   c.bytes.Load(),
		Memfd:   c.memfd.Load(),
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
}
