//go:build !race

package stdoutfallback

const raceEnabled = false
