//go:build integration

package integration

import (
	"fmt"
	"log/slog"
	"os"
	"testing"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journal"
)

// TestLoggerNamespaceByName logs through a newstyle logger given a journal
// namespace by name (Options.Namespace, as a unit's LogNamespace= names
// it) and reads the record back with journalctl --namespace: it is there,
// and not in the default journal.
func TestLoggerNamespaceByName(t *testing.T) {
	name := fmt.Sprintf("newstyle-byname-%d", os.Getpid())
	j := startNamespaceJournald(t, name)
	if got, err := journal.NamespaceSocketPath(name); err != nil || got != j.socket {
		t.Fatalf("NamespaceSocketPath(%q) = %s, %v, but journald listens on %s", name, got, err, j.socket)
	}

	ident := uniqueIdent(t)
	h := newstyle.NewHandler(&newstyle.Options{
		Target:           newstyle.TargetJournal,
		Namespace:        name,
		SyslogIdentifier: ident,
		Stdout:           testutil.FailWriter{TB: t},
	})
	t.Cleanup(func() { _ = h.Close() })
	if st, ok := h.JournalStats(); !ok {
		t.Fatalf("the logger does not write to the journal: %v", h.Detection())
	} else if st.Entries != 0 {
		t.Fatalf("JournalStats() = %+v before logging", st)
	}
	const msg = "to a namespace by name\nsecond line"
	slog.New(h).Warn(msg, "order", "A-1042")
	if st, _ := h.JournalStats(); st.Entries != 1 || st.Errors.Total() != 0 {
		t.Fatalf("JournalStats() = %+v, want 1 entry and no errors", st)
	}

	entries := waitEntries(t, query{ident: ident, namespace: name}, 1)
	if len(entries) != 1 {
		t.Fatalf("journalctl --namespace=%s has %d entries for %s, want 1", name, len(entries), ident)
	}
	wantFields(t, entries[0], map[string]string{
		"MESSAGE":           msg,
		"PRIORITY":          "4",
		"SYSLOG_IDENTIFIER": ident,
		"ORDER":             "A-1042",
	})
	for field, value := range map[string]string{
		"_TRANSPORT": "journal",
		"_NAMESPACE": name,
		"_PID":       fmt.Sprint(os.Getpid()),
	} {
		if got, err := entries[0].Value(field); err != nil || got != value {
			t.Errorf("%s = %q (%v), want %q", field, got, err, value)
		}
	}

	// The default journal has none of it.
	syncJournal(t)
	if es, err := readJournal(query{ident: ident}); err != nil {
		t.Fatal(err)
	} else if len(es) != 0 {
		t.Errorf("the default journal has %d entries of the namespace's, want none: %v", len(es), es)
	}
}
