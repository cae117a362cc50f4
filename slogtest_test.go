package newstyle

import (
	"bytes"
	"log/slog"
	"testing"
	"testing/slogtest"
	"time"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journaltest"
	"github.com/newstyle-go/newstyle/slogopts"
)

// The root Handler passes the standard library's conformance tests with
// either target: through a journal stand-in, entries read back by
// journald's rules; on stdout, lines read back by an independent parser.
func TestSlogtest(t *testing.T) {
	t.Run("journal", func(t *testing.T) {
		var srv *journaltest.Server
		slogtest.Run(t, func(t *testing.T) slog.Handler {
			srv = journaltest.NewServer(t)
			h := NewHandler(&Options{Target: TargetJournal, SocketPath: srv.Path(), HandlerOptions: slogopts.HandlerOptions{TimeField: "TIME"}, Stdout: &bytes.Buffer{}})
			t.Cleanup(func() { h.Close() })
			return h
		}, func(t *testing.T) map[string]any {
			var fields []string
			for _, f := range srv.Wait(t, 1, 5*time.Second)[0].Fields {
				fields = append(fields, f.Name+"="+string(f.Value))
			}
			return testutil.SlogtestMap(fields...)
		})
	})
	t.Run("stdout", func(t *testing.T) {
		var buf *bytes.Buffer
		slogtest.Run(t, func(t *testing.T) slog.Handler {
			buf = new(bytes.Buffer)
			return NewHandler(&Options{Target: TargetStdout, Stdout: buf, HandlerOptions: slogopts.HandlerOptions{TimeField: slog.TimeKey}})
		}, func(t *testing.T) map[string]any {
			l, err := testutil.ParseLine(buf.String())
			if err != nil {
				t.Fatalf("ParseLine(%q): %v", buf.String(), err)
			}
			m, err := l.ToMap()
			if err != nil {
				t.Fatalf("line %q: %v", buf.String(), err)
			}
			return m
		})
	})
}
