//go:build integration

package integration

import (
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/internal/testutil"
)

// TestRootLoggerSurvivesJournaldRestart has 8 goroutines log through one
// root-package logger with Target journal for 5 s while journald is killed
// with SIGKILL and, half a second later, started again. Every record must
// end up in exactly one place, the journal or stdout, but for the few the
// dead journald had taken into its socket queue and not read; and the
// logger must be back on the journal by the end.
func TestRootLoggerSurvivesJournaldRestart(t *testing.T) {
	ident := uniqueIdent(t)
	keepSystemJournald(t) // whatever happens, for the tests after this one
	var stdout testutil.Buffer
	logger := newstyle.NewLogger(&newstyle.Options{
		Target:           newstyle.TargetJournal,
		SyslogIdentifier: ident,
		Stdout:           &stdout,
	})
	h := logger.Handler().(*newstyle.Handler)
	if d := h.Detection(); d.Target != newstyle.TargetJournal {
		t.Fatalf("Detection() = %v, want the journal", d)
	}

	run := logThroughRestart(t, logger)
	out := rootStdout(t, stdout.String(), run.gOf)
	jr := rootJournal(t, ident, run.gOf)
	tally := tallyRecords(run, jr.records, out.records)

	st, _ := h.JournalStats()
	t.Logf("logged %d, journal %d, stdout %d, missing %d", len(run.gOf), len(jr.records), len(out.records), len(tally.missing))
	t.Logf("ran %v, killed at %v (seq %d), new journald up at %v (seq %d); %d switch report(s) on stdout, "+
		"%d way-back report(s) in the journal (records_on_stdout %v); Writer %+v; stdout dropped %d; missing seqs %v",
		run.ranFor.Round(time.Millisecond), run.killedAt.Round(time.Millisecond), run.seqAfterKill, run.upAt.Round(time.Millisecond), run.seqAtRestart,
		out.switchReports, len(jr.reportedOnStdout), jr.reportedOnStdout, st, h.Stats().StdoutTimeouts, firstSeqs(tally.missing, 20))

	// The reports of the way to stdout and back.
	switchReports, backReports := out.switchReports, len(jr.reportedOnStdout)
	if len(out.records) == 0 || switchReports == 0 {
		t.Errorf("%d records and %d switch reports on stdout: the logger never fell back", len(out.records), switchReports)
	}
	if switchReports > 1 && backReports < switchReports-1 {
		t.Errorf("%d switches to stdout but only %d ways back", switchReports, backReports)
	}
	if backReports == 0 {
		t.Errorf("no report of the way back in the journal")
	}
	// Records that go to stdout while the way back is being reported are
	// left for a later report: the reports may say fewer, never more.
	if sum := sumInts(jr.reportedOnStdout); sum > len(out.records)+int(h.Stats().StdoutTimeouts) {
		t.Errorf("the way-back reports count %d records on stdout, but %d are there", sum, len(out.records))
	}
	tally.check(t)
	// The retry had at least minAfterUp to find the new journald.
	for g, seqs := range run.logged {
		if len(seqs) == 0 {
			t.Errorf("goroutine %d logged nothing", g)
			continue
		}
		if last := seqs[len(seqs)-1]; jr.records[last] == 0 {
			t.Errorf("goroutine %d: its last record (seq %d), logged %v after the restart, is not in the journal",
				g, last, (run.ranFor - run.upAt).Round(time.Millisecond))
		}
	}
}

// The load of TestRootLoggerSurvivesJournaldRestart.
const (
	rootRestartGoroutines = 8
	rootRestartRunFor     = 5 * time.Second
	rootRestartKillAt     = 1500 * time.Millisecond
	rootRestartDownFor    = 500 * time.Millisecond
	rootRestartMsg        = "concurrent record"

	// The dead journald's socket queue holds net.unix.max_dgram_qlen
	// (10) datagrams, and it may have read one more it had not
	// written yet; what Send handed to it there is lost, as with
	// libsystemd. While journald is saturated, a journald that takes
	// several entries a datagram (252) gets one datagram for all the
	// goroutines waiting, so each may hold one entry of each.
	rootRestartMaxLost = (10 + 1) * rootRestartGoroutines

	// How long, at least, records are logged after the restart.
	rootRestartMinAfterUp = 2500 * time.Millisecond
)

// rootRestartRun is what logThroughRestart did: the records each goroutine
// logged, and when journald died and came back.
type rootRestartRun struct {
	logged       [][]int64     // by goroutine, the seqs it logged
	gOf          map[int64]int // every record logged: its goroutine
	seqAfterKill int64         // the first record sent after the old journald's socket was gone
	seqAtRestart int64
	killedAt     time.Duration
	upAt         time.Duration
	ranFor       time.Duration
}

// logThroughRestart has rootRestartGoroutines goroutines log numbered records
// while journald is killed and, rootRestartDownFor later, started again.
func logThroughRestart(t *testing.T, logger *slog.Logger) rootRestartRun {
	var (
		nextSeq atomic.Int64
		stop    atomic.Bool
		wg      sync.WaitGroup
		run     = rootRestartRun{logged: make([][]int64, rootRestartGoroutines)}
	)
	start := time.Now()
	for g := range rootRestartGoroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				seq := nextSeq.Add(1) - 1
				logger.Info(rootRestartMsg, "g", g, "seq", seq)
				run.logged[g] = append(run.logged[g], seq)
			}
		}()
	}
	stopLogging := func() {
		stop.Store(true)
		wg.Wait()
	}
	defer stopLogging() // on t.Fatal; a no-op after the call below

	time.Sleep(time.Until(start.Add(rootRestartKillAt)))
	if err := systemJournald.kill(); err != nil {
		t.Fatal(err)
	}
	// A record numbered from here on was sent, if at all, after the old
	// journald's socket was gone: it cannot have been lost with it.
	run.seqAfterKill = nextSeq.Load()
	run.killedAt = time.Since(start)
	time.Sleep(rootRestartDownFor)
	startSystemJournald(t)
	run.seqAtRestart, run.upAt = nextSeq.Load(), time.Since(start)
	// The checks want the retry (once a second) to have found the new
	// journald: on a machine so slow that journald took seconds to start,
	// logging goes on for longer.
	time.Sleep(time.Until(start.Add(max(rootRestartRunFor, run.upAt+rootRestartMinAfterUp))))
	stopLogging()
	run.ranFor = time.Since(start)

	run.gOf = make(map[int64]int, nextSeq.Load())
	for g, seqs := range run.logged {
		for _, seq := range seqs {
			run.gOf[seq] = g
		}
	}
	if len(run.gOf) != int(nextSeq.Load()) {
		t.Fatalf("%d records logged, but %d seqs handed out", len(run.gOf), nextSeq.Load())
	}
	return run
}

// rootRestartStdout is what the logger wrote to stdout: how many times each
// record, and the reports of the switch to it.
type rootRestartStdout struct {
	records       map[int64]int
	switchReports int
}

// rootStdout reads the logger's stdout; every line must be a record logged
// (gOf) or a report of the switch.
func rootStdout(t *testing.T, stdout string, gOf map[int64]int) rootRestartStdout {
	out := rootRestartStdout{records: make(map[int64]int)}
	lines := strings.SplitAfter(stdout, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, line := range lines {
		if strings.HasPrefix(line, "<4>newstyle: the journal cannot be reached; logging to stdout until it can ") {
			out.switchReports++
			continue
		}
		g, seq, err := parseStdoutRecord(line, rootRestartMsg)
		if err != nil {
			t.Errorf("stdout line %d: %v", i+1, err)
			continue
		}
		if lg, ok := gOf[seq]; !ok || lg != g {
			t.Errorf("stdout line %d = %q: no such record was logged", i+1, line)
			continue
		}
		out.records[seq]++
	}
	return out
}

// rootRestartJournal is what the journal holds of the logger's: how many
// times each record, and the reports of the way back, each with its
// RECORDS_ON_STDOUT.
type rootRestartJournal struct {
	records          map[int64]int
	reportedOnStdout []int
}

// rootJournal reads the journal's entries of ident; every one must be a
// record logged (gOf) or a report of the way back. After --sync, journald
// has written everything it took; a few may be lost for good, so the wait
// ends when a reading finds no more entries than the one before, not when
// all are there.
func rootJournal(t *testing.T, ident string, gOf map[int64]int) rootRestartJournal {
	syncJournal(t)
	q := query{ident: ident, fields: []string{"G", "SEQ", "MESSAGE", "RECORDS_ON_STDOUT"}}
	prev := -1
	entries := waitJournal(t, q, 30*time.Second, func(es []entry) bool {
		stable := len(es) == prev
		prev = len(es)
		return stable
	})
	jr := rootRestartJournal{records: make(map[int64]int, len(entries))}
	for i, e := range entries {
		m, _ := e.Value("MESSAGE")
		if m == "newstyle: the journal can be reached again; logging to it" {
			v, _ := e.Value("RECORDS_ON_STDOUT")
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Errorf("way-back report: RECORDS_ON_STDOUT = %q: %v", v, err)
			}
			jr.reportedOnStdout = append(jr.reportedOnStdout, n)
			continue
		}
		g, seq, err := journalRecord(e)
		if err != nil || m != rootRestartMsg {
			t.Errorf("journal entry %d (MESSAGE=%q): not a record: %v", i, m, err)
			continue
		}
		if lg, ok := gOf[seq]; !ok || lg != g {
			t.Errorf("journal entry %d: G=%d SEQ=%d: no such record was logged", i, g, seq)
			continue
		}
		jr.records[seq]++
	}
	return jr
}

// recordTally lists the records that are not in exactly one place.
type recordTally struct {
	missing, missingAfterKill, twiceInJournal, twiceOnStdout, inBoth []int64
}

func tallyRecords(run rootRestartRun, inJournal, onStdout map[int64]int) recordTally {
	var r recordTally
	for seq := range int64(len(run.gOf)) {
		nj, ns := inJournal[seq], onStdout[seq]
		switch {
		case nj == 0 && ns == 0:
			r.missing = append(r.missing, seq)
			if seq >= run.seqAfterKill {
				r.missingAfterKill = append(r.missingAfterKill, seq)
			}
		case nj > 0 && ns > 0:
			r.inBoth = append(r.inBoth, seq)
		}
		if nj > 1 {
			r.twiceInJournal = append(r.twiceInJournal, seq)
		}
		if ns > 1 {
			r.twiceOnStdout = append(r.twiceOnStdout, seq)
		}
	}
	return r
}

// check checks that every record is in exactly one place, but at most
// rootRestartMaxLost the dead journald took with it.
func (r recordTally) check(t *testing.T) {
	t.Helper()
	if len(r.missing) > rootRestartMaxLost {
		t.Errorf("%d records are neither in the journal nor on stdout, want at most %d (the dead journald's queue): %v",
			len(r.missing), rootRestartMaxLost, firstSeqs(r.missing, 20))
	}
	for _, c := range []struct {
		seqs []int64
		what string
	}{
		{r.missingAfterKill, "logged after journald was dead are neither in the journal nor on stdout"},
		{r.twiceInJournal, "are in the journal more than once"},
		{r.twiceOnStdout, "are on stdout more than once"},
		{r.inBoth, "are both in the journal and on stdout"},
	} {
		if len(c.seqs) > 0 {
			t.Errorf("%d records %s: %v", len(c.seqs), c.what, firstSeqs(c.seqs, 20))
		}
	}
}

// parseStdoutRecord parses a record line of the stdout fallback:
// "<6>MSG g=G seq=SEQ\n".
func parseStdoutRecord(line, msg string) (g int, seq int64, err error) {
	rest, ok := strings.CutPrefix(line, "<6>"+msg+" g=")
	if !ok {
		return 0, 0, fmt.Errorf("%q is neither a record nor a switch report", line)
	}
	rest, ok = strings.CutSuffix(rest, "\n")
	gs, seqs, ok2 := strings.Cut(rest, " seq=")
	if !ok || !ok2 {
		return 0, 0, fmt.Errorf("%q: want <6>%s g=G seq=SEQ", line, msg)
	}
	if g, err = strconv.Atoi(gs); err == nil {
		seq, err = strconv.ParseInt(seqs, 10, 64)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("%q: %v", line, err)
	}
	return g, seq, nil
}

// journalRecord returns the G and SEQ fields of a record's entry.
func journalRecord(e entry) (g int, seq int64, err error) {
	gv, err := e.Value("G")
	if err != nil {
		return 0, 0, err
	}
	sv, err := e.Value("SEQ")
	if err != nil {
		return 0, 0, err
	}
	if g, err = strconv.Atoi(gv); err != nil {
		return 0, 0, err
	}
	seq, err = strconv.ParseInt(sv, 10, 64)
	return g, seq, err
}

func sumInts(s []int) (sum int) {
	for _, n := range s {
		sum += n
	}
	return sum
}

// firstSeqs returns the first n of s at most, for an error message.
func firstSeqs(s []int64, n int) []int64 { return slices.Clip(s[:min(n, len(s))]) }
