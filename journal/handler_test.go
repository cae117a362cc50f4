//go:build linux

package journal

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journaltest"
	"github.com/newstyle-go/newstyle/slogopts"
)

func TestLevelPriority(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  Priority
	}{
		{-100, PriDebug}, {slog.LevelDebug, PriDebug}, {-1, PriDebug},
		{slog.LevelInfo, PriInfo},
		{1, PriNotice}, {slogopts.LevelNotice, PriNotice}, {3, PriNotice},
		{slog.LevelWarn, PriWarning}, {7, PriWarning},
		{slog.LevelError, PriErr}, {11, PriErr},
		{slogopts.LevelCritical, PriCrit}, {15, PriCrit},
		{slogopts.LevelAlert, PriAlert}, {19, PriAlert},
		{slogopts.LevelEmergency, PriEmerg}, {100, PriEmerg},
	}
	for _, tt := range tests {
		if got := LevelPriority(tt.level); got != tt.want {
			t.Errorf("LevelPriority(%v) = %v, want %v", tt.level, got, tt.want)
		}
	}
}

func TestFieldNameRule(t *testing.T) {
	reserved := []string{"MESSAGE", "PRIORITY", "TRACEBACK"}
	tests := []struct {
		name   string
		groups []string
		key    string
		want   string
	}{
		{"lower case", nil, "user", "USER"},
		{"groups joined", []string{"req", "http"}, "status", "REQ_HTTP_STATUS"},
		{"dots and dashes", nil, "user.id-hash", "USER_ID_HASH"},
		{"non-ASCII rune is one underscore", nil, "größe", "GR__E"},
		{"invalid UTF-8 byte", nil, "a\xffb", "A_B"},
		{"equals and newline", nil, "a=b\nc", "A_B_C"},
		{"leading digit", nil, "2fa", "F_2FA"},
		{"leading underscore", nil, "_pid", "F__PID"},
		{"empty", nil, "", "F_"},
		{"reserved", nil, "message", "F_MESSAGE"},
		{"reserved after a group is not reserved", []string{"g"}, "message", "G_MESSAGE"},
		{"reserved traceback", nil, "Traceback", "F_TRACEBACK"},
		{"OBJECT_PID", nil, "object_pid", "F_OBJECT_PID"},
		{"another unit's object", nil, "object.systemd_unit", "F_OBJECT_SYSTEMD_UNIT"},
		{"another user unit's object", nil, "OBJECT_SYSTEMD_USER_UNIT", "F_OBJECT_SYSTEMD_USER_UNIT"},
		{"object through a group", []string{"object"}, "systemd_unit", "F_OBJECT_SYSTEMD_UNIT"},
		{"any OBJECT_ field", nil, "object_uid", "F_OBJECT_UID"},
		{"coredump unit", nil, "coredump_unit", "F_COREDUMP_UNIT"},
		{"coredump user unit", []string{"coredump"}, "user_unit", "F_COREDUMP_USER_UNIT"},
		{"PID 1's unit", nil, "unit", "F_UNIT"},
		{"user manager's unit", nil, "user-unit", "F_USER_UNIT"},
		{"invocation", nil, "invocation_id", "F_INVOCATION_ID"},
		{"user invocation", nil, "user_invocation_id", "F_USER_INVOCATION_ID"},
		{"unit inside a name is kept", nil, "unit_name", "UNIT_NAME"},
		{"unit in a group is kept", []string{"svc"}, "unit", "SVC_UNIT"},
		{"objects is not OBJECT_", nil, "objects", "OBJECTS"},
		{"capped at 64", nil, strings.Repeat("a", 100), strings.Repeat("A", 64)},
		{"prefix then cap", nil, "9" + strings.Repeat("a", 100), "F_9" + strings.Repeat("A", 61)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var prefix []byte
			for _, g := range tt.groups {
				prefix = appendGroupName(prefix, g)
			}
			got := string(appendFieldName(nil, prefix, tt.key, reserved))
			if got != tt.want {
				t.Errorf("field name = %q, want %q", got, tt.want)
			}
			if !ValidFieldName(got) {
				t.Errorf("%q is not a valid field name", got)
			}
		})
	}
}

// handlerServer returns a Handler sending to a test journald.
func handlerServer(t *testing.T, opts *HandlerOptions) (*Handler, *journaltest.Server) {
	t.Helper()
	srv := journaltest.NewServer(t)
	return NewHandler(newTestWriter(t, srv.Path(), WriterOptions{}), opts), srv
}

func TestHandlerFields(t *testing.T) {
	stamp := time.Date(2026, 11, 25, 12, 0, 0, 5, time.UTC)
	tests := []struct {
		name  string
		opts  *HandlerOptions
		level slog.Level
		msg   string
		attrs []slog.Attr
		with  func(h slog.Handler) slog.Handler
		want  []string
	}{
		{
			name: "values", level: slog.LevelInfo, msg: "m",
			attrs: []slog.Attr{
				slog.String("s", "a b"), slog.Int("i", -3), slog.Uint64("u", 7), slog.Float64("f", 0.5),
				slog.Bool("b", true), slog.Duration("d", 1500*time.Millisecond), slog.Time("t", stamp),
				slog.Any("raw", []byte{0, 0xff}), slog.Any("err", errors.New("boom")),
			},
			want: []string{"MESSAGE=m", "PRIORITY=6", "SYSLOG_IDENTIFIER=journal-test", "S=a b", "I=-3", "U=7", "F=0.5",
				"B=true", "D=1.5s", "T=2026-11-25T12:00:00.000000005Z", "RAW=\x00\xff", "ERR=boom"},
		},
		{
			name: "multi-line value in one field", level: slog.LevelWarn, msg: "line 1\nline 2",
			attrs: []slog.Attr{slog.String("sql", "SELECT 1\nFROM t")},
			want:  []string{"MESSAGE=line 1\nline 2", "PRIORITY=4", "SYSLOG_IDENTIFIER=journal-test", "SQL=SELECT 1\nFROM t"},
		},
		{
			name: "groups flattened, empty group dropped, inline group", level: slog.LevelError, msg: "m",
			attrs: []slog.Attr{
				slog.Group("req", slog.String("method", "GET"), slog.Group("url", slog.String("path", "/"))),
				slog.Group("empty"), slog.Group("", slog.Int("inline", 1)),
			},
			want: []string{"MESSAGE=m", "PRIORITY=3", "SYSLOG_IDENTIFIER=journal-test", "REQ_METHOD=GET", "REQ_URL_PATH=/", "INLINE=1"},
		},
		{
			name: "WithAttrs then WithGroup", level: slogopts.LevelCritical, msg: "m",
			with: func(h slog.Handler) slog.Handler {
				return h.WithAttrs([]slog.Attr{slog.String("app", "shop")}).WithGroup("req").WithAttrs([]slog.Attr{slog.Int("id", 9)})
			},
			attrs: []slog.Attr{slog.String("path", "/x")},
			want:  []string{"MESSAGE=m", "PRIORITY=2", "SYSLOG_IDENTIFIER=journal-test", "APP=shop", "REQ_ID=9", "REQ_PATH=/x"},
		},
		{
			name: "reserved names cannot override", level: slog.LevelInfo, msg: "real",
			attrs: []slog.Attr{slog.String("message", "forged"), slog.Int("priority", 0), slog.String("syslog_identifier", "x")},
			want: []string{"MESSAGE=real", "PRIORITY=6", "SYSLOG_IDENTIFIER=journal-test",
				"F_MESSAGE=forged", "F_PRIORITY=0", "F_SYSLOG_IDENTIFIER=x"},
		},
		{
			name: "identifier and time options", level: slogopts.LevelNotice, msg: "m",
			opts:  &HandlerOptions{SyslogIdentifier: "web", HandlerOptions: slogopts.HandlerOptions{TimeField: "time"}},
			attrs: []slog.Attr{slog.Int("time", 1)},
			want:  []string{"MESSAGE=m", "PRIORITY=5", "SYSLOG_IDENTIFIER=web", "TIME=2026-11-25T12:00:00.000000005Z", "F_TIME=1"},
		},
		{
			name: "ReplaceAttr sees built-ins and groups", level: slog.LevelInfo, msg: "m",
			opts: &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
				switch {
				case a.Key == slog.MessageKey:
					return slog.String(a.Key, "replaced")
				case a.Key == slog.LevelKey:
					return slog.Any(a.Key, slog.LevelError)
				case a.Key == "secret":
					return slog.Attr{}
				case len(groups) == 1 && groups[0] == "g":
					return slog.String(a.Key, "in g")
				}
				return a
			}}},
			attrs: []slog.Attr{slog.String("secret", "x"), slog.Group("g", slog.Int("n", 1))},
			want:  []string{"MESSAGE=replaced", "PRIORITY=3", "SYSLOG_IDENTIFIER=journal-test", "G_N=in g"},
		},
		{
			name: "LogValuer resolved", level: slog.LevelInfo, msg: "m",
			attrs: []slog.Attr{slog.Any("user", userValuer{"ada"})},
			want:  []string{"MESSAGE=m", "PRIORITY=6", "SYSLOG_IDENTIFIER=journal-test", "USER_NAME=ada"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, srv := handlerServer(t, tt.opts)
			var sh slog.Handler = h
			if tt.with != nil {
				sh = tt.with(sh)
			}
			r := slog.NewRecord(stamp, tt.level, tt.msg, 0)
			r.AddAttrs(tt.attrs...)
			if err := sh.Handle(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			got := srv.Wait(t, 1, 5*time.Second)[0]
			if g, w := strings.Join(fieldsOf(got.Entry), "|"), strings.Join(tt.want, "|"); g != w {
				t.Errorf("fields\n%q\nwant\n%q", g, w)
			}
			if err := srv.Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

type userValuer struct{ name string }

func (u userValuer) LogValue() slog.Value { return slog.GroupValue(slog.String("name", u.name)) }

type stackErr struct{ msg, stack string }

func (e stackErr) Error() string { return e.msg }
func (e stackErr) Stack() []byte { return []byte(e.stack) }

func TestHandlerTraceback(t *testing.T) {
	trace := strings.Repeat("main.f(...)\n\t/src/main.go:10\n", 40)
	h, srv := handlerServer(t, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{TracebackField: "stack"}})
	logger := slog.New(h)
	wrapped := errors.Join(errors.New("context"), stackErr{"disk full", trace})
	logger.Error("write failed", "err", wrapped)
	// A sentinel: the socket keeps the order, so once it is in, whatever
	// the first record made is in too.
	logger.Info("sentinel")
	got := srv.Wait(t, 2, 5*time.Second)
	if v, _ := got[len(got)-1].Get("MESSAGE"); len(got) != 2 || v != "sentinel" {
		t.Fatalf("%d entries, want the record's one and the sentinel", len(got))
	}
	e := got[0].Entry
	if v, _ := e.Get("STACK"); v != trace {
		t.Errorf("STACK = %q, want the 40-line trace", v)
	}
	if v, _ := e.Get("MESSAGE"); v != "write failed" {
		t.Errorf("MESSAGE = %q", v)
	}
	if v, _ := e.Get("ERR"); v != "context\ndisk full" {
		t.Errorf("ERR = %q", v)
	}
}

func TestHandlerStackLevel(t *testing.T) {
	h, srv := handlerServer(t, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{StackLevel: slog.LevelError, AddSource: true}})
	logger := slog.New(h)
	logger.Warn("no stack")
	logger.Error("with stack")
	got := srv.Wait(t, 2, 5*time.Second)
	if got[0].Count("TRACEBACK") != 0 {
		t.Errorf("a Warn record got a traceback")
	}
	tb, _ := got[1].Get("TRACEBACK")
	lines := strings.Split(tb, "\n")
	if !strings.HasPrefix(lines[0], "github.com/newstyle-go/newstyle/journal.TestHandlerStackLevel(") {
		t.Errorf("traceback does not start at the logging function:\n%s", tb)
	}
	if strings.Contains(tb, "log/slog") || strings.Contains(tb, "slogcore") {
		t.Errorf("traceback holds slog's or the handler's frames:\n%s", tb)
	}
	if fn, _ := got[1].Get("CODE_FUNC"); fn != "github.com/newstyle-go/newstyle/journal.TestHandlerStackLevel" {
		t.Errorf("CODE_FUNC = %q", fn)
	}
	if line, _ := got[1].Get("CODE_LINE"); line == "" || line == "0" {
		t.Errorf("CODE_LINE = %q", line)
	}
}

func TestHandlerTooManyFields(t *testing.T) {
	h, srv := handlerServer(t, nil)
	attrs := make([]slog.Attr, maxFieldCount)
	for i := range attrs {
		attrs[i] = slog.Int("n", i)
	}
	r := slog.NewRecord(time.Now(), slog.LevelInfo, "m", 0)
	r.AddAttrs(attrs...)
	if err := h.Handle(context.Background(), r); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Handle = %v, want ErrTooLarge", err)
	}
	if st := h.w.Stats(); st.Errors.TooLarge != 1 {
		t.Errorf("Stats = %+v", st)
	}
	if n := len(srv.Received()); n != 0 {
		t.Errorf("%d entries sent", n)
	}
}

// TestSlogtest runs the standard library's conformance test, reading each
// entry back from the test journald and turning its flat field names back
// into slog's nested keys.
func TestSlogtest(t *testing.T) {
	var srv *journaltest.Server
	newHandler := func(t *testing.T) slog.Handler {
		var h *Handler
		h, srv = handlerServer(t, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{TimeField: "TIME"}})
		return h
	}
	result := func(t *testing.T) map[string]any {
		got := srv.Wait(t, 1, 5*time.Second)
		return testutil.SlogtestMap(fieldsOf(got[0].Entry)...)
	}
	slogtest.Run(t, newHandler, result)
}
