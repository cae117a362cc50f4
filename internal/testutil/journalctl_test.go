package testutil

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDecodeJournalEntry(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		fields  []string
		want    JournalEntry
		wantErr bool
	}{
		{
			name: "strings",
			line: `{"MESSAGE":"two\nlines","EMPTY":"","EQ":"a=b"}`,
			want: JournalEntry{"MESSAGE": {[]byte("two\nlines")}, "EMPTY": {{}}, "EQ": {[]byte("a=b")}},
		},
		{
			name: "bytes",
			line: `{"BLOB":[97,0,255,10]}`,
			want: JournalEntry{"BLOB": {{'a', 0, 255, '\n'}}},
		},
		{
			name: "repeated field",
			line: `{"TAG":["one",[0,1],""]}`,
			want: JournalEntry{"TAG": {[]byte("one"), {0, 1}, {}}},
		},
		{
			name: "repeated binary field",
			line: `{"TAG":[ [1] , [2,3] ]}`,
			want: JournalEntry{"TAG": {{1}, {2, 3}}},
		},
		{
			name: "escapes",
			line: `{"E":"q\"b\\s\/\b\f\n\r\t\u0001\u00e9\ud83d\ude00"}`,
			want: JournalEntry{"E": {[]byte("q\"b\\s/\b\f\n\r\t\x01\u00e9\U0001F600")}},
		},
		{name: "empty object", line: " {} \n", want: JournalEntry{}},
		{
			name:   "some fields",
			line:   `{"__CURSOR":"s=1","G":"1","SEQ":"2","_BOOT_ID":[1]}`,
			fields: []string{"G", "SEQ"},
			want:   JournalEntry{"G": {[]byte("1")}, "SEQ": {[]byte("2")}},
		},
		{name: "left out", line: `{"BIG":null}`, wantErr: true},
		{name: "left out in a repeated field", line: `{"TAG":["a",null]}`, wantErr: true},
		{name: "lone surrogate", line: `{"S":"\ud83d"}`, wantErr: true},
		{name: "raw control character", line: "{\"C\":\"a\tb\"}", wantErr: true},
		{name: "unterminated", line: `{"A":"b`, wantErr: true},
		{name: "trailing data", line: `{"A":"b"} x`, wantErr: true},
		{name: "truncated byte array", line: `{"A":[1,2`, wantErr: true},
		{name: "byte out of range", line: `{"B":[256]}`, wantErr: true},
		{name: "number", line: `{"N":1}`, wantErr: true},
		{name: "empty array", line: `{"A":[]}`, wantErr: true},
		{name: "not an object", line: `-- No entries --`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeJournalEntry([]byte(tt.line), tt.fields)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("DecodeJournalEntry(%s) = %s, want an error", tt.line, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeJournalEntry(%s): %v", tt.line, err)
			}
			equalEntry(t, got, tt.want)
		})
	}
}

// The entries must outlive the line: callers reuse their buffers.
func TestDecodeJournalEntryCopies(t *testing.T) {
	line := []byte(`{"A":"abc","B":"x\ny"}`)
	e, err := DecodeJournalEntry(line, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range line {
		line[i] = 'z'
	}
	equalEntry(t, e, JournalEntry{"A": {[]byte("abc")}, "B": {[]byte("x\ny")}})
}

func TestDecodeJournal(t *testing.T) {
	// A line longer than DecodeJournal's 64 KiB buffer, as a large field
	// makes with --all.
	big := strings.Repeat("x", 200<<10)
	out := `{"MESSAGE":"one","SEQ":"1"}` + "\n" +
		"\n" +
		`{"MESSAGE":"` + big + `","SEQ":"2"}` + "\n" +
		`{"MESSAGE":"three","SEQ":"3"}` // no newline at the end
	want := []JournalEntry{
		{"MESSAGE": {[]byte("one")}, "SEQ": {[]byte("1")}},
		{"MESSAGE": {[]byte(big)}, "SEQ": {[]byte("2")}},
		{"MESSAGE": {[]byte("three")}, "SEQ": {[]byte("3")}},
	}
	// One byte a read as well: a pipe may cut lines anywhere.
	readers := map[string]func() io.Reader{
		"whole":           func() io.Reader { return strings.NewReader(out) },
		"one byte a read": func() io.Reader { return iotest.OneByteReader(strings.NewReader(out)) },
	}
	for name, r := range readers {
		got, err := DecodeJournal(r(), nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		equalEntries(t, got, want)
	}

	got, err := DecodeJournal(strings.NewReader(out), []string{"SEQ"})
	if err != nil {
		t.Fatalf("SEQ only: %v", err)
	}
	equalEntries(t, got, []JournalEntry{
		{"SEQ": {[]byte("1")}}, {"SEQ": {[]byte("2")}}, {"SEQ": {[]byte("3")}},
	})

	if got, err := DecodeJournal(strings.NewReader(""), nil); err != nil || len(got) != 0 {
		t.Errorf("DecodeJournal(\"\") = %s, %v; want no entries", got, err)
	}
}

func TestDecodeJournalErrors(t *testing.T) {
	// The line number counts a long line once, and blank lines too.
	out := `{"A":"1"}` + "\n\n" + `{"A":"` + strings.Repeat("x", 100<<10) + `"}` + "\n" + `{"A":null}` + "\n"
	_, err := DecodeJournal(strings.NewReader(out), nil)
	if err == nil || !strings.Contains(err.Error(), "line 4:") {
		t.Errorf("DecodeJournal: %v, want an error at line 4", err)
	}
	// A field filtered out is still checked: the line is what is wrong.
	_, err = DecodeJournal(strings.NewReader(`{"A":"1","B":null}`), []string{"A"})
	if err == nil {
		t.Error("DecodeJournal with null in a field left out: no error")
	}
	readErr := errors.New("read failed")
	_, err = DecodeJournal(iotest.ErrReader(readErr), nil)
	if !errors.Is(err, readErr) {
		t.Errorf("DecodeJournal of a failing reader: %v, want %v", err, readErr)
	}
}

func TestJournalEntryMethods(t *testing.T) {
	e := JournalEntry{
		"ONE":  {[]byte("a")},
		"TWO":  {[]byte("b"), []byte("c")},
		"BIN":  {{0xff, 0}},
		"NONE": {},
	}
	if v, err := e.Value("ONE"); err != nil || v != "a" {
		t.Errorf("Value(ONE) = %q, %v; want a", v, err)
	}
	for _, name := range []string{"TWO", "MISSING", "NONE"} {
		if v, err := e.Value(name); err == nil {
			t.Errorf("Value(%s) = %q, want an error", name, v)
		}
	}
	for name, want := range map[string]string{"ONE": "a", "TWO": "b|c", "BIN": "\xff\x00", "MISSING": "", "NONE": ""} {
		if got := e.Get(name); got != want {
			t.Errorf("Get(%s) = %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]bool{"ONE": true, "TWO": true, "MISSING": false, "NONE": false} {
		if got := e.Has(name); got != want {
			t.Errorf("Has(%s) = %v, want %v", name, got, want)
		}
	}
	if got, want := e.String(), `{"BIN":"\xff\x00","NONE":[],"ONE":"a","TWO":["b","c"]}`; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
}

func equalEntries(t *testing.T, got, want []JournalEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range got {
		equalEntry(t, got[i], want[i])
	}
}

func equalEntry(t *testing.T, got, want JournalEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("entry = %.200s, want %.200s", got, want)
	}
	for name, w := range want {
		if !slices.EqualFunc(got[name], w, bytes.Equal) {
			t.Errorf("field %s = %.200q, want %.200q", name, got[name], w)
		}
	}
}
