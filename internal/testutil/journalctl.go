package testutil

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file reads journalctl -o json output back, as the integration and
// container tiers check what reached the journal the way a user sees it.

// JournalEntry is one journal entry as journalctl -o json shows it: the
// values of each field. A field sent once has one value; a field sent
// several times has several (journald keeps them in an order of its own).
type JournalEntry map[string][][]byte

// Value returns the value of a field that the entry has exactly once.
func (e JournalEntry) Value(name string) (string, error) {
	switch v := e[name]; len(v) {
	case 1:
		return string(v[0]), nil
	case 0:
		return "", fmt.Errorf("no field %s", name)
	default:
		return "", fmt.Errorf("field %s has %d values, want 1", name, len(v))
	}
}

// Get returns a field's value; "" when the entry lacks it. It is for
// filters and comparisons that would only be cluttered by Value's error:
// a field with several values gives them joined by "|", which no test
// expects, so a repeated field still fails the comparison.
func (e JournalEntry) Get(name string) string {
	return string(bytes.Join(e[name], []byte("|")))
}

// Has reports whether the entry has the field.
func (e JournalEntry) Has(name string) bool { return len(e[name]) > 0 }

// String shows the entry in a failure message: fields by name, each value
// quoted as Go does, so that bytes that are not UTF-8 show as they are; a
// field with several values shows them in brackets.
func (e JournalEntry) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range slices.Sorted(maps.Keys(e)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(name))
		b.WriteByte(':')
		values := e[name]
		if len(values) == 1 {
			b.WriteString(strconv.Quote(string(values[0])))
			continue
		}
		b.WriteByte('[')
		for j, v := range values {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Quote(string(v)))
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.String()
}

// DecodeJournal decodes journalctl -o json output: one object a line,
// blank lines skipped. With fields, the entries keep only those fields.
// It reads r as it goes, so that a caller may decode a running
// journalctl's output without holding all of it.
func DecodeJournal(r io.Reader, fields []string) ([]JournalEntry, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		entries []JournalEntry
		long    []byte // a line longer than br's buffer
	)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, line...)
			n--
			continue
		}
		if long != nil {
			line, long = append(long, line...), nil
		}
		if len(bytes.TrimSpace(line)) > 0 {
			e, derr := DecodeJournalEntry(line, fields)
			if derr != nil {
				return nil, fmt.Errorf("journalctl output line %d: %w", n, derr)
			}
			entries = append(entries, e)
		}
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// DecodeJournalEntry decodes one object of journalctl -o json. A value is
// a JSON string when it is printable UTF-8, else an array of its bytes; a
// field with several values is an array of such values; null is a value
// that journalctl left out (it does, without --all, for one over 4096
// bytes), an error: a test that reads it would check something journalctl
// did not show. With fields, the entry keeps only those fields. The entry
// shares no memory with line.
//
// It is a decoder of just that shape, in one pass: encoding/json, which
// needs several, takes 20 s under the race detector to decode the 160,000
// entries of TestConcurrentSenders.
func DecodeJournalEntry(line []byte, fields []string) (JournalEntry, error) {
	d := &journalDecoder{data: line, keep: fields}
	e, err := d.entry()
	if err != nil {
		return nil, fmt.Errorf("offset %d: %w", d.i, err)
	}
	return e, nil
}

type journalDecoder struct {
	data []byte
	i    int
	keep []string // the fields to keep; nil for all
}

func (d *journalDecoder) entry() (JournalEntry, error) {
	if err := d.expect('{'); err != nil {
		return nil, err
	}
	e := make(JournalEntry)
	if d.next() == '}' {
		d.i++
		return e, d.end()
	}
	for {
		name, err := d.string()
		if err != nil {
			return nil, err
		}
		if err := d.expect(':'); err != nil {
			return nil, err
		}
		values, err := d.values()
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", name, err)
		}
		if d.keep == nil || slices.Contains(d.keep, string(name)) {
			for i, v := range values {
				values[i] = bytes.Clone(v) // not a view of the line
			}
			e[string(name)] = values
		}
		switch d.next() {
		case ',':
			d.i++
		case '}':
			d.i++
			return e, d.end()
		default:
			return nil, errors.New("want , or } after a field")
		}
	}
}

// values decodes a field's values: one value, or an array of them.
func (d *journalDecoder) values() ([][]byte, error) {
	if d.next() != '[' || d.isByteArray() {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		return [][]byte{v}, nil
	}
	d.i++ // '['
	var values [][]byte
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		values = append(values, v)
		switch d.next() {
		case ',':
			d.i++
		case ']':
			d.i++
			return values, nil
		default:
			return nil, errors.New("want , or ] in an array of values")
		}
	}
}

// value decodes one value: a string or an array of bytes.
func (d *journalDecoder) value() ([]byte, error) {
	switch d.next() {
	case '"':
		return d.string()
	case '[':
		if d.isByteArray() {
			return d.byteArray()
		}
	case 'n':
		if bytes.HasPrefix(d.data[d.i:], []byte("null")) {
			return nil, errors.New("value left out (null)")
		}
	}
	return nil, fmt.Errorf("not a value: %.20q", d.data[d.i:])
}

// isByteArray reports whether an array starts here whose first element is
// a number: a value's bytes, not a list of values.
func (d *journalDecoder) isByteArray() bool {
	rest := bytes.TrimLeft(d.data[d.i+1:], " \t\r\n")
	return len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9'
}

// byteArray decodes an array of numbers 0–255.
func (d *journalDecoder) byteArray() ([]byte, error) {
	d.i++ // '['
	var out []byte
	for {
		d.skipSpace()
		n, digits := 0, 0
		for ; d.i < len(d.data) && d.data[d.i] >= '0' && d.data[d.i] <= '9' && digits < 4; d.i++ {
			n = n*10 + int(d.data[d.i]-'0')
			digits++
		}
		if digits == 0 || n > 255 {
			return nil, errors.New("not a byte in a byte array")
		}
		out = append(out, byte(n))
		switch d.next() {
		case ',':
			d.i++
		case ']':
			d.i++
			return out, nil
		default:
			return nil, errors.New("want , or ] in a byte array")
		}
	}
}

// string decodes a JSON string. The result may share memory with d.data.
func (d *journalDecoder) string() ([]byte, error) {
	if err := d.expect('"'); err != nil {
		return nil, err
	}
	rest := d.data[d.i:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, errors.New("unterminated string")
	}
	if bytes.IndexByte(rest[:end], '\\') < 0 {
		// No escapes: most strings.
		for _, c := range rest[:end] {
			if c < 0x20 {
				return nil, errors.New("control character in a string")
			}
		}
		d.i += end + 1
		return rest[:end:end], nil
	}
	out := make([]byte, 0, end)
	for d.i < len(d.data) {
		c := d.data[d.i]
		d.i++
		switch {
		case c == '"':
			return out, nil
		case c < 0x20:
			return nil, errors.New("control character in a string")
		case c != '\\':
			out = append(out, c)
			continue
		}
		if d.i >= len(d.data) {
			break
		}
		c = d.data[d.i]
		d.i++
		switch c {
		case '"', '\\', '/':
			out = append(out, c)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, err := d.hex4()
			if err != nil {
				return nil, err
			}
			if utf16.IsSurrogate(r) {
				if !bytes.HasPrefix(d.data[d.i:], []byte(`\u`)) {
					return nil, errors.New("lone surrogate in a string")
				}
				d.i += 2
				r2, err := d.hex4()
				if err != nil {
					return nil, err
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return nil, errors.New("bad surrogate pair in a string")
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, fmt.Errorf("bad escape \\%c in a string", c)
		}
	}
	return nil, errors.New("unterminated string")
}

func (d *journalDecoder) hex4() (rune, error) {
	if d.i+4 > len(d.data) {
		return 0, errors.New("short \\u escape")
	}
	n, err := strconv.ParseUint(string(d.data[d.i:d.i+4]), 16, 16)
	if err != nil {
		return 0, fmt.Errorf("bad \\u escape: %w", err)
	}
	d.i += 4
	return rune(n), nil
}

func (d *journalDecoder) skipSpace() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\r', '\n':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte, or 0 at the end.
func (d *journalDecoder) next() byte {
	d.skipSpace()
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

func (d *journalDecoder) expect(c byte) error {
	if d.next() != c {
		return fmt.Errorf("want %q", c)
	}
	d.i++
	return nil
}

// end checks that nothing but white space follows the object.
func (d *journalDecoder) end() error {
	if d.next() != 0 {
		return errors.New("data after the object")
	}
	return nil
}
