// Package slogcore is what the journal and stdoutfallback slog handlers
// share: the level→priority mapping, the walk over a record's attributes
// (LogValuers resolved, groups flattened, ReplaceAttr applied), the text
// form of values, and stack traces. Each handler adds only its output
// format.
package slogcore

import "log/slog"

// The syslog levels slog does not name, spaced as slog spaces its own (by
// 4) so that each has room for finer levels around it.
const (
	LevelNotice    slog.Level = 2  // between Info (0) and Warn (4)
	LevelCritical  slog.Level = 12 // Error + 4
	LevelAlert     slog.Level = 16 // Error + 8
	LevelEmergency slog.Level = 20 // Error + 12
)

// Priority maps any slog level to a syslog priority, 0 (emerg) to 7
// (debug):
//
//	level < Info                 7 debug
//	level == Info                6 info
//	Info < level < Warn          5 notice   (LevelNotice)
//	Warn <= level < Error        4 warning
//	Error <= level < Error+4     3 err
//	Error+4 <= level < Error+8   2 crit     (LevelCritical)
//	Error+8 <= level < Error+12  1 alert    (LevelAlert)
//	Error+12 <= level            0 emerg    (LevelEmergency)
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
	case l < LevelCritical:
		return 3
	case l < LevelAlert:
		return 2
	case l < LevelEmergency:
		return 1
	}
	return 0
}
