package stdoutfallback

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/slogopts"
)

// FuzzOneLine checks that whatever the message, key, value, group and
// level, a record is exactly one line: "<N>" with the level's priority,
// printable UTF-8 without control characters (so no newline, NUL or
// escape sequence), one '\n' at the end; that the message part unescapes
// to the message; and that the attribute part parses back to the group,
// key and value.
func FuzzOneLine(f *testing.F) {
	f.Add("hello", "k", "v", "", 0, false)
	f.Add("a\nb\r\x00", "a=b c", "x\n<3>y", "g", 8, false)
	f.Add("<3>forged", "<0>", "\"\\", "my group", -4, true)
	f.Add("\x1b[31m\xff\u2028\u0085\U000e0001", "", "", "", 20, true)
	f.Add("ok\n<3>forged", "\t", "\xc3", "\n", 100, false)
	f.Fuzz(func(t *testing.T, msg, key, value, group string, level int, asBytes bool) {
		ctx := context.Background()
		var buf bytes.Buffer
		base := NewHandler(&buf, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{Level: slog.Level(-1 << 30)}})

		// The message alone.
		r := slog.NewRecord(time.Time{}, slog.Level(level), msg, 0)
		if err := base.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
		line := buf.String()
		checkLine(t, line, slog.Level(level))
		got, err := testutil.Unescape(line[3:len(line)-1], false)
		if err != nil {
			t.Fatalf("line %q: message: %v", line, err)
		}
		if got != msg {
			t.Fatalf("line %q: message unescapes to %q, want %q", line, got, msg)
		}

		// With one attribute, in group when it is not empty.
		buf.Reset()
		var h slog.Handler = base
		wantKey := key
		if group != "" {
			h = h.WithGroup(group)
			wantKey = group + "." + key
		}
		a := slog.String(key, value)
		if asBytes {
			a = slog.Any(key, []byte(value))
		}
		r.AddAttrs(a)
		if err := h.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
		withAttr := buf.String()
		checkLine(t, withAttr, slog.Level(level))
		rest, ok := strings.CutPrefix(withAttr, line[:len(line)-1]+" ")
		if !ok {
			t.Fatalf("line %q does not start with the message's %q and a space", withAttr, line)
		}
		pairs, err := testutil.ParsePairs(rest[:len(rest)-1])
		if err != nil {
			t.Fatalf("line %q: attribute: %v", withAttr, err)
		}
		if want := []testutil.Pair{{Key: wantKey, Value: value}}; len(pairs) != 1 || pairs[0] != want[0] {
			t.Fatalf("line %q: attributes %q, want %q", withAttr, pairs, want)
		}
	})
}

// checkLine checks that line is one line of printable text, prefixed with
// the priority of level.
func checkLine(t *testing.T, line string, level slog.Level) {
	t.Helper()
	want := "<" + string(rune('0'+slogopts.Priority(level))) + ">"
	if !strings.HasPrefix(line, want) {
		t.Fatalf("line %q: want prefix %s", line, want)
	}
	body, ok := strings.CutSuffix(line, "\n")
	if !ok {
		t.Fatalf("line %q does not end in a newline", line)
	}
	for i, r := range body {
		if r == utf8.RuneError && !strings.HasPrefix(body[i:], "\ufffd") {
			t.Fatalf("line %q: invalid UTF-8 at %d", line, i)
		}
		if !unicode.IsPrint(r) {
			t.Fatalf("line %q: non-printable %U at %d", line, r, i)
		}
	}
}

// FuzzPanickyValue checks that a value whose method panics, with any panic
// text, under any key, leaves one line that parses back to every
// attribute: the panic written as log/slog writes it, the value after it.
func FuzzPanickyValue(f *testing.F) {
	f.Add("m", "k", uint8(0), "boom")
	f.Add("a\nb", "x y", uint8(7), "x\n<3>forged")
	f.Add("", "", uint8(200), "\x00\xff")
	f.Fuzz(func(t *testing.T, msg, key string, pick uint8, panicText string) {
		cases := testutil.PanickyValues()
		tc := testutil.PanickyValue{Value: testutil.PanicWith{V: panicText}, Want: "!PANIC: " + panicText}
		if int(pick) < len(cases) {
			tc = cases[pick]
		}
		var buf bytes.Buffer
		h := NewHandler(&buf, nil).WithAttrs([]slog.Attr{slog.Any(key, tc.Value)})
		r := slog.NewRecord(time.Time{}, slog.LevelError, msg, 0)
		r.AddAttrs(slog.Any(key, tc.Value), slog.String("after", "kept"))
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		line := buf.String()
		checkLine(t, line, slog.LevelError)
		var msgLine bytes.Buffer
		if err := NewHandler(&msgLine, nil).Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelError, msg, 0)); err != nil {
			t.Fatal(err)
		}
		rest, ok := strings.CutPrefix(line, strings.TrimSuffix(msgLine.String(), "\n")+" ")
		if !ok {
			t.Fatalf("line %q does not start with the message's %q", line, msgLine.String())
		}
		pairs, err := testutil.ParsePairs(rest[:len(rest)-1])
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		want := []testutil.Pair{{Key: key, Value: tc.Want}, {Key: key, Value: tc.Want}, {Key: "after", Value: "kept"}}
		if len(pairs) != len(want) || pairs[0] != want[0] || pairs[1] != want[1] || pairs[2] != want[2] {
			t.Fatalf("line %q: attributes %q, want %q", line, pairs, want)
		}
	})
}
