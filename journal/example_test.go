package journal_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"syscall"

	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/journaltest"
)

// A service sends an entry with its own fields. Under systemd it lands as
// one entry; `journalctl -t example -o json-pretty` shows MESSAGE,
// PRIORITY, SYSLOG_IDENTIFIER and the fields as sent, the trace still in
// one piece. Here a journaltest.Server stands in for journald (leave
// SocketPath empty for the real one), so the example sends nothing to the
// machine's journal.
func Example() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	journald, err := journaltest.Listen(filepath.Join(dir, "socket"))
	if err != nil {
		log.Fatal(err)
	}
	defer journald.Close()

	w, err := journal.NewWriter(&journal.WriterOptions{SyslogIdentifier: "example", SocketPath: journald.Path()})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()

	err = w.Send("payment declined", journal.PriWarning,
		journal.StringField("ORDER_ID", "A-1042"),
		journal.StringField("TRACEBACK", "main.charge()\n\tpay.go:42\nmain.main()\n\tmain.go:12"),
	)
	if err != nil && !errors.Is(err, journal.ErrUnavailable) {
		log.Fatal(err) // a bug of ours: an invalid field, say
	}
	// Whatever happened is counted.
	st := w.Stats()
	fmt.Println(st.Entries+st.Errors.Total(), "entry accounted for")
	// Output: 1 entry accounted for
}

// Where no journald listens (a container, a sandboxed unit), Send says so
// with an error that matches ErrUnavailable, so the caller can log
// elsewhere instead.
func Example_noJournald() {
	w, err := journal.NewWriter(&journal.WriterOptions{SocketPath: "/nonexistent/journal/socket"})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()

	err = w.Send("hello", journal.PriInfo)
	fmt.Println(errors.Is(err, journal.ErrUnavailable), errors.Is(err, journal.ErrNoSocket), errors.Is(err, syscall.ENOENT))
	fmt.Println(err)
	fmt.Println(w.Stats().Errors.NoSocket)
	// Output:
	// true true true
	// journal: send to "/nonexistent/journal/socket": journald unavailable: no socket: no such file or directory
	// 1
}

// Field names are checked before anything is sent: an entry with a name
// journald would drop is refused whole.
func ExampleWriter_Send_invalidName() {
	w, err := journal.NewWriter(&journal.WriterOptions{SocketPath: "/nonexistent/journal/socket"})
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()

	err = w.Send("hello", journal.PriInfo, journal.StringField("user-id", "42"))
	fmt.Println(errors.Is(err, journal.ErrInvalidFieldName), err)
	// Output: true journal: invalid field name "user-id"
}

func ExampleMessageID() {
	f, err := journal.MessageID("FC2E22BC-6EE6-47B6-B907-29AB34A250B1")
	fmt.Println(f.Name, string(f.Value), err)
	// Output: MESSAGE_ID fc2e22bc6ee647b6b90729ab34a250b1 <nil>
}
