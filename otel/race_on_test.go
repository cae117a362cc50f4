//go:build race

package otel_test

// raceEnabled: the race detector allocates, and makes sync.Pool drop
// items at random, so allocation counts mean nothing under it.
const raceEnabled = true
