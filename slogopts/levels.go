package slogopts

import "log/slog"

// The syslog levels slog does not name. They sit between and above
// slog's own, four apart as slog's are, so that each has room for finer
// levels around it; Priority maps them to NOTICE, CRIT, ALERT and EMERG.
const (
	LevelNotice    slog.Level = slog.LevelInfo + 2   // 2: between Info and Warn
	LevelCritical  slog.Level = slog.LevelError + 4  // 12
	LevelAlert     slog.Level = slog.LevelError + 8  // 16
	LevelEmergency slog.Level = slog.LevelError + 12 // 20
)

// Priority returns the syslog priority of any slog level, 0 (emerg) to 7
// (debug): the PRIORITY of its journal entry and the <N> of its stdout
// line. This is the one table of the module:
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

// Level returns the slog level of a syslog priority, the inverse of
// Priority: debug is slog.LevelDebug, info slog.LevelInfo, notice
// LevelNotice, warning slog.LevelWarn, err slog.LevelError, crit
// LevelCritical, alert LevelAlert, emerg LevelEmergency. A priority below
// 0 is taken as emerg, one above 7 as debug.
func Level(priority int) slog.Level {
	return levels[min(max(priority, 0), 7)]
}

var levels = [8]slog.Level{
	LevelEmergency, LevelAlert, LevelCritical, slog.LevelError,
	slog.LevelWarn, LevelNotice, slog.LevelInfo, slog.LevelDebug,
}
