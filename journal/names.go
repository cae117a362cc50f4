package journal

// The attribute→field-name rule of Handler. It lives here, and only here.

// namePrefix starts a name that would otherwise be invalid or take the
// place of a field the Handler sets itself.
const namePrefix = "F_"

// appendNamePart appends s as a fragment of a field name: ASCII letters in
// upper case, digits and '_' kept, every other character (a rune, or a
// byte that is not UTF-8) one '_'.
func appendNamePart(dst []byte, s string) []byte {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
			dst = append(dst, byte(r-'a'+'A'))
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			dst = append(dst, byte(r))
		default:
			dst = append(dst, '_')
		}
	}
	return dst
}

// appendFieldName appends the field name for key inside groups (prefix,
// made by appendGroupName). See Handler for the rule.
func appendFieldName(dst, prefix []byte, key string, reserved []string) []byte {
	start := len(dst)
	dst = append(dst, prefix...)
	dst = appendNamePart(dst, key)
	name := dst[start:]
	if needsNamePrefix(name, reserved) {
		dst = append(dst, namePrefix...)
		copy(dst[start+len(namePrefix):], name)
		copy(dst[start:], namePrefix)
	}
	if len(dst)-start > maxFieldNameLen {
		dst = dst[:start+maxFieldNameLen]
	}
	return dst
}

// appendGroupName appends what a group adds to the names inside it.
func appendGroupName(prefix []byte, group string) []byte {
	return append(appendNamePart(prefix, group), '_')
}

// attributionNames are the fields journalctl reads to list an entry under
// a unit (-u, --user-unit) or an invocation, other than the trusted
// _SYSTEMD_* fields journald sets itself: an entry from PID 1 with UNIT=,
// from the user's manager with USER_UNIT=, from a root sender with
// OBJECT_SYSTEMD_UNIT= or OBJECT_SYSTEMD_USER_UNIT= (journalctl's "messages
// from authorized daemons about this service"), a coredump with
// COREDUMP_UNIT= or COREDUMP_USER_UNIT=. (systemd 252 to 258, logs-show.c
// add_matches_for_unit and add_matches_for_user_unit.)
//
// Whole families are reserved with them: journald derives the OBJECT_*
// fields from OBJECT_PID for root senders (they describe another process),
// and the COREDUMP_* fields are what coredumpctl reads.
var (
	attributionNames    = []string{"UNIT", "USER_UNIT", "INVOCATION_ID", "USER_INVOCATION_ID"}
	attributionPrefixes = []string{"OBJECT_", "COREDUMP_"}
)

func needsNamePrefix(name []byte, reserved []string) bool {
	if len(name) == 0 || name[0] == '_' || (name[0] >= '0' && name[0] <= '9') {
		return true
	}
	for _, r := range reserved {
		if string(name) == r {
			return true
		}
	}
	for _, r := range attributionNames {
		if string(name) == r {
			return true
		}
	}
	for _, p := range attributionPrefixes {
		if len(name) >= len(p) && string(name[:len(p)]) == p {
			return true
		}
	}
	return false
}

// fieldName makes s a valid field name by the same rule, for names given
// in options.
func fieldName(s string) string {
	return string(appendFieldName(nil, nil, s, nil))
}
