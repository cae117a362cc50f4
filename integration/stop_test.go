//go:build integration

package integration

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/journal"
)

// TestJournaldStopped stops journald with SIGSTOP, so that it reads
// nothing: once its socket's queue is full, Send must give up after the
// Writer's SendTimeout with ErrTimeout, and work again after SIGCONT.
func TestJournaldStopped(t *testing.T) {
	const (
		timeout = 200 * time.Millisecond
		bound   = 2 * time.Second // the most a timed-out Send may take
		// The queue holds net.unix.max_dgram_qlen (10) datagrams; far
		// more sends going through would mean journald still reads.
		maxQueued = 1000
		afterCont = 20
	)
	ident := uniqueIdent(t)
	w := newWriter(t, journal.WriterOptions{SyslogIdentifier: ident, SendTimeout: timeout})
	seq := 0
	send := func() (time.Duration, error) {
		start := time.Now()
		err := w.Send("entry", journal.PriInfo, journal.Field{Name: "SEQ", Value: strconv.AppendInt(nil, int64(seq), 10)})
		seq++
		return time.Since(start), err
	}

	cont := stopSystemJournald(t)

	// Fill the queue; then sends time out. Two in a row, to see that a
	// timed-out send leaves the Writer as it was.
	var sentWhileStopped []int
	timeouts := 0
	for timeouts < 2 {
		took, err := send()
		switch {
		case err == nil:
			sentWhileStopped = append(sentWhileStopped, seq-1)
			if len(sentWhileStopped) > maxQueued {
				t.Fatalf("%d sends went through to a stopped journald", len(sentWhileStopped))
			}
			continue
		case !errors.Is(err, journal.ErrTimeout):
			t.Fatalf("Send to a stopped journald: %v, want ErrTimeout", err)
		case took >= bound:
			t.Errorf("Send returned ErrTimeout after %v, want less than %v (SendTimeout %v)", took, bound, timeout)
		case took < timeout*3/4:
			t.Errorf("Send returned ErrTimeout after %v, before its SendTimeout of %v", took, timeout)
		}
		t.Logf("Send timed out after %v (%v)", took, err)
		timeouts++
	}
	t.Logf("%d entries queued before sends timed out", len(sentWhileStopped))
	if st := w.Stats(); st.Errors.Timeout != 2 || st.Entries != uint64(len(sentWhileStopped)) || st.Errors.Total() != 2 {
		t.Errorf("Stats() = %+v, want %d entries and 2 errors, both Timeout", st, len(sentWhileStopped))
	}

	cont()
	firstAfter := seq
	for range afterCont {
		if took, err := send(); err != nil {
			t.Fatalf("Send after SIGCONT: %v (after %v)", err, took)
		}
	}
	want := uint64(len(sentWhileStopped) + afterCont)
	if st := w.Stats(); st.Entries != want || st.Errors.Timeout != 2 || st.Errors.Total() != 2 {
		t.Errorf("Stats() = %+v, want %d entries and 2 errors, both Timeout", st, want)
	}

	// The journal has what was queued while journald was stopped, what
	// was sent after, and not the two entries that timed out.
	wantSeqs := append(sentWhileStopped, seqRange(firstAfter, seq)...)
	entries := waitEntries(t, query{ident: ident, fields: []string{"SEQ"}}, len(wantSeqs))
	got, bad := seqCounts(entries)
	if bad > 0 || len(entries) != len(wantSeqs) {
		t.Errorf("journal holds %d entries (%d without a valid SEQ), want %d", len(entries), bad, len(wantSeqs))
	}
	for _, s := range wantSeqs {
		if got[int64(s)] != 1 {
			t.Errorf("entry SEQ=%d is in the journal %d times, want once", s, got[int64(s)])
		}
	}
}

func seqRange(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}
