//go:build linux

package journal

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journaltest"
)

// newAsyncWriter returns an asynchronous Writer that batches as it does
// for a journald 252, whatever the test server's path.
func newAsyncWriter(t *testing.T, path string, timeout time.Duration, a AsyncOptions) *Writer {
	t.Helper()
	w := newTestWriter(t, path, WriterOptions{SendTimeout: timeout, Async: &a})
	sockOf(t, w).q.batch = true
	return w
}

// seqOf reads the G and SEQ fields the tests number their entries with.
func seqOf(t *testing.T, e journaltest.Entry) (g, seq int) {
	t.Helper()
	gs, _ := e.Get("G")
	ss, _ := e.Get("SEQ")
	g, err1 := strconv.Atoi(gs)
	seq, err2 := strconv.Atoi(ss)
	if err1 != nil || err2 != nil {
		t.Fatalf("entry without G and SEQ: %v", e)
	}
	return g, seq
}

// Many goroutines, Block: every entry arrives once, each goroutine's in
// the order its Sends returned, several to a datagram.
func TestAsyncOrderAndCompleteness(t *testing.T) {
	srv := journaltest.NewServer(t, journaltest.Version(252))
	w := newAsyncWriter(t, srv.Path(), 10*time.Second, AsyncOptions{})
	const goroutines, per = 8, 5000
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gv := []byte(strconv.Itoa(g))
			for i := 0; i < per; i++ {
				if err := w.Send("async", PriInfo, Field{Name: "G", Value: gv},
					Field{Name: "SEQ", Value: strconv.AppendInt(nil, int64(i), 10)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := srv.Wait(t, goroutines*per, 20*time.Second)
	next := make([]int, goroutines)
	for _, r := range got {
		g, seq := seqOf(t, r.Entry)
		if seq != next[g] {
			t.Fatalf("goroutine %d: entry %d after %d", g, seq, next[g]-1)
		}
		next[g]++
	}
	if len(got) != goroutines*per {
		t.Errorf("%d entries, want %d", len(got), goroutines*per)
	}
	if err := srv.Err(); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Entries != goroutines*per || st.Errors.Total() != 0 || st.Dropped != 0 {
		t.Errorf("Stats = %+v", st)
	}
	if st.Datagrams >= st.Entries/4 {
		t.Errorf("%d datagrams for %d entries: batching does not work", st.Datagrams, st.Entries)
	}
	t.Logf("%d entries in %d datagrams; by size: %v", st.Entries, st.Datagrams, st.Batches)
}

// A stalled journald, Block: Sends wait at most SendTimeout; once it
// reads again, nothing queued is lost.
func TestAsyncBlockStall(t *testing.T) {
	srv := journaltest.NewServer(t, journaltest.Version(252))
	const timeout = 300 * time.Millisecond
	w := newAsyncWriter(t, srv.Path(), timeout, AsyncOptions{QueueBytes: 64 << 10})
	srv.Pause()
	// Entries of 1 KiB: journald's socket queue takes 10 datagrams of up
	// to 256 KiB before the Writer's queue starts to fill.
	pad := Field{Name: "PAD", Value: bytes.Repeat([]byte("p"), 1<<10)}
	sent, timedOut := 0, 0
	for i := 0; i < 100000 && timedOut < 3; i++ {
		start := time.Now()
		err := w.Send("stalled", PriInfo, Field{Name: "G", Value: []byte("0")}, Field{Name: "SEQ", Value: strconv.AppendInt(nil, int64(i), 10)}, pad)
		if took := time.Since(start); took > timeout+300*time.Millisecond {
			t.Fatalf("Send waited %v, bound %v", took, timeout)
		}
		switch {
		case err == nil:
			if timedOut > 0 {
				t.Fatalf("Send %d queued after a timeout, with journald still stalled", i)
			}
			sent++
		case errors.Is(err, ErrTimeout):
			timedOut++
		default:
			t.Fatal(err)
		}
	}
	if timedOut == 0 {
		t.Fatal("the queue never filled")
	}
	srv.Resume()
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := srv.Wait(t, sent, 10*time.Second); len(got) != sent {
		t.Errorf("%d entries in the journal, %d queued", len(got), sent)
	}
	st := w.Stats()
	if st.Entries != uint64(sent) || st.Errors.Timeout != uint64(timedOut) || st.Errors.Total() != uint64(timedOut) {
		t.Errorf("Stats = %+v, want %d entries and %d timeouts", st, sent, timedOut)
	}
}

// OnFullDropNewest: a full queue drops at once; everything not counted as
// dropped arrives, and an entry of the Writer's own reports the count.
func TestAsyncDropNewestReports(t *testing.T) {
	srv := journaltest.NewServer(t, journaltest.Version(252))
	w := newAsyncWriter(t, srv.Path(), 5*time.Second, AsyncOptions{QueueBytes: 32 << 10, OnFull: OnFullDropNewest})
	srv.Pause()
	// journald's socket queue is filled first, so that the Writer's own
	// queue fills and stays full: else its sender may move what it holds
	// into journald's queue before Stats is read (Queued 0, seen in CI).
	fillQueue(t, w)
	// Entries of 1 KiB, until 1,000 were dropped.
	pad := Field{Name: "PAD", Value: bytes.Repeat([]byte("p"), 1<<10)}
	sent, dropped := 0, 0
	for i := 0; i < 100000 && dropped < 1000; i++ {
		start := time.Now()
		err := w.Send("maybe dropped", PriInfo, Field{Name: "G", Value: []byte("0")}, Field{Name: "SEQ", Value: strconv.AppendInt(nil, int64(i), 10)}, pad)
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Fatalf("a OnFullDropNewest Send waited %v", took)
		}
		switch {
		case err == nil:
			sent++
		case errors.Is(err, ErrDropped):
			dropped++
		default:
			t.Fatal(err)
		}
	}
	if dropped == 0 {
		t.Fatal("nothing dropped")
	}
	// While journald stalls, the entries not sent yet are in Queued.
	st := w.Stats()
	if st.Queued == 0 || st.Entries+st.Errors.Total()+st.Dropped+st.Queued != uint64(sent+dropped) {
		t.Errorf("stalled: Stats = %+v, want every one of %d Sends in one counter, some Queued", st, sent+dropped)
	}
	srv.Resume()
	// A report is queued each time the sender has made room, so there may
	// be several; each Flush delivers those queued before it.
	var reported, records, reports int
	testutil.Poll(10*time.Second, 0, func() bool { // each Flush is the wait
		if err := w.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		reported, records, reports = countReports(t, srv.Received())
		return reported >= dropped && records >= sent
	})
	if records != sent || reported != dropped {
		t.Errorf("%d records and reports of %d dropped; want %d and %d", records, reported, sent, dropped)
	}
	// Every Send is in exactly one counter; the reports are counted apart.
	st = w.Stats()
	if st.Dropped != uint64(dropped) || st.Entries != uint64(sent) || st.Reports != uint64(reports) || st.Queued != 0 ||
		st.Entries+st.Errors.Total()+st.Dropped != uint64(sent+dropped) {
		t.Errorf("Stats = %+v, want %d dropped, %d entries and %d reports", st, dropped, sent, reports)
	}
}

// countReports adds up the drop reports among got, and counts the rest,
// leaving out the datagrams a test sent to fill journald's queue.
func countReports(t *testing.T, got []journaltest.Received) (reported, records, reports int) {
	t.Helper()
	for _, r := range got {
		if id, _ := r.Get("MESSAGE_ID"); id == DroppedMessageID {
			n, err := strconv.Atoi(r.All("NEWSTYLE_DROPPED")[0])
			if err != nil {
				t.Fatal(err)
			}
			if p, _ := r.Get("PRIORITY"); p != "4" {
				t.Errorf("report PRIORITY = %s", p)
			}
			if m, _ := r.Get("MESSAGE"); !strings.Contains(m, strconv.Itoa(n)+" entries dropped") {
				t.Errorf("report MESSAGE = %q", m)
			}
			reported += n
			reports++
			continue
		}
		if m, _ := r.Get("MESSAGE"); m == "fill" {
			continue
		}
		records++
	}
	return reported, records, reports
}

// Entries at SyncPriority or above wait for delivery; others do not.
func TestAsyncSyncPriority(t *testing.T) {
	srv := journaltest.NewServer(t, journaltest.Version(252))
	const timeout = 200 * time.Millisecond
	w := newAsyncWriter(t, srv.Path(), timeout, AsyncOptions{})
	srv.Pause()
	// Fill journald's queue so that nothing more goes through.
	fillQueue(t, w)
	start := time.Now()
	if err := w.Send("info", PriInfo); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Errorf("an info Send waited %v", took)
	}
	start = time.Now()
	err := w.Send("err", PriErr)
	if took := time.Since(start); !errors.Is(err, ErrTimeout) || took < timeout*3/4 {
		t.Errorf("an err Send to a stalled journald: %v after %v, want ErrTimeout after %v", err, took, timeout)
	}
	srv.Resume()
	if err := w.Send("crit", PriCrit); err != nil {
		t.Fatalf("a crit Send with journald back: %v", err)
	}
	// In journald's socket, in order, when the crit Send returned: the
	// stand-in reads them a moment later.
	var msgs []string
	testutil.Poll(5*time.Second, time.Millisecond, func() bool {
		msgs = msgs[:0]
		for _, r := range srv.Received() {
			if m, _ := r.Get("MESSAGE"); m != "fill" {
				msgs = append(msgs, m)
			}
		}
		return len(msgs) >= 3
	})
	if strings.Join(msgs, ",") != "info,err,crit" {
		t.Errorf("journal has %q, want info,err,crit", msgs)
	}
}

// A 16 MiB entry among small ones goes alone, by memfd; its neighbours
// keep their order.
func TestAsyncLargeEntryInBatch(t *testing.T) {
	srv := journaltest.NewServer(t, journaltest.Version(252))
	w := newAsyncWriter(t, srv.Path(), 10*time.Second, AsyncOptions{QueueBytes: 64 << 20})
	big := bytes.Repeat([]byte("x"), 16<<20)
	for i := 0; i < 200; i++ {
		fields := []Field{{Name: "G", Value: []byte("0")}, {Name: "SEQ", Value: strconv.AppendInt(nil, int64(i), 10)}}
		if i == 100 {
			fields = append(fields, Field{Name: "BIG", Value: big})
		}
		if err := w.Send("neighbour", PriInfo, fields...); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := srv.Wait(t, 200, 10*time.Second)
	for i, r := range got {
		if _, seq := seqOf(t, r.Entry); seq != i {
			t.Fatalf("entry %d has SEQ %d", i, seq)
		}
		if i == 100 {
			if v, _ := r.Get("BIG"); len(v) != len(big) || !r.ViaFD {
				t.Errorf("the big entry: %d bytes, via a file %v", len(v), r.ViaFD)
			}
		}
	}
	if err := srv.Err(); err != nil {
		t.Fatal(err)
	}
}

// A journald that goes away: what could not be delivered is counted,
// given to OnUndelivered whole, and reported once a journald is back.
func TestAsyncJournaldGone(t *testing.T) {
	srv := journaltest.NewServer(t, journaltest.Version(252))
	var mu sync.Mutex
	var undelivered []string
	w := newAsyncWriter(t, srv.Path(), 2*time.Second, AsyncOptions{
		Linger: time.Hour, // nothing is sent until Flush
		OnUndelivered: func(msg string, pri Priority, fields []Field, err error) {
			mu.Lock()
			defer mu.Unlock()
			if !errors.Is(err, ErrUnavailable) || pri != PriWarning || len(fields) < 2 || fields[1].Name != "N" {
				t.Errorf("OnUndelivered(%q, %v, %v, %v)", msg, pri, fields, err)
			}
			undelivered = append(undelivered, msg+" "+string(fields[1].Value))
		},
	})
	srv.Close()
	for i := 0; i < 5; i++ {
		if err := w.Send("lost", PriWarning, Field{Name: "N", Value: []byte{'0' + byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Flush = %v, want ErrUnavailable", err)
	}
	mu.Lock()
	if strings.Join(undelivered, ",") != "lost 0,lost 1,lost 2,lost 3,lost 4" {
		t.Errorf("undelivered: %q", undelivered)
	}
	mu.Unlock()
	if st := w.Stats(); st.Errors.Total() != 5 || st.Entries != 0 {
		t.Errorf("Stats = %+v, want 5 errors", st)
	}
	srv2 := journaltest.NewServerAt(t, srv.Path(), journaltest.Version(252))
	if err := w.Send("back", PriInfo); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var report string
	for _, r := range srv2.Wait(t, 2, 5*time.Second) {
		if id, _ := r.Get("MESSAGE_ID"); id == DroppedMessageID {
			report, _ = r.Get("NEWSTYLE_DROPPED")
		}
	}
	if report != "5" {
		t.Errorf("NEWSTYLE_DROPPED = %q, want 5", report)
	}
}

// Close sends what is queued; Sends after it fail with ErrClosed.
func TestAsyncCloseFlushes(t *testing.T) {
	srv := journaltest.NewServer(t, journaltest.Version(252))
	w := newAsyncWriter(t, srv.Path(), time.Second, AsyncOptions{Linger: time.Hour})
	for i := 0; i < 10; i++ {
		if err := w.Send("queued", PriInfo); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := srv.Wait(t, 10, 5*time.Second); len(got) != 10 {
		t.Errorf("%d entries after Close, want 10", len(got))
	}
	if err := w.Send("late", PriInfo); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v", err)
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Errorf("Flush after Close = %v", err)
	}
}

// decodeEntry reads back what appendEntry writes, in batches.
func FuzzDecodeEntry(f *testing.F) {
	f.Add("m", "A", []byte("v"), uint8(3))
	f.Add("a\nb", "T", []byte("x\n\ny=\x00"), uint8(0))
	f.Fuzz(func(t *testing.T, message, name string, value []byte, pri uint8) {
		fields := []Field{{Name: name, Value: value}}
		if _, _, err := checkEntry(message, Priority(pri), nil, fields, maxEntrySize); err != nil {
			return
		}
		one := appendEntry(nil, message, Priority(pri), nil, fields)
		data := append(append(bytes.Clone(one), '\n'), one...)
		for n := 0; n < 2; n++ {
			var got []Field
			data = decodeEntry(data, func(name string, value []byte) {
				got = append(got, Field{Name: name, Value: bytes.Clone(value)})
			})
			if len(got) != 3 || string(got[0].Value) != message || got[2].Name != name || !bytes.Equal(got[2].Value, value) {
				t.Fatalf("entry %d decoded as %q", n, got)
			}
		}
		if len(data) != 0 {
			t.Fatalf("%d bytes left", len(data))
		}
	})
}
