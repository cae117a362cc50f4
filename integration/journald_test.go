//go:build integration

// Package integration tests package journal, and the slog loggers of the
// root package, against a real systemd-journald, which it starts, kills,
// stops and restarts itself, and reads the journal back with journalctl,
// as users do.
//
// The tests need root and a private mount and PID namespace, so that the
// journald they start binds, writes and kills nothing of the host's:
//
//	scripts/private-ns.sh go test -race -tags integration -count=1 ./integration/...
//
// They run on the host's systemd, or on another generation's, the test
// binary built here and run inside that generation's root tree (see
// scripts/private-ns.sh --systemd):
//
//	go test -c -race -tags integration -o bin/integration.test ./integration
//	cd integration && ../scripts/private-ns.sh --systemd 257 ../bin/integration.test
//
// The output starts with the version they run on ("integration tests:
// systemd 257 (257.13-1~deb13u1)", from journalctl --version), and the
// tests whose outcome depends on it run as subtests named after it
// (systemd257).
//
// With the integration tag the tests are required: outside such a
// namespace, or when journald cannot be started, they fail; they never
// skip.
package integration

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journal"
)

const (
	journaldPath = "/lib/systemd/systemd-journald"

	// journaldStartTimeout bounds the wait for a new journald's socket.
	journaldStartTimeout = 10 * time.Second

	runCommand = "scripts/private-ns.sh go test -race -tags integration -count=1 ./integration/..."
)

// privateDirs are the directories scripts/private-ns.sh mounts a tmpfs on;
// TestMain refuses to start a journald where they are the host's.
var privateDirs = []string{"/run/systemd", "/run/log", "/var/log/journal", "/etc/systemd"}

// systemJournald is the journald of the default namespace, listening on
// journal.DefaultSocketPath. TestMain starts it; a test that kills it starts
// its successor and stores it here. Tests that touch it do not run in
// parallel with others.
var systemJournald *journald

func TestMain(m *testing.M) {
	// A child process of logging_test.go: this binary run again.
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if err := checkPrivateNamespace(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: integration tests cannot run: %v\n", err)
		return 1
	}
	if err := readJournaldVersion(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: integration tests cannot run: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "integration tests: %s\n", journaldVersionLine)
	j, err := startJournald("")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: integration tests cannot run: %v\n", err)
		return 1
	}
	systemJournald = j
	code := m.Run()
	if err := systemJournald.stop(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		code = 1
	}
	return code
}

// checkPrivateNamespace makes sure that starting a journald here cannot
// take the host's journal socket over.
func checkPrivateNamespace() error {
	if os.Getenv("NEWSTYLE_PRIVATE_NS") != "1" {
		return fmt.Errorf("NEWSTYLE_PRIVATE_NS is not 1: these tests start, kill and restart systemd-journald "+
			"and must run in the private namespace of scripts/private-ns.sh, as root:\n\t%s", runCommand)
	}
	if os.Geteuid() != 0 {
		return errors.New("not root: systemd-journald must run as root")
	}
	mounts, err := mountPoints()
	if err != nil {
		return err
	}
	for _, dir := range privateDirs {
		if !mounts[dir] {
			return fmt.Errorf("%s is not a mount of its own: NEWSTYLE_PRIVATE_NS=1 is set, but this is not "+
				"the namespace of scripts/private-ns.sh; run:\n\t%s", dir, runCommand)
		}
	}
	if _, err := os.Stat(journaldPath); err != nil {
		return fmt.Errorf("no journald: %w (package systemd)", err)
	}
	if listening(journal.DefaultSocketPath) {
		return fmt.Errorf("a journald already listens on %s; the tests start their own "+
			"(run scripts/private-ns.sh without --journald)", journal.DefaultSocketPath)
	}
	return nil
}

// mountPoints returns the mount points of this mount namespace.
func mountPoints() (map[string]bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	mounts := make(map[string]bool)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT ...
		if f := strings.Fields(sc.Text()); len(f) > 4 {
			mounts[f[4]] = true
		}
	}
	return mounts, sc.Err()
}

// journald is a systemd-journald process started by the tests.
type journald struct {
	namespace string // "" for the default one
	socket    string // its native-protocol socket
	cmd       *exec.Cmd
	output    *testutil.Buffer // its stdout and stderr
	exited    chan struct{}    // closed once it has exited and been reaped
	waitErr   error            // how it exited; read after exited is closed
}

// socketPath returns the native-protocol socket of the journald of
// namespace ("" for the default one).
func socketPath(namespace string) string {
	if namespace == "" {
		return journal.DefaultSocketPath
	}
	return "/run/systemd/journal." + namespace + "/socket"
}

// startJournald starts systemd-journald for namespace ("" for the default
// one) and returns once its socket takes datagrams.
func startJournald(namespace string) (*journald, error) {
	var args []string
	if namespace != "" {
		args = append(args, namespace)
	}
	j := &journald{
		namespace: namespace,
		socket:    socketPath(namespace),
		cmd:       exec.Command(journaldPath, args...),
		output:    new(testutil.Buffer),
		exited:    make(chan struct{}),
	}
	// Its own messages go to its stderr, not to the host's kernel log.
	j.cmd.Env = append(os.Environ(), "SYSTEMD_LOG_TARGET=console")
	j.cmd.Stdout, j.cmd.Stderr = j.output, j.output
	if err := j.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", journaldPath, err)
	}
	go func() {
		j.waitErr = j.cmd.Wait()
		close(j.exited)
	}()
	if err := j.waitListening(); err != nil {
		_ = j.kill()
		return nil, err
	}
	return j, nil
}

// waitListening waits until the journald's socket takes datagrams. A socket
// file left by a journald that was killed does not count.
func (j *journald) waitListening() error {
	var exited bool
	if !testutil.Poll(journaldStartTimeout, 10*time.Millisecond, func() bool {
		if listening(j.socket) {
			return true
		}
		select {
		case <-j.exited:
			exited = true
			return true // no use waiting
		default:
			return false
		}
	}) {
		return fmt.Errorf("%s not listening on %s after %v; its output:\n%s",
			j, j.socket, journaldStartTimeout, j.output)
	}
	if exited {
		return fmt.Errorf("%s exited (%v) before listening on %s; its output:\n%s",
			j, j.waitErr, j.socket, j.output)
	}
	return nil
}

// listening reports whether something is bound to the datagram socket at
// path: connecting to a socket file nobody is bound to is refused.
func listening(path string) bool {
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (j *journald) String() string {
	if j.namespace == "" {
		return fmt.Sprintf("systemd-journald[%d]", j.cmd.Process.Pid)
	}
	return fmt.Sprintf("systemd-journald[%d] of namespace %s", j.cmd.Process.Pid, j.namespace)
}

func (j *journald) signal(sig syscall.Signal) error {
	select {
	case <-j.exited:
		return fmt.Errorf("%s: %v: it has exited (%v)", j, sig, j.waitErr)
	default:
	}
	return j.cmd.Process.Signal(sig)
}

// waitState waits up to 2 s for the journald's process state (as in
// /proc/PID/stat: 'T' stopped, 'S' sleeping, 'R' running) to satisfy ok:
// a signal is delivered a moment after kill(2) returns.
func (j *journald) waitState(ok func(state byte) bool) error {
	path := fmt.Sprintf("/proc/%d/stat", j.cmd.Process.Pid)
	var (
		state byte
		err   error // reading the state, which ends the wait
	)
	if !testutil.Poll(2*time.Second, time.Millisecond, func() bool {
		var data []byte
		if data, err = os.ReadFile(path); err != nil {
			return true
		}
		// PID (COMM) STATE ...; COMM may hold anything, even ") ".
		i := bytes.LastIndexByte(data, ')')
		if i < 0 || i+2 >= len(data) {
			err = fmt.Errorf("%s: cannot parse %q", path, data)
			return true
		}
		state = data[i+2]
		return ok(state)
	}) {
		return fmt.Errorf("%s: state still %c after 2s", j, state)
	}
	return err
}

// kill kills the journald with SIGKILL, as a crash would, and returns once
// it is reaped: the kernel has closed its socket by then.
func (j *journald) kill() error {
	_ = j.cmd.Process.Kill()
	select {
	case <-j.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s still running 10s after SIGKILL", j)
	}
}

// stop stops the journald with SIGTERM, as systemd does, and reports how it
// went; it is killed if it takes more than 10 s.
func (j *journald) stop() error {
	select {
	case <-j.exited:
		return nil // killed by a test
	default:
	}
	_ = j.cmd.Process.Signal(syscall.SIGCONT) // in case a test left it stopped
	_ = j.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-j.exited:
		if j.waitErr != nil {
			return fmt.Errorf("%s: %v; its output:\n%s", j, j.waitErr, j.output)
		}
		return nil
	case <-time.After(10 * time.Second):
		_ = j.kill()
		return fmt.Errorf("%s did not exit within 10s of SIGTERM; its output:\n%s", j, j.output)
	}
}

// startNamespaceJournald starts a journald for the journal namespace name,
// stopped when the test ends.
func startNamespaceJournald(t *testing.T, name string) *journald {
	t.Helper()
	j, err := startJournald(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := j.stop(); err != nil {
			t.Error(err)
		}
	})
	return j
}

// keepSystemJournald makes sure, when the test ends, that a journald
// listens on the default socket for the tests after it.
func keepSystemJournald(t *testing.T) {
	t.Cleanup(func() {
		if !listening(journal.DefaultSocketPath) {
			j, err := startJournald("")
			if err != nil {
				t.Error(err)
				return
			}
			systemJournald = j
		}
	})
}

// startSystemJournald starts the system journald again, after a test
// killed it.
func startSystemJournald(t *testing.T) {
	t.Helper()
	j, err := startJournald("")
	if err != nil {
		t.Fatal(err)
	}
	systemJournald = j
}

// newWriter returns a journal.Writer closed when the test ends.
func newWriter(t *testing.T, opts journal.WriterOptions) *journal.Writer {
	t.Helper()
	return testutil.Open(t, func() (*journal.Writer, error) { return journal.NewWriter(&opts) })
}

// uniqueIdent returns a SYSLOG_IDENTIFIER that no other test, and no other
// run against the same journal, uses.
func uniqueIdent(t *testing.T) string {
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '-'
	}, t.Name())
	return fmt.Sprintf("it-%s-%d-%d", name, os.Getpid(), time.Now().UnixNano())
}

// stopSystemJournald stops systemJournald with SIGSTOP, and returns once
// it is stopped. The function it returns continues it (once); it runs
// when the test ends in any case.
func stopSystemJournald(t *testing.T) (resume func()) {
	t.Helper()
	j := systemJournald
	if err := j.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			if err := j.signal(syscall.SIGCONT); err != nil {
				t.Error(err)
				return
			}
			if err := j.waitState(func(s byte) bool { return s != 'T' }); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(resume)
	if err := j.waitState(func(s byte) bool { return s == 'T' }); err != nil {
		t.Fatal(err)
	}
	return resume
}
