package stdoutfallback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/internal/buffer"
	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/slogopts"
)

// handleOne writes one record, made without time or source, through h and
// returns what h wrote.
func handleOne(t *testing.T, opts *HandlerOptions, with func(slog.Handler) slog.Handler, level slog.Level, msg string, attrs ...slog.Attr) string {
	t.Helper()
	var buf bytes.Buffer
	var h slog.Handler = NewHandler(&buf, opts)
	if with != nil {
		h = with(h)
	}
	r := slog.NewRecord(time.Time{}, level, msg, 0)
	r.AddAttrs(attrs...)
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatalf("Handle: %v", err)
	}
	return buf.String()
}

type logValuer struct{}

func (logValuer) LogValue() slog.Value { return slog.StringValue("resolved value") }

func TestLineFormat(t *testing.T) {
	tests := []struct {
		name  string
		msg   string
		attrs []slog.Attr
		want  string
	}{
		// The message.
		{"plain", "hello", []slog.Attr{slog.String("k", "v")}, `<6>hello k=v`},
		{"no attributes", "hello world", nil, `<6>hello world`},
		{"empty message", "", []slog.Attr{slog.String("k", "v")}, `<6> k=v`},
		{"newline", "a\nb", nil, `<6>a\nb`},
		{"CR", "a\rb", nil, `<6>a\rb`},
		{"CRLF", "a\r\nb", nil, `<6>a\r\nb`},
		{"tab", "a\tb", nil, `<6>a\tb`},
		{"NUL", "a\x00b", nil, `<6>a\x00b`},
		{"other C0", "\a\b\f\v\x1f", nil, `<6>\x07\x08\x0c\x0b\x1f`},
		{"DEL", "a\x7fb", nil, `<6>a\x7fb`},
		{"C1 as a rune", "a\u0085b\u009b", nil, `<6>a\u0085b\u009b`},
		{"priority at the start", "<3>forged", nil, `<6><3>forged`},
		{"priority after a newline", "ok\n<3>forged", nil, `<6>ok\n<3>forged`},
		{"priority after NUL", "ok\x00<0>forged", nil, `<6>ok\x00<0>forged`},
		{"ANSI escape", "\x1b[31mred\x1b[0m", nil, `<6>\x1b[31mred\x1b[0m`},
		{"invalid UTF-8", "a\xffb\xc3", nil, `<6>a\xffb\xc3`},
		{"surrogate half", "\xed\xa0\x80", nil, `<6>\xed\xa0\x80`},
		{"U+2028 line separator", "a\u2028b\u2029c", nil, `<6>a\u2028b\u2029c`},
		{"U+00A0 and U+FEFF", "a\u00a0b\ufeff", nil, `<6>a\u00a0b\ufeff`},
		{"non-printable above the BMP", "a\U000e0001", nil, `<6>a\U000e0001`},
		{"U+FFFD itself is printable", "a\ufffdb", nil, "<6>a\ufffdb"},
		{"printable non-ASCII as it is", "héllo 世界 🎉", nil, "<6>héllo 世界 🎉"},
		{"backslash", `C:\dir\n`, nil, `<6>C:\\dir\\n`},
		{"quotes and = as they are", `say "hi" a=b`, nil, `<6>say "hi" a=b`},

		// Values.
		{"empty value", "m", []slog.Attr{slog.String("k", "")}, `<6>m k=""`},
		{"space in value", "m", []slog.Attr{slog.String("k", "a b")}, `<6>m k="a b"`},
		{"quote in value", "m", []slog.Attr{slog.String("k", `say "hi"`)}, `<6>m k="say \"hi\""`},
		{"lone quote value", "m", []slog.Attr{slog.String("k", `"`)}, `<6>m k="\""`},
		{"= in value", "m", []slog.Attr{slog.String("k", "a=b")}, `<6>m k="a=b"`},
		{"backslash in value", "m", []slog.Attr{slog.String("k", `C:\dir`)}, `<6>m k="C:\\dir"`},
		{"newline in value", "m", []slog.Attr{slog.String("k", "x\n<3>forged")}, `<6>m k="x\n<3>forged"`},
		{"tab in value", "m", []slog.Attr{slog.String("k", "a\tb")}, `<6>m k="a\tb"`},
		{"NUL in value", "m", []slog.Attr{slog.String("k", "\x00")}, `<6>m k="\x00"`},
		{"ESC in value", "m", []slog.Attr{slog.String("k", "\x1b[2J")}, `<6>m k="\x1b[2J"`},
		{"invalid UTF-8 value", "m", []slog.Attr{slog.String("k", "\xff")}, `<6>m k="\xff"`},
		{"U+2028 in value", "m", []slog.Attr{slog.String("k", "\u2028")}, `<6>m k="\u2028"`},
		{"non-ASCII bare", "m", []slog.Attr{slog.String("k", "héllo")}, `<6>m k=héllo`},
		{"angle brackets bare", "m", []slog.Attr{slog.String("k", "<3>")}, `<6>m k=<3>`},

		// Keys.
		{"= in key", "m", []slog.Attr{slog.String("a=b", "v")}, `<6>m "a=b"=v`},
		{"space in key", "m", []slog.Attr{slog.String("a b", "v")}, `<6>m "a b"=v`},
		{"quote in key", "m", []slog.Attr{slog.String(`a"b`, "v")}, `<6>m "a\"b"=v`},
		{"newline in key", "m", []slog.Attr{slog.String("a\nb", "v")}, `<6>m "a\nb"=v`},
		{"backslash in key", "m", []slog.Attr{slog.String(`a\b`, "v")}, `<6>m "a\\b"=v`},
		{"empty key", "m", []slog.Attr{slog.String("", "v")}, `<6>m ""=v`},
		{"dotted key as it is", "m", []slog.Attr{slog.String("user.id", "7")}, `<6>m user.id=7`},

		// Kinds.
		{"int", "m", []slog.Attr{slog.Int("n", -42)}, `<6>m n=-42`},
		{"uint", "m", []slog.Attr{slog.Uint64("n", 18446744073709551615)}, `<6>m n=18446744073709551615`},
		{"float", "m", []slog.Attr{slog.Float64("f", 0.25)}, `<6>m f=0.25`},
		{"bool", "m", []slog.Attr{slog.Bool("ok", true)}, `<6>m ok=true`},
		{"duration", "m", []slog.Attr{slog.Duration("took", 1500*time.Millisecond)}, `<6>m took=1.5s`},
		{"time", "m", []slog.Attr{slog.Time("at", time.Date(2026, 11, 25, 12, 0, 0, 5, time.UTC))}, `<6>m at=2026-11-25T12:00:00.000000005Z`},
		{"bytes with a newline", "m", []slog.Attr{slog.Any("b", []byte("x\ny\xff"))}, `<6>m b="x\ny\xff"`},
		{"empty bytes", "m", []slog.Attr{slog.Any("b", []byte{})}, `<6>m b=""`},
		{"error", "m", []slog.Attr{slog.Any("err", errors.New("connection reset"))}, `<6>m err="connection reset"`},
		{"TextMarshaler", "m", []slog.Attr{slog.Any("ip", netip.MustParseAddr("::1"))}, `<6>m ip=::1`},
		{"struct by fmt", "m", []slog.Attr{slog.Any("s", struct{ A, B int }{1, 2})}, `<6>m s="{A:1 B:2}"`},
		{"nil", "m", []slog.Attr{slog.Any("x", nil)}, `<6>m x=<nil>`},
		{"LogValuer", "m", []slog.Attr{slog.Any("v", logValuer{})}, `<6>m v="resolved value"`},

		// Groups.
		{"group", "m", []slog.Attr{slog.Group("req", slog.String("method", "GET"), slog.Int("status", 200))}, `<6>m req.method=GET req.status=200`},
		{"nested groups", "m", []slog.Attr{slog.Group("a", slog.Group("b", slog.Int("c", 1)))}, `<6>m a.b.c=1`},
		{"empty group", "m", []slog.Attr{slog.Group("g"), slog.Int("n", 1)}, `<6>m n=1`},
		{"inline group", "m", []slog.Attr{slog.Group("", slog.Int("a", 1), slog.Int("b", 2))}, `<6>m a=1 b=2`},
		{"group name to quote", "m", []slog.Attr{slog.Group("my group", slog.Int("n", 1))}, `<6>m "my group.n"=1`},
		{"empty attr dropped", "m", []slog.Attr{{}, slog.Int("n", 1)}, `<6>m n=1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := handleOne(t, nil, nil, slog.LevelInfo, tt.msg, tt.attrs...)
			if want := tt.want + "\n"; got != want {
				t.Errorf("line\n got %s\nwant %s", got, want)
			}
			if _, err := testutil.ParseLine(got); err != nil {
				t.Errorf("testutil.ParseLine(%q): %v", got, err)
			}
		})
	}
}

func TestLevelPrefix(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  string
	}{
		{-100, "<7>"}, {-8, "<7>"}, {-4, "<7>"}, {-1, "<7>"},
		{0, "<6>"},
		{1, "<5>"}, {2, "<5>"}, {3, "<5>"},
		{4, "<4>"}, {7, "<4>"},
		{8, "<3>"}, {11, "<3>"},
		{12, "<2>"}, {15, "<2>"},
		{16, "<1>"}, {19, "<1>"},
		{20, "<0>"}, {100, "<0>"},
	}
	opts := &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{Level: slog.Level(-1000)}}
	for _, tt := range tests {
		t.Run(tt.level.String(), func(t *testing.T) {
			got := handleOne(t, opts, nil, tt.level, "m")
			if want := tt.want + "m\n"; got != want {
				t.Errorf("level %d: got %q, want %q", int(tt.level), got, want)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	dropKey := func(key string) func([]string, slog.Attr) slog.Attr {
		return func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == key {
				return slog.Attr{}
			}
			return a
		}
	}
	at := time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.FixedZone("", 3600))
	tests := []struct {
		name  string
		opts  *HandlerOptions
		with  func(slog.Handler) slog.Handler
		level slog.Level
		msg   string
		attrs []slog.Attr
		time  time.Time
		want  string
	}{
		{name: "level removed: info prefix", opts: &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{ReplaceAttr: dropKey(slog.LevelKey)}},
			level: slog.LevelError, msg: "m", want: `<6>m`},
		{name: "level removed: forged priority stays text", opts: &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{ReplaceAttr: dropKey(slog.LevelKey)}},
			level: slog.LevelError, msg: "<3>forged\n<0>again", want: `<6><3>forged\n<0>again`},
		{name: "level replaced", opts: &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.LevelKey {
				return slog.Any(a.Key, slog.LevelError+4)
			}
			return a
		}}}, level: slog.LevelInfo, msg: "m", want: `<2>m`},
		{name: "message removed", opts: &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{ReplaceAttr: dropKey(slog.MessageKey)}},
			level: slog.LevelWarn, msg: "m", attrs: []slog.Attr{slog.Int("a", 1), slog.Int("b", 2)}, want: `<4>a=1 b=2`},
		{name: "message removed, nothing else", opts: &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{ReplaceAttr: dropKey(slog.MessageKey)}},
			level: slog.LevelWarn, msg: "m", want: `<4>`},
		{name: "message removed, key looks like a priority", opts: &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{ReplaceAttr: dropKey(slog.MessageKey)}},
			level: slog.LevelWarn, msg: "m", attrs: []slog.Attr{slog.Int("<0>", 1)}, want: `<4><0>=1`},
		{name: "message replaced", opts: &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.MessageKey {
				return slog.String(a.Key, "new\nmessage")
			}
			return a
		}}}, msg: "m", want: `<6>new\nmessage`},
		{name: "attribute replaced in its group", opts: &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 1 && groups[0] == "g" && a.Key == "secret" {
				return slog.String(a.Key, "***")
			}
			return a
		}}}, msg: "m", attrs: []slog.Attr{slog.String("secret", "top"), slog.Group("g", slog.String("secret", "top"))},
			want: `<6>m secret=top g.secret=***`},
		{name: "time field", opts: &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{TimeField: "time"}}, msg: "m", time: at,
			attrs: []slog.Attr{slog.Int("n", 1)}, want: `<6>m time=2026-11-25T12:00:00.123456789+01:00 n=1`},
		{name: "time field without a time", opts: &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{TimeField: "time"}}, msg: "m",
			want: `<6>m`},
		{name: "time field to quote", opts: &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{TimeField: "the time"}}, msg: "m", time: at.UTC(),
			want: `<6>m "the time"=2026-11-25T11:00:00.123456789Z`},
		{name: "time removed by ReplaceAttr", opts: &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{TimeField: "time", ReplaceAttr: dropKey(slog.TimeKey)}},
			msg: "m", time: at, want: `<6>m`},
		{name: "message removed, time first", opts: &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{TimeField: "t", ReplaceAttr: dropKey(slog.MessageKey)}},
			msg: "m", time: at.UTC(), want: `<6>t=2026-11-25T11:00:00.123456789Z`},
		{name: "time without TimeField", msg: "m", time: at, want: `<6>m`},
		{name: "WithAttrs and WithGroup", with: func(h slog.Handler) slog.Handler {
			return h.WithAttrs([]slog.Attr{slog.Int("a", 1)}).WithGroup("g").WithAttrs([]slog.Attr{slog.Int("b", 2)}).WithGroup("h")
		}, msg: "m", attrs: []slog.Attr{slog.Int("c", 3)}, want: `<6>m a=1 g.b=2 g.h.c=3`},
		{name: "WithGroup without attributes", with: func(h slog.Handler) slog.Handler {
			return h.WithGroup("g")
		}, msg: "m", want: `<6>m`},
		{name: "empty WithAttrs and WithGroup", with: func(h slog.Handler) slog.Handler {
			return h.WithAttrs(nil).WithGroup("")
		}, msg: "m", attrs: []slog.Attr{slog.Int("c", 3)}, want: `<6>m c=3`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			var h slog.Handler = NewHandler(&buf, tt.opts)
			if tt.with != nil {
				h = tt.with(h)
			}
			r := slog.NewRecord(tt.time, tt.level, tt.msg, 0)
			r.AddAttrs(tt.attrs...)
			if err := h.Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if got, want := buf.String(), tt.want+"\n"; got != want {
				t.Errorf("line\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestSource(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(NewHandler(&buf, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{AddSource: true}}))
	logger.Info("m", "k", "v")
	re := regexp.MustCompile(`^<6>m source=/\S+/stdoutfallback/handler_test\.go:\d+ k=v\n$`)
	if !re.MatchString(buf.String()) {
		t.Errorf("line %q does not match %s", buf.String(), re)
	}

	// A path that needs quotes, from ReplaceAttr.
	buf.Reset()
	logger = slog.New(NewHandler(&buf, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{AddSource: true, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.SourceKey {
			return slog.Any(a.Key, &slog.Source{File: "/my src/a.go", Line: 7})
		}
		return a
	}}}))
	logger.Info("m")
	if got, want := buf.String(), "<6>m source=\"/my src/a.go:7\"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	// Removed by ReplaceAttr.
	buf.Reset()
	logger = slog.New(NewHandler(&buf, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{AddSource: true, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.SourceKey {
			return slog.Attr{}
		}
		return a
	}}}))
	logger.Info("m")
	if got, want := buf.String(), "<6>m\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestEnabled(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		level slog.Leveler
		l     slog.Level
		want  bool
	}{
		{"default takes info", nil, slog.LevelInfo, true},
		{"default drops debug", nil, slog.LevelDebug, false},
		{"debug takes debug", slog.LevelDebug, slog.LevelDebug, true},
		{"error drops warn", slog.LevelError, slog.LevelWarn, false},
		{"error takes emergency", slog.LevelError, slog.LevelError + 12, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHandler(io.Discard, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{Level: tt.level}})
			if got := h.Enabled(ctx, tt.l); got != tt.want {
				t.Errorf("Enabled(%v) = %v, want %v", tt.l, got, tt.want)
			}
		})
	}

	// A LevelVar is read on every call.
	var lv slog.LevelVar
	h := NewHandler(io.Discard, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{Level: &lv}}).WithGroup("g")
	lv.Set(slog.LevelError)
	if h.Enabled(ctx, slog.LevelWarn) {
		t.Error("Enabled(Warn) with the LevelVar at Error")
	}
}

func TestNilWriterIsStdout(t *testing.T) {
	if w := NewHandler(nil, nil).out.w; w != os.Stdout {
		t.Errorf("writer %v, want os.Stdout", w)
	}
}

// funcWriter is an io.Writer made of a function.
type funcWriter func([]byte) (int, error)

func (f funcWriter) Write(p []byte) (int, error) { return f(p) }

func TestWriteErrors(t *testing.T) {
	errBroken := errors.New("broken pipe")
	tests := []struct {
		name string
		w    funcWriter
		want error
	}{
		{"writer's error", func(p []byte) (int, error) { return 0, errBroken }, errBroken},
		{"writer's error with a short count", func(p []byte) (int, error) { return 1, errBroken }, errBroken},
		{"short write", func(p []byte) (int, error) { return len(p) - 1, nil }, io.ErrShortWrite},
		{"zero-length write", func(p []byte) (int, error) { return 0, nil }, io.ErrShortWrite},
		{"whole write", func(p []byte) (int, error) { return len(p), nil }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHandler(tt.w, nil)
			err := h.Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelInfo, "m", 0))
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Handle = %v, want %v", err, tt.want)
			}
		})
	}
}

// stackError is an error that carries a multi-line stack trace, as
// newstyle.WithStack's errors do.
type stackError struct {
	msg   string
	stack string
}

func (e *stackError) Error() string { return e.msg }
func (e *stackError) Stack() []byte { return []byte(e.stack) }

const testStack = "main.charge(...)\n\t/src/app/pay.go:42\nmain.main(...)\n\t/src/app/main.go:12\n"

func TestTraceback(t *testing.T) {
	boom := &stackError{msg: "card declined", stack: testStack}
	tests := []struct {
		name  string
		opts  *HandlerOptions
		attrs []slog.Attr
		want  string
	}{
		{name: "error with a stack", attrs: []slog.Attr{slog.Any("err", boom), slog.Int("n", 1)},
			want: `<3>failed err="card declined" n=1 traceback="main.charge(...)\n\t/src/app/pay.go:42\nmain.main(...)\n\t/src/app/main.go:12\n"`},
		{name: "wrapped", attrs: []slog.Attr{slog.Any("err", fmt.Errorf("charge: %w", boom))},
			want: `<3>failed err="charge: card declined" traceback="main.charge(...)\n\t/src/app/pay.go:42\nmain.main(...)\n\t/src/app/main.go:12\n"`},
		{name: "joined", attrs: []slog.Attr{slog.Any("err", errors.Join(errors.New("other"), boom))},
			want: `<3>failed err="other\ncard declined" traceback="main.charge(...)\n\t/src/app/pay.go:42\nmain.main(...)\n\t/src/app/main.go:12\n"`},
		{name: "two errors, one key", attrs: []slog.Attr{slog.Any("a", &stackError{"a", "f()\n\ta.go:1"}), slog.Any("b", &stackError{"b", "g()\n\tb.go:2\n"})},
			want: `<3>failed a=a b=b traceback="f()\n\ta.go:1\n\ng()\n\tb.go:2\n"`},
		{name: "in a group", attrs: []slog.Attr{slog.Group("req", slog.Any("err", &stackError{"x", "f()"}))},
			want: `<3>failed req.err=x traceback=f()`},
		{name: "TracebackField", opts: &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{TracebackField: "stack trace"}}, attrs: []slog.Attr{slog.Any("err", &stackError{"x", "f()\n"})},
			want: `<3>failed err=x "stack trace"="f()\n"`},
		{name: "error without a stack", attrs: []slog.Attr{slog.Any("err", errors.New("plain"))},
			want: `<3>failed err=plain`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := handleOne(t, tt.opts, nil, slog.LevelError, "failed", tt.attrs...)
			if want := tt.want + "\n"; got != want {
				t.Errorf("line\n got %s\nwant %s", got, want)
			}
			l, err := testutil.ParseLine(got)
			if err != nil {
				t.Fatalf("parseLine: %v", err)
			}
			if got, want := strings.Count(got, "\n"), 1; got != want {
				t.Errorf("%d newlines, want %d", got, want)
			}
			if n := len(l.Attrs); n == 0 {
				t.Fatal("no attributes parsed")
			}
		})
	}
}

func TestStackLevel(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(NewHandler(&buf, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{StackLevel: slog.LevelError}}))
	logger.Warn("below")
	logger.Error("at")
	lines := strings.SplitAfter(buf.String(), "\n")
	if len(lines) != 3 || lines[2] != "" {
		t.Fatalf("output %q: want two lines", buf.String())
	}
	if lines[0] != "<4>below\n" {
		t.Errorf("below StackLevel: %q, want no traceback", lines[0])
	}
	l, err := testutil.ParseLine(lines[1])
	if err != nil {
		t.Fatal(err)
	}
	if l.Msg != "at" || len(l.Attrs) != 1 || l.Attrs[0].Key != "traceback" {
		t.Fatalf("parsed %+v, want message and traceback", l)
	}
	// The stack starts at the logging call, without slog's frames.
	trace := l.Attrs[0].Value
	if !strings.HasPrefix(trace, "github.com/newstyle-go/newstyle/stdoutfallback.TestStackLevel(") ||
		!strings.Contains(trace, "\n\t") || strings.Contains(trace, "log/slog.") {
		t.Errorf("traceback %q: want this test's stack, without slog's frames", trace)
	}
}

// TestPoolDropsLargeBuffers: a buffer grown past buffer.MaxPooled is not
// kept.
// (Were it kept, the next get on this P would most likely return it.)
func TestPoolDropsLargeBuffers(t *testing.T) {
	var buf bytes.Buffer
	h := NewHandler(&buf, nil)
	big := strings.Repeat("x", 2*buffer.MaxPooled)
	if err := h.Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelInfo, big, 0)); err != nil {
		t.Fatal(err)
	}
	if got := buf.Len(); got != len(big)+4 {
		t.Fatalf("wrote %d bytes, want %d", got, len(big)+4)
	}
	for range 10 {
		b := buffer.Get(0)
		if cap(*b) > buffer.MaxPooled {
			t.Fatalf("the pool holds a buffer of %d bytes", cap(*b))
		}
		defer buffer.Put(b)
	}
}
