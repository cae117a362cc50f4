//go:build linux

package bench

import (
	"context"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	gosystemd "github.com/coreos/go-systemd/v22/journal"
	"github.com/newstyle-go/newstyle/journal"
	slogjournal "github.com/systemd/slog-journal"
	"golang.org/x/sys/unix"
)

// BenchmarkSend sends the workload (workload_test.go) through each client,
// one entry per operation, to the drain:
//
//	newstyle      journal.Writer.Send, fields built once
//	go-systemd    github.com/coreos/go-systemd/v22/journal.Send
//	slog-journal  slog.Logger.LogAttrs on github.com/systemd/slog-journal
//	floor         sendto(2) of the bytes newstyle sends, nothing else
//
// Each reports, besides time and allocations, cpu-ns/op (CPU time of this
// whole process per send: unlike ns/op, it does not grow when other
// programs take the CPU), wire-B/op (the datagram's size) and blocks/op
// (times per send the sending thread slept: far from zero would mean that
// the drain, not the client, set the pace). Every run checks that the drain
// got exactly one datagram per operation, each the size of the first, which
// was parsed and checked field by field.
func BenchmarkSend(b *testing.B) {
	needDrain(b)
	b.Run("newstyle", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		w := newWriter(b)
		fields := newstyleFields()
		r := begin(b, func() error { return w.Send(message, journal.PriErr, fields...) })
		n := 0
		for b.Loop() {
			if err := w.Send(message, journal.PriErr, fields...); err != nil {
				b.Fatal(err)
			}
			n++
		}
		r.end(b, n)
	})

	b.Run("go-systemd", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		vars := goSystemdVars()
		r := begin(b, func() error { return gosystemd.Send(message, gosystemd.PriErr, vars) })
		n := 0
		for b.Loop() {
			if err := gosystemd.Send(message, gosystemd.PriErr, vars); err != nil {
				b.Fatal(err)
			}
			n++
		}
		r.end(b, n)
	})

	b.Run("slog-journal", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		logger := newSlogJournal(b)
		attrs := slogAttrs()
		ctx := context.Background()
		r := begin(b, func() error { logSlog(ctx, logger, &attrs); return nil }, slogJournalExtras...)
		n := 0
		for b.Loop() {
			logSlog(ctx, logger, &attrs)
			n++
		}
		r.end(b, n)
	})

	b.Run("floor", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		benchFloor(b, newFloor(b))
	})
}

// benchFloor sends f's datagram in a loop: the system call alone.
func benchFloor(b *testing.B, f *floor, allowed ...string) {
	r := begin(b, f.send, allowed...)
	n := 0
	for b.Loop() {
		if errno := f.sendto(); errno != 0 {
			b.Fatal(errno)
		}
		n++
	}
	r.end(b, n)
}

// BenchmarkSendParallel is BenchmarkSend's newstyle and floor from
// GOMAXPROCS goroutines at once, on one Writer and one socket: what
// concurrent senders cost each other.
func BenchmarkSendParallel(b *testing.B) {
	needDrain(b)
	b.Run("newstyle", func(b *testing.B) {
		w := newWriter(b)
		fields := newstyleFields()
		r := begin(b, func() error { return w.Send(message, journal.PriErr, fields...) })
		var sent atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var n int64
			for pb.Next() {
				if err := w.Send(message, journal.PriErr, fields...); err != nil {
					b.Error(err)
					break
				}
				n++
			}
			sent.Add(n)
		})
		b.StopTimer()
		r.endParallel(b, sent.Load())
	})

	b.Run("floor", func(b *testing.B) {
		f := newFloor(b)
		r := begin(b, f.send)
		var sent atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			var n int64
			for pb.Next() {
				if errno := f.sendto(); errno != 0 {
					b.Error(errno)
					break
				}
				n++
			}
			sent.Add(n)
		})
		b.StopTimer()
		r.endParallel(b, sent.Load())
	})
}

// BenchmarkNewstyleVsFloor measures newstyle's cost over the bare system
// call more precisely than BenchmarkSend can on a busy or virtual machine,
// whose speed drifts by more than the difference between the two: blocks of
// pairBlock newstyle sends and pairBlock floor sends alternate, each block
// timed, so that both see the same machine. It reports newstyle/floor (the
// ratio of their times) and newstyle-ns/send and floor-ns/send; its ns/op
// is that of a pair of blocks.
func BenchmarkNewstyleVsFloor(b *testing.B) {
	d := needDrain(b)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	w := newWriter(b)
	fields := newstyleFields()
	f := newFloor(b)
	before := d.counts()
	var tn, tf time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		for range pairBlock {
			if err := w.Send(message, journal.PriErr, fields...); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		for range pairBlock {
			if errno := f.sendto(); errno != 0 {
				b.Fatal(errno)
			}
		}
		tn += t1.Sub(t0)
		tf += time.Since(t1)
		n += pairBlock
	}
	r := &run{d: d, before: before, size: uint64(len(f.data))}
	r.check(b, uint64(2*n))
	b.ReportMetric(float64(tn)/float64(tf), "newstyle/floor")
	b.ReportMetric(float64(tn.Nanoseconds())/float64(n), "newstyle-ns/send")
	b.ReportMetric(float64(tf.Nanoseconds())/float64(n), "floor-ns/send")
}

// pairBlock is the number of sends BenchmarkNewstyleVsFloor times at once:
// enough that reading the clock costs little beside them.
const pairBlock = 32

func newWriter(tb testing.TB) *journal.Writer {
	tb.Helper()
	w, err := journal.NewWriter(&journal.WriterOptions{SocketPath: journal.DefaultSocketPath, SyslogIdentifier: identifier})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { w.Close() })
	return w
}

// newSlogJournal returns a slog.Logger on slog-journal's handler, made as
// its README shows.
func newSlogJournal(tb testing.TB) *slog.Logger {
	tb.Helper()
	h, err := slogjournal.NewHandler(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return slog.New(h)
}

// logSlog logs the workload. It is one function, called from the check and
// from the loop alike, so that CODE_LINE, and the datagram's size, are the
// same for both.
//
//go:noinline
func logSlog(ctx context.Context, logger *slog.Logger, a *[5]slog.Attr) {
	logger.LogAttrs(ctx, slog.LevelError, message, a[0], a[1], a[2], a[3], a[4])
}

// floor sends a prebuilt datagram with sendto(2) on an unconnected socket
// to a prebuilt address: the system call and nothing else.
type floor struct {
	fd      int
	data    []byte
	addr    unix.RawSockaddrUnix
	addrLen uint32
}

// newFloor returns a floor whose datagram is the one newstyle sends for
// the workload, as the drain received it.
func newFloor(tb testing.TB) *floor {
	tb.Helper()
	w := newWriter(tb)
	fields := newstyleFields()
	return newFloorOf(tb, func() error { return w.Send(message, journal.PriErr, fields...) })
}

// newFloorOf returns a floor whose datagram is the one send sends, as the
// drain received it; it must be the workload, with the allowed extra
// fields.
func newFloorOf(tb testing.TB, send func() error, allowed ...string) *floor {
	tb.Helper()
	d := needDrain(tb)
	data, err := d.sendOne(send)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := checkEntry(data, allowed...); err != nil {
		tb.Fatalf("newstyle's datagram is not the workload: %v", err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	// The same send timeout as the Writer's, so that a stuck drain fails
	// the benchmark rather than hanging it.
	tv := unix.NsecToTimeval(int64(journal.DefaultSendTimeout))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		tb.Fatal(err)
	}
	f := &floor{fd: fd, data: data}
	f.addr.Family = unix.AF_UNIX
	for i := 0; i < len(socketPath); i++ {
		f.addr.Path[i] = int8(socketPath[i])
	}
	f.addrLen = uint32(unsafe.Offsetof(f.addr.Path)) + uint32(len(socketPath)) + 1
	return f
}

func (f *floor) sendto() unix.Errno {
	for {
		_, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(f.fd), uintptr(unsafe.Pointer(&f.data[0])), uintptr(len(f.data)),
			unix.MSG_NOSIGNAL, uintptr(unsafe.Pointer(&f.addr)), uintptr(f.addrLen))
		// As the Writer does: a signal interrupts a send that waits.
		if errno != unix.EINTR {
			return errno
		}
	}
}

func (f *floor) send() error {
	if errno := f.sendto(); errno != 0 {
		return errno
	}
	return nil
}

// run is one benchmark run's check of what the drain received.
type run struct {
	d      *drain
	before drainCounts
	size   uint64 // bytes of the client's datagram for the workload
	ru     unix.Rusage
	cpu    time.Duration
}

// begin sends one entry with send, checks that it arrived as one datagram
// carrying the workload (plus the allowed extra fields), and starts
// counting. The caller is locked to its thread: blocks/op counts that
// thread's sleeps.
func begin(b *testing.B, send func() error, allowed ...string) *run {
	b.Helper()
	d := needDrain(b)
	dg, err := d.sendOne(send)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := checkEntry(dg, allowed...); err != nil {
		b.Fatalf("the datagram sent is not the workload: %v", err)
	}
	r := &run{d: d, before: d.counts(), size: uint64(len(dg))}
	unix.Getrusage(unix.RUSAGE_THREAD, &r.ru)
	r.cpu = processCPU()
	return r
}

// processCPU is the CPU time this process has used, on all its threads:
// the sender's, and the garbage collector's and the scheduler's that the
// sender makes work. The drain is another process.
func processCPU() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// end checks, after the timed loop, that the drain got n datagrams of the
// same size as the first, and reports wire-B/op and blocks/op.
func (r *run) end(b *testing.B, n int) {
	b.Helper()
	cpu := processCPU() - r.cpu
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_THREAD, &ru)
	r.check(b, uint64(n))
	if n > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/op")
		b.ReportMetric(float64(ru.Nvcsw-r.ru.Nvcsw)/float64(n), "blocks/op")
	}
}

func (r *run) endParallel(b *testing.B, n int64) {
	b.Helper()
	cpu := processCPU() - r.cpu
	r.check(b, uint64(n))
	if n > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/op")
	}
}

func (r *run) check(b *testing.B, n uint64) {
	b.Helper()
	c, err := r.d.waitFor(r.before.datagrams + n)
	if err != nil {
		b.Fatalf("sent %d entries: %v", n, err)
	}
	// Anything else still arriving would be an extra datagram.
	time.Sleep(time.Millisecond)
	c = r.d.counts()
	switch {
	case c.datagrams != r.before.datagrams+n:
		b.Fatalf("sent %d entries, the drain got %d datagrams", n, c.datagrams-r.before.datagrams)
	case c.bytes-r.before.bytes != n*r.size:
		b.Fatalf("sent %d entries of %d bytes, the drain got %d bytes", n, r.size, c.bytes-r.before.bytes)
	case c.bad != r.before.bad:
		b.Fatalf("%d datagrams truncated or not ending in a newline", c.bad-r.before.bad)
	}
	b.ReportMetric(float64(r.size), "wire-B/op")
	if f := c.full - r.before.full; f > 0 {
		b.Logf("the drain fell %d times %d datagrams behind (the socket's queue length): senders may have waited for it", f, r.d.qlen)
	}
}
