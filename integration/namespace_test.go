//go:build integration

package integration

import (
	"fmt"
	"os"
	"testing"

	"github.com/newstyle-go/newstyle/journal"
)

// TestJournalNamespace sends to the journald of a journal namespace, which
// listens on a socket of its own, and reads the entries back with
// journalctl --namespace.
func TestJournalNamespace(t *testing.T) {
	name := fmt.Sprintf("newstyle-it-%d", os.Getpid())
	j := startNamespaceJournald(t, name)
	if want := "/run/systemd/journal." + name + "/socket"; j.socket != want {
		t.Fatalf("namespace socket %s, want %s", j.socket, want)
	}

	ident := uniqueIdent(t)
	w := newWriter(t, journal.WriterOptions{SocketPath: j.socket, SyslogIdentifier: ident})
	if w.SocketPath() != j.socket {
		t.Errorf("SocketPath() = %s, want %s", w.SocketPath(), j.socket)
	}
	const n = 3
	for i := range n {
		if err := w.Send(fmt.Sprintf("namespace entry %d\nsecond line", i), journal.PriNotice,
			journal.StringField("N", fmt.Sprint(i))); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}

	entries := waitEntries(t, query{ident: ident, namespace: name}, n)
	if len(entries) != n {
		t.Fatalf("journalctl --namespace=%s has %d entries, want %d", name, len(entries), n)
	}
	for i, e := range entries {
		want := map[string]string{
			"MESSAGE":    fmt.Sprintf("namespace entry %d\nsecond line", i),
			"N":          fmt.Sprint(i),
			"PRIORITY":   "5",
			"_TRANSPORT": "journal",
			"_NAMESPACE": name,
		}
		for field, value := range want {
			if got, err := e.Value(field); err != nil || got != value {
				t.Errorf("entry %d: %s = %q (%v), want %q", i, field, got, err, value)
			}
		}
	}

	// The default journal has none of them.
	if es, err := readJournal(query{ident: ident}); err != nil || len(es) != 0 {
		t.Errorf("the default journal has %d entries of the namespace's (%v), want none", len(es), err)
	}
}
