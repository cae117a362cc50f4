// Package slogcore is what the journal and stdoutfallback slog handlers
// share: the level→priority mapping, the walk over a record's attributes
// (LogValuers resolved, groups flattened, ReplaceAttr applied), the text
// form of values, and stack traces. Each handler adds only its output
// format.
package slogcore

import "log/slog"

// Priority maps any slog level to a syslog priority, 0 (emerg) to 7
// (debug), by the table documented at journal.LevelPriority; the
// thresholds are journal.LevelNotice (Info+2), LevelCritical (Error+4),
// LevelAlert (Error+8) and LevelEmergency (Error+12), which this package
// cannot import. journal's tests check that the two agree.
func Priority(l slog.Level) int {
	switch {
	case l < slog.LevelInfo:
		return 7
	case l == slog.LevelInfo:
		return 6
	case l < slog.LevelWarn:
		return 5
	case l < slog.LevelError:
		return 4
	case l < slog.LevelError+4:
		return 3
	case l < slog.LevelError+8:
		return 2
	case l < slog.LevelError+12:
		return 1
	}
	return 0
}
