// Command journal-writer writes a few structured entries to the journal
// with package journal: a multi-line message, a stack trace in a field of
// its own, a binary value, a MESSAGE_ID and an ERRNO.
//
// Run it where a journald listens (make demo runs it in a private
// namespace with a journald of its own) and read what it wrote with
//
//	journalctl -o json-pretty --all -t journal-writer-example
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"syscall"

	"github.com/newstyle-go/newstyle/journal"
)

// identifier is the SYSLOG_IDENTIFIER of the entries, by which
// journalctl -t finds them.
const identifier = "journal-writer-example"

// startupID is the MESSAGE_ID of the "configuration not found" entry: one
// ID for every entry of that kind, made once with `systemd-id128 new`.
const startupID = "1c0d5f7e2a8b4e7f9a3c6b5d4e2f1a0b"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "journal-writer:", err)
		if errors.Is(err, journal.ErrUnavailable) {
			fmt.Fprintln(os.Stderr, "journal-writer: no journald here; try: make demo")
		}
		os.Exit(1)
	}
}

func run() error {
	w, err := journal.NewWriter(&journal.WriterOptions{SyslogIdentifier: identifier})
	if err != nil {
		return err
	}
	defer w.Close()

	// A multi-line message arrives as one entry, newlines and all.
	if err := w.Send("journal-writer started\nsecond line of the same entry", journal.PriInfo,
		journal.StringField("EXAMPLE_STEP", "1")); err != nil {
		return err
	}

	// A stack trace goes in a field of its own, where it does not clutter
	// the message.
	if err := w.Send("something went wrong; the stack trace is in STACK_TRACE", journal.PriErr,
		journal.StringField("STACK_TRACE", string(debug.Stack())),
		journal.StringField("EXAMPLE_STEP", "2")); err != nil {
		return err
	}

	// Values are bytes: NULs and invalid UTF-8 arrive as they were sent
	// (journalctl -o json shows such a value as an array of byte values).
	if err := w.Send("a binary value", journal.PriDebug,
		journal.Field{Name: "PAYLOAD", Value: []byte{0x00, 0x01, 0xfe, 0xff, '\n', 'o', 'k'}},
		journal.StringField("EXAMPLE_STEP", "3")); err != nil {
		return err
	}

	// A MESSAGE_ID marks the kind of entry, an ERRNO the system call error
	// behind it: journalctl MESSAGE_ID=… ERRNO=2 finds them.
	msgID, err := journal.MessageID(startupID)
	if err != nil {
		return err
	}
	openErr := &os.PathError{Op: "open", Path: "/etc/journal-writer.conf", Err: syscall.ENOENT}
	fields := []journal.Field{msgID, journal.StringField("EXAMPLE_STEP", "4")}
	if errno, ok := journal.ErrnoField(openErr); ok {
		fields = append(fields, errno)
	}
	if err := w.Send("no configuration file, using defaults: "+openErr.Error(), journal.PriWarning, fields...); err != nil {
		return err
	}

	st := w.Stats()
	fmt.Printf("journal-writer: sent %d entries (%d bytes) to %s as %s\n",
		st.Entries, st.Bytes, w.SocketPath(), identifier)
	return nil
}
