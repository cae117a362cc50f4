//go:build integration

package integration

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/newstyle-go/newstyle/journal"
)

// TestFieldsRoundTrip sends entries whose values need the protocol's
// binary form or are otherwise easy to get wrong, and reads each back from
// journalctl byte for byte.
func TestFieldsRoundTrip(t *testing.T) {
	for _, tt := range fieldsCases() {
		t.Run(tt.name, func(t *testing.T) {
			ident, w := sendFieldsCase(t, tt)
			e := readOnlyEntry(t, ident)
			checkClientFields(t, e, tt, ident)
			checkTrustedFields(t, e)
			if st := w.Stats(); st.Entries != 1 || st.Errors.Total() != 0 {
				t.Errorf("Stats() = %+v, want 1 entry and no errors", st)
			}
		})
	}
}

// fieldsCase is one entry of TestFieldsRoundTrip.
type fieldsCase struct {
	name     string
	message  string
	priority journal.Priority
	fields   []journal.Field
	// identField: the entry carries its own SYSLOG_IDENTIFIER field
	// instead of relying on the Writer's.
	identField bool
}

// fieldsCases are the entries of TestFieldsRoundTrip: multi-line, NUL
// bytes, bytes that are not UTF-8, empty values, equals signs, a field
// repeated, an identifier of the entry's own.
func fieldsCases() []fieldsCase {
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	return []fieldsCase{
		{
			name:     "multi-line value",
			message:  "an entry with a multi-line value",
			priority: journal.PriInfo,
			fields:   []journal.Field{journal.StringField("TEXT", "first line\nsecond line\n\n\tfourth, indented\n")},
		},
		{
			name:     "multi-line message",
			message:  "first line\nsecond line\n",
			priority: journal.PriNotice,
		},
		{
			name:     "value with NUL bytes",
			message:  "an entry with NUL bytes",
			priority: journal.PriWarning,
			fields:   []journal.Field{{Name: "BLOB", Value: []byte("\x00a\x00\x00b\x00")}},
		},
		{
			name:     "invalid UTF-8",
			message:  "an entry with invalid UTF-8",
			priority: journal.PriErr,
			fields: []journal.Field{
				{Name: "LATIN1", Value: []byte("caf\xe9")},
				{Name: "BROKEN", Value: []byte("ok \xff\xfe \xc3\x28 \xed\xa0\x80 \xf0\x9f\x98")},
			},
		},
		{
			name:     "every byte",
			message:  "an entry with every byte value",
			priority: journal.PriDebug,
			fields:   []journal.Field{{Name: "ALL_BYTES", Value: allBytes}},
		},
		{
			name:     "binary message",
			message:  "message \x00 with NUL\nand \xff",
			priority: journal.PriCrit,
		},
		{
			name:     "empty values",
			message:  "",
			priority: journal.PriAlert,
			fields:   []journal.Field{journal.StringField("EMPTY", ""), {Name: "NIL", Value: nil}},
		},
		{
			name:     "equals signs",
			message:  "a=b",
			priority: journal.PriEmerg,
			fields: []journal.Field{
				journal.StringField("EQUATION", "x=y==z="),
				journal.StringField("LEADING", "=value"),
				journal.StringField("ONLY", "="),
				journal.StringField("MULTI", "a=1\nb=2\n"),
			},
		},
		{
			name:     "repeated field name",
			message:  "an entry with a field three times",
			priority: journal.PriInfo,
			fields: []journal.Field{
				journal.StringField("TAG", "first"),
				journal.StringField("OTHER", "between"),
				journal.StringField("TAG", "second\nline"),
				{Name: "TAG", Value: []byte{0, 0xff}},
			},
		},
		{
			name:       "own identifier field",
			message:    "an entry that names itself",
			priority:   journal.PriInfo,
			identField: true,
		},
	}
}

// sendFieldsCase sends the entry of tt through a Writer of its own, under
// an identifier of its own, and returns both.
func sendFieldsCase(t *testing.T, tt fieldsCase) (ident string, w *journal.Writer) {
	t.Helper()
	ident = uniqueIdent(t)
	opts := journal.WriterOptions{SyslogIdentifier: ident}
	fields := tt.fields
	if tt.identField {
		opts.SyslogIdentifier = "not-" + ident
		fields = append(slices.Clone(fields), journal.StringField("SYSLOG_IDENTIFIER", ident))
	}
	w = newWriter(t, opts)
	if err := w.Send(tt.message, tt.priority, fields...); err != nil {
		t.Fatalf("Send: %v", err)
	}
	return ident, w
}

// readOnlyEntry waits for the entry of ident, and fails the test unless
// it is the only one.
func readOnlyEntry(t *testing.T, ident string) entry {
	t.Helper()
	entries := waitEntries(t, query{ident: ident}, 1)
	if len(entries) != 1 {
		t.Fatalf("journal has %d entries with SYSLOG_IDENTIFIER=%s, want 1", len(entries), ident)
	}
	return entries[0]
}

// checkClientFields: e holds every value of every field of tt that a
// client may set, and nothing more of those.
func checkClientFields(t *testing.T, e entry, tt fieldsCase, ident string) {
	t.Helper()
	want := map[string][][]byte{
		"MESSAGE":           {[]byte(tt.message)},
		"PRIORITY":          {[]byte(strconv.Itoa(int(tt.priority)))},
		"SYSLOG_IDENTIFIER": {[]byte(ident)},
	}
	for _, f := range tt.fields {
		want[f.Name] = append(want[f.Name], f.Value)
	}
	for name, values := range want {
		// journald orders a repeated field's values its own way.
		got := sortedValues(e[name])
		if w := sortedValues(values); !slices.EqualFunc(got, w, bytes.Equal) {
			t.Errorf("%s = %q, want %q", name, got, w)
		}
	}
	for name, values := range e {
		if _, ok := want[name]; !ok && !strings.HasPrefix(name, "_") {
			t.Errorf("unexpected field %s = %q", name, values)
		}
	}
}

// checkTrustedFields: e holds the trusted fields, which journald sets and
// a client cannot, of an entry this process sent natively.
func checkTrustedFields(t *testing.T, e entry) {
	t.Helper()
	for name, value := range map[string]string{
		"_TRANSPORT": "journal",
		"_PID":       strconv.Itoa(os.Getpid()),
	} {
		if got, err := e.Value(name); err != nil || got != value {
			t.Errorf("%s = %q (%v), want %q", name, got, err, value)
		}
	}
}

func sortedValues(values [][]byte) [][]byte {
	s := slices.Clone(values)
	slices.SortFunc(s, bytes.Compare)
	return s
}
