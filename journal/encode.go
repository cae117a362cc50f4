package journal

import (
	"bytes"
	"encoding/binary"
	"strings"

	"github.com/newstyle-go/newstyle/internal/journald"
)

// journald's limits (internal/journald, from journal-importer.h). An entry
// beyond them is dropped by journald without a word to the sender, so Send
// checks them first.
const (
	maxDataSize   = journald.DataSizeMax  // one field, name=value
	maxEntrySize  = journald.EntrySizeMax // all fields with their separators
	maxFieldCount = journald.EntryFieldCountMax

	// journald 257 and later take at most this much from a sender that is
	// not root, unless it is systemd-coredump. An older journald takes
	// more, but the sender cannot know which it talks to.
	maxUnprivilegedEntrySize = journald.UnprivilegedFileSizeMax
)

// entrySizeLimit is the largest entry journald takes from a process with
// effective user ID euid.
func entrySizeLimit(euid int) int {
	if euid == 0 {
		return maxEntrySize
	}
	return maxUnprivilegedEntrySize
}

// transportFieldLen is what journald adds to every native entry
// ("_TRANSPORT=journal") before it checks maxEntrySize.
const transportFieldLen = len(journald.TransportField)

// checkEntry validates everything about an entry before any of it is
// encoded, so that an invalid entry is refused whole. It returns an upper
// bound of the encoded size, to size the buffer once, and whether fields
// carries its own SYSLOG_IDENTIFIER.
// limit is the entry size journald accepts from this process.
func checkEntry(message string, priority Priority, ident []byte, fields []Field, limit int) (size int, hasIdent bool, err error) {
	if !priority.valid() {
		return 0, false, ErrInvalidPriority
	}
	if len(message) > maxDataSize-len("MESSAGE=") {
		return 0, false, &fieldError{kind: ErrTooLarge, name: "MESSAGE"}
	}
	size = fieldSize("MESSAGE", len(message)) + len(priorityFields[0])
	for i := range fields {
		f := &fields[i]
		if !ValidFieldName(f.Name) || f.Name == "MESSAGE" || f.Name == "PRIORITY" {
			return 0, false, &fieldError{kind: ErrInvalidFieldName, name: f.Name}
		}
		if len(f.Value) > maxDataSize-len(f.Name)-1 {
			return 0, false, &fieldError{kind: ErrTooLarge, name: f.Name}
		}
		if f.Name == "SYSLOG_IDENTIFIER" {
			hasIdent = true
		}
		size += fieldSize(f.Name, len(f.Value))
	}
	n := 2 + len(fields)
	if !hasIdent && len(ident) > 0 {
		n++
		size += len(ident)
	}
	// journald counts name=value bytes, one separator per field, the
	// _TRANSPORT field and a trailer; our framing (binary lengths) is a
	// little larger than that, so the bound errs on the safe side.
	if overLimits(size, n, limit) {
		return 0, false, ErrTooLarge
	}
	return size, hasIdent, nil
}

// overLimits reports whether an entry of size bytes in fields fields is
// more than journald takes: too many fields, or more than limit bytes
// once journald has added its separators, a trailer and _TRANSPORT.
func overLimits(size, fields, limit int) bool {
	return fields > maxFieldCount || size+transportFieldLen+fields+2 > limit
}

// fieldSize is the most a field can take on the wire: the binary form.
func fieldSize(name string, valueLen int) int {
	return len(name) + 1 + 8 + valueLen + 1
}

// appendEntry appends one entry in the native format: MESSAGE, PRIORITY,
// ident (a pre-encoded SYSLOG_IDENTIFIER field, or nothing), then fields in
// their order. The entry must have passed checkEntry. Several entries appended to one buffer, each followed
// by an empty line, make one valid datagram: journald reads them all.
func appendEntry(dst []byte, message string, priority Priority, ident []byte, fields []Field) []byte {
	dst = appendStringField(dst, "MESSAGE", message)
	dst = append(dst, priorityFields[priority]...)
	dst = append(dst, ident...)
	for i := range fields {
		dst = appendBytesField(dst, fields[i].Name, fields[i].Value)
	}
	return dst
}

func appendStringField(dst []byte, name, value string) []byte {
	dst = appendFieldHead(dst, name, strings.IndexByte(value, '\n') >= 0, len(value))
	dst = append(dst, value...)
	return append(dst, '\n')
}

func appendBytesField(dst []byte, name string, value []byte) []byte {
	dst = appendFieldHead(dst, name, bytes.IndexByte(value, '\n') >= 0, len(value))
	dst = append(dst, value...)
	return append(dst, '\n')
}

// appendFieldHead appends what comes before a value: "NAME=" for a value
// without a newline, or "NAME\n" and the value's length as a 64-bit
// little-endian number for any other value, which journald then reads by
// length, not by line, so that no byte of the value can end the field.
func appendFieldHead(dst []byte, name string, binaryForm bool, valueLen int) []byte {
	dst = append(dst, name...)
	if !binaryForm {
		return append(dst, '=')
	}
	dst = append(dst, '\n')
	return binary.LittleEndian.AppendUint64(dst, uint64(valueLen))
}

// beginField starts a field whose value is not known yet, for a value that
// is formatted straight into dst (a slog value, a number, a time): it
// appends the name and room for the binary form's head, and returns where
// the field's head starts. The caller appends the value, then calls
// finishField, which picks the form: one pass over the value, no scratch
// buffer. name is appended as given (the Handler's names are made valid
// by its own rule).
func beginField[S ~string | ~[]byte](dst []byte, name S) ([]byte, int) {
	dst = append(dst, name...)
	head := len(dst)
	return append(dst, '\n', 0, 0, 0, 0, 0, 0, 0, 0), head
}

// finishField ends the field that beginField started at head: a value
// without a newline is moved back over the length into the text form
// NAME=value, any other value gets its length in the binary form.
func finishField(dst []byte, head int) []byte {
	start := head + 9
	value := dst[start:]
	if bytes.IndexByte(value, '\n') < 0 {
		dst[head] = '='
		n := copy(dst[head+1:], value)
		dst = dst[:head+1+n]
	} else {
		binary.LittleEndian.PutUint64(dst[head+1:], uint64(len(value)))
	}
	return append(dst, '\n')
}
