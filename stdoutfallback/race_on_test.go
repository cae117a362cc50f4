//go:build race

package stdoutfallback

// raceEnabled: under the race detector sync.Pool drops items on purpose,
// so allocation counts are not the product's.
const raceEnabled = true
