//go:build linux

package newstyle

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/newstyle-go/newstyle/journaltest"
)

// TestDetectOffLinux: journald exists only on Linux. Elsewhere a logger
// with the default options writes to stdout and says why, even where
// JOURNAL_STREAM names stderr and a socket listens; forcing the journal
// is still the caller's word.
func TestDetectOffLinux(t *testing.T) {
	old := goos
	goos = "darwin"
	t.Cleanup(func() { goos = old })
	srv := journaltest.NewServer(t)
	t.Setenv(EnvTarget, "")
	t.Setenv("JOURNAL_STREAM", stderrStream(t))

	var out bytes.Buffer
	logger := NewLogger(&Options{SocketPath: srv.Path(), Stdout: &out})
	h, ok := logger.Handler().(*Handler)
	require.True(t, ok)
	assert.Equal(t, Detection{Target: TargetStdout, Reason: "journald exists only on Linux, and this is darwin"}, h.Detection())
	logger.Info("hello")
	// The automatic choice is announced once, then records follow.
	assert.Equal(t, "<6>newstyle: logging to stdout target=stdout reason=\"journald exists only on Linux, and this is darwin\"\n<6>hello\n", out.String())
	assert.Empty(t, srv.Received())

	forced := NewHandler(&Options{Target: TargetJournal, SocketPath: srv.Path(), Stdout: &out})
	assert.Equal(t, TargetJournal, forced.Detection().Target)
}
