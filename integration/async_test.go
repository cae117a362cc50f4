//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journal"
)

// The asynchronous Writer (journal.WriterOptions.Async) against a real
// journald: many goroutines, a stopped journald, a killed and restarted
// one, and a large entry among small ones.

// asyncMaxDatagram is the most an asynchronous Writer puts in one
// datagram (maxBatchBytes in package journal), for the bound on what a
// killed journald can take with it.
const asyncMaxDatagram = 256 << 10

// TestAsyncManyGoroutines has 8 goroutines send 50,000 entries each
// through one asynchronous Writer that blocks while its queue is full, and
// finds every entry in the journal exactly once, each goroutine's in the
// order its Sends returned.
func TestAsyncManyGoroutines(t *testing.T) {
	const (
		goroutines = 8
		perG       = 50000
		total      = goroutines * perG
	)
	ident := uniqueIdent(t)
	// A long SendTimeout: a journald slowed down by its neighbours makes
	// Sends wait, not fail. Close waits for the queue at most that long.
	w := newWriter(t, journal.WriterOptions{
		SyslogIdentifier: ident,
		SendTimeout:      time.Minute,
		Async:            &journal.AsyncOptions{},
	})

	var wg sync.WaitGroup
	failed := make([]int, goroutines)
	firstErr := make([]error, goroutines)
	start := time.Now()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gv := []byte(strconv.Itoa(g))
			var seq []byte // Send encodes before it returns: reused
			for i := range perG {
				seq = strconv.AppendInt(seq[:0], int64(i), 10)
				err := w.Send("async sender", journal.PriInfo,
					journal.Field{Name: "G", Value: gv}, journal.Field{Name: "SEQ", Value: seq})
				if err != nil {
					if failed[g] == 0 {
						firstErr[g] = err
					}
					failed[g]++
				}
			}
		}()
	}
	wg.Wait()
	queuedIn := time.Since(start)
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sentIn := time.Since(start)
	st := w.Stats()
	t.Logf("%d entries queued in %v, in journald's socket after Close in %v (%.0f entries/s)",
		total, queuedIn.Round(time.Millisecond), sentIn.Round(time.Millisecond), total/sentIn.Seconds())
	t.Logf("%d datagrams (%.1f entries each); datagrams by entries 1, 2-3, 4-7, ..., 128+: %v",
		st.Datagrams, float64(st.Entries)/float64(max(st.Datagrams, 1)), st.Batches)
	for g := range goroutines {
		if failed[g] > 0 {
			t.Errorf("goroutine %d: %d of %d Send calls failed, the first with: %v", g, failed[g], perG, firstErr[g])
		}
	}
	if st.Entries != total || st.Errors.Total() != 0 || st.Dropped != 0 {
		t.Errorf("Stats() = %+v, want %d entries, no errors and nothing dropped", st, total)
	}
	// journald 253 and later keep only the first entry of a datagram
	// that carries several (the README's support table): the Writer
	// batches only for 252 and older.
	if batches := journaldVersion <= 252; batches && (st.Datagrams == 0 || st.Datagrams >= st.Entries/4) {
		t.Errorf("%d datagrams for %d entries: the Writer did not batch for systemd %d", st.Datagrams, st.Entries, journaldVersion)
	} else if !batches && st.Datagrams != st.Entries {
		t.Errorf("%d datagrams for %d entries: the Writer batched for systemd %d, which keeps one entry a datagram", st.Datagrams, st.Entries, journaldVersion)
	}

	syncJournal(t)
	start = time.Now()
	entries := waitJournal(t, query{ident: ident, fields: []string{"G", "SEQ"}}, time.Minute,
		func(es []entry) bool { return len(es) >= total })
	t.Logf("read %d entries back in %v", len(entries), time.Since(start).Round(time.Millisecond))

	// journalctl lists entries in the order journald stored them: each
	// goroutine's SEQ must increase.
	var seen [goroutines][perG]int
	last := [goroutines]int{-1, -1, -1, -1, -1, -1, -1, -1}
	bad, disorder := 0, 0
	for i, e := range entries {
		g, seq, err := gSeq(e)
		if err != nil || g < 0 || g >= goroutines || seq < 0 || seq >= perG {
			if bad++; bad <= 5 {
				t.Errorf("journal entry %d: G=%q SEQ=%q: %v", i, e["G"], e["SEQ"], err)
			}
			continue
		}
		if seq <= last[g] {
			if disorder++; disorder <= 5 {
				t.Errorf("journal entry %d: G=%d SEQ=%d comes after SEQ=%d", i, g, seq, last[g])
			}
		}
		last[g] = seq
		seen[g][seq]++
	}
	missing, dup := countSeqs(t, goroutines, perG, func(g, seq int) int { return seen[g][seq] })
	if missing+dup+bad+disorder > 0 {
		t.Errorf("of %d entries sent: %d missing, %d duplicated, %d out of order, %d unexpected; journal holds %d",
			total, missing, dup, disorder, bad, len(entries))
	}
}

// TestAsyncStoppedJournald stops journald with SIGSTOP under an
// asynchronous Writer: its queue fills, and then Send times out (Block)
// or drops at once (OnFullDropNewest). Once journald reads again, every entry
// that Send queued is in the journal, and none that it refused.
func TestAsyncStoppedJournald(t *testing.T) {
	t.Run("Block", testAsyncStoppedBlock)
	t.Run("OnFullDropNewest", testAsyncStoppedDropNewest)
}

// gsKey names an entry by goroutine and number.
type gsKey struct{ g, seq int }

func testAsyncStoppedBlock(t *testing.T) {
	const (
		goroutines = 4
		timeout    = 500 * time.Millisecond
		// The most a Send may take: the margin is for a machine busy
		// with other tests, under the race detector.
		bound = timeout + 1500*time.Millisecond
		// Per goroutine: journald's socket (10 datagrams of up to 256 KiB)
		// and the 4 MiB queue hold some 7,000 entries of 1 KiB; far more
		// going through would mean journald still reads.
		maxSends = 100000
	)
	ident := uniqueIdent(t)
	w := newWriter(t, journal.WriterOptions{
		SyslogIdentifier: ident,
		SendTimeout:      timeout,
		Async:            &journal.AsyncOptions{},
	})
	pad := journal.Field{Name: "PAD", Value: bytes.Repeat([]byte("p"), 1<<10)}
	resume := stopSystemJournald(t)
	defer resume()

	// Each goroutine sends until a Send times out.
	type result struct {
		ok       []int
		timedOut []int
		slow     []time.Duration // Sends that took longer than bound
		early    []time.Duration // ErrTimeout before SendTimeout
		err      error           // an error other than ErrTimeout
	}
	results := make([]result, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[g]
			gv := []byte(strconv.Itoa(g))
			for seq := 0; seq < maxSends; seq++ {
				start := time.Now()
				err := w.Send("sent to a stopped journald", journal.PriInfo, journal.Field{Name: "G", Value: gv},
					journal.Field{Name: "SEQ", Value: strconv.AppendInt(nil, int64(seq), 10)}, pad)
				took := time.Since(start)
				if took > bound {
					r.slow = append(r.slow, took)
				}
				switch {
				case err == nil:
					r.ok = append(r.ok, seq)
				case errors.Is(err, journal.ErrTimeout):
					if took < timeout*3/4 {
						r.early = append(r.early, took)
					}
					r.timedOut = append(r.timedOut, seq)
					return
				default:
					r.err = err
					return
				}
			}
		}()
	}
	wg.Wait()

	want := make(map[gsKey]bool) // true: Send returned nil; false: ErrTimeout
	timeouts := 0
	for g, r := range results {
		if r.err != nil {
			t.Errorf("goroutine %d: Send to a stopped journald: %v, want nil or ErrTimeout", g, r.err)
		}
		if len(r.timedOut) == 0 && r.err == nil {
			t.Errorf("goroutine %d: %d Sends went through to a stopped journald, none timed out", g, len(r.ok))
		}
		if len(r.slow) > 0 {
			t.Errorf("goroutine %d: %d Sends took longer than %v (SendTimeout %v): %v", g, len(r.slow), bound, timeout, r.slow)
		}
		if len(r.early) > 0 {
			t.Errorf("goroutine %d: ErrTimeout after %v, before SendTimeout %v", g, r.early, timeout)
		}
		for _, seq := range r.ok {
			want[gsKey{g, seq}] = true
		}
		for _, seq := range r.timedOut {
			want[gsKey{g, seq}] = false
		}
		timeouts += len(r.timedOut)
	}
	queued := len(want) - timeouts
	t.Logf("%d entries queued, %d Sends timed out", queued, timeouts)

	resume()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("Flush after SIGCONT: %v", err)
	}
	t.Logf("Flush after SIGCONT took %v", time.Since(start).Round(time.Millisecond))
	if st := w.Stats(); st.Entries != uint64(queued) || st.Errors.Timeout != uint64(timeouts) ||
		st.Errors.Total() != uint64(timeouts) || st.Dropped != 0 {
		t.Errorf("Stats() = %+v, want %d entries and %d errors, all Timeout", st, queued, timeouts)
	}

	got := waitJournalKeys(t, ident, queued)
	checkJournalKeys(t, got, want)
}

// waitJournalKeys waits until the journal has n entries of ident with G
// and SEQ, and counts them by G and SEQ.
func waitJournalKeys(t *testing.T, ident string, n int) map[gsKey]int {
	t.Helper()
	syncJournal(t)
	entries := waitJournal(t, query{ident: ident, fields: []string{"G", "SEQ"}}, 30*time.Second,
		func(es []entry) bool { return len(es) >= n })
	got := make(map[gsKey]int, len(entries))
	for i, e := range entries {
		g, seq, err := gSeq(e)
		if err != nil {
			t.Errorf("journal entry %d: %v", i, err)
			continue
		}
		got[gsKey{g, seq}]++
	}
	return got
}

// checkJournalKeys checks that the journal (got) has each entry of want
// once if true (Send returned nil), not at all if false, and no other.
func checkJournalKeys(t *testing.T, got map[gsKey]int, want map[gsKey]bool) {
	t.Helper()
	var missing, dup, refusedStored, unknown int
	for k, ok := range want {
		switch n := got[k]; {
		case ok && n == 0:
			if missing++; missing <= 5 {
				t.Errorf("G=%d SEQ=%d: Send returned nil, but the entry is not in the journal", k.g, k.seq)
			}
		case ok && n > 1:
			if dup++; dup <= 5 {
				t.Errorf("G=%d SEQ=%d is in the journal %d times", k.g, k.seq, n)
			}
		case !ok && n > 0:
			if refusedStored++; refusedStored <= 5 {
				t.Errorf("G=%d SEQ=%d: Send failed, but the entry is in the journal", k.g, k.seq)
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			if unknown++; unknown <= 5 {
				t.Errorf("the journal has G=%d SEQ=%d, which was never sent", k.g, k.seq)
			}
		}
	}
	if missing+dup+refusedStored+unknown > 0 {
		t.Errorf("%d entries missing, %d duplicated, %d refused but stored, %d never sent", missing, dup, refusedStored, unknown)
	}
}

func testAsyncStoppedDropNewest(t *testing.T) {
	const (
		goroutines  = 4
		perG        = 1000
		queueBytes  = 64 << 10
		sendTimeout = 10 * time.Second
		// A Send that finds the queue full drops at once, far from
		// waiting SendTimeout; the bound is scheduling under the race
		// detector on a machine busy with other tests.
		bound = time.Second
	)
	ident := uniqueIdent(t)
	w := newWriter(t, journal.WriterOptions{
		SyslogIdentifier: ident,
		SendTimeout:      sendTimeout,
		Async:            &journal.AsyncOptions{QueueBytes: queueBytes, OnFull: journal.OnFullDropNewest},
	})
	pad := journal.Field{Name: "PAD", Value: bytes.Repeat([]byte("p"), 1<<10)}
	resume := stopSystemJournald(t)
	defer resume()

	type result struct {
		ok, dropped []int
		slowest     time.Duration
		err         error
	}
	results := make([]result, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[g]
			gv := []byte(strconv.Itoa(g))
			for seq := range perG {
				start := time.Now()
				err := w.Send("maybe dropped", journal.PriInfo, journal.Field{Name: "G", Value: gv},
					journal.Field{Name: "SEQ", Value: strconv.AppendInt(nil, int64(seq), 10)}, pad)
				r.slowest = max(r.slowest, time.Since(start))
				switch {
				case err == nil:
					r.ok = append(r.ok, seq)
				case errors.Is(err, journal.ErrDropped):
					r.dropped = append(r.dropped, seq)
				default:
					r.err = err
					return
				}
			}
		}()
	}
	wg.Wait()

	want := make(map[gsKey]bool)
	dropped := 0
	for g, r := range results {
		if r.err != nil {
			t.Errorf("goroutine %d: Send: %v, want nil or ErrDropped", g, r.err)
		}
		if r.slowest > bound {
			t.Errorf("goroutine %d: a OnFullDropNewest Send took %v", g, r.slowest)
		}
		for _, seq := range r.ok {
			want[gsKey{g, seq}] = true
		}
		for _, seq := range r.dropped {
			want[gsKey{g, seq}] = false
		}
		dropped += len(r.dropped)
	}
	queued := len(want) - dropped
	var slowest time.Duration
	for _, r := range results {
		slowest = max(slowest, r.slowest)
	}
	t.Logf("%d entries queued, %d dropped; the slowest Send took %v", queued, dropped, slowest)
	if dropped == 0 {
		t.Fatal("nothing was dropped: journald read while stopped?")
	}
	if st := w.Stats(); st.Dropped != uint64(dropped) {
		t.Errorf("Stats().Dropped = %d, %d Sends returned ErrDropped", st.Dropped, dropped)
	}

	resume()
	// The Writer queues a report each time its sender has made room after
	// drops, so there may be several; each Flush delivers those queued
	// before it.
	q := query{ident: ident, fields: []string{"G", "SEQ", "MESSAGE", "MESSAGE_ID", "NEWSTYLE_DROPPED", "PRIORITY"}}
	entries := flushUntilJournal(t, w.Flush, q, func(es []entry) bool {
		sum := sumDropReports(es)
		return sum.dropped >= dropped && len(es)-sum.reports >= queued
	})
	sum := checkDropReports(t, entries)
	got := make(map[gsKey]int)
	for i, e := range entries {
		if e.Get("MESSAGE_ID") == journal.DroppedMessageID {
			continue
		}
		g, seq, err := gSeq(e)
		if err != nil {
			t.Errorf("journal entry %d: %v", i, err)
			continue
		}
		got[gsKey{g, seq}]++
	}
	checkJournalKeys(t, got, want)
	st := w.Stats()
	t.Logf("%d drop reports in the journal, of %v dropped entries; Stats() = %+v", sum.reports, sum.counts, st)
	if sum.dropped != dropped {
		t.Errorf("the drop reports in the journal count %d entries (%v), %d Sends returned ErrDropped",
			sum.dropped, sum.counts, dropped)
	}
	if st.Dropped != uint64(dropped) || st.Entries != uint64(queued) || st.Reports != uint64(sum.reports) || st.Errors.Total() != 0 {
		t.Errorf("Stats() = %+v, want %d dropped, %d entries and %d reports, no errors",
			st, dropped, queued, sum.reports)
	}
}

// dropReports sums the drop reports (MESSAGE_ID=journal.DroppedMessageID)
// among journal entries.
type dropReports struct {
	reports int
	dropped int   // their NEWSTYLE_DROPPED, added up
	counts  []int // each one's
}

func sumDropReports(entries []entry) dropReports {
	var s dropReports
	for _, e := range entries {
		if e.Get("MESSAGE_ID") != journal.DroppedMessageID {
			continue
		}
		n, _ := strconv.Atoi(e.Get("NEWSTYLE_DROPPED"))
		s.reports++
		s.dropped += n
		s.counts = append(s.counts, n)
	}
	return s
}

// checkDropReports is sumDropReports, which also checks each report's
// fields.
func checkDropReports(t *testing.T, entries []entry) dropReports {
	t.Helper()
	for _, e := range entries {
		if e.Get("MESSAGE_ID") != journal.DroppedMessageID {
			continue
		}
		v, err := e.Value("NEWSTYLE_DROPPED")
		n, nerr := strconv.Atoi(v)
		if err != nil || nerr != nil || n <= 0 {
			t.Errorf("drop report %v: NEWSTYLE_DROPPED is not a count", e)
			continue
		}
		if p := e.Get("PRIORITY"); p != "4" {
			t.Errorf("drop report %v: PRIORITY=%s, want 4", e, p)
		}
		if m := e.Get("MESSAGE"); !strings.Contains(m, v+" entries dropped") {
			t.Errorf("drop report %v: MESSAGE does not say %s entries dropped", e, v)
		}
	}
	return sumDropReports(entries)
}

// flushUntilJournal flushes the Writer (flush) and reads the journal for
// q until done accepts the entries read, for at most 30 s, and returns the
// last entries read. A drop report is queued once the sender has made room
// or delivered something after the drops, which may be after a Flush has
// returned: each Flush sends those queued before it.
func flushUntilJournal(t *testing.T, flush func(context.Context) error, q query, done func([]entry) bool) []entry {
	t.Helper()
	var entries []entry
	testutil.Poll(30*time.Second, 50*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := flush(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Flush: %v", err)
		}
		syncJournal(t)
		if entries, err = readJournal(q); err != nil {
			t.Fatal(err)
		}
		return done(entries)
	})
	return entries
}

// readSyncedJournal reads the journal for q once journald has stored all
// it took (journalctl --sync) and two readings find as many entries: an
// older journald's --sync need not wait for the datagrams still in its
// socket.
func readSyncedJournal(t *testing.T, q query) []entry {
	t.Helper()
	syncJournal(t)
	prev := -1
	return waitJournal(t, q, 10*time.Second, func(es []entry) bool {
		stable := len(es) == prev
		prev = len(es)
		return stable
	})
}

// untilRestartDone is the condition of flushUntilJournal after
// burstThroughRestart: every entry queued after the new journald listened
// is in the journal, and a drop report.
func untilRestartDone(m restartMarks) func([]entry) bool {
	return func(es []entry) bool {
		inJournal, _ := restartJournalSeqs(es)
		for seq := m.upAt; seq < m.total; seq++ {
			if inJournal[seq] == 0 {
				return false
			}
		}
		return sumDropReports(es).reports > 0
	}
}

// waitUntil polls cond until it holds, and fails the test if it does not
// within timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !testutil.Poll(timeout, 2*time.Millisecond, cond) {
		t.Fatalf("no %s within %v", what, timeout)
	}
}

// restartMarks is the timeline of burstThroughRestart, in send numbers:
// sends numbered afterKill and later began after the old journald was
// dead, upAt and later after the new one listened; total were made.
type restartMarks struct {
	afterKill, upAt, total int64
}

// burstThroughRestart calls send with numbers 0, 1, 2, ... in bursts of 20
// a millisecond from one goroutine while it kills systemJournald with
// SIGKILL, waits until undelivered reports entries that did not reach it,
// starts a new journald (stored in systemJournald), and lets 5,000 more go.
// It returns the errors of the sends, by number.
func burstThroughRestart(t *testing.T, send func(seq int64) error, undelivered func() int) (restartMarks, []error) {
	t.Helper()
	var (
		started, finished atomic.Int64
		stop              atomic.Bool
		errs              []error // the sender's until done is closed
		done              = make(chan struct{})
	)
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for seq := int64(0); !stop.Load(); <-tick.C {
			for range 20 {
				started.Store(seq + 1)
				errs = append(errs, send(seq))
				finished.Store(seq + 1)
				seq++
			}
		}
	}()
	halt := func() {
		stop.Store(true)
		<-done
	}
	defer halt() // on t.Fatal

	var m restartMarks
	waitUntil(t, 10*time.Second, "5,000 entries before the kill", func() bool { return finished.Load() >= 5000 })
	if err := systemJournald.kill(); err != nil {
		t.Fatal(err)
	}
	m.afterKill = started.Load()
	waitUntil(t, 10*time.Second, "undelivered entry with journald dead", func() bool {
		return undelivered() > 0 && finished.Load() >= m.afterKill+1000
	})
	startSystemJournald(t)
	m.upAt = started.Load()
	waitUntil(t, 20*time.Second, "5,000 entries after the restart", func() bool { return finished.Load() >= m.upAt+5000 })
	halt()
	m.total = int64(len(errs))
	return m, errs
}

// maxLostWithJournald bounds the entries a killed journald can take with
// it: its socket queue (net.unix.max_dgram_qlen datagrams) and one it had
// read, each of at most asyncMaxDatagram bytes of entries no smaller than
// smallest.
func maxLostWithJournald(smallest int) int {
	qlen := 10
	if b, err := os.ReadFile("/proc/sys/net/unix/max_dgram_qlen"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			qlen = n
		}
	}
	return (qlen + 1) * (asyncMaxDatagram / smallest)
}

// checkRestartAccounts checks where each numbered entry of
// burstThroughRestart went: into the journal (inJournal) or, undelivered,
// elsewhere, each once; those in neither were taken by the killed journald
// (sent before it died, at most maxLost); every one queued after the new
// journald listened is in the journal. It returns how many were lost.
func checkRestartAccounts(t *testing.T, m restartMarks, inJournal, elsewhere map[int64]int, maxLost int) (lost int) {
	t.Helper()
	var lostAfterKill, missingAfterUp, dupJournal, dupElsewhere, both []int64
	firstLost, lastLost := int64(-1), int64(-1)
	for seq := range m.total {
		nj, ne := inJournal[seq], elsewhere[seq]
		switch {
		case nj == 0 && ne == 0:
			lost++
			if firstLost < 0 {
				firstLost = seq
			}
			lastLost = seq
			if seq >= m.afterKill {
				lostAfterKill = append(lostAfterKill, seq)
			}
		case nj > 0 && ne > 0:
			both = append(both, seq)
		}
		if seq >= m.upAt && nj == 0 {
			missingAfterUp = append(missingAfterUp, seq)
		}
		if nj > 1 {
			dupJournal = append(dupJournal, seq)
		}
		if ne > 1 {
			dupElsewhere = append(dupElsewhere, seq)
		}
	}
	for _, seqs := range []map[int64]int{inJournal, elsewhere} {
		for seq := range seqs {
			if seq < 0 || seq >= m.total {
				t.Errorf("entry SEQ=%d was never sent", seq)
			}
		}
	}
	lostSeqs := ""
	if lost > 0 {
		lostSeqs = fmt.Sprintf(", SEQ %d to %d", firstLost, lastLost)
	}
	t.Logf("%d entries: journald killed at %d, new one up at %d; %d in the journal, %d undelivered, "+
		"%d lost with the killed journald (at most %d could be%s)",
		m.total, m.afterKill, m.upAt, len(inJournal), len(elsewhere), lost, maxLost, lostSeqs)
	if len(elsewhere) == 0 {
		t.Errorf("no entry was undelivered: the Writer never sent to the dead journald")
	}
	if lost > maxLost {
		t.Errorf("%d entries are lost, more than the killed journald can have held (%d)", lost, maxLost)
	}
	if len(lostAfterKill) > 0 {
		t.Errorf("%d entries sent after journald was killed are neither in the journal nor undelivered: %v",
			len(lostAfterKill), firstSeqs(lostAfterKill, 20))
	}
	if len(missingAfterUp) > 0 {
		t.Errorf("%d entries queued after the new journald listened are not in the journal: %v",
			len(missingAfterUp), firstSeqs(missingAfterUp, 20))
	}
	if len(dupJournal) > 0 {
		t.Errorf("%d entries are in the journal more than once: %v", len(dupJournal), firstSeqs(dupJournal, 20))
	}
	if len(dupElsewhere) > 0 {
		t.Errorf("%d entries were undelivered more than once: %v", len(dupElsewhere), firstSeqs(dupElsewhere, 20))
	}
	if len(both) > 0 {
		t.Errorf("%d entries are both in the journal and undelivered: %v", len(both), firstSeqs(both, 20))
	}
	return lost
}

// fieldValue returns the value of the first field called name, or "".
func fieldValue(fields []journal.Field, name string) string {
	for _, f := range fields {
		if f.Name == name {
			return string(f.Value)
		}
	}
	return ""
}

// TestAsyncJournaldRestart kills journald with SIGKILL under an
// asynchronous Writer that sends numbered entries, and starts a new one:
// what the Writer could not deliver is counted, given to OnUndelivered
// (by the root package's logger, to stdout) and reported in the journal
// once journald is back; all else is in the journal, but what the killed
// journald had taken into its socket.
func TestAsyncJournaldRestart(t *testing.T) {
	keepSystemJournald(t)
	t.Run("Writer", testAsyncRestartWriter)
	t.Run("Logger", testAsyncRestartLogger)
	t.Run("Idle", testAsyncRestartIdle)
}

const restartMsg = "numbered entry"

func testAsyncRestartWriter(t *testing.T) {
	ident := uniqueIdent(t)
	var (
		calls       atomic.Int64 // OnUndelivered
		mu          sync.Mutex
		undelivered = make(map[int64]int) // by SEQ
		reports     int                   // undelivered drop reports
		wrong       []string              // calls with unexpected arguments
	)
	opts := journal.AsyncOptions{
		OnUndelivered: func(msg string, pri journal.Priority, fields []journal.Field, err error) {
			calls.Add(1)
			mu.Lock()
			defer mu.Unlock()
			if !errors.Is(err, journal.ErrUnavailable) {
				wrong = append(wrong, "error "+err.Error())
			}
			if fieldValue(fields, "MESSAGE_ID") == journal.DroppedMessageID {
				reports++
				return
			}
			seq, perr := strconv.ParseInt(fieldValue(fields, "SEQ"), 10, 64)
			if perr != nil || msg != restartMsg || pri != journal.PriInfo || fieldValue(fields, "SYSLOG_IDENTIFIER") != ident {
				wrong = append(wrong, msg)
				return
			}
			undelivered[seq]++
		},
	}
	w := newWriter(t, journal.WriterOptions{SyslogIdentifier: ident, SendTimeout: 10 * time.Second, Async: &opts})
	var seqBuf []byte // only the sender's goroutine sends
	m, errs := burstThroughRestart(t, func(seq int64) error {
		seqBuf = strconv.AppendInt(seqBuf[:0], seq, 10)
		return w.Send(restartMsg, journal.PriInfo, journal.Field{Name: "SEQ", Value: seqBuf})
	}, func() int { return int(calls.Load()) })
	failed := 0
	for seq, err := range errs {
		if err != nil {
			if failed++; failed <= 5 {
				t.Errorf("Send %d: %v", seq, err)
			}
		}
	}
	q := query{ident: ident, fields: []string{"SEQ", "MESSAGE", "MESSAGE_ID", "NEWSTYLE_DROPPED", "PRIORITY"}}
	flushUntilJournal(t, w.Flush, q, untilRestartDone(m))
	if err := w.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	st := w.Stats()
	mu.Lock()
	defer mu.Unlock()
	for i, s := range wrong {
		if i == 5 {
			break
		}
		t.Errorf("OnUndelivered called with an unexpected entry or error: %s", s)
	}
	t.Logf("OnUndelivered: %d calls, %d of them drop reports; Stats() = %+v", calls.Load(), reports, st)
	if st.Errors.Total() != uint64(calls.Load()) ||
		st.Errors.NotListening+st.Errors.NoSocket != st.Errors.Total() {
		t.Errorf("Stats().Errors = %+v, want %d, all NotListening or NoSocket: OnUndelivered was called %d times",
			st.Errors, calls.Load(), calls.Load())
	}

	// The journal after Close, which sent whatever was left.
	entries := readSyncedJournal(t, q)
	inJournal, bad := restartJournalSeqs(entries)
	for i, e := range bad {
		if i == 5 {
			break
		}
		t.Errorf("journal entry neither numbered nor a drop report: %v", e)
	}
	lost := checkRestartAccounts(t, m, inJournal, undelivered, maxLostWithJournald(restartEntrySize(ident)))

	// Stats().Entries and Reports count the records and the drop reports
	// journald's socket took, those lost with the killed one included.
	sum := checkDropReports(t, entries)
	t.Logf("drop reports in the journal: %v", sum.counts)
	if want := uint64(len(inJournal) + lost + sum.reports); st.Entries+st.Reports != want || st.Reports < uint64(sum.reports) {
		t.Errorf("Stats().Entries + Reports = %d + %d, want %d: %d in the journal, %d lost with the killed journald, %d drop reports",
			st.Entries, st.Reports, want, len(inJournal), lost, sum.reports)
	}
	checkReportsCountUndelivered(t, sum, int(calls.Load()), len(undelivered), reports)
}

// checkReportsCountUndelivered checks that the drop reports in the journal
// add up to the entries the Writer could not deliver: calls entries (to
// OnUndelivered), records numbered ones and reports drop reports of its
// own. An undelivered report is an entry lost like any other (Stats counts
// it so); a report that leaves it out, and counts the records only, is
// right too. Either way, no record may go unreported.
func checkReportsCountUndelivered(t *testing.T, sum dropReports, calls, records, reports int) {
	t.Helper()
	if sum.reports == 0 {
		t.Errorf("no drop report in the journal once journald was back; %d entries were undelivered", calls)
		return
	}
	if sum.dropped != calls && sum.dropped != records {
		t.Errorf("the drop reports in the journal count %d entries (%v), but %d were undelivered: "+
			"%d records, and %d drop reports sent while journald was down",
			sum.dropped, sum.counts, calls, records, reports)
	}
}

// restartEntrySize is the size of the smallest numbered entry the Writer
// of testAsyncRestartWriter queues, its separator included.
func restartEntrySize(ident string) int {
	return len("MESSAGE=" + restartMsg + "\nPRIORITY=6\nSYSLOG_IDENTIFIER=" + ident + "\nSEQ=0\n\n")
}

// restartJournalSeqs counts the numbered entries among entries, by SEQ,
// and returns those that are neither numbered nor a drop report.
func restartJournalSeqs(entries []entry) (counts map[int64]int, bad []entry) {
	counts = make(map[int64]int, len(entries))
	for _, e := range entries {
		if e.Get("MESSAGE_ID") == journal.DroppedMessageID {
			continue
		}
		seq, err := strconv.ParseInt(e.Get("SEQ"), 10, 64)
		if err != nil || e.Get("MESSAGE") != restartMsg {
			bad = append(bad, e)
			continue
		}
		counts[seq]++
	}
	return counts, bad
}

func testAsyncRestartLogger(t *testing.T) {
	ident := uniqueIdent(t)
	var (
		stdout testutil.Buffer
		calls  atomic.Int64 // OnUndelivered, which NewHandler calls after its own
	)
	logger := newstyle.NewLogger(&newstyle.Options{
		Target:           newstyle.TargetJournal,
		SyslogIdentifier: ident,
		SendTimeout:      10 * time.Second,
		Async: &journal.AsyncOptions{OnUndelivered: func(string, journal.Priority, []journal.Field, error) {
			calls.Add(1)
		}},
		Stdout: &stdout,
	})
	h := logger.Handler().(*newstyle.Handler)
	if d := h.Detection(); d.Target != newstyle.TargetJournal {
		t.Fatalf("Detection() = %v, want the journal", d)
	}
	t.Cleanup(func() { _ = h.Close() })
	m, _ := burstThroughRestart(t, func(seq int64) error {
		logger.Info(restartMsg, "seq", seq)
		return nil
	}, func() int { return int(calls.Load()) })
	q := query{ident: ident, fields: []string{"SEQ", "MESSAGE", "MESSAGE_ID", "NEWSTYLE_DROPPED", "PRIORITY", "TIME"}}
	flushUntilJournal(t, h.Flush, q, untilRestartDone(m))
	if err := h.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	st, _ := h.JournalStats()

	// Stdout: "<6>numbered entry TIME=... SEQ=N" for each undelivered
	// record (keys are the journal's field names), the drop reports that
	// were undelivered, and, should Send have failed, the switch.
	onStdout := make(map[int64]int)
	var undeliveredRecords, undeliveredReports, switched, switchReports, unexpected int
	for i, line := range stdout.Lines() {
		l, err := testutil.ParseLine(line + "\n")
		attrs := make(map[string]string)
		for _, p := range l.Attrs {
			attrs[p.Key] = p.Value
		}
		switch {
		case err != nil:
		case l.Msg == restartMsg && l.Pri == 6 && attrs["SEQ"] != "" && attrs["TIME"] != "":
			if seq, err := strconv.ParseInt(attrs["SEQ"], 10, 64); err == nil {
				onStdout[seq]++
				undeliveredRecords++
				continue
			}
		case l.Msg == restartMsg && l.Pri == 6 && attrs["seq"] != "":
			// Handle's own way to stdout, after Send failed.
			if seq, err := strconv.ParseInt(attrs["seq"], 10, 64); err == nil {
				onStdout[seq]++
				switched++
				continue
			}
		case attrs["MESSAGE_ID"] == journal.DroppedMessageID && l.Pri == 4 && attrs["NEWSTYLE_DROPPED"] != "":
			undeliveredReports++
			continue
		case strings.HasPrefix(l.Msg, "newstyle: the journal cannot be reached"):
			switchReports++
			continue
		}
		if unexpected++; unexpected <= 5 {
			t.Errorf("stdout line %d: %q (%v)", i+1, line, err)
		}
	}
	t.Logf("stdout: %d undelivered records, %d undelivered drop reports, %d records and %d reports of a switch; "+
		"OnUndelivered: %d calls; Stats() = %+v", undeliveredRecords, undeliveredReports, switched, switchReports, calls.Load(), st)
	if got := undeliveredRecords + undeliveredReports; got != int(calls.Load()) {
		t.Errorf("stdout has %d undelivered entries, OnUndelivered was called %d times", got, calls.Load())
	}
	if st.Errors.Total() != uint64(calls.Load()) {
		t.Errorf("Stats().Errors = %+v, want %d in all", st.Errors, calls.Load())
	}

	entries := readSyncedJournal(t, q)
	inJournal, bad := restartJournalSeqs(entries)
	wayBack := 0
	for _, e := range bad {
		if e.Get("MESSAGE") == "newstyle: the journal can be reached again; logging to it" {
			wayBack++
			continue
		}
		if unexpected++; unexpected <= 5 {
			t.Errorf("journal entry neither a record nor a drop report: %v", e)
		}
	}
	if switched+switchReports+wayBack > 0 {
		t.Logf("the logger switched to stdout: %d records, %d reports on stdout, %d ways back", switched, switchReports, wayBack)
	}
	missingTime := 0
	for _, e := range entries {
		if e.Get("MESSAGE") == restartMsg && !e.Has("TIME") {
			missingTime++
		}
	}
	if missingTime > 0 {
		t.Errorf("%d records in the journal have no TIME field (Async turns TimeField on)", missingTime)
	}
	// A record is smaller as an entry of the Writer's than as the
	// logger's, which adds TIME: the bound holds.
	lost := checkRestartAccounts(t, m, inJournal, onStdout, maxLostWithJournald(restartEntrySize(ident)))
	sum := checkDropReports(t, entries)
	t.Logf("drop reports in the journal: %v", sum.counts)
	if want := uint64(len(inJournal) + lost + sum.reports + wayBack); st.Entries+st.Reports != want || st.Reports < uint64(sum.reports) {
		t.Errorf("Stats().Entries + Reports = %d + %d, want %d: %d in the journal, %d lost with the killed journald, %d drop reports, %d ways back",
			st.Entries, st.Reports, want, len(inJournal), lost, sum.reports, wayBack)
	}
	checkReportsCountUndelivered(t, sum, int(calls.Load()), undeliveredRecords, undeliveredReports)
}

// testAsyncRestartIdle: a few entries that a dead journald did not take,
// then nothing to log for a while. The Writer has one thing left to send,
// the report of the loss; it must not, while journald is down, report
// its failed reports over and over, nor lose the count of the entries on
// the way: the report that reaches the new journald counts them.
func testAsyncRestartIdle(t *testing.T) {
	const (
		lost = 5
		idle = 500 * time.Millisecond // a window to measure, not a barrier
		// A report retried now and then is fine; one a millisecond is not.
		maxIdleCalls = lost + 5
	)
	ident := uniqueIdent(t)
	var calls, reports atomic.Int64
	w := newWriter(t, journal.WriterOptions{SyslogIdentifier: ident, Async: &journal.AsyncOptions{
		OnUndelivered: func(msg string, pri journal.Priority, fields []journal.Field, err error) {
			calls.Add(1)
			if fieldValue(fields, "MESSAGE_ID") == journal.DroppedMessageID {
				reports.Add(1)
			}
		},
	}})
	if err := systemJournald.kill(); err != nil {
		t.Fatal(err)
	}
	send := func(seq int) {
		t.Helper()
		if err := w.Send(restartMsg, journal.PriInfo, journal.StringField("SEQ", strconv.Itoa(seq))); err != nil {
			t.Fatalf("Send %d: %v", seq, err)
		}
	}
	for seq := range lost {
		send(seq)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Flush(ctx); !errors.Is(err, journal.ErrUnavailable) {
		t.Errorf("Flush with journald dead: %v, want ErrUnavailable", err)
	}
	time.Sleep(idle)
	idleCalls, idleReports := calls.Load(), reports.Load()
	startSystemJournald(t)
	send(lost)
	q := query{ident: ident, fields: []string{"SEQ", "MESSAGE", "MESSAGE_ID", "NEWSTYLE_DROPPED", "PRIORITY"}}
	flushUntilJournal(t, w.Flush, q, func(es []entry) bool {
		seqs, _ := restartJournalSeqs(es)
		return seqs[lost] > 0 && sumDropReports(es).reports > 0
	})
	if err := w.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	st := w.Stats()
	t.Logf("in %v idle with journald dead: OnUndelivered called %d times for %d records (%d drop reports); "+
		"in all %d (%d); Stats() = %+v", idle, idleCalls, lost, idleReports, calls.Load(), reports.Load(), st)
	if idleCalls > maxIdleCalls {
		t.Errorf("with journald dead and nothing logged for %v, the Writer sent %d drop reports, "+
			"each a report of the one before that failed", idle, idleReports)
	}
	if st.Errors.Total() != uint64(calls.Load()) {
		t.Errorf("Stats().Errors = %+v, want %d in all", st.Errors, calls.Load())
	}

	entries := readSyncedJournal(t, q)
	seqs, bad := restartJournalSeqs(entries)
	for _, e := range bad {
		t.Errorf("journal entry neither numbered nor a drop report: %v", e)
	}
	for seq := range lost + 1 {
		if want := testutil.Btoi(seq == lost); seqs[int64(seq)] != want {
			t.Errorf("SEQ=%d is in the journal %d times, want %d", seq, seqs[int64(seq)], want)
		}
	}
	sum := checkDropReports(t, entries)
	t.Logf("drop reports in the journal: %v", sum.counts)
	checkReportsCountUndelivered(t, sum, int(calls.Load()), lost, int(reports.Load()))
}

// TestAsyncLargeEntryMidBatch queues a 16 MiB entry among 200 small ones:
// it is too large for a datagram and goes by memfd, whole, between the
// datagrams of its neighbours, which keep their order.
func TestAsyncLargeEntryMidBatch(t *testing.T) {
	tests := []struct {
		name  string
		async journal.AsyncOptions
	}{
		// The queue holds the big entry with its neighbours: the sender
		// takes it in a batch with small ones.
		{"in the queue with others", journal.AsyncOptions{QueueBytes: 64 << 20}},
		// Larger than the default queue (4 MiB): it waits for the queue to
		// empty, and the entries after it for it to be sent.
		{"larger than the queue", journal.AsyncOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const (
				n       = 201
				bigAt   = 100
				bigSize = 16 << 20
			)
			ident := uniqueIdent(t)
			w := newWriter(t, journal.WriterOptions{SyslogIdentifier: ident, SendTimeout: 30 * time.Second, Async: &tt.async})
			big := randomValue(bigSize, false)
			sum := sha256.Sum256(big)
			for seq := range n {
				fields := []journal.Field{{Name: "SEQ", Value: strconv.AppendInt(nil, int64(seq), 10)}}
				if seq == bigAt {
					fields = append(fields, journal.Field{Name: "BIG", Value: big})
				}
				if err := w.Send("a neighbour of a large entry", journal.PriInfo, fields...); err != nil {
					t.Fatalf("Send %d: %v", seq, err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := w.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			st := w.Stats()
			t.Logf("Stats() = %+v", st)
			if st.Entries != n || st.Errors.Total() != 0 {
				t.Errorf("Stats() = %+v, want %d entries and no errors", st, n)
			}
			if st.Memfd != 1 {
				t.Errorf("Stats().Memfd = %d, want 1: the %d-byte entry does not fit in a datagram", st.Memfd, bigSize)
			}

			// Count first without the big value, then read it once.
			syncJournal(t)
			waitJournal(t, query{ident: ident, fields: []string{"SEQ"}}, 30*time.Second,
				func(es []entry) bool { return len(es) >= n })
			entries, err := readJournal(query{ident: ident, fields: []string{"SEQ", "BIG"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != n {
				t.Errorf("journal has %d entries, want %d", len(entries), n)
			}
			for i, e := range entries {
				v, err := e.Value("SEQ")
				if err != nil || v != strconv.Itoa(i) {
					t.Fatalf("journal entry %d: SEQ=%q (%v), want %d", i, v, err, i)
				}
				values := e["BIG"]
				if i != bigAt {
					if len(values) != 0 {
						t.Errorf("journal entry %d has BIG", i)
					}
					continue
				}
				if len(values) != 1 {
					t.Fatalf("the large entry has %d BIG values, want 1", len(values))
				}
				if len(values[0]) != bigSize {
					t.Errorf("BIG is %d bytes, want %d", len(values[0]), bigSize)
				}
				if got := sha256.Sum256(values[0]); got != sum {
					t.Errorf("BIG sha256 = %x, want %x", got, sum)
				}
			}
		})
	}
}
