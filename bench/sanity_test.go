//go:build linux

package bench

import (
	"bytes"
	"context"
	"testing"

	gosystemd "github.com/coreos/go-systemd/v22/journal"
	"github.com/newstyle-go/newstyle/journal"
)

// TestEachClientSendsTheWorkload sends one entry through each client and
// checks that the drain got exactly one well-formed datagram carrying the
// whole workload: what every benchmark run also checks before it starts.
func TestEachClientSendsTheWorkload(t *testing.T) {
	d := needDrain(t)

	t.Run("newstyle", func(t *testing.T) {
		w := newWriter(t)
		fields := newstyleFields()
		dg := sendOne(t, d, func() error { return w.Send(message, journal.PriErr, fields...) })
		if want := encodeWorkload(); !bytes.Equal(dg, want) {
			t.Errorf("newstyle sent\n%q\nwant\n%q", dg, want)
		}
	})
	t.Run("go-systemd", func(t *testing.T) {
		vars := goSystemdVars()
		sendOne(t, d, func() error { return gosystemd.Send(message, gosystemd.PriErr, vars) })
	})
	t.Run("slog-journal", func(t *testing.T) {
		logger := newSlogJournal(t)
		attrs := slogAttrs()
		sendOne(t, d, func() error { logSlog(context.Background(), logger, &attrs); return nil }, slogJournalExtras...)
	})
	t.Run("floor", func(t *testing.T) {
		f := newFloor(t)
		dg := sendOne(t, d, f.send)
		if !bytes.Equal(dg, f.data) {
			t.Errorf("floor sent %q, the drain got %q", f.data, dg)
		}
	})
}

func sendOne(t *testing.T, d *drain, send func() error, allowed ...string) []byte {
	t.Helper()
	dg, err := d.sendOne(send)
	if err != nil {
		t.Fatal(err)
	}
	extra, err := checkEntry(dg, allowed...)
	if err != nil {
		t.Fatalf("%v\ndatagram: %q", err, dg)
	}
	t.Logf("%d bytes; fields beyond the workload: %q", len(dg), extra)
	return dg
}
