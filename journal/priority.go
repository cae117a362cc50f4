package journal

import (
	"fmt"
	"strconv"
)

// Priority is a syslog priority, the value of an entry's PRIORITY field.
// Lower is more severe; journalctl -p filters by it.
type Priority int

// The eight syslog priorities, as in sd-daemon(3) and syslog(3).
const (
	PriEmerg   Priority = 0 // system is unusable
	PriAlert   Priority = 1 // action must be taken immediately
	PriCrit    Priority = 2 // critical conditions
	PriErr     Priority = 3 // error conditions
	PriWarning Priority = 4 // warning conditions
	PriNotice  Priority = 5 // normal but significant condition
	PriInfo    Priority = 6 // informational
	PriDebug   Priority = 7 // debug-level messages
)

var priorityNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// String returns the priority's syslog name ("err", "info", …), the
// spelling journalctl -p accepts.
func (p Priority) String() string {
	if p.valid() {
		return priorityNames[p]
	}
	return "Priority(" + strconv.Itoa(int(p)) + ")"
}

func (p Priority) valid() bool { return p >= PriEmerg && p <= PriDebug }

// priorityFields holds the eight complete PRIORITY lines, so that sending
// a priority copies bytes and formats nothing.
var priorityFields = func() (f [8][]byte) {
	for p := range f {
		f[p] = []byte{'P', 'R', 'I', 'O', 'R', 'I', 'T', 'Y', '=', byte('0' + p), '\n'}
	}
	return f
}()

// ParsePriority reads a priority by its syslog name, as String gives it
// ("err", "info", …; systemd's log_level_from_string), or by its number,
// "0" to "7". Anything else is an error matching ErrInvalidPriority.
func ParsePriority(s string) (Priority, error) {
	for p, name := range priorityNames {
		if s == name {
			return Priority(p), nil
		}
	}
	if len(s) == 1 && s[0] >= '0' && s[0] <= '7' {
		return Priority(s[0] - '0'), nil
	}
	return 0, fmt.Errorf("%w %q: emerg, alert, crit, err, warning, notice, info, debug, or 0 to 7", ErrInvalidPriority, s)
}
