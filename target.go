package newstyle

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Target is where records go.
type Target int

const (
	TargetAuto    Target = iota // decide by JOURNAL_STREAM and the socket (see Detect)
	TargetJournal               // journald's native socket
	TargetStdout                // <N>-prefixed lines on stdout
	TargetNull                  // nowhere: every record is dropped (systemd's log target "null")
)

// targetNames are the targets' names, as String gives them and
// ParseTarget takes them.
var targetNames = [...]string{TargetAuto: "auto", TargetJournal: "journal", TargetStdout: "stdout", TargetNull: "null"}

// String returns the target's name: auto, journal, stdout or null.
func (t Target) String() string {
	if t >= 0 && int(t) < len(targetNames) {
		return targetNames[t]
	}
	return "Target(" + strconv.Itoa(int(t)) + ")"
}

// ErrInvalidTarget is returned by ParseTarget and SetTarget for a value
// that is not a Target.
var ErrInvalidTarget = errors.New("newstyle: invalid target")

// ParseTarget reads a target by its name, in any case: auto, journal,
// stdout, or null; "console", systemd's name for a service's stdout
// (systemctl service-log-target), is stdout. Anything else is an error
// matching ErrInvalidTarget that names the valid values. It is the one
// reader of NEWSTYLE_LOG_TARGET and of LogControl1's LogTarget.
func ParseTarget(s string) (Target, error) {
	switch v := strings.ToLower(s); v {
	case "console":
		return TargetStdout, nil
	default:
		for t, name := range targetNames {
			if v == name {
				return Target(t), nil
			}
		}
	}
	return 0, fmt.Errorf("%w %q: the targets are auto, journal, stdout (or console) and null", ErrInvalidTarget, s)
}
