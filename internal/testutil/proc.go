package testutil

import (
	"os"
	"testing"
)

// OpenFDs counts the process's open descriptors, from /proc.
func OpenFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
