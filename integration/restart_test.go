//go:build integration

package integration

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/journal"
)

// outcome is how one Send of TestJournaldRestart ended.
type outcome uint8

const (
	sent         outcome = iota // Send returned nil
	notListening                // journal.ErrNotListening
	noSocket                    // journal.ErrNoSocket
	otherError                  // anything else
)

func (o outcome) String() string {
	return [...]string{"sent", "ErrNotListening", "ErrNoSocket", "another error"}[o]
}

// TestJournaldRestart kills journald with SIGKILL while a goroutine sends
// numbered entries, starts a new one 300 ms later, and checks that the
// Writer reports the gap, counts it, and reaches the new journald with
// nothing to reopen.
func TestJournaldRestart(t *testing.T) {
	ident := uniqueIdent(t)
	w := newWriter(t, journal.WriterOptions{SyslogIdentifier: ident})
	keepSystemJournald(t) // whatever happens, for the tests after this one

	run := sendThroughRestart(t, w)
	total := int64(len(run.outcomes))
	counts := make(map[outcome]uint64)
	for _, o := range run.outcomes {
		counts[o]++
	}
	t.Logf("%d sends: %d sent, %d ErrNotListening, %d ErrNoSocket, %d other errors; "+
		"killed at send %d, gap %d–%d, new journald up at send %d",
		total, counts[sent], counts[notListening], counts[noSocket], counts[otherError],
		run.afterKill, run.afterKill, run.beforeStart, run.upAt)
	for i, err := range run.otherErrs {
		if i == 5 {
			break
		}
		t.Errorf("Send: unexpected error: %v", err)
	}
	run.checkOutcomes(t)

	// Every outcome is counted, each under its own error.
	st := w.Stats()
	if st.Entries != counts[sent] || st.Errors.NotListening != counts[notListening] ||
		st.Errors.NoSocket != counts[noSocket] {
		t.Errorf("Stats() = %+v, want %d entries, %d NotListening, %d NoSocket",
			st, counts[sent], counts[notListening], counts[noSocket])
	}
	if got := st.Entries + st.Errors.Total(); got != uint64(total) {
		t.Errorf("Stats(): Entries + Errors.Total() = %d, want %d, the number of Send calls", got, total)
	}

	run.checkJournal(t, ident)
}

// sendRun is what sendThroughRestart did. Send number seq was begun
// when started > seq and had returned when finished > seq.
type sendRun struct {
	outcomes    []outcome // by seq
	otherErrs   []error
	afterKill   int64 // sends from here on cannot reach the old journald: its socket was closed when it died
	beforeStart int64 // sends up to here ended before the new journald was started: the gap
	upAt        int64 // sends from here on began with the new socket up
}

// sendThroughRestart has a goroutine send numbered entries through w
// while journald is killed, and 300 ms later started again.
func sendThroughRestart(t *testing.T, w *journal.Writer) sendRun {
	var (
		started, finished atomic.Int64
		stop              atomic.Bool
		wg                sync.WaitGroup
		run               sendRun // the sender's until it has stopped
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := 0; !stop.Load(); seq++ {
			started.Store(int64(seq) + 1)
			err := w.Send("numbered entry", journal.PriInfo,
				journal.Field{Name: "SEQ", Value: strconv.AppendInt(nil, int64(seq), 10)})
			o := outcomeOf(err)
			if o == otherError {
				run.otherErrs = append(run.otherErrs, err)
			}
			run.outcomes = append(run.outcomes, o)
			finished.Store(int64(seq) + 1)
		}
	}()
	stopSender := func() {
		stop.Store(true)
		wg.Wait()
	}
	defer stopSender() // on t.Fatal; a no-op after the call below

	time.Sleep(300 * time.Millisecond) // mid-stream
	if err := systemJournald.kill(); err != nil {
		t.Fatal(err)
	}
	afterKill := started.Load()
	time.Sleep(300 * time.Millisecond)
	beforeStart := finished.Load()
	startSystemJournald(t)
	upAt := started.Load()
	time.Sleep(time.Second)
	stopSender()
	run.afterKill, run.beforeStart, run.upAt = afterKill, beforeStart, upAt
	return run
}

// outcomeOf says how a Send ended, by the error it returned.
func outcomeOf(err error) outcome {
	switch {
	case err == nil:
		return sent
	case errors.Is(err, journal.ErrNotListening) && errors.Is(err, journal.ErrUnavailable) &&
		errors.Is(err, syscall.ECONNREFUSED):
		return notListening
	case errors.Is(err, journal.ErrNoSocket) && errors.Is(err, journal.ErrUnavailable):
		return noSocket
	}
	return otherError
}

// checkOutcomes checks that every send of the gap failed as unavailable,
// that there were some, and that sends succeeded again once the new
// journald was up.
func (run sendRun) checkOutcomes(t *testing.T) {
	if run.beforeStart-run.afterKill < 10 {
		t.Errorf("only %d sends in the 300 ms without journald", run.beforeStart-run.afterKill)
	}
	for seq := run.afterKill; seq < run.beforeStart; seq++ {
		if o := run.outcomes[seq]; o != notListening && o != noSocket {
			t.Errorf("send %d, with no journald running, ended as %v, want ErrNotListening or ErrNoSocket", seq, o)
			break
		}
	}
	var sentAfterUp int
	for _, o := range run.outcomes[run.upAt:] {
		if o == sent {
			sentAfterUp++
		}
	}
	if sentAfterUp == 0 {
		t.Errorf("no send succeeded in the second after the new journald was up")
	}
}

// checkJournal checks that every entry sent after the old journald died
// went to the new one and is in the journal, and that no failed send is.
// Entries the old one had not read from its socket when it was killed are
// lost, as they are with libsystemd: they are only counted.
func (run sendRun) checkJournal(t *testing.T, ident string) {
	total := int64(len(run.outcomes))
	mustHave := 0
	for seq := run.afterKill; seq < total; seq++ {
		if run.outcomes[seq] == sent {
			mustHave++
		}
	}
	var inJournal map[int64]int
	entries := waitJournal(t, query{ident: ident, fields: []string{"SEQ"}}, 30*time.Second,
		func(es []entry) bool {
			inJournal, _ = seqCounts(es)
			n := 0
			for seq := run.afterKill; seq < total; seq++ {
				if run.outcomes[seq] == sent && inJournal[seq] > 0 {
					n++
				}
			}
			return n == mustHave
		})
	inJournal, bad := seqCounts(entries)
	t.Logf("journal holds %d entries", len(entries))
	if bad > 0 {
		t.Errorf("%d entries in the journal have no valid SEQ", bad)
	}
	var lostBefore, missingAfter, failedButStored, dup int
	for seq := range total {
		n := inJournal[seq]
		if n > 1 {
			dup++
		}
		switch o := run.outcomes[seq]; {
		case o != sent && n > 0:
			failedButStored++
		case o == sent && n == 0 && seq < run.afterKill:
			lostBefore++
		case o == sent && n == 0:
			if missingAfter++; missingAfter <= 5 {
				t.Errorf("send %d returned nil after the old journald died, but the entry is not in the journal", seq)
			}
		}
	}
	for seq := range inJournal {
		if seq < 0 || seq >= total {
			t.Errorf("the journal has SEQ=%d, which was never sent", seq)
		}
	}
	for _, c := range []struct {
		n    int
		what string
	}{
		{missingAfter, "of " + strconv.Itoa(mustHave) + " entries sent to the new journald are not in the journal"},
		{failedButStored, "entries whose Send failed are in the journal"},
		{dup, "entries are in the journal more than once"},
	} {
		if c.n > 0 {
			t.Errorf("%d %s", c.n, c.what)
		}
	}
	t.Logf("%d entries that Send had handed to the killed journald were lost with it", lostBefore)
}

// seqCounts counts the entries of each SEQ, and those without a valid one.
func seqCounts(entries []entry) (counts map[int64]int, bad int) {
	counts = make(map[int64]int, len(entries))
	for _, e := range entries {
		v, err := e.Value("SEQ")
		if err != nil {
			bad++
			continue
		}
		seq, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			bad++
			continue
		}
		counts[seq]++
	}
	return counts, bad
}
