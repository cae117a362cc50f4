package stdoutfallback

import (
	"bytes"
	"log/slog"
	"testing"
	"testing/slogtest"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/slogopts"
)

// TestSlogtest runs the standard library's conformance tests, reading
// each line back with parseLine: the priority is the level, dotted keys
// are groups. The time is written under "time", so that slogtest can see
// it.
func TestSlogtest(t *testing.T) {
	var buf *bytes.Buffer
	slogtest.Run(t, func(t *testing.T) slog.Handler {
		buf = new(bytes.Buffer)
		return NewHandler(buf, &HandlerOptions{HandlerOptions: slogopts.HandlerOptions{TimeField: slog.TimeKey}})
	}, func(t *testing.T) map[string]any {
		l, err := testutil.ParseLine(buf.String())
		if err != nil {
			t.Fatalf("testutil.ParseLine(%q): %v", buf.String(), err)
		}
		m, err := l.ToMap()
		if err != nil {
			t.Fatalf("line %q: %v", buf.String(), err)
		}
		return m
	})
}
