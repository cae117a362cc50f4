package journaltest

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Limits journald enforces on native-protocol input (journal-importer.h).
const (
	DataSizeMax        = 768 << 20 // DATA_SIZE_MAX: bytes per field
	EntrySizeMax       = 770 << 20 // ENTRY_SIZE_MAX: bytes per entry
	EntryFieldCountMax = 1024      // ENTRY_FIELD_COUNT_MAX: fields per entry
)

// transportField is appended by journald to every native entry; it counts
// towards EntrySizeMax, so an entry that fits without it may still be dropped.
const transportField = "_TRANSPORT=journal"

// Field is one NAME=value pair of an entry. Value may hold any bytes.
type Field struct {
	Name  string
	Value []byte
}

// Entry is one journal entry as sent by a client. Field order is kept and names
// may repeat, as in the protocol.
type Entry struct {
	Fields []Field
}

// NewEntry builds an Entry from alternating names and values, for brevity in
// tests: NewEntry("MESSAGE", "hi", "PRIORITY", "6"). It panics on an odd count.
func NewEntry(nameValues ...string) Entry {
	if len(nameValues)%2 != 0 {
		panic("journaltest.NewEntry: odd number of arguments")
	}
	var e Entry
	for i := 0; i < len(nameValues); i += 2 {
		e.Fields = append(e.Fields, Field{Name: nameValues[i], Value: []byte(nameValues[i+1])})
	}
	return e
}

// Get returns the first value of the field called name.
func (e Entry) Get(name string) (string, bool) {
	for _, f := range e.Fields {
		if f.Name == name {
			return string(f.Value), true
		}
	}
	return "", false
}

// All returns every value of the field called name, in order.
func (e Entry) All(name string) []string {
	var vs []string
	for _, f := range e.Fields {
		if f.Name == name {
			vs = append(vs, string(f.Value))
		}
	}
	return vs
}

// Count reports how many fields are called name.
func (e Entry) Count(name string) int {
	n := 0
	for _, f := range e.Fields {
		if f.Name == name {
			n++
		}
	}
	return n
}

// ValidName reports whether journald accepts name from a client, following
// journal_field_valid(name, len, allow_protected=false): 1–64 characters of
// A–Z, 0–9 and '_', not starting with a digit, and not starting with '_'
// (underscore fields are trusted ones that only journald itself may set).
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > 64 || name[0] == '_' || (name[0] >= '0' && name[0] <= '9') {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// ParseError is returned by Parse. Offset is the byte offset into the input of
// the line (or entry) journald would have mishandled.
type ParseError struct {
	Offset int
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("journaltest: offset %d: %s", e.Offset, e.Reason)
}

func errAt(off int, format string, args ...any) *ParseError {
	return &ParseError{Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// limits lets tests exercise the size checks without allocating 770 MiB.
type limits struct {
	data, entry, fields int
}

var journaldLimits = limits{data: DataSizeMax, entry: EntrySizeMax, fields: EntryFieldCountMax}

// Parse splits one datagram (or the contents of a passed file) into entries the
// way journald's manager_process_native_message does.
//
// Parse is strict: where journald would silently drop, ignore or mis-read input
// (invalid name, trailing bytes with no newline, truncated binary value, binary
// value not followed by '\n', '.'/'#' lines, over-limit sizes, empty entry or
// empty input), Parse returns a *ParseError naming the offset, together with the
// entries completed before the offending one. A trailing entry not followed by
// an empty line is still an entry: journald dispatches it at end of datagram.
//
// Field values are copies; they do not alias data.
func Parse(data []byte) ([]Entry, error) {
	return parse(data, journaldLimits)
}

func parse(data []byte, lim limits) ([]Entry, error) {
	if len(data) == 0 {
		return nil, errAt(0, "empty input (journald ignores it)")
	}
	var entries []Entry
	for off := 0; off < len(data); {
		e, next, err := parseEntry(data, off, lim)
		if err != nil {
			return entries, err
		}
		entries = append(entries, e)
		off = next
	}
	return entries, nil
}

// parseEntry parses the entry starting at data[start:] and returns it with the
// offset just past its separator (or the end of data).
func parseEntry(data []byte, start int, lim limits) (Entry, int, error) {
	var e Entry
	size := 0 // journald's entry_size: sum of len("NAME=value") over fields
	off := start
	for off < len(data) {
		nl := bytes.IndexByte(data[off:], '\n')
		if nl < 0 {
			return e, off, errAt(off, "%d trailing bytes without newline (journald ignores them)", len(data)-off)
		}
		line := data[off : off+nl]
		if nl == 0 { // empty line: entry separator
			off++
			break
		}
		if line[0] == '.' || line[0] == '#' {
			return e, off, errAt(off, "line starting with %q (journald ignores control and comment lines)", line[0])
		}
		// journald checks this before adding a field and so accepts one extra;
		// we hold clients to the documented maximum.
		if len(e.Fields) >= lim.fields {
			return e, off, errAt(off, "more than %d fields in entry (journald drops the entry)", lim.fields)
		}

		var f Field
		var fieldLen, next int
		if eq := bytes.IndexByte(line, '='); eq >= 0 {
			if !ValidName(string(line[:eq])) {
				return e, off, errAt(off, "invalid field name %q (journald skips the field)", line[:eq])
			}
			// journald compares the whole "NAME=value" line against DATA_SIZE_MAX.
			if len(line) > lim.data {
				return e, off, errAt(off, "text field of %d bytes exceeds %d (journald drops the entry)", len(line), lim.data)
			}
			f = Field{Name: string(line[:eq]), Value: append([]byte{}, line[eq+1:]...)}
			fieldLen, next = len(line), off+nl+1
		} else {
			// Binary form: NAME\n, little-endian uint64 length, value, \n.
			if !ValidName(string(line)) {
				return e, off, errAt(off, "invalid field name %q (journald skips the field)", line)
			}
			lenAt := off + nl + 1
			if len(data)-lenAt < 8+1 {
				return e, off, errAt(off, "binary field %s: truncated length (journald stops parsing)", line)
			}
			l := binary.LittleEndian.Uint64(data[lenAt:])
			if l > uint64(lim.data) {
				return e, off, errAt(off, "binary field %s: length %d exceeds %d (journald drops the entry)", line, l, lim.data)
			}
			// Same order as journald: the size check comes before the truncation check.
			total := uint64(len(line)) + 1 + l
			if uint64(size)+total+uint64(len(e.Fields))+1 > uint64(lim.entry) {
				return e, off, errAt(off, "entry exceeds %d bytes (journald drops it)", lim.entry)
			}
			valAt := lenAt + 8
			if uint64(len(data)-valAt) < l+1 {
				return e, off, errAt(off, "binary field %s: value of %d bytes truncated (journald stops parsing)", line, l)
			}
			end := valAt + int(l)
			if data[end] != '\n' {
				return e, off, errAt(end, "binary field %s: value not followed by newline (journald stops parsing)", line)
			}
			f = Field{Name: string(line), Value: append([]byte{}, data[valAt:end]...)}
			fieldLen, next = int(total), end+1
		}
		if size+fieldLen+len(e.Fields)+1 > lim.entry {
			return e, off, errAt(off, "entry exceeds %d bytes (journald drops it)", lim.entry)
		}
		e.Fields = append(e.Fields, f)
		size += fieldLen
		off = next
	}
	if len(e.Fields) == 0 {
		// journald stops processing the whole datagram at an empty entry.
		return e, off, errAt(start, "empty entry (journald stops processing the datagram)")
	}
	// Final check as journald does it, after it appends _TRANSPORT=journal.
	if size+len(transportField)+len(e.Fields)+2 > lim.entry {
		return e, off, errAt(start, "entry with %s exceeds %d bytes (journald drops it)", transportField, lim.entry)
	}
	return e, off, nil
}

// Encode is a deliberately simple reference encoder used by tests to build
// inputs; it is not the product's encoder. Each field uses the text form when
// its value has no '\n' and the binary form otherwise, and every entry is
// followed by an empty line. It does not validate names or sizes, so it can
// also build malformed input.
func Encode(entries ...Entry) []byte {
	var b []byte
	for _, e := range entries {
		for _, f := range e.Fields {
			b = append(b, f.Name...)
			if bytes.IndexByte(f.Value, '\n') < 0 {
				b = append(b, '=')
			} else {
				b = append(b, '\n')
				b = binary.LittleEndian.AppendUint64(b, uint64(len(f.Value)))
			}
			b = append(b, f.Value...)
			b = append(b, '\n')
		}
		b = append(b, '\n')
	}
	return b
}
