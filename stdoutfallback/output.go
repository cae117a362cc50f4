package stdoutfallback

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultWriteTimeout is how long, by default, Handle waits for the output
// to take a record.
const DefaultWriteTimeout = 2 * time.Second

// ErrTimeout is returned by Handle for a record that was dropped because
// the output did not take it within HandlerOptions.WriteTimeout. Every
// such record is counted (Handler.TimedOut) and reported on the output as
// soon as it takes lines again.
var ErrTimeout = errors.New("stdoutfallback: record dropped: the output did not take it in time")

// output is the writer and the lock that the Handlers of one NewHandler
// share, and the policy that bounds how long a record waits for it.
//
// A write to a pipe or a socket that nobody reads blocks in the kernel
// without end, and whoever made it cannot be released. So when the output
// may block, Handle never writes to it from the caller's goroutine with a
// blocking call: on a pipe, a socket or a terminal it writes with
// RWF_NOWAIT, which the kernel refuses at once (EAGAIN) rather than wait;
// anything it cannot write that way (the rest of a partly written line,
// or every line for an io.Writer that is not a file) is written by a
// goroutine of its own, the flusher, which holds the lock until stdout
// takes it. Callers wait for the lock, or for the flusher, for at most
// the timeout, as parked goroutines; a caller that could not get the lock
// in that time drops its record and counts it, and the flusher reports
// the count in a line of its own as soon as stdout moves again. A line
// is therefore always written whole, in order, or not at all.
type output struct {
	w       io.Writer
	timeout time.Duration // < 0: wait as long as the writer does
	mode    writeMode

	// sem is the lock: whoever holds its one slot writes. A channel, so
	// that a caller can stop waiting for it.
	sem chan struct{}

	dropped atomic.Uint64 // dropped and not reported yet
	total   atomic.Uint64 // dropped since NewHandler

	// raw writes without blocking (modeNoWait); its state is kept here,
	// under sem, so that a write allocates nothing.
	raw   syscall.RawConn
	rawFn func(fd uintptr)
	rawB  []byte
	rawN  int
	rawE  error
}

type writeMode int

const (
	// modeDirect: a writer that does not block without end (a regular
	// file, /dev/null, a bytes.Buffer): written from the caller.
	modeDirect writeMode = iota
	// modeNoWait: a pipe, socket or terminal, written with RWF_NOWAIT.
	modeNoWait
	// modeFlusher: any other io.Writer, written by the flusher.
	modeFlusher
)

func newOutput(w io.Writer, timeout time.Duration) *output {
	if timeout == 0 {
		timeout = DefaultWriteTimeout
	}
	o := &output{w: w, timeout: timeout, sem: make(chan struct{}, 1), mode: modeFlusher}
	switch w := w.(type) {
	case *bytes.Buffer, *strings.Builder:
		o.mode = modeDirect
	case *os.File:
		o.mode = o.fileMode(w)
	default:
		if w == io.Discard {
			o.mode = modeDirect
		}
	}
	return o
}

// write writes line, whole, within the timeout; see output.
func (o *output) write(line []byte) error {
	if o.timeout < 0 {
		o.sem <- struct{}{}
		defer func() { <-o.sem }()
		return o.writeReported(line, o.writeDirect)
	}
	var start time.Time
	select {
	case o.sem <- struct{}{}:
	default:
		start = time.Now()
		t := time.NewTimer(o.timeout)
		select {
		case o.sem <- struct{}{}:
			t.Stop()
		case <-t.C:
			o.drop()
			return ErrTimeout
		}
	}
	// This goroutine holds the lock.
	switch o.mode {
	case modeDirect:
		defer func() { <-o.sem }()
		return o.writeReported(line, o.writeDirect)
	case modeNoWait:
		var rest []byte
		err := o.writeReported(line, func(b []byte) error {
			n, err := o.writeNoWait(b)
			if err == nil && n < len(b) {
				rest = b[n:]
			}
			return err
		})
		if rest == nil {
			<-o.sem
			return err
		}
		return o.handOff(rest, start)
	default:
		return o.writeReported(line, func(b []byte) error { return o.handOff(b, start) })
	}
}

// writeReported writes line with write, after a report of the records
// dropped since the last one, if any. The caller holds the lock.
func (o *output) writeReported(line []byte, write func([]byte) error) error {
	n := o.dropped.Swap(0)
	if n == 0 {
		return write(line)
	}
	b := append(o.appendReport(nil, n), line...)
	err := write(b)
	if err != nil {
		o.dropped.Add(n)
	}
	return err
}

// appendReport appends the line that reports n dropped records. Its
// priority is warning's, and its key, dropped=N, is what to search for.
func (o *output) appendReport(dst []byte, n uint64) []byte {
	dst = append(dst, "<4>stdoutfallback: records dropped: the output did not take them within "...)
	dst = append(dst, o.timeout.String()...)
	dst = append(dst, " dropped="...)
	dst = strconv.AppendUint(dst, n, 10)
	return append(dst, '\n')
}

// drop counts a record that could not wait longer for the lock. If the
// lock came free meanwhile, the count is reported at once (by a flusher,
// since the output may block again).
func (o *output) drop() {
	o.dropped.Add(1)
	o.total.Add(1)
	select {
	case o.sem <- struct{}{}:
		go o.flush(nil, nil)
	default:
	}
}

// handOff gives rest (which the caller's buffer holds) to a flusher, which
// takes over the lock, and waits for it until the timeout (counted from
// start, when not zero) is up. A line still being written then is not
// dropped: it is written whole as soon as the output takes it.
func (o *output) handOff(rest []byte, start time.Time) error {
	done := make(chan error, 1)
	go o.flush(append([]byte(nil), rest...), done)
	wait := o.timeout
	if !start.IsZero() {
		wait -= time.Since(start)
	}
	t := time.NewTimer(max(wait, 0))
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return nil
	}
}

// flush writes b with blocking writes, then reports what was dropped while
// it waited, then gives the lock back. It runs on a goroutine of its own,
// holding the lock; done, when not nil, gets the outcome of writing b.
func (o *output) flush(b []byte, done chan<- error) {
	for {
		err := o.writeDirect(b)
		if done != nil {
			done <- err
			done = nil
		}
		if err == nil {
			if n := o.dropped.Swap(0); n > 0 {
				if o.writeDirect(o.appendReport(nil, n)) != nil {
					o.dropped.Add(n)
				}
			}
		}
		<-o.sem
		// A record dropped just before the lock came free is reported
		// now, unless another writer has taken the lock (and with it the
		// report).
		if o.dropped.Load() == 0 {
			return
		}
		select {
		case o.sem <- struct{}{}:
			b = nil
		default:
			return
		}
	}
}

// writeDirect writes b with the writer's Write, as long as it takes. A
// writer that panics is an error, not a crash.
func (o *output) writeDirect(b []byte) (err error) {
	if len(b) == 0 {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("stdoutfallback: the writer panicked: %v", r)
		}
	}()
	n, err := o.w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}
