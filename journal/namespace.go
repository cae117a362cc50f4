package journal

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalidNamespace: a journal namespace name that systemd would not
// accept as LogNamespace= (see NamespaceSocketPath). Match it with
// errors.Is.
var ErrInvalidNamespace = errors.New("journal: invalid namespace name")

// maxNamespaceLen is systemd's limit on a namespace name: it must fit in
// a file name (255 bytes) after the machine ID (32 hex digits) and a dot,
// as /var/log/journal/MACHINE-ID.NAMESPACE.
const maxNamespaceLen = 255 - 32 - 1

// NamespaceSocketPath returns the native-protocol socket of the journald of
// journal namespace name: /run/systemd/journal.NAME/socket, where the
// entries of a unit with LogNamespace=NAME go (journalctl --namespace=NAME
// reads them); DefaultSocketPath for "". Inside such a unit systemd mounts
// that directory over /run/systemd/journal, so DefaultSocketPath reaches
// the namespace there too.
//
// name is checked as systemd checks LogNamespace= (log_namespace_name_valid:
// a file name that is also a valid unit instance name, with no quotes,
// control characters or glob characters), and more strictly where a name
// could mean something else in a path: it must be 1 to 222 bytes of ASCII
// letters, digits and ":-_.@", not start with '.' (".", "..", hidden
// names) or '@' (an abstract socket address). Anything else — a '/', a
// NUL, a space, non-ASCII — returns an error matching ErrInvalidNamespace,
// and no path: namespace names come from configuration files, and a name
// such as "x/../../../tmp/evil" must not send the program's records to a
// socket outside /run/systemd.
func NamespaceSocketPath(name string) (string, error) {
	if name == "" {
		return DefaultSocketPath, nil
	}
	if err := checkNamespace(name); err != nil {
		return "", err
	}
	return "/run/systemd/journal." + name + "/socket", nil
}

// checkNamespace applies NamespaceSocketPath's rule to a non-empty name.
func checkNamespace(name string) error {
	why := ""
	switch {
	case len(name) > maxNamespaceLen:
		why = "longer than " + strconv.Itoa(maxNamespaceLen) + " bytes"
	case name[0] == '.':
		why = "starts with '.'"
	case name[0] == '@':
		why = "starts with '@'"
	default:
		for i := 0; i < len(name); i++ {
			if c := name[i]; !namespaceChar(c) {
				why = "has " + strconv.QuoteRune(rune(c)) + " at byte " + strconv.Itoa(i)
				if c >= 0x80 {
					why = "has the byte " + strconv.Quote(string(c)) + " at byte " + strconv.Itoa(i)
				}
				break
			}
		}
	}
	if why == "" {
		return nil
	}
	return &namespaceError{name: name, why: why}
}

// namespaceChar reports whether c may appear in a namespace name: the
// characters of a unit instance name, less '\' (string_is_safe).
func namespaceChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == ':' || c == '-' || c == '_' || c == '.' || c == '@'
}

type namespaceError struct{ name, why string }

func (e *namespaceError) Error() string {
	return ErrInvalidNamespace.Error() + " " + quote(e.name) + ": " + e.why +
		" (1 to " + strconv.Itoa(maxNamespaceLen) + " of A-Z a-z 0-9 : - _ . @, not starting with '.' or '@')"
}

func (e *namespaceError) Unwrap() error { return ErrInvalidNamespace }

// maxSocketPath is the longest path an AF_UNIX address holds on Linux
// (sun_path, 108 bytes, less the NUL that ends it).
const maxSocketPath = 107

// checkSocketPath refuses a socket path that would not reach the socket
// it names: the kernel ends a path at its first NUL, so "a\x00b" would
// send to "a"; "@" alone is an abstract address with no name, which the
// kernel takes as a request to pick one.
func checkSocketPath(path string) error {
	switch {
	case path == "@":
		return fmt.Errorf("%w %s: '@' starts an abstract address, and a name must follow it", ErrInvalidSocketPath, quote(path))
	case strings.IndexByte(path, 0) >= 0:
		return fmt.Errorf("%w %s: holds a NUL byte", ErrInvalidSocketPath, quote(path))
	case len(path) > maxSocketPath:
		return fmt.Errorf("%w %s: longer than %d bytes", ErrInvalidSocketPath, quote(path), maxSocketPath)
	}
	return nil
}
