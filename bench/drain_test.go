//go:build linux

package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/newstyle-go/newstyle/journal"
	"golang.org/x/sys/unix"
)

// The drain is a separate process (this test binary, started again with
// drainEnv set) that binds the journal socket and reads it as fast as the
// kernel hands datagrams out: one thread, recvmmsg(2) of up to drainBatch
// datagrams at a time into preallocated buffers, no allocation, no parsing.
// Being another process, it never waits for this one's garbage collector or
// scheduler, so it drains at the same pace whichever client is sending.
//
// It counts what it receives in a shared memory page that both processes
// map, and copies the last datagram of each batch there, so that a test
// sending one entry at a time can read back exactly what arrived.
const (
	drainEnv     = "NEWSTYLE_BENCH_DRAIN" // "newnet" or "hostnet" in the drain process
	privateNSEnv = "NEWSTYLE_PRIVATE_NS"

	drainBatch   = 64
	drainBufSize = 64 << 10 // per datagram; a longer one counts as bad

	// drainQlen is the drain socket's queue length, in datagrams, when the
	// drain has a network namespace of its own to set it in: systemd's
	// (sysctl.d/50-default.conf), not the kernel's default of 10.
	drainQlen = 512

	// drainPeriod is how long the drain sleeps whenever the socket is
	// empty. It does not wait in recvmmsg: then every send would also pay
	// for waking it up, on a virtual machine a cross-CPU interrupt that
	// costs more than the send itself, and more often for a slow sender
	// than for a fast one. While it sleeps, senders queue at most
	// drainPeriod / (time of one send) datagrams, far fewer than drainQlen.
	drainPeriod = 50 * time.Microsecond

	// Offsets in the shared page.
	offDatagrams = 0  // datagrams received
	offBytes     = 8  // their bytes
	offBad       = 16 // truncated, empty, or not ending in '\n'
	offBatches   = 24 // recvmmsg calls that returned datagrams
	offFull      = 32 // backlogs of qlen datagrams or more: a sender may have waited
	offMaxBatch  = 40 // the largest backlog: datagrams read before the socket was empty
	offErrno     = 48 // an error other than EINTR; the drain stops
	offSampleLen = 56 // length of the sample (the last datagram of a batch)
	offQlen      = 64 // the socket's queue length, once it is bound: the drain is ready
	offSample    = 128
	shmSize      = offSample + drainBufSize
)

// socketPath is where the drain listens: the system journal's path, since
// go-systemd and slog-journal cannot be pointed anywhere else.
const socketPath = journal.DefaultSocketPath

type drain struct {
	cmd    *exec.Cmd
	exited chan error
	mem    []byte
	qlen   uint64 // the socket's queue length: a sender blocks beyond it
}

// privateNSError is why this process may not bind socketPath, or nil.
func privateNSError() error {
	const how = "run it through scripts/private-ns.sh (a private mount namespace with a tmpfs on /run/systemd)"
	if os.Getenv(privateNSEnv) != "1" {
		return fmt.Errorf("refusing to run: these benchmarks bind %s, which would shadow the host's journald; "+
			"%s=1 is not set: %s", socketPath, privateNSEnv, how)
	}
	// Belt and braces: /run/systemd must be a tmpfs mounted on its own,
	// which it is not on a host that runs systemd.
	var st unix.Statfs_t
	if err := unix.Statfs("/run/systemd", &st); err != nil || st.Type != unix.TMPFS_MAGIC {
		return fmt.Errorf("refusing to run: /run/systemd is not a tmpfs: %s", how)
	}
	var sys, run unix.Stat_t
	if unix.Stat("/run/systemd", &sys) != nil || unix.Stat("/run", &run) != nil || sys.Dev == run.Dev {
		return fmt.Errorf("refusing to run: /run/systemd is not a mount of its own: %s", how)
	}
	return nil
}

// startDrain starts the drain process, which binds socketPath. It never
// removes a socket that is already there.
func startDrain() (*drain, error) {
	if err := privateNSError(); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(socketPath); err == nil {
		return nil, fmt.Errorf("refusing to run: %s already exists", socketPath)
	}
	if err := os.MkdirAll(filepath.Dir(socketPath), 0o755); err != nil {
		return nil, err
	}

	memfd, err := unix.MemfdCreate("bench-drain", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	memFile := os.NewFile(uintptr(memfd), "drain-counters")
	defer memFile.Close()
	if err := unix.Ftruncate(memfd, shmSize); err != nil {
		return nil, os.NewSyscallError("ftruncate", err)
	}
	mem, err := unix.Mmap(memfd, 0, shmSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}

	start := func(cloneflags uintptr, mode string) (*drain, error) {
		cmd := exec.Command("/proc/self/exe", "bench-drain")
		cmd.Env = append(os.Environ(), drainEnv+"="+mode)
		cmd.ExtraFiles = []*os.File{memFile} // fd 3
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		// Killed with this process. Pdeathsig follows the thread that
		// forks: TestMain calls startDrain locked to its thread, which
		// lives as long as the process.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Cloneflags: cloneflags}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		d := &drain{cmd: cmd, mem: mem}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.After(10 * time.Second)
		for d.counter(offQlen) == 0 {
			select {
			case err := <-exited:
				return nil, fmt.Errorf("drain exited: %v", err)
			case <-deadline:
				cmd.Process.Kill()
				return nil, errors.New("drain did not start")
			case <-time.After(time.Millisecond):
			}
		}
		d.exited = exited
		d.qlen = d.counter(offQlen)
		return d, nil
	}
	// In a network namespace of its own the drain may raise the queue
	// length as systemd does for journald; path-bound AF_UNIX sockets are
	// reached from any network namespace.
	d, err := start(syscall.CLONE_NEWNET, "newnet")
	if err != nil {
		d, err = start(0, "hostnet")
	}
	return d, err
}

// stop ends the drain and removes the socket.
func (d *drain) stop() {
	d.cmd.Process.Kill()
	<-d.exited
	unix.Unlink(socketPath)
}

func (d *drain) counter(off int) uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&d.mem[off])).Load()
}

type drainCounts struct {
	datagrams, bytes, bad, batches, full, maxBacklog uint64
}

func (d *drain) counts() drainCounts {
	// datagrams first: the drain publishes it last.
	c := drainCounts{datagrams: d.counter(offDatagrams)}
	c.bytes = d.counter(offBytes)
	c.bad = d.counter(offBad)
	c.batches = d.counter(offBatches)
	c.full = d.counter(offFull)
	c.maxBacklog = d.counter(offMaxBatch)
	return c
}

func (c drainCounts) String() string {
	return fmt.Sprintf("%d datagrams, %d bytes, %d bad, in %d reads; largest backlog %d datagrams, %d times a full queue",
		c.datagrams, c.bytes, c.bad, c.batches, c.maxBacklog, c.full)
}

// waitFor waits until the drain has received datagrams in all, or the
// drain stopped, or a few seconds passed.
func (d *drain) waitFor(datagrams uint64) (drainCounts, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := d.counts()
		if c.datagrams >= datagrams {
			return c, nil
		}
		if errno := d.counter(offErrno); errno != 0 {
			return c, fmt.Errorf("drain stopped: recvmmsg: %v", syscall.Errno(errno))
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("drain got %d datagrams, want %d", c.datagrams, datagrams)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// sample returns a copy of the last datagram the drain received in a
// batch: the datagram, when one was sent alone and waitFor saw it.
func (d *drain) sample() []byte {
	n := d.counter(offSampleLen)
	return append([]byte(nil), d.mem[offSample:offSample+n]...)
}

// settle waits until the drain has read every datagram sent before it (a
// test before may have left hundreds in the socket's queue): it sends a
// marker of its own and waits until that is the last datagram read.
func (d *drain) settle() error {
	marker := []byte("MESSAGE=settle " + strconv.FormatInt(time.Now().UnixNano(), 10) + "\n")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, marker, 0, &unix.SockaddrUnix{Name: socketPath}); err != nil {
		return fmt.Errorf("the settling marker: %w", err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if bytes.Equal(d.sample(), marker) {
			return nil
		}
		if !time.Now().Before(deadline) {
			return errors.New("the drain did not read its settling marker in 10 s")
		}
	}
}

// sendOne sends one entry through send while nothing else sends, and
// returns the datagram that arrived.
func (d *drain) sendOne(send func() error) ([]byte, error) {
	if err := d.settle(); err != nil {
		return nil, err
	}
	before := d.counts()
	if err := send(); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	after, err := d.waitFor(before.datagrams + 1)
	if err != nil {
		return nil, err
	}
	if after.datagrams != before.datagrams+1 {
		return nil, fmt.Errorf("one send made %d datagrams", after.datagrams-before.datagrams)
	}
	if after.bad != before.bad {
		return nil, errors.New("the datagram was truncated or did not end in a newline")
	}
	dg := d.sample()
	if uint64(len(dg)) != after.bytes-before.bytes {
		return nil, errors.New("the drain's sample is not the datagram sent")
	}
	return dg, nil
}

// runDrain is the drain process's main: it binds socketPath, reads it
// into buffers and counts in the page mapped from fd 3, until it is killed.
func runDrain() {
	runtime.LockOSThread()
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "drain: %s: %v\n", what, err)
		os.Exit(2)
	}
	mem, err := unix.Mmap(3, 0, shmSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		fail("mmap", err)
	}
	ctr := func(off int) *atomic.Uint64 { return (*atomic.Uint64)(unsafe.Pointer(&mem[off])) }

	// Raise the queue length, but only in a network namespace that is
	// not the parent's: the sysctl is the namespace's.
	const qlenPath = "/proc/sys/net/unix/max_dgram_qlen"
	own, err1 := os.Readlink("/proc/self/ns/net")
	parent, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", os.Getppid()))
	if os.Getenv(drainEnv) == "newnet" && err1 == nil && err2 == nil && own != parent {
		if err := os.WriteFile(qlenPath, []byte(strconv.Itoa(drainQlen)), 0); err != nil {
			fail("raise "+qlenPath, err)
		}
	}
	qlen := uint64(10)
	if b, err := os.ReadFile(qlenPath); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			qlen = n
		}
	}

	// The queue length is taken from the namespace when the socket is made.
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fail("socket", err)
	}
	if err := unix.Bind(sock, &unix.SockaddrUnix{Name: socketPath}); err != nil {
		fail("bind "+socketPath, err)
	}
	// As journald does.
	_ = unix.SetsockoptInt(sock, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20)
	// Sleep drainPeriod, not drainPeriod plus the default 50µs of slack.
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	// Run as soon as the timer fires, even on the sender's CPU, rather
	// than after the sender's time slice, during which the queue fills.
	_ = unix.Setpriority(unix.PRIO_PROCESS, 0, -20)

	datagrams, bytes, bad := ctr(offDatagrams), ctr(offBytes), ctr(offBad)
	batches, full, maxBatch := ctr(offBatches), ctr(offFull), ctr(offMaxBatch)
	buf := make([]byte, drainBatch*drainBufSize)
	iov := make([]unix.Iovec, drainBatch)
	hdr := make([]unix.Mmsghdr, drainBatch)
	for i := range hdr {
		iov[i].Base = &buf[i*drainBufSize]
		iov[i].SetLen(drainBufSize)
		hdr[i].Hdr.Iov = &iov[i]
		hdr[i].Hdr.Iovlen = 1
	}
	period := unix.NsecToTimespec(int64(drainPeriod))
	ctr(offQlen).Store(qlen) // ready

	// backlog counts the datagrams read since the socket was last found
	// empty: when it reaches qlen, a sender may have had to wait.
	var nDatagrams, nBytes, nBad, nBatches, nFull, nMax, backlog uint64
	for {
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(sock), uintptr(unsafe.Pointer(&hdr[0])), drainBatch,
			unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
		case unix.EAGAIN:
			backlog = 0
			unix.Nanosleep(&period, nil)
			continue
		case unix.EINTR:
			continue
		default:
			ctr(offErrno).Store(uint64(errno))
			fail("recvmmsg", errno)
		}
		n := int(r)
		for i := 0; i < n; i++ {
			l := int(hdr[i].Len)
			if hdr[i].Hdr.Flags&unix.MSG_TRUNC != 0 || l == 0 || l > drainBufSize || buf[i*drainBufSize+l-1] != '\n' {
				nBad++
			}
			nBytes += uint64(l)
		}
		if n > 0 {
			last := int(min(hdr[n-1].Len, drainBufSize))
			copy(mem[offSample:], buf[(n-1)*drainBufSize:(n-1)*drainBufSize+last])
			ctr(offSampleLen).Store(uint64(last))
			nDatagrams += uint64(n)
			nBatches++
			backlog += uint64(n)
			if backlog >= qlen && backlog-uint64(n) < qlen {
				nFull++
			}
			nMax = max(nMax, backlog)
			bad.Store(nBad)
			batches.Store(nBatches)
			full.Store(nFull)
			maxBatch.Store(nMax)
			bytes.Store(nBytes)
			datagrams.Store(nDatagrams) // last: a reader of it sees the rest
		}
		if n < drainBatch {
			// The socket was empty a moment ago.
			backlog = 0
			unix.Nanosleep(&period, nil)
		}
	}
}
