package journal

import (
	"strings"
	"testing"
)

func TestValidFieldName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"simple", "MESSAGE", true},
		{"digits and underscore inside", "HTTP_STATUS_2XX", true},
		{"single letter", "A", true},
		{"64 characters", strings.Repeat("A", 64), true},
		{"empty", "", false},
		{"65 characters", strings.Repeat("A", 65), false},
		{"leading underscore is trusted", "_PID", false},
		{"leading digit", "2FA", false},
		{"lower case", "message", false},
		{"equals sign", "A=B", false},
		{"newline", "A\nB", false},
		{"NUL", "A\x00", false},
		{"space", "A B", false},
		{"dash", "A-B", false},
		{"non-ASCII", "ÄRGER", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidFieldName(tt.in); got != tt.want {
				t.Errorf("ValidFieldName(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestPriorityString(t *testing.T) {
	tests := []struct {
		p    Priority
		want string
	}{
		{PriEmerg, "emerg"}, {PriErr, "err"}, {PriWarning, "warning"},
		{PriDebug, "debug"}, {Priority(8), "Priority(8)"}, {Priority(-1), "Priority(-1)"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("Priority(%d).String() = %q, want %q", int(tt.p), got, tt.want)
		}
	}
}
