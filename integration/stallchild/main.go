// Command stallchild is the program of the integration tier's stalled
// journald test: it starts N goroutines that each log once, through a
// journal.Writer or a newstyle logger, and prints what each call returned
// as JSON on stderr. The test builds it without -race (the race detector
// allows 8128 goroutines) and samples its thread count from /proc.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/integration/stallchild/summary"
	"github.com/newstyle-go/newstyle/journal"
)

func main() {
	via := flag.String("via", "writer", "writer or logger")
	n := flag.Int("n", 20000, "goroutines, each logging once")
	ident := flag.String("ident", "stallchild", "SYSLOG_IDENTIFIER")
	timeout := flag.Duration("timeout", time.Second, "SendTimeout")
	writeTimeout := flag.Duration("write-timeout", time.Second, "WriteTimeout, for stdout (logger only)")
	flag.Parse()

	var send func(id int) error
	var stats func() journal.Stats
	var dropped func() uint64
	switch *via {
	case "writer":
		w, err := journal.NewWriter(&journal.WriterOptions{SyslogIdentifier: *ident, SendTimeout: *timeout})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defer w.Close()
		send = func(id int) error {
			return w.Send("stalled", journal.PriInfo, journal.Field{Name: "ID", Value: strconv.AppendInt(nil, int64(id), 10)})
		}
		stats = w.Stats
		dropped = func() uint64 { return 0 }
	case "logger":
		// The record's bound: SendTimeout for the journal, then
		// WriteTimeout for stdout.
		h := newstyle.NewHandler(&newstyle.Options{Target: newstyle.TargetJournal, SyslogIdentifier: *ident,
			SendTimeout: *timeout, WriteTimeout: *writeTimeout})
		defer h.Close()
		l := slog.New(h)
		send = func(id int) error {
			r := slog.NewRecord(time.Now(), slog.LevelInfo, "stalled", 0)
			r.AddAttrs(slog.Int("id", id))
			return l.Handler().Handle(context.Background(), r)
		}
		stats = func() journal.Stats { s, _ := h.JournalStats(); return s }
		dropped = func() uint64 { return h.Stats().StdoutTimeouts }
	default:
		fmt.Fprintln(os.Stderr, "-via: writer or logger")
		os.Exit(2)
	}

	var sum summary.Summary
	var slowest atomic.Int64
	var other sync.Once
	var wg sync.WaitGroup
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			err := send(i)
			took := int64(time.Since(start))
			for cur := slowest.Load(); took > cur && !slowest.CompareAndSwap(cur, took); cur = slowest.Load() {
			}
			switch {
			case err == nil:
				atomic.AddInt64(&sum.OK, 1)
			case errors.Is(err, journal.ErrTimeout):
				atomic.AddInt64(&sum.Timeout, 1)
			default:
				atomic.AddInt64(&sum.Other, 1)
				other.Do(func() { sum.OtherErr = err.Error() })
			}
		}()
	}
	wg.Wait()
	sum.Slowest = time.Duration(slowest.Load())
	sum.Stats = stats()
	sum.Dropped = dropped()
	if err := json.NewEncoder(os.Stderr).Encode(sum); err != nil {
		os.Exit(2)
	}
}
