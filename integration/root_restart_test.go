//go:build integration

package integration

import (
	"fmt"
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
	const (
		goroutines = 8
		runFor     = 5 * time.Second
		killAt     = 1500 * time.Millisecond
		downFor    = 500 * time.Millisecond
		msg        = "concurrent record"

		// The dead journald's socket queue holds net.unix.max_dgram_qlen
		// (10) datagrams, and it may have read one more it had not
		// written yet; what Send handed to it there is lost, as with
		// libsystemd. While journald is saturated, a journald that takes
		// several entries a datagram (252) gets one datagram for all the
		// goroutines waiting, so each may hold one entry of each.
		maxLost = (10 + 1) * goroutines

		// How long, at least, records are logged after the restart.
		minAfterUp = 2500 * time.Millisecond
	)
	ident := uniqueIdent(t)
	t.Cleanup(func() {
		// Whatever happened, leave a journald for the tests after this one.
		if !listening(socketPath("")) {
			j, err := startJournald("")
			if err != nil {
				t.Error(err)
				return
			}
			systemJournald = j
		}
	})
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

	var (
		nextSeq atomic.Int64
		stop    atomic.Bool
		wg      sync.WaitGroup
		logged  = make([][]int64, goroutines) // by goroutine, the seqs it logged
	)
	start := time.Now()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				seq := nextSeq.Add(1) - 1
				logger.Info(msg, "g", g, "seq", seq)
				logged[g] = append(logged[g], seq)
			}
		}()
	}
	stopLogging := func() {
		stop.Store(true)
		wg.Wait()
	}
	defer stopLogging() // on t.Fatal; a no-op after the call below

	time.Sleep(time.Until(start.Add(killAt)))
	if err := systemJournald.kill(); err != nil {
		t.Fatal(err)
	}
	// A record numbered from here on was sent, if at all, after the old
	// journald's socket was gone: it cannot have been lost with it.
	seqAfterKill := nextSeq.Load()
	killedAt := time.Since(start)
	time.Sleep(downFor)
	j, err := startJournald("")
	if err != nil {
		t.Fatal(err)
	}
	systemJournald = j
	seqAtRestart, upAt := nextSeq.Load(), time.Since(start)
	// The checks below want the retry (once a second) to have found the
	// new journald: on a machine so slow that journald took seconds to
	// start, logging goes on for longer.
	time.Sleep(time.Until(start.Add(max(runFor, upAt+minAfterUp))))
	stopLogging()
	ranFor := time.Since(start)

	gOf := make(map[int64]int, nextSeq.Load()) // every record logged: its goroutine
	for g, seqs := range logged {
		for _, seq := range seqs {
			gOf[seq] = g
		}
	}
	total := len(gOf)
	if total != int(nextSeq.Load()) {
		t.Fatalf("%d records logged, but %d seqs handed out", total, nextSeq.Load())
	}

	// Stdout: the records that went there, and the reports of the switch.
	onStdout := make(map[int64]int)
	var switchReports int
	lines := strings.SplitAfter(stdout.String(), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, line := range lines {
		if strings.HasPrefix(line, "<4>newstyle: the journal cannot be reached; logging to stdout until it can ") {
			switchReports++
			continue
		}
		g, seq, err := parseStdoutRecord(line, msg)
		if err != nil {
			t.Errorf("stdout line %d: %v", i+1, err)
			continue
		}
		if lg, ok := gOf[seq]; !ok || lg != g {
			t.Errorf("stdout line %d = %q: no such record was logged", i+1, line)
			continue
		}
		onStdout[seq]++
	}

	// The journal. After --sync, journald has written everything it
	// took; a few may be lost for good, so the wait ends when a reading
	// finds no more entries than the one before, not when all are there.
	syncJournal(t)
	q := query{ident: ident, fields: []string{"G", "SEQ", "MESSAGE", "RECORDS_ON_STDOUT"}}
	prev := -1
	entries := waitJournal(t, q, 30*time.Second, func(es []entry) bool {
		stable := len(es) == prev
		prev = len(es)
		return stable
	})
	inJournal := make(map[int64]int, len(entries))
	var (
		backReports      int
		reportedOnStdout []int // RECORDS_ON_STDOUT of each way back
	)
	for i, e := range entries {
		m, _ := e.Value("MESSAGE")
		if m == "newstyle: the journal can be reached again; logging to it" {
			backReports++
			v, _ := e.Value("RECORDS_ON_STDOUT")
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Errorf("way-back report: RECORDS_ON_STDOUT = %q: %v", v, err)
			}
			reportedOnStdout = append(reportedOnStdout, n)
			continue
		}
		g, seq, err := journalRecord(e)
		if err != nil || m != msg {
			t.Errorf("journal entry %d (MESSAGE=%q): not a record: %v", i, m, err)
			continue
		}
		if lg, ok := gOf[seq]; !ok || lg != g {
			t.Errorf("journal entry %d: G=%d SEQ=%d: no such record was logged", i, g, seq)
			continue
		}
		inJournal[seq]++
	}

	var missing, missingAfterKill, twiceInJournal, twiceOnStdout, inBoth []int64
	for seq := range int64(total) {
		nj, ns := inJournal[seq], onStdout[seq]
		switch {
		case nj == 0 && ns == 0:
			missing = append(missing, seq)
			if seq >= seqAfterKill {
				missingAfterKill = append(missingAfterKill, seq)
			}
		case nj > 0 && ns > 0:
			inBoth = append(inBoth, seq)
		}
		if nj > 1 {
			twiceInJournal = append(twiceInJournal, seq)
		}
		if ns > 1 {
			twiceOnStdout = append(twiceOnStdout, seq)
		}
	}
	st, _ := h.JournalStats()
	t.Logf("logged %d, journal %d, stdout %d, missing %d", total, len(inJournal), len(onStdout), len(missing))
	t.Logf("ran %v, killed at %v (seq %d), new journald up at %v (seq %d); %d switch report(s) on stdout, "+
		"%d way-back report(s) in the journal (records_on_stdout %v); Writer %+v; stdout dropped %d; missing seqs %v",
		ranFor.Round(time.Millisecond), killedAt.Round(time.Millisecond), seqAfterKill, upAt.Round(time.Millisecond), seqAtRestart,
		switchReports, backReports, reportedOnStdout, st, h.Stats().StdoutTimeouts, firstSeqs(missing, 20))

	if len(onStdout) == 0 || switchReports == 0 {
		t.Errorf("%d records and %d switch reports on stdout: the logger never fell back", len(onStdout), switchReports)
	}
	if switchReports > 1 && backReports < switchReports-1 {
		t.Errorf("%d switches to stdout but only %d ways back", switchReports, backReports)
	}
	if backReports == 0 {
		t.Errorf("no report of the way back in the journal")
	}
	// Records that go to stdout while the way back is being reported are
	// left for a later report: the reports may say fewer, never more.
	if sum := sumInts(reportedOnStdout); sum > len(onStdout)+int(h.Stats().StdoutTimeouts) {
		t.Errorf("the way-back reports count %d records on stdout, but %d are there", sum, len(onStdout))
	}
	if len(missing) > maxLost {
		t.Errorf("%d records are neither in the journal nor on stdout, want at most %d (the dead journald's queue): %v",
			len(missing), maxLost, firstSeqs(missing, 20))
	}
	if len(missingAfterKill) > 0 {
		t.Errorf("%d records logged after journald was dead are neither in the journal nor on stdout: %v",
			len(missingAfterKill), firstSeqs(missingAfterKill, 20))
	}
	if len(twiceInJournal) > 0 {
		t.Errorf("%d records are in the journal more than once: %v", len(twiceInJournal), firstSeqs(twiceInJournal, 20))
	}
	if len(twiceOnStdout) > 0 {
		t.Errorf("%d records are on stdout more than once: %v", len(twiceOnStdout), firstSeqs(twiceOnStdout, 20))
	}
	if len(inBoth) > 0 {
		t.Errorf("%d records are both in the journal and on stdout: %v", len(inBoth), firstSeqs(inBoth, 20))
	}
	// The retry had at least minAfterUp to find the new journald.
	for g, seqs := range logged {
		if len(seqs) == 0 {
			t.Errorf("goroutine %d logged nothing", g)
			continue
		}
		if last := seqs[len(seqs)-1]; inJournal[last] == 0 {
			t.Errorf("goroutine %d: its last record (seq %d), logged %v after the restart, is not in the journal",
				g, last, (ranFor - upAt).Round(time.Millisecond))
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
