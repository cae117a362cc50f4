//go:build linux

package newstyle

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/newstyle-go/newstyle/journaltest"
	"github.com/newstyle-go/newstyle/slogopts"
)

// jsonLines decodes the JSON objects of out, one a line.
func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "line %q", line)
		recs = append(recs, m)
	}
	return recs
}

// TestAnnouncement: where records go, and why, is said once at info when
// the automatic rule or NEWSTYLE_LOG_TARGET chose it; not when the
// program chose (Options.Target), nor with Quiet, nor below the level. An
// unreadable NEWSTYLE_LOG_TARGET is warned about once, naming the valid
// values, Quiet or not.
func TestAnnouncement(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    string
		opts   Options
		want   []string // the lines before "hello"
		noWant string
	}{
		{name: "auto", env: "", opts: Options{SocketPath: "/nonexistent/socket"},
			want: []string{"<6>newstyle: logging to stdout target=stdout reason="}},
		{name: "env", env: "stdout", opts: Options{},
			want: []string{"<6>newstyle: logging to stdout target=stdout reason=\"NEWSTYLE_LOG_TARGET=stdout\""}},
		{name: "program's choice", env: "", opts: Options{Target: TargetStdout}},
		{name: "quiet", env: "stdout", opts: Options{Quiet: true}},
		{name: "invalid env", env: "bogus", opts: Options{SocketPath: "/nonexistent/socket", Quiet: true},
			want: []string{"<4>newstyle: NEWSTYLE_LOG_TARGET is ignored"}, noWant: "logging to"},
		{name: "invalid env, announced", env: "bogus", opts: Options{SocketPath: "/nonexistent/socket"},
			want: []string{"<4>newstyle: NEWSTYLE_LOG_TARGET is ignored", "<6>newstyle: logging to stdout"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvTarget, tc.env)
			t.Setenv("JOURNAL_STREAM", "")
			var out bytes.Buffer
			tc.opts.Stdout = &out
			logger := NewLogger(&tc.opts)
			logger.Info("hello")
			NewLogger(&tc.opts) // a second logger says it again: once per NewHandler
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			require.Len(t, lines, 2*len(tc.want)+1, "%q", out.String())
			for i, w := range tc.want {
				assert.True(t, strings.HasPrefix(lines[i], w), "line %d %q, want %q…", i, lines[i], w)
			}
			assert.Equal(t, "<6>hello", lines[len(tc.want)])
			if tc.noWant != "" {
				assert.NotContains(t, out.String(), tc.noWant)
			}
			if tc.env == "bogus" {
				assert.Contains(t, lines[0], "auto, journal, stdout (or console) and null", "the warning names the valid values")
			}
		})
	}

	t.Run("below the level", func(t *testing.T) {
		t.Setenv(EnvTarget, "stdout")
		var out bytes.Buffer
		NewLogger(&Options{Stdout: &out, HandlerOptions: levelWarn()})
		assert.Empty(t, out.String())
	})

	t.Run("to the journal", func(t *testing.T) {
		t.Setenv(EnvTarget, "journal")
		srv := journaltest.NewServer(t)
		NewLogger(&Options{SocketPath: srv.Path()})
		e := srv.Wait(t, 1, 5*time.Second)[0]
		msg, _ := e.Get("MESSAGE")
		target, _ := e.Get("TARGET")
		assert.Equal(t, "newstyle: logging to the journal", msg)
		assert.Equal(t, "journal", target)
	})
}

// TestFallbackHandler: Options.Fallback takes the place of the <N> lines
// for every record that does not go to the journal: when stdout is the
// target, and when the journal does not take a record.
func TestFallbackHandler(t *testing.T) {
	t.Setenv(EnvTarget, "")
	var out bytes.Buffer
	fb := slog.NewJSONHandler(&out, nil)

	logger := NewLogger(&Options{Target: TargetStdout, Fallback: fb})
	logger.Warn("off systemd", "order", 42)
	recs := jsonLines(t, out.String())
	require.Len(t, recs, 1)
	assert.Equal(t, "WARN", recs[0]["level"])
	assert.Equal(t, "off systemd", recs[0]["msg"])
	assert.Equal(t, float64(42), recs[0]["order"])
	assert.NotEmpty(t, recs[0]["time"], "the fallback's own format: a timestamp")

	// Chosen automatically (no journald here), the announcement goes to
	// the fallback too, and names it.
	out.Reset()
	logger = NewLogger(&Options{SocketPath: "/nonexistent/socket", Fallback: fb})
	logger.Info("next")
	recs = jsonLines(t, out.String())
	require.Len(t, recs, 2)
	assert.Equal(t, "newstyle: logging to the fallback handler (Options.Fallback)", recs[0]["msg"])
	assert.Equal(t, "next", recs[1]["msg"])

	// The journal target, with journald gone: the record goes to the
	// fallback, not lost.
	out.Reset()
	srv := journaltest.NewServer(t)
	h := NewHandler(&Options{Target: TargetJournal, SocketPath: srv.Path(), Fallback: fb, SendTimeout: 100 * time.Millisecond})
	srv.Close()
	slog.New(h).Error("journald went away")
	assert.Contains(t, out.String(), `"msg":"journald went away"`)
	assert.Nil(t, h.sw.stdout, "no <N> handler is made beside a Fallback")
}

// TestIgnoreEnv: a test that logs to a journaltest.Server sees its
// entries whatever NEWSTYLE_LOG_TARGET says.
func TestIgnoreEnv(t *testing.T) {
	for _, env := range []string{"stdout", "null", "bogus", "journal"} {
		t.Run(env, func(t *testing.T) {
			t.Setenv(EnvTarget, env)
			srv := journaltest.NewServer(t)
			var out bytes.Buffer
			logger := NewLogger(&Options{Target: TargetJournal, IgnoreEnv: true, SocketPath: srv.Path(), Stdout: &out})
			logger.Info("seen")
			e := srv.Wait(t, 1, 5*time.Second)
			msg, _ := e[0].Get("MESSAGE")
			assert.Equal(t, "seen", msg)
			assert.Empty(t, out.String(), "nothing announced or warned: the program chose, and the environment is not read")
		})
	}
}

func levelWarn() slogopts.HandlerOptions { return slogopts.HandlerOptions{Level: slog.LevelWarn} }

// TestFallbackLevel: with a Fallback, Options.Level (a LevelVar, as
// service.Service.Level and LogControl1 set it) decides what is logged,
// on the journal and on the Fallback alike.
func TestFallbackLevel(t *testing.T) {
	t.Setenv(EnvTarget, "")
	srv := journaltest.NewServer(t)
	var out bytes.Buffer
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelWarn)
	h := NewHandler(&Options{
		Target: TargetJournal, SocketPath: srv.Path(), IgnoreEnv: true,
		HandlerOptions: slogopts.HandlerOptions{Level: lv},
		Fallback:       slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}),
	})
	l := slog.New(h)
	l.Info("below warn")
	lv.Set(slog.LevelDebug)
	l.Debug("at debug")
	e := srv.Wait(t, 1, 5*time.Second)
	msg, _ := e[0].Get("MESSAGE")
	assert.Equal(t, "at debug", msg)
	assert.Len(t, srv.Received(), 1)

	_, err := h.SetTarget(TargetStdout)
	require.NoError(t, err)
	lv.Set(slog.LevelError)
	l.Warn("below error")
	l.Error("at error")
	recs := jsonLines(t, out.String())
	require.Len(t, recs, 1, "%s", out.String())
	assert.Equal(t, "at error", recs[0]["msg"])

	// The Fallback's own level counts too.
	out.Reset()
	lv.Set(slog.LevelDebug)
	quiet := NewHandler(&Options{Target: TargetStdout, HandlerOptions: slogopts.HandlerOptions{Level: lv},
		Fallback: slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn})})
	slog.New(quiet).Info("the fallback does not take info")
	assert.Empty(t, out.String())
}

type panicky struct{ slog.Handler }

func (panicky) Handle(context.Context, slog.Record) error { panic("the fallback broke") }

// TestFallbackPanics: a Fallback whose Handle panics does not take the
// program down; the panic is counted.
func TestFallbackPanics(t *testing.T) {
	t.Setenv(EnvTarget, "")
	srv := journaltest.NewServer(t)
	h := NewHandler(&Options{Target: TargetJournal, SocketPath: srv.Path(), IgnoreEnv: true,
		SendTimeout: 100 * time.Millisecond, Fallback: panicky{slog.NewTextHandler(io.Discard, nil)}})
	srv.Close()
	l := slog.New(h)
	require.NotPanics(t, func() {
		l.Info("journal gone")
		l.Info("again")
	})
	_, err := h.SetTarget(TargetStdout)
	require.NoError(t, err)
	require.NotPanics(t, func() { l.Info("on the fallback") })
	assert.GreaterOrEqual(t, h.Stats().FallbackPanics, uint64(3))
}
