package journal

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journaltest"
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

// FuzzHandlerOneEntry checks that no message, key or value given to the
// slog Handler makes more than the one entry with its expected fields: the
// key becomes one valid field name, the value arrives byte for byte.
func FuzzHandlerOneEntry(f *testing.F) {
	f.Add("hello", "user", "ada", "grp")
	f.Add("a\n\nMESSAGE=forged", "x\n_PID", "1\n\nPRIORITY=0", "")
	f.Add("", "", "", "=")
	f.Add("m", "MESSAGE", "v", "")
	f.Fuzz(func(t *testing.T, message, key, value, group string) {
		w := &Writer{ident: appendStringField(nil, "SYSLOG_IDENTIFIER", "fuzz")}
		var h slog.Handler = NewHandler(w, nil)
		h = h.WithGroup(group)
		r := slog.NewRecord(time.Time{}, slog.LevelWarn, message, 0)
		r.AddAttrs(slog.String(key, value))
		b, fields, _ := h.(*Handler).appendRecord(context.Background(), nil, r)
		entries, err := journaltest.Parse(b)
		if err != nil {
			t.Fatalf("journald would not read %q: %v", b, err)
		}
		if len(entries) != 1 || len(entries[0].Fields) != 4 || fields != 4 {
			t.Fatalf("got %d entries, fields %v (counted %d), want one entry of 4 fields", len(entries), entries, fields)
		}
		e := entries[0]
		if v, _ := e.Get("MESSAGE"); v != message || e.Count("MESSAGE") != 1 {
			t.Fatalf("MESSAGE = %q, want %q once", v, message)
		}
		if v, _ := e.Get("PRIORITY"); v != "4" || e.Count("PRIORITY") != 1 {
			t.Fatalf("PRIORITY = %q", v)
		}
		attr := e.Fields[3]
		if !ValidFieldName(attr.Name) || string(attr.Value) != value {
			t.Fatalf("attribute became %q=%q", attr.Name, attr.Value)
		}
	})
}

// FuzzHandlerPanickyValue checks that a value whose method panics, with any
// panic text, under any key, leaves one entry with every field expected:
// the panic is written as log/slog writes it, the value after it arrives.
func FuzzHandlerPanickyValue(f *testing.F) {
	f.Add("m", "k", uint8(0), "boom")
	f.Add("a\nb", "MESSAGE", uint8(7), "x\n\nPRIORITY=0")
	f.Add("", "", uint8(200), "\x00\xff")
	f.Fuzz(func(t *testing.T, message, key string, pick uint8, panicText string) {
		cases := testutil.PanickyValues()
		tc := testutil.PanickyValue{Value: testutil.PanicWith{V: panicText}, Want: "!PANIC: " + panicText}
		if int(pick) < len(cases) {
			tc = cases[pick]
		}
		w := &Writer{ident: appendStringField(nil, "SYSLOG_IDENTIFIER", "fuzz")}
		h := NewHandler(w, nil).WithAttrs([]slog.Attr{slog.Any(key, tc.Value)})
		r := slog.NewRecord(time.Time{}, slog.LevelWarn, message, 0)
		r.AddAttrs(slog.Any(key, tc.Value), slog.String("after", "kept"))
		b, fields, _ := h.(*Handler).appendRecord(context.Background(), nil, r)
		entries, err := journaltest.Parse(b)
		if err != nil {
			t.Fatalf("journald would not read %q: %v", b, err)
		}
		if len(entries) != 1 || len(entries[0].Fields) != 6 || fields != 6 {
			t.Fatalf("got %d entries, fields %q (counted %d), want one entry of 6 fields", len(entries), entries, fields)
		}
		e := entries[0]
		if v, _ := e.Get("MESSAGE"); v != message {
			t.Fatalf("MESSAGE = %q, want %q", v, message)
		}
		for _, i := range []int{3, 4} {
			if string(e.Fields[i].Value) != tc.Want {
				t.Fatalf("field %q = %q, want %q", e.Fields[i].Name, e.Fields[i].Value, tc.Want)
			}
		}
		if v, _ := e.Get("AFTER"); v != "kept" {
			t.Fatalf("AFTER = %q, want kept", v)
		}
	})
}
