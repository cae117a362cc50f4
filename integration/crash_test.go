//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/newstyle-go/newstyle/crash"
	"github.com/newstyle-go/newstyle/internal/testutil"
)

// The crash watcher (package crash) against a real journald: a crash's
// entry past the cap, through a memfd; the watcher waiting for a stalled
// journald to read its entry; a journal namespace.

// crashChild builds integration/crashchild once, without -race: the
// race detector allows 8128 goroutines, and a crash past the cap needs
// tens of thousands.
func crashChild(t *testing.T) string {
	return buildChild(t, "github.com/newstyle-go/newstyle/integration/crashchild")
}

// crashRun is a crash of crashchild, started.
type crashRun struct {
	cmd     *exec.Cmd
	watcher int
	stderr  *os.File // a file: the child's end does not wait for its watcher's
}

// startCrash starts crashchild with args, and reads its watcher's PID.
func startCrash(t *testing.T, args ...string) *crashRun {
	t.Helper()
	cmd := exec.Command(crashChild(t), args...)
	stderr, err := os.CreateTemp(t.TempDir(), "stderr")
	require.NoError(t, err)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line := make([]byte, 32)
	n, _ := out.Read(line)
	w, err := strconv.Atoi(strings.TrimSpace(string(line[:n])))
	require.NoError(t, err, "the watcher's PID: %q", line[:n])
	return &crashRun{cmd: cmd, watcher: w, stderr: stderr}
}

// wait waits for the crashed process, which must end with status 2.
func (r *crashRun) wait(t *testing.T) {
	t.Helper()
	err := r.cmd.Wait()
	require.Error(t, err)
	assert.Equal(t, 2, r.cmd.ProcessState.ExitCode(), "the runtime's exit status")
}

// watcherGone reports whether the watcher has ended (a zombie or gone:
// once the child is gone, its parent is this namespace's init).
func (r *crashRun) watcherGone() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.watcher))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || len(s) < i+3 || s[i+2] == 'Z'
}

// waitWatcher waits up to timeout for the watcher to end.
func (r *crashRun) waitWatcher(t *testing.T, timeout time.Duration) {
	t.Helper()
	require.True(t, testutil.Poll(timeout, 5*time.Millisecond, r.watcherGone), "the watcher still runs after %v", timeout)
}

// crashOutput returns what the runtime wrote to stderr from the line
// that starts with first on.
func (r *crashRun) crashOutput(t *testing.T, first string) string {
	t.Helper()
	b, err := os.ReadFile(r.stderr.Name())
	require.NoError(t, err)
	i := bytes.Index(b, []byte(first))
	require.GreaterOrEqual(t, i, 0, "stderr lacks %q", first)
	return string(b[i:])
}

// TestCrashPastTheCap: a crash output of some 12 MB (GOTRACEBACK=all,
// 60,000 goroutines) is one entry, through a memfd, with the first and
// last 4 MiB of it and the count of what is cut between them.
func TestCrashPastTheCap(t *testing.T) {
	ident := uniqueIdent(t)
	const goroutines = 60000
	r := startCrash(t, "-kind", "many", "-n", strconv.Itoa(goroutines), "-ident", ident)
	r.wait(t)
	r.waitWatcher(t, 30*time.Second)
	entries := waitEntries(t, query{ident: ident}, 1)
	require.Len(t, entries, 1)
	e := entries[0]
	first := fmt.Sprintf("panic: crashchild: a panic among %d goroutines", goroutines)
	assert.Equal(t, first, e.Get("MESSAGE"))
	assert.Equal(t, "2", e.Get("PRIORITY"))
	assert.Equal(t, crash.MessageID, e.Get("MESSAGE_ID"))
	assert.Equal(t, strconv.Itoa(r.cmd.Process.Pid), e.Get("SYSLOG_PID"))
	out := r.crashOutput(t, first)
	require.Greater(t, len(out), crash.DefaultMaxTraceback, "past the cap")
	cut, err := strconv.Atoi(e.Get(crash.FieldCut))
	require.NoError(t, err, "%s=%q", crash.FieldCut, e.Get(crash.FieldCut))
	trace := e.Get("TRACEBACK")
	head, tail, ok := strings.Cut(trace, "[… "+strconv.Itoa(cut)+" bytes of the crash output cut here …]\n")
	require.True(t, ok, "the cut is marked with its count")
	assert.True(t, strings.HasPrefix(out, head), "the head is the output's start")
	assert.True(t, strings.HasSuffix(out, tail), "the tail is the output's end")
	assert.Equal(t, len(out), len(head)+len(tail)+cut, "every byte kept or counted")
	assert.LessOrEqual(t, len(head)+len(tail), crash.DefaultMaxTraceback)
	assert.Greater(t, len(head)+len(tail), crash.DefaultMaxTraceback-1024, "the cap used to its end")
	t.Logf("crash output %d bytes; TRACEBACK %d bytes, %d cut", len(out), len(trace), cut)
}

// TestCrashWaitsForJournald: with journald stalled (SIGSTOP) when the
// program crashes, the watcher sends its entry and stays until journald
// has read it — journald reads the sender's unit from its /proc when it
// reads the entry — then ends at once; within its 5 s bound.
func TestCrashWaitsForJournald(t *testing.T) {
	ident := uniqueIdent(t)
	resume := stopSystemJournald(t)
	r := startCrash(t, "-ident", ident)
	r.wait(t)
	// The watcher outlives the program while journald has not read.
	stalled := time.Now()
	time.Sleep(time.Second)
	require.False(t, r.watcherGone(), "the watcher ended before journald read its entry")
	resume()
	resumed := time.Now()
	r.waitWatcher(t, 10*time.Second)
	t.Logf("the watcher ended %v after journald went on (%v after the crash)",
		time.Since(resumed).Round(time.Millisecond), time.Since(stalled).Round(time.Millisecond))
	assert.Less(t, time.Since(resumed), 2*time.Second, "it ends once journald has read")
	entries := waitEntries(t, query{ident: ident}, 1)
	require.Len(t, entries, 1)
	assert.Equal(t, "panic: crashchild: a panic in a goroutine", entries[0].Get("MESSAGE"))
	assert.Equal(t, strconv.Itoa(r.watcher), entries[0].Get("_PID"), "journald read it while the watcher was there")
	assert.Contains(t, entries[0].Get("TRACEBACK"), "\nmain.panicInGoroutine()\n")
}

// TestCrashWaitBounded: a journald that stays stalled keeps the watcher
// 5 s at most.
func TestCrashWaitBounded(t *testing.T) {
	ident := uniqueIdent(t)
	stopSystemJournald(t)
	r := startCrash(t, "-ident", ident)
	r.wait(t)
	crashed := time.Now()
	r.waitWatcher(t, 15*time.Second)
	d := time.Since(crashed)
	t.Logf("the watcher waited %v for a stalled journald", d.Round(time.Millisecond))
	assert.Greater(t, d, 4*time.Second)
	assert.Less(t, d, 7*time.Second)
}

// TestCrashInNamespace: the entry goes to the journal namespace the
// program logs to (Options.Namespace).
func TestCrashInNamespace(t *testing.T) {
	name := fmt.Sprintf("newstyle-crash-%d", os.Getpid())
	startNamespaceJournald(t, name)
	ident := uniqueIdent(t)
	r := startCrash(t, "-ident", ident, "-namespace", name)
	r.wait(t)
	r.waitWatcher(t, 10*time.Second)
	entries := waitEntries(t, query{ident: ident, namespace: name}, 1)
	require.Len(t, entries, 1)
	assert.Equal(t, crash.MessageID, entries[0].Get("MESSAGE_ID"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "journalctl", "--no-pager", "-q", "-t", ident).Output()
	require.NoError(t, err)
	assert.Empty(t, string(out), "nothing in the default journal")
}
