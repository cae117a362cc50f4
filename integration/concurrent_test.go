//go:build integration

package integration

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/journal"
)

// TestConcurrentSenders has 8 goroutines send 20,000 entries each through
// one Writer, and accounts for every one of them in the journal.
func TestConcurrentSenders(t *testing.T) {
	const (
		goroutines = 8
		perG       = 20000
		total      = goroutines * perG
	)
	ident := uniqueIdent(t)
	// journald takes some 30,000 entries/s here, and a sender waits while
	// its queue is full; a long timeout makes a slow journald no failure.
	w := newWriter(t, journal.WriterOptions{SyslogIdentifier: ident, SendTimeout: time.Minute})

	var wg sync.WaitGroup
	failed := make([]int, goroutines)
	firstErr := make([]error, goroutines)
	start := time.Now()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gv := []byte(strconv.Itoa(g))
			for seq := range perG {
				err := w.Send("concurrent sender", journal.PriInfo,
					journal.Field{Name: "G", Value: gv},
					journal.Field{Name: "SEQ", Value: strconv.AppendInt(nil, int64(seq), 10)})
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
	sendTime := time.Since(start)
	t.Logf("sent %d entries in %v (%.0f entries/s)", total, sendTime, total/sendTime.Seconds())
	for g := range goroutines {
		if failed[g] > 0 {
			t.Errorf("goroutine %d: %d of %d Send calls failed, the first with: %v", g, failed[g], perG, firstErr[g])
		}
	}
	if st := w.Stats(); st.Entries != total || st.Errors.Total() != 0 {
		t.Errorf("Stats() = %+v, want %d entries and no errors", st, total)
	}

	start = time.Now()
	entries := waitJournal(t, query{ident: ident, fields: []string{"G", "SEQ"}}, time.Minute,
		func(es []entry) bool { return len(es) >= total })
	t.Logf("read %d entries back in %v", len(entries), time.Since(start))

	var seen [goroutines][perG]int
	bad := 0
	for _, e := range entries {
		g, seq, err := gSeq(e)
		if err != nil || g >= goroutines || seq >= perG {
			if bad++; bad <= 5 {
				t.Errorf("entry with G=%q SEQ=%q: %v", e["G"], e["SEQ"], err)
			}
			continue
		}
		seen[g][seq]++
	}
	missing, dup := countSeqs(t, goroutines, perG, func(g, seq int) int { return seen[g][seq] })
	if missing+dup+bad > 0 {
		t.Errorf("of %d entries sent: %d missing, %d duplicated, %d unexpected; journal holds %d",
			total, missing, dup, bad, len(entries))
	}
}

// gSeq returns an entry's fields G and SEQ as numbers.
func gSeq(e entry) (g, seq int, err error) {
	gs, err := e.Value("G")
	if err != nil {
		return 0, 0, err
	}
	if g, err = strconv.Atoi(gs); err != nil {
		return 0, 0, err
	}
	ss, err := e.Value("SEQ")
	if err != nil {
		return 0, 0, err
	}
	seq, err = strconv.Atoi(ss)
	return g, seq, err
}
