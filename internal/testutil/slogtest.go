package testutil

import (
	"log/slog"
	"strings"
)

// SlogtestMap rebuilds, for testing/slogtest, slog's keys from the fields
// ("NAME=value", in order) of an entry the journal handler made
// with TimeField "TIME": slogtest's attribute keys are lower-case and its
// group names upper-case, so groups can be told from keys after the
// handler joined them with '_'. (It takes strings, not a
// journaltest.Entry, so that journaltest's own tests may use this
// package.)
func SlogtestMap(fields ...string) map[string]any {
	m := map[string]any{}
	for _, field := range fields {
		var f struct{ Name, Value string }
		f.Name, f.Value, _ = strings.Cut(field, "=")
		switch f.Name {
		case "MESSAGE":
			m[slog.MessageKey] = f.Value
			continue
		case "PRIORITY":
			m[slog.LevelKey] = f.Value
			continue
		case "TIME":
			m[slog.TimeKey] = f.Value
			continue
		case "SYSLOG_IDENTIFIER":
			continue
		}
		parts := strings.Split(f.Name, "_")
		cur := m
		for _, g := range parts[:len(parts)-1] {
			sub, ok := cur[g].(map[string]any)
			if !ok {
				sub = map[string]any{}
				cur[g] = sub
			}
			cur = sub
		}
		cur[strings.ToLower(parts[len(parts)-1])] = f.Value
	}
	return m
}
