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
	t.Cleanup(func() {
		// Whatever happened, leave a journald for the tests after this one.
		if !listening(journal.DefaultSocketPath) {
			j, err := startJournald("")
			if err != nil {
				t.Error(err)
				return
			}
			systemJournald = j
		}
	})

	// The sender: Send number seq is begun when started > seq and has
	// returned when finished > seq.
	var (
		started, finished atomic.Int64
		stop              atomic.Bool
		outcomes          []outcome // the sender's until it has stopped
		otherErrs         []error
		wg                sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := 0; !stop.Load(); seq++ {
			started.Store(int64(seq) + 1)
			err := w.Send("numbered entry", journal.PriInfo,
				journal.Field{Name: "SEQ", Value: strconv.AppendInt(nil, int64(seq), 10)})
			o := sent
			switch {
			case err == nil:
			case errors.Is(err, journal.ErrNotListening) && errors.Is(err, journal.ErrUnavailable) &&
				errors.Is(err, syscall.ECONNREFUSED):
				o = notListening
			case errors.Is(err, journal.ErrNoSocket) && errors.Is(err, journal.ErrUnavailable):
				o = noSocket
			default:
				o = otherError
				otherErrs = append(otherErrs, err)
			}
			outcomes = append(outcomes, o)
			finished.Store(int64(seq) + 1)
		}
	}()
	stopSender := func() {
		stop.Store(true)
		wg.Wait()
	}
	defer stopSender() // on t.Fatal; a no-op after the call below

	time.Sleep(300 * time.Millisecond) // mid-stream

	old := systemJournald
	if err := old.kill(); err != nil {
		t.Fatal(err)
	}
	// Sends from here on cannot reach the old journald: its socket was
	// closed when it died.
	afterKill := started.Load()
	time.Sleep(300 * time.Millisecond)
	// Sends up to here ended before the new journald was started: the gap.
	beforeStart := finished.Load()
	j, err := startJournald("")
	if err != nil {
		t.Fatal(err)
	}
	systemJournald = j
	upAt := started.Load() // sends from here on began with the new socket up
	time.Sleep(time.Second)
	stopSender()

	total := int64(len(outcomes))
	counts := make(map[outcome]uint64)
	for _, o := range outcomes {
		counts[o]++
	}
	t.Logf("%d sends: %d sent, %d ErrNotListening, %d ErrNoSocket, %d other errors; "+
		"killed at send %d, gap %d–%d, new journald up at send %d",
		total, counts[sent], counts[notListening], counts[noSocket], counts[otherError],
		afterKill, afterKill, beforeStart, upAt)
	for i, err := range otherErrs {
		if i == 5 {
			break
		}
		t.Errorf("Send: unexpected error: %v", err)
	}

	// Every send of the gap failed as unavailable, and there were some.
	if beforeStart-afterKill < 10 {
		t.Errorf("only %d sends in the 300 ms without journald", beforeStart-afterKill)
	}
	for seq := afterKill; seq < beforeStart; seq++ {
		if o := outcomes[seq]; o != notListening && o != noSocket {
			t.Errorf("send %d, with no journald running, ended as %v, want ErrNotListening or ErrNoSocket", seq, o)
			break
		}
	}
	var sentAfterUp int
	for _, o := range outcomes[upAt:] {
		if o == sent {
			sentAfterUp++
		}
	}
	if sentAfterUp == 0 {
		t.Errorf("no send succeeded in the second after the new journald was up")
	}

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

	// Every entry sent after the old journald died went to the new one
	// and is in the journal, and no failed send is. Entries the old one
	// had not read from its socket when it was killed are lost, as they
	// are with libsystemd: they are only counted.
	mustHave := 0
	for seq := afterKill; seq < total; seq++ {
		if outcomes[seq] == sent {
			mustHave++
		}
	}
	var inJournal map[int64]int
	entries := waitJournal(t, query{ident: ident, fields: []string{"SEQ"}}, 30*time.Second,
		func(es []entry) bool {
			inJournal, _ = seqCounts(es)
			n := 0
			for seq := afterKill; seq < total; seq++ {
				if outcomes[seq] == sent && inJournal[seq] > 0 {
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
		switch o := outcomes[seq]; {
		case o != sent && n > 0:
			failedButStored++
		case o == sent && n == 0 && seq < afterKill:
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
	if missingAfter > 0 {
		t.Errorf("%d of %d entries sent to the new journald are not in the journal", missingAfter, mustHave)
	}
	if failedButStored > 0 {
		t.Errorf("%d entries whose Send failed are in the journal", failedButStored)
	}
	if dup > 0 {
		t.Errorf("%d entries are in the journal more than once", dup)
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
