package testutil

import (
	"os"
	"testing"
)

// CannotRun is what a test calls where it cannot run here (no root, no
// CAP_NET_ADMIN, the race detector on). Under CI=true, where every test
// must run, that fails the test, loudly; elsewhere the test is skipped
// with the reason.
func CannotRun(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot run: %s; under CI=true every test must run", why)
	}
	t.Skip(why)
}
