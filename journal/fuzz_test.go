package journal

import (
	"bytes"
	"testing"

	"github.com/newstyle-go/newstyle/internal/journaltest"
)

// FuzzEncodeParse checks that whatever the message, name and value, the
// encoder either refuses the entry or produces exactly the fields it was
// given, read back by journald's parsing rules: no content can end a
// field early, forge another field or start another entry.
func FuzzEncodeParse(f *testing.F) {
	f.Add("hello", "USER", []byte("ada"), uint8(6))
	f.Add("a\nb", "TRACEBACK", []byte("x\n\ny\x00\xff"), uint8(3))
	f.Add("m\n\nMESSAGE=forged", "A=B", []byte("=\n"), uint8(0))
	f.Add("", "_PID", []byte{}, uint8(7))
	f.Add("m", "PRIORITY", []byte("0"), uint8(9))
	f.Fuzz(func(t *testing.T, message, name string, value []byte, pri uint8) {
		ident := appendStringField(nil, "SYSLOG_IDENTIFIER", "fuzz")
		fields := []Field{{Name: name, Value: value}, StringField("AFTER", "x")}
		_, _, err := checkEntry(message, Priority(pri), ident, fields, maxEntrySize)
		validName := ValidFieldName(name) && name != "MESSAGE" && name != "PRIORITY"
		if err != nil {
			if validName && pri <= 7 {
				t.Fatalf("checkEntry refused a valid entry: %v", err)
			}
			return
		}
		if !validName || pri > 7 {
			t.Fatalf("checkEntry took name %q priority %d", name, pri)
		}
		if name == "SYSLOG_IDENTIFIER" {
			ident = nil
		}
		// Two entries in one buffer, as a batching sender would send them.
		one := appendEntry(nil, message, Priority(pri), ident, fields)
		data := append(append(bytes.Clone(one), '\n'), one...)
		entries, err := journaltest.Parse(data)
		if err != nil {
			t.Fatalf("journald would not read %q: %v", data, err)
		}
		if len(entries) != 2 {
			t.Fatalf("parsed %d entries, want 2", len(entries))
		}
		for _, e := range entries {
			want := []string{"MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", name, "AFTER"}
			if ident == nil {
				want = []string{"MESSAGE", "PRIORITY", name, "AFTER"}
			}
			if len(e.Fields) != len(want) {
				t.Fatalf("parsed fields %v, want names %v", e.Fields, want)
			}
			for i, n := range want {
				if e.Fields[i].Name != n {
					t.Fatalf("field %d is %q, want %q", i, e.Fields[i].Name, n)
				}
			}
			if string(e.Fields[0].Value) != message || !bytes.Equal(e.Fields[len(want)-2].Value, value) ||
				string(e.Fields[1].Value) != string(rune('0'+pri)) {
				t.Fatalf("values changed: got %q", e.Fields)
			}
		}
	})
}
