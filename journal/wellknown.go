package journal

import (
	"errors"
	"strconv"
	"syscall"
)

// MessageID returns a MESSAGE_ID field: the 128-bit ID of a kind of
// message, by which journalctl MESSAGE_ID=… finds every entry of that kind
// and the message catalog explains it. id is 32 hexadecimal digits, or the
// same with dashes in UUID form (as `systemd-id128 new` prints both); it is
// sent as 32 lower-case digits. Anything else is ErrInvalidMessageID.
func MessageID(id string) (Field, error) {
	v := make([]byte, 0, 32)
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		case c == '-' && len(id) == 36 && (i == 8 || i == 13 || i == 18 || i == 23):
			continue
		default:
			return Field{}, &fieldError{kind: ErrInvalidMessageID, name: id}
		}
		v = append(v, c)
	}
	if len(v) != 32 || (len(id) != 32 && len(id) != 36) {
		return Field{}, &fieldError{kind: ErrInvalidMessageID, name: id}
	}
	return Field{Name: "MESSAGE_ID", Value: v}, nil
}

// ErrnoField returns an ERRNO field holding the number of the first
// syscall.Errno in err's chain, as journalctl shows for a failed system
// call. It reports false when the chain has none.
func ErrnoField(err error) (Field, bool) {
	var errno syscall.Errno
	if !errors.As(err, &errno) || errno == 0 {
		return Field{}, false
	}
	return Field{Name: "ERRNO", Value: strconv.AppendUint(nil, uint64(errno), 10)}, true
}
