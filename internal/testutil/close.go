package testutil

import (
	"io"
	"testing"
)

// Open returns what open makes, and closes it when the test ends. An
// error from open ends the test; one from Close fails it: a test's
// Writer or logger that cannot close cleanly is a finding.
func Open[T io.Closer](tb testing.TB, open func() (T, error)) T {
	tb.Helper()
	c, err := open()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Error(err)
		}
	})
	return c
}
