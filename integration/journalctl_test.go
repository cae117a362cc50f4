//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// entry is one journal entry as journalctl -o json shows it: the values of
// each field. A field sent once has one value; a field sent several times
// has several (journald keeps them in an order of its own).
type entry map[string][][]byte

// value returns the value of a field that the entry has exactly once.
func (e entry) value(name string) (string, error) {
	switch v := e[name]; len(v) {
	case 1:
		return string(v[0]), nil
	case 0:
		return "", fmt.Errorf("no field %s", name)
	default:
		return "", fmt.Errorf("field %s has %d values, want 1", name, len(v))
	}
}

// query selects entries the way a user does: by SYSLOG_IDENTIFIER, in the
// default journal or a namespace's.
type query struct {
	ident     string
	namespace string   // --namespace; "" for the default journal
	fields    []string // --output-fields; nil for all
}

// readJournal runs journalctl -o json --all for q and decodes its output.
func readJournal(q query) ([]entry, error) {
	args := []string{"-o", "json", "--all", "--no-pager", "--quiet", "-t", q.ident}
	if q.namespace != "" {
		args = append(args, "--namespace="+q.namespace)
	}
	if q.fields != nil {
		args = append(args, "--output-fields="+strings.Join(q.fields, ","))
	}
	cmd := exec.Command("journalctl", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	entries, decodeErr := decodeLines(out, q.fields)
	if decodeErr != nil {
		_, _ = io.Copy(io.Discard, out)
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
	return entries, decodeErr
}

// waitJournal reads the entries of q until done accepts them or timeout
// passes: journald stores an entry a moment after it took it. It returns
// the last entries read, and fails the test only if journalctl itself
// keeps failing; the caller checks the entries.
func waitJournal(t *testing.T, q query, timeout time.Duration, done func([]entry) bool) []entry {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		entries, err := readJournal(q)
		if err == nil && done(entries) {
			return entries
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("reading the journal for %v: %v", timeout, err)
			}
			return entries
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitEntries waits up to 10 s for at least n entries of q and returns
// those read; the caller checks their number.
func waitEntries(t *testing.T, q query, n int) []entry {
	t.Helper()
	return waitJournal(t, q, 10*time.Second, func(es []entry) bool { return len(es) >= n })
}

// decodeLines decodes journalctl -o json output: one object a line. With
// fields, the entries keep only those fields.
func decodeLines(r io.Reader, fields []string) ([]entry, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		entries []entry
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
			e, derr := decodeEntry(line, fields)
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

// decodeEntry decodes one object of journalctl -o json. A value is a JSON
// string when it is printable UTF-8, else an array of its bytes; a field
// with several values is an array of such values; null is a value that
// journalctl left out (it does, without --all, for one over 4096 bytes).
//
// It is a decoder of just that shape, in one pass: encoding/json, which
// needs several, takes 20 s under the race detector to decode the 160,000
// entries of TestConcurrentSenders. With fields, the entry keeps only those
// fields.
func decodeEntry(line []byte, fields []string) (entry, error) {
	d := &decoder{data: line, keep: fields}
	e, err := d.entry()
	if err != nil {
		return nil, fmt.Errorf("offset %d: %w", d.i, err)
	}
	return e, nil
}

type decoder struct {
	data []byte
	i    int
	keep []string // the fields to keep; nil for all
}

func (d *decoder) entry() (entry, error) {
	if err := d.expect('{'); err != nil {
		return nil, err
	}
	e := make(entry)
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
func (d *decoder) values() ([][]byte, error) {
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
func (d *decoder) value() ([]byte, error) {
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
func (d *decoder) isByteArray() bool {
	rest := bytes.TrimLeft(d.data[d.i+1:], " \t\r\n")
	return len(rest) > 0 && rest[0] >= '0' && rest[0] <= '9'
}

// byteArray decodes an array of numbers 0–255.
func (d *decoder) byteArray() ([]byte, error) {
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
func (d *decoder) string() ([]byte, error) {
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

func (d *decoder) hex4() (rune, error) {
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

func (d *decoder) skipSpace() {
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
func (d *decoder) next() byte {
	d.skipSpace()
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

func (d *decoder) expect(c byte) error {
	if d.next() != c {
		return fmt.Errorf("want %q", c)
	}
	d.i++
	return nil
}

// end checks that nothing but white space follows the object.
func (d *decoder) end() error {
	if d.next() != 0 {
		return errors.New("data after the object")
	}
	return nil
}

func TestDecodeEntry(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		fields  []string
		want    entry
		wantErr bool
	}{
		{
			name: "strings",
			line: `{"MESSAGE":"two\nlines","EMPTY":"","EQ":"a=b"}`,
			want: entry{"MESSAGE": {[]byte("two\nlines")}, "EMPTY": {{}}, "EQ": {[]byte("a=b")}},
		},
		{
			name: "bytes",
			line: `{"BLOB":[97,0,255,10]}`,
			want: entry{"BLOB": {{'a', 0, 255, '\n'}}},
		},
		{
			name: "repeated field",
			line: `{"TAG":["one",[0,1],""]}`,
			want: entry{"TAG": {[]byte("one"), {0, 1}, {}}},
		},
		{
			name: "repeated binary field",
			line: `{"TAG":[ [1] , [2,3] ]}`,
			want: entry{"TAG": {{1}, {2, 3}}},
		},
		{
			name: "escapes",
			line: `{"E":"q\"b\\s\/\b\f\n\r\t\u0001\u00e9\ud83d\ude00"}`,
			want: entry{"E": {[]byte("q\"b\\s/\b\f\n\r\t\x01\u00e9\U0001F600")}},
		},
		{name: "empty object", line: " {} \n", want: entry{}},
		{
			name:   "some fields",
			line:   `{"__CURSOR":"s=1","G":"1","SEQ":"2","_BOOT_ID":[1]}`,
			fields: []string{"G", "SEQ"},
			want:   entry{"G": {[]byte("1")}, "SEQ": {[]byte("2")}},
		},
		{name: "left out", line: `{"BIG":null}`, wantErr: true},
		{name: "lone surrogate", line: `{"S":"\ud83d"}`, wantErr: true},
		{name: "raw control character", line: "{\"C\":\"a\tb\"}", wantErr: true},
		{name: "unterminated", line: `{"A":"b`, wantErr: true},
		{name: "trailing data", line: `{"A":"b"} x`, wantErr: true},
		{name: "truncated byte array", line: `{"A":[1,2`, wantErr: true},
		{name: "byte out of range", line: `{"B":[256]}`, wantErr: true},
		{name: "number", line: `{"N":1}`, wantErr: true},
		{name: "empty array", line: `{"A":[]}`, wantErr: true},
		{name: "not an object", line: `-- No entries --`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeEntry([]byte(tt.line), tt.fields)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("decodeEntry(%s) = %q, want an error", tt.line, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeEntry(%s): %v", tt.line, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("decodeEntry(%s) = %q, want %q", tt.line, got, tt.want)
			}
			for name, want := range tt.want {
				if !slices.EqualFunc(got[name], want, bytes.Equal) {
					t.Errorf("field %s = %q, want %q", name, got[name], want)
				}
			}
		})
	}
}
