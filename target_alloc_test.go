//go:build !race

package newstyle

import (
	"io"
	"log/slog"
	"testing"
)

// The runtime target costs Handle one atomic load, no allocation: on
// stdout as before, and for nothing at all on null.
func TestSetTargetAllocs(t *testing.T) {
	t.Setenv(EnvTarget, "")
	h := NewHandler(&Options{Target: TargetStdout, Stdout: io.Discard})
	l := slog.New(h).With("app", "shop")
	for _, target := range []Target{TargetStdout, TargetNull} {
		if _, err := h.SetTarget(target); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(200, func() { l.Info("hello", "id", 7) }); n != 0 {
			t.Errorf("%v: %v allocations per record, want 0", target, n)
		}
	}
}
