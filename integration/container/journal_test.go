//go:build container

package container

import (
	"strings"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/internal/testutil"
)

// entry is testutil.JournalEntry under the short name the tests here use.
type entry = testutil.JournalEntry

// unit is the unit the tests read the journal of.
const unit = "newstyle-demo.service"

// mark returns the journal's cursor now: entries after it are those a test
// caused.
func (c *container) mark(t *testing.T) string {
	t.Helper()
	out, err := c.exec("journalctl", "-n", "0", "--show-cursor", "--quiet", "--no-pager")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if cursor, ok := strings.CutPrefix(line, "-- cursor: "); ok {
			return strings.TrimSpace(cursor)
		}
	}
	t.Fatalf("journalctl --show-cursor printed no cursor: %q", out)
	return ""
}

// journal reads the unit's entries after cursor (all with ""), as users
// do: journalctl -u UNIT -o json --all. They include systemd's own
// entries about the unit (_PID=1, UNIT=).
func (c *container) journal(cursor string) ([]entry, error) {
	return c.journalMatching(cursor, "-u", unit)
}

// journalMatching reads the entries after cursor that match (journalctl's
// own arguments: "-u", UNIT or "_PID=N").
func (c *container) journalMatching(cursor string, match ...string) ([]entry, error) {
	args := append([]string{"journalctl"}, match...)
	args = append(args, "-o", "json", "--all", "--no-pager", "--quiet")
	if cursor != "" {
		args = append(args, "--after-cursor="+cursor)
	}
	out, err := c.exec(args...)
	if err != nil {
		return nil, err
	}
	return testutil.DecodeJournal(strings.NewReader(out), nil)
}

// waitJournal reads the unit's entries after cursor until done accepts
// them or timeout passes: journald stores an entry a moment after it took
// it. It returns the last entries read; the caller checks them.
func (c *container) waitJournal(t *testing.T, cursor string, timeout time.Duration, done func([]entry) bool) []entry {
	t.Helper()
	return c.waitJournalMatching(t, cursor, timeout, done, "-u", unit)
}

// waitJournalMatching is waitJournal for the entries that match (see
// journalMatching).
func (c *container) waitJournalMatching(t *testing.T, cursor string, timeout time.Duration, done func([]entry) bool, match ...string) []entry {
	t.Helper()
	var (
		entries []entry
		err     error
	)
	if !testutil.Poll(timeout, 100*time.Millisecond, func() bool {
		entries, err = c.journalMatching(cursor, match...)
		return err == nil && done(entries)
	}) && err != nil {
		t.Fatalf("reading the journal: %v", err)
	}
	return entries
}

// filter returns the entries keep accepts.
func filter(entries []entry, keep func(entry) bool) []entry {
	var out []entry
	for _, e := range entries {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// fromPID accepts the entries of one process (journald's trusted _PID).
func fromPID(pid string) func(entry) bool {
	return func(e entry) bool { return e.Get("_PID") == pid }
}

// withMessage accepts the entries whose MESSAGE is msg.
func withMessage(msg string) func(entry) bool {
	return func(e entry) bool { return e.Get("MESSAGE") == msg }
}

// systemdSays accepts systemd's own entries about the unit whose message
// contains text.
func systemdSays(text string) func(entry) bool {
	return func(e entry) bool {
		return e.Get("_PID") == "1" && strings.Contains(e.Get("MESSAGE"), text)
	}
}

func and(fs ...func(entry) bool) func(entry) bool {
	return func(e entry) bool {
		for _, f := range fs {
			if !f(e) {
				return false
			}
		}
		return true
	}
}

// count returns how many entries keep accepts.
func count(entries []entry, keep func(entry) bool) int { return len(filter(entries, keep)) }

// dump formats entries for a failure message, without the trusted fields
// that only make it long.
func dump(entries []entry) string {
	var b strings.Builder
	for _, e := range entries {
		short := make(entry)
		for k, v := range e {
			if k == "_PID" || k == "_TRANSPORT" || !strings.HasPrefix(k, "_") {
				short[k] = v
			}
		}
		delete(short, "__CURSOR")
		delete(short, "__REALTIME_TIMESTAMP")
		delete(short, "__MONOTONIC_TIMESTAMP")
		b.WriteString(short.String())
		b.WriteByte('\n')
	}
	return b.String()
}
