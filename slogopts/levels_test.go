package slogopts

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPriorityTable(t *testing.T) {
	for _, tt := range []struct {
		level slog.Level
		want  int
	}{
		{slog.LevelDebug - 10, 7}, {slog.LevelDebug, 7}, {slog.LevelInfo - 1, 7},
		{slog.LevelInfo, 6}, {slog.LevelInfo + 1, 5}, {LevelNotice, 5}, {slog.LevelWarn - 1, 5},
		{slog.LevelWarn, 4}, {slog.LevelError - 1, 4}, {slog.LevelError, 3}, {LevelCritical - 1, 3},
		{LevelCritical, 2}, {LevelAlert - 1, 2}, {LevelAlert, 1}, {LevelEmergency - 1, 1},
		{LevelEmergency, 0}, {LevelEmergency + 100, 0},
	} {
		assert.Equal(t, tt.want, Priority(tt.level), "Priority(%v)", tt.level)
	}
	// Level is the inverse of Priority, and clamps.
	for p := 0; p <= 7; p++ {
		assert.Equal(t, p, Priority(Level(p)), "Priority(Level(%d))", p)
	}
	assert.Equal(t, LevelEmergency, Level(-3))
	assert.Equal(t, slog.LevelDebug, Level(12))
}
