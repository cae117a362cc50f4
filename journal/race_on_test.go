//go:build race

package journal

// raceEnabled: under the race detector sync.Pool drops items on purpose,
// so allocation counts are not the product's.
const raceEnabled = true
