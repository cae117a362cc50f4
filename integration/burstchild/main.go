// Command burstchild is the program of the container tier's rate-limit
// test: run as a unit whose journald rate limit the test sets, it logs a
// burst of -n entries at info through a journal.Writer, synchronously or
// asynchronously (-mode), and says what the module saw. It is driven
// through files named after -state:
//
//	STATE.burst  written once the burst is sent (an asynchronous Writer
//	             flushed): a JSON report (below)
//	STATE.go     created by the test once it has read the journal; then,
//	             -after later, one more entry is sent ("after the burst"),
//	             past journald's rate-limit interval
//	STATE.done   the final report
//	STATE.exit   created by the test once it has read that entry; then
//	             the program exits. journald learns an entry's unit from
//	             its sender's cgroup after the datagram arrives, so a
//	             sender that exits at once may leave it without one (and
//	             then no rate limit applies to it).
//
// A report holds the Writer's Stats and every error Send, Flush or Close
// returned; the program exits 1 on any error, 2 on bad flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/newstyle-go/newstyle/journal"
)

// report is what the program tells the test.
type report struct {
	Mode   string
	Sent   int      // Send calls
	Errors []string // what Send, Flush and Close returned, other than nil
	Stats  journal.Stats
}

// goWait bounds each wait for a file of the test's.
const goWait = 2 * time.Minute

func main() {
	mode := flag.String("mode", "sync", "sync or async: the Writer's mode")
	n := flag.Int("n", 1000, "entries in the burst")
	after := flag.Duration("after", 11*time.Second, "how long after STATE.go to send the last entry")
	state := flag.String("state", "", "the prefix of the files the test reads and writes (required)")
	ident := flag.String("ident", "burstchild", "SYSLOG_IDENTIFIER")
	flag.Parse()
	opts := &journal.WriterOptions{SyslogIdentifier: *ident}
	switch *mode {
	case "sync":
	case "async":
		opts.Async = &journal.AsyncOptions{}
	default:
		fmt.Fprintf(os.Stderr, "burstchild: -mode %q: want sync or async\n", *mode)
		os.Exit(2)
	}
	if *state == "" || *n < 1 {
		fmt.Fprintln(os.Stderr, "burstchild: -state is required, -n must be 1 or more")
		os.Exit(2)
	}
	if err := run(opts, *mode, *n, *after, *state); err != nil {
		fmt.Fprintln(os.Stderr, "burstchild:", err)
		os.Exit(1)
	}
}

func run(opts *journal.WriterOptions, mode string, n int, after time.Duration, state string) error {
	w, err := journal.NewWriter(opts)
	if err != nil {
		return err
	}
	r := report{Mode: mode}
	note := func(err error) {
		if err != nil {
			r.Errors = append(r.Errors, err.Error())
		}
	}
	var seq []byte
	for i := range n {
		seq = strconv.AppendInt(seq[:0], int64(i), 10)
		note(w.Send("burst "+mode, journal.PriInfo, journal.Field{Name: "BURST_SEQ", Value: seq}))
		r.Sent++
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	note(w.Flush(ctx))
	r.Stats = w.Stats()
	if err := writeReport(state+".burst", r); err != nil {
		return err
	}

	if err := waitFor(state+".go", goWait); err != nil {
		return err
	}
	// journald logs what it suppressed only when the unit logs again in
	// a later interval: this entry is that.
	time.Sleep(after)
	note(w.Send("after the burst", journal.PriInfo, journal.StringField("BURST_AFTER", "1")))
	r.Sent++
	note(w.Close())
	r.Stats = w.Stats()
	if err := writeReport(state+".done", r); err != nil {
		return err
	}
	if err := waitFor(state+".exit", goWait); err != nil {
		return err
	}
	if len(r.Errors) > 0 {
		return fmt.Errorf("%d error(s), the first: %s", len(r.Errors), r.Errors[0])
	}
	return nil
}

// writeReport writes r to path whole: the test never reads half of it.
func writeReport(path string, r report) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// waitFor polls for a file, for at most d.
func waitFor(path string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		_, err := os.Stat(path)
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s within %v", path, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
