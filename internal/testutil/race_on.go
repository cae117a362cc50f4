//go:build race

package testutil

// RaceEnabled reports whether the race detector is on: allocation counts
// mean nothing under it, as sync.Pool drops items on purpose.
const RaceEnabled = true
