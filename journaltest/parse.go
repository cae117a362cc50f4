package journaltest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"

	"github.com/newstyle-go/newstyle/internal/journald"
)

// Limits journald enforces on native-protocol input (journal-importer.h).
const (
	// DataSizeMax is the most bytes of one field, NAME=value.
	DataSizeMax = journald.DataSizeMax
	// EntrySizeMax is the most bytes of one entry, with journald's own
	// _TRANSPORT=journal field and a separator per field.
	EntrySizeMax = journald.EntrySizeMax
	// EntryFieldCountMax is journald's ENTRY_FIELD_COUNT_MAX. journald
	// checks it before it adds each field, so it stores an entry of
	// EntryFieldCountMax+1 fields (1025) and drops one with more.
	EntryFieldCountMax = journald.EntryFieldCountMax
)

// Field is one NAME=value pair of an entry. Value may hold any bytes.
type Field struct {
	Name  string
	Value []byte
}

// String returns the field's value as text.
func (f Field) String() string { return string(f.Value) }

// Entry is one journal entry: its fields as the client sent them.
//
// Fields are in the order the client sent them, the order on the wire:
// a fact about the client, for a test of an encoder. journald does not
// keep it. It stores an entry's fields in an order of its own (by where
// each value sits in the journal file, a value the file already holds
// first), so whoever reads the journal may see a repeated field's values
// in another order than they were sent: ORD=b stored once, then an entry
// with ORD=a and ORD=b, reads back as b, a. The accessors Get, All and
// Count therefore promise no order among a field's values.
//
// journald also stores an identical NAME=value pair only once per entry:
// the entries a Server returns hold each such pair once (the first one
// sent), while Parse, which shows the wire, keeps every pair.
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

// Get returns the value of the field called name, and whether the entry
// has one. For a field with several values it returns the first the client
// sent, which is not necessarily the first a reader of the journal sees:
// use All to check a repeated field.
func (e Entry) Get(name string) (string, bool) {
	for _, f := range e.Fields {
		if f.Name == name {
			return string(f.Value), true
		}
	}
	return "", false
}

// All returns the values of the field called name, each once, sorted
// bytewise: a set, as journald keeps it (neither the order in which the
// values were sent nor an identical value twice). It returns nil when the
// entry has no such field.
func (e Entry) All(name string) []string {
	var vs []string
	for _, f := range e.Fields {
		if f.Name == name {
			vs = append(vs, string(f.Value))
		}
	}
	slices.Sort(vs)
	return slices.Compact(vs)
}

// Count reports how many different values the field called name has: what
// a reader of the journal finds (journald stores an identical pair once).
func (e Entry) Count(name string) int {
	return len(e.All(name))
}

// collapse returns the entry as journald stores it: every identical
// NAME=value pair once, the first one sent kept in its place.
func (e Entry) collapse() Entry {
	out := Entry{Fields: make([]Field, 0, len(e.Fields))}
	for i, f := range e.Fields {
		if !slices.ContainsFunc(e.Fields[:i], func(g Field) bool { return g.Name == f.Name && bytes.Equal(g.Value, f.Value) }) {
			out.Fields = append(out.Fields, f)
		}
	}
	return out
}

// ValidName reports whether journald accepts name from a client, following
// journal_field_valid(name, len, allow_protected=false): 1–64 characters of
// A–Z, 0–9 and '_', not starting with a digit, and not starting with '_'
// (underscore fields are trusted ones that only journald itself may set).
func ValidName(name string) bool {
	return validName(name)
}

func validName[S ~string | ~[]byte](name S) bool {
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

// ParseError is a place in a datagram (or a passed file) where journald
// does something other than store what the client sent: Offset is the
// byte offset of the line or entry, Reason says what journald does there.
type ParseError struct {
	Offset int
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("journaltest: offset %d: %s", e.Offset, e.Reason)
}

// limits lets tests exercise the size checks without allocating 770 MiB.
type limits struct {
	data, entry, fields int
}

var journaldLimits = limits{data: DataSizeMax, entry: EntrySizeMax, fields: EntryFieldCountMax}

// Parse splits one datagram (or the contents of a passed file) into the
// entries a client sent in it, by the rules of journald's
// manager_process_native_message in version 252 (253 and later also stop
// after an entry with a MESSAGE field: see Version).
//
// Parse is strict: at the first place where journald would skip, drop or
// mis-read input (an invalid field name, a '.' or '#' line, bytes after
// the last newline, a binary value whose length does not fit, more than
// 1025 fields, an entry over the size limits, an empty entry, an empty
// datagram) it returns a *ParseError that says what journald does there,
// with the entries sent before the entry it is in. A trailing entry not
// followed by an empty line is still an entry: journald stores it at the
// end of the datagram.
//
// Parse shows the wire: every field in the order sent, an identical pair
// as often as it was sent. A Server stores entries as journald does.
// Field values are copies; they do not alias data.
func Parse(data []byte) ([]Entry, error) {
	res := scan(data, journaldLimits, OldestVersion)
	var entries []Entry
	for _, e := range res.entries {
		if !e.clean || !e.stored {
			break
		}
		entries = append(entries, e.Entry)
	}
	if len(res.problems) > 0 {
		return entries, res.problems[0]
	}
	return entries, nil
}

// scanned is one entry as journald reads it: the valid fields read before
// it stopped, in the order sent, identical pairs and all.
type scanned struct {
	Entry
	stored bool // journald stores it (what Fields holds, pairs collapsed)
	clean  bool // journald read it whole, as the client meant it
}

// scanResult is what journald makes of one datagram.
type scanResult struct {
	entries  []scanned
	problems []*ParseError // in the order journald meets them
}

// scanner follows manager_process_entry (src/journal/journald-native.c),
// one call of it per entry, including its way of going on after it stops
// early: it stores the fields read so far and is called again at the same
// place, where it stops for good.
type scanner struct {
	data []byte
	lim  limits
	res  scanResult
}

// stopsAfterMessage reports whether journald of version v reads nothing
// more of a datagram after it stored an entry with a MESSAGE field. Since
// 253, manager_process_entry asks client_context_check_keep_log whether a
// unit's LogFilterPatterns= keep the message, and returns its answer,
// "keep" (1), as its own result, which ends the datagram's loop (0 goes
// on); entries without MESSAGE go on as before. Seen with 257.13.
func stopsAfterMessage(v int) bool { return v == strictScan || v >= 253 }

// strictScan, as the version of scan, applies the strict rules: every
// version's at once.
const strictScan = 0

// scan reads data as journald of version v reads a datagram.
func scan(data []byte, lim limits, v int) scanResult {
	sc := &scanner{data: data, lim: lim}
	if len(data) == 0 {
		sc.problem(0, "empty datagram: journald ignores it")
		return sc.res
	}
	for pos := 0; ; {
		next, stop := sc.entry(pos)
		if stop {
			return sc.res
		}
		if last := sc.res.entries[len(sc.res.entries)-1]; stopsAfterMessage(v) && last.hasMessage() {
			// What journald 252 would have stored of the rest is lost.
			if lost := storedCount(scan(data[next:], lim, OldestVersion)); lost > 0 {
				who := "journald " + strconv.Itoa(v) + " reads"
				if v == strictScan {
					who = "journald 253 and later read (journaltest's strict rules)"
				}
				sc.problem(next, "%s nothing more of a datagram after an entry with a MESSAGE field (253 and later: its LogFilterPatterns= check ends the loop): %s after it lost", who, entries(lost))
			}
			return sc.res
		}
		pos = next
	}
}

// hasMessage reports whether journald saw a MESSAGE field in the entry.
func (e scanned) hasMessage() bool {
	return slices.ContainsFunc(e.Fields, func(f Field) bool { return f.Name == "MESSAGE" })
}

// entries says how many entries: "1 entry", "2 entries".
func entries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
}

func storedCount(res scanResult) int {
	n := 0
	for _, e := range res.entries {
		if e.stored {
			n++
		}
	}
	return n
}

// problem records what journald does at off; the call after an early stop
// meets the same place again, which is recorded once.
func (sc *scanner) problem(off int, format string, args ...any) {
	pe := &ParseError{Offset: off, Reason: fmt.Sprintf(format, args...)}
	if n := len(sc.res.problems); n > 0 && *sc.res.problems[n-1] == *pe {
		return
	}
	sc.res.problems = append(sc.res.problems, pe)
}

// Consequences, as journald's log_debug lines and control flow have them.
const (
	dropsEntry = "journald drops the whole entry and reads nothing more of the datagram"
	stopsHere  = "journald stores the fields before it and reads nothing more of the datagram"
	skipsLine  = "journald skips this line and keeps the rest of the entry"
)

// entry reads the entry at pos. It returns where the next call starts,
// and whether journald reads nothing more of the datagram.
func (sc *scanner) entry(pos int) (next int, stop bool) {
	r := entryScan{sc: sc, e: scanned{clean: true}, start: pos, p: pos}
	problems := len(sc.res.problems)
	for r.p < len(sc.data) {
		s := r.line()
		if s == dropEntry {
			sc.res.entries = append(sc.res.entries, scanned{Entry: r.e.Entry})
			return r.p, true
		}
		if s == endEntry {
			break
		}
	}
	r.e.clean = len(sc.res.problems) == problems
	return r.finish()
}

// entryScan is one call of entry: journald's state while it reads an
// entry line by line.
type entryScan struct {
	sc        *scanner
	e         scanned
	start     int  // where the entry starts
	p         int  // where the line being read starts
	size      int  // journald's entry_size: the fields' NAME=value bytes
	separator bool // the entry ended at an empty line
}

// step is what journald does after a line.
type step int

const (
	nextLine  step = iota // reads the next line of the entry
	endEntry              // ends the entry here (an empty line, or a problem after which it keeps what it read)
	dropEntry             // drops the entry and reads nothing more of the datagram
)

// line reads the line at r.p: an empty line (the end of the entry), a
// control line or comment, a NAME=value field, or the name of a field in
// the binary form.
func (r *entryScan) line() step {
	data := r.sc.data
	nl := bytes.IndexByte(data[r.p:], '\n')
	if nl < 0 {
		r.sc.problem(r.p, "%d bytes after the last newline: journald stores the fields before them and reads nothing more of the datagram", len(data)-r.p)
		return endEntry
	}
	line := data[r.p : r.p+nl]
	switch {
	case nl == 0:
		r.p++
		r.separator = true
		return endEntry
	case line[0] == '.' || line[0] == '#':
		r.sc.problem(r.p, "line starting with %q (a control line or comment): %s", line[0], skipsLine)
		r.p += nl + 1
		return nextLine
	case len(r.e.Fields) > r.sc.lim.fields:
		return r.drop("a field after %d fields: %s", len(r.e.Fields), dropsEntry)
	}
	if eq := bytes.IndexByte(line, '='); eq >= 0 {
		return r.textField(line, eq)
	}
	return r.binaryField(line)
}

// drop records why journald drops the entry at the line being read.
func (r *entryScan) drop(format string, args ...any) step {
	r.sc.problem(r.p, format, args...)
	return dropEntry
}

// textField reads the line NAME=value, its '=' at eq.
func (r *entryScan) textField(line []byte, eq int) step {
	lim := r.sc.lim
	if validName(line[:eq]) {
		if len(line) > lim.data {
			return r.drop("field %s of %d bytes exceeds %d: %s", line[:eq], len(line), lim.data, dropsEntry)
		}
		if r.size+len(line)+len(r.e.Fields)+1 > lim.entry {
			return r.drop("entry exceeds %d bytes at field %s: %s", lim.entry, line[:eq], dropsEntry)
		}
		r.e.Fields = append(r.e.Fields, Field{Name: string(line[:eq]), Value: bytes.Clone(line[eq+1:])})
		r.size += len(line)
	} else {
		r.sc.problem(r.p, "invalid field name %q: %s", line[:eq], skipsLine)
	}
	r.p += len(line) + 1
	return nextLine
}

// binaryField reads a field in the binary form, its name the line: NAME\n,
// a little-endian uint64 length, the value, \n.
func (r *entryScan) binaryField(line []byte) step {
	data, lim, p, nl := r.sc.data, r.sc.lim, r.p, len(line)
	rest := len(data) - p
	if rest < nl+1+8+1 {
		r.sc.problem(p, "binary field %q: the datagram ends before its length and value: %s", line, stopsHere)
		return endEntry
	}
	l := binary.LittleEndian.Uint64(data[p+nl+1:])
	if l > uint64(lim.data) {
		return r.drop("binary field %q: length %d exceeds %d: %s", line, l, lim.data, dropsEntry)
	}
	// journald checks the entry's size before it checks that the
	// value is there.
	total := nl + 1 + int(l)
	if r.size+total+len(r.e.Fields)+1 > lim.entry {
		return r.drop("entry exceeds %d bytes at binary field %q: %s", lim.entry, line, dropsEntry)
	}
	end := p + nl + 1 + 8 + int(l)
	if rest < nl+1+8+int(l)+1 {
		r.sc.problem(p, "binary field %q: its value of %d bytes runs past the end of the datagram: %s", line, l, stopsHere)
		return endEntry
	}
	if data[end] != '\n' {
		r.sc.problem(p, "binary field %q: its value of %d bytes is not followed by a newline: %s", line, l, stopsHere)
		return endEntry
	}
	if validName(line) {
		r.e.Fields = append(r.e.Fields, Field{Name: string(line), Value: bytes.Clone(data[p+nl+1+8 : end])})
		r.size += total
	} else {
		r.sc.problem(p, "invalid field name %q (binary form): journald skips this field and keeps the rest of the entry", line)
	}
	r.p = end + 1
	return nextLine
}

// finish decides what journald does with the entry it has read: nothing
// (no valid field), drop it (too large with _TRANSPORT), or store it.
func (r *entryScan) finish() (next int, stop bool) {
	sc, e, pos, p := r.sc, r.e, r.start, r.p
	if len(e.Fields) == 0 {
		// journald stores nothing and reads nothing more of the datagram.
		switch rest := len(sc.data) - p; {
		case !e.clean && rest > 0 && r.separator:
			sc.problem(pos, "an entry with no valid field: journald stores nothing of it and reads nothing more of the datagram (%d bytes follow)", rest)
		case e.clean && r.separator && (rest > 0 || pos == 0):
			sc.problem(pos, "an empty line where an entry should start: journald reads nothing more of the datagram (%d bytes follow)", rest)
		}
		if !e.clean || r.separator {
			e.clean = false
			sc.res.entries = append(sc.res.entries, e)
		}
		return p, true
	}
	// journald adds _TRANSPORT=journal and checks the size once more.
	if r.size+len(journald.TransportField)+len(e.Fields)+2 > sc.lim.entry {
		sc.problem(pos, "entry of %d bytes, with the %s journald adds, exceeds %d: %s", r.size, journald.TransportField, sc.lim.entry, dropsEntry)
		e.clean = false
		sc.res.entries = append(sc.res.entries, e)
		return p, true
	}
	e.stored = true
	sc.res.entries = append(sc.res.entries, e)
	return p, false
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
