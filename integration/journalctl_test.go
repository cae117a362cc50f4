//go:build integration

package integration

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/internal/testutil"
)

// entry is testutil.JournalEntry under the short name the tests here use.
type entry = testutil.JournalEntry

// query selects entries the way a user does: by SYSLOG_IDENTIFIER, in the
// default journal, a namespace's, or the journal files of a directory.
type query struct {
	ident     string
	namespace string   // --namespace; "" for the default journal
	directory string   // --directory (a central journal); "" for none
	fields    []string // --output-fields; nil for all
}

// readJournal runs journalctl -o json --all for q and decodes its output.
func readJournal(q query) ([]entry, error) {
	args := []string{"-o", "json", "--all", "--no-pager", "--quiet", "-t", q.ident}
	if q.namespace != "" {
		args = append(args, "--namespace="+q.namespace)
	}
	if q.directory != "" {
		args = append(args, "--directory="+q.directory)
	}
	if q.fields != nil {
		args = append(args, "--output-fields="+strings.Join(q.fields, ","))
	}
	cmd := exec.Command("journalctl", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	entries, decodeErr := testutil.DecodeJournal(out, q.fields)
	if decodeErr != nil {
		_, _ = io.Copy(io.Discard, out)
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
	return entries, decodeErr
}

// waitJournal reads the entries of q until done accepts them or timeout
// passes: journald stores an entry a moment after it took it. It returns
// the last entries read, and fails the test only if journalctl itself
// keeps failing; the caller checks the entries.
func waitJournal(t *testing.T, q query, timeout time.Duration, done func([]entry) bool) []entry {
	t.Helper()
	var (
		entries []entry
		err     error
	)
	if !testutil.Poll(timeout, 100*time.Millisecond, func() bool {
		entries, err = readJournal(q)
		return err == nil && done(entries)
	}) && err != nil {
		t.Fatalf("reading the journal for %v: %v", timeout, err)
	}
	return entries
}

// waitEntries waits up to 10 s for at least n entries of q and returns
// those read; the caller checks their number.
func waitEntries(t *testing.T, q query, n int) []entry {
	t.Helper()
	return waitJournal(t, q, 10*time.Second, func(es []entry) bool { return len(es) >= n })
}

// countSeqs checks that seen, how often each G and SEQ was found in the
// journal, has every one of goroutines × perG entries exactly once,
// reporting the first few that do not, and returns how many are missing
// and how many are there more than once.
func countSeqs(t *testing.T, goroutines, perG int, seen func(g, seq int) int) (missing, dup int) {
	t.Helper()
	for g := range goroutines {
		for seq := range perG {
			switch n := seen(g, seq); {
			case n == 0:
				if missing++; missing <= 5 {
					t.Errorf("G=%d SEQ=%d is not in the journal", g, seq)
				}
			case n > 1:
				if dup++; dup <= 5 {
					t.Errorf("G=%d SEQ=%d is in the journal %d times", g, seq, n)
				}
			}
		}
	}
	return missing, dup
}
