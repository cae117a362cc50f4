//go:build linux

package bench

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"regexp"

	"github.com/newstyle-go/newstyle/bench/workload"
	"github.com/newstyle-go/newstyle/journal"
)

// The workload (package workload). Each client also sends
// SYSLOG_IDENTIFIER=bench (slog-journal takes it from os.Args[0], which
// TestMain makes "bench").
const (
	identifier = "bench"
	message    = workload.Message
	traceback  = workload.Traceback
)

// workloadFields are the five fields besides MESSAGE, PRIORITY and
// SYSLOG_IDENTIFIER, in the order they are sent.
var workloadFields = func() (f [5]struct{ name, value string }) {
	for i, w := range workload.Fields {
		f[i].name, f[i].value = w[0], w[1]
	}
	return f
}()

// newstyleFields returns the workload as journal.Fields: a caller builds
// them once and reuses the slice.
func newstyleFields() []journal.Field {
	f := make([]journal.Field, len(workloadFields))
	for i, w := range workloadFields {
		f[i] = journal.StringField(w.name, w.value)
	}
	return f
}

// goSystemdVars returns the workload as go-systemd's map, with the
// identifier, which go-systemd does not add by itself.
func goSystemdVars() map[string]string {
	m := make(map[string]string, len(workloadFields)+1)
	m["SYSLOG_IDENTIFIER"] = identifier
	for _, w := range workloadFields {
		m[w.name] = w.value
	}
	return m
}

// slogAttrs returns the workload as five slog.Attrs, passed to LogAttrs
// one by one (slog.Record keeps five inline, without allocating).
func slogAttrs() [5]slog.Attr {
	var a [5]slog.Attr
	for i, w := range workloadFields {
		a[i] = slog.String(w.name, w.value)
	}
	return a
}

// encodeWorkload encodes the workload by hand in the native protocol, in
// the order newstyle sends it: what a correct client must put on the wire.
func encodeWorkload() []byte {
	var b []byte
	add := func(name, value string) {
		if bytes.IndexByte([]byte(value), '\n') < 0 {
			b = append(b, name+"="+value+"\n"...)
			return
		}
		b = append(b, name+"\n"...)
		b = binary.LittleEndian.AppendUint64(b, uint64(len(value)))
		b = append(b, value+"\n"...)
	}
	add("MESSAGE", message)
	add("PRIORITY", "3")
	add("SYSLOG_IDENTIFIER", identifier)
	for _, w := range workloadFields {
		add(w.name, w.value)
	}
	return b
}

// field is one field of a received entry.
type field struct {
	name  string
	value []byte
}

// parseEntry parses one datagram as exactly one native-protocol entry, as
// journald does (journal-importer.c), and rejects anything journald would
// reject or read differently: a field without '=' or binary length, a bad
// name, a binary value without its trailing newline, an entry separator.
func parseEntry(d []byte) ([]field, error) {
	var fs []field
	for len(d) > 0 {
		nl := bytes.IndexByte(d, '\n')
		if nl < 0 {
			return nil, errors.New("field without a trailing newline")
		}
		line := d[:nl]
		if len(line) == 0 {
			return nil, errors.New("empty line: more than one entry in the datagram")
		}
		var f field
		if eq := bytes.IndexByte(line, '='); eq >= 0 {
			f = field{string(line[:eq]), line[eq+1:]}
			d = d[nl+1:]
		} else {
			f.name = string(line)
			d = d[nl+1:]
			if len(d) < 8 {
				return nil, fmt.Errorf("%s: binary field without its length", f.name)
			}
			n := binary.LittleEndian.Uint64(d)
			d = d[8:]
			if n >= uint64(len(d)) || d[n] != '\n' {
				return nil, fmt.Errorf("%s: binary value of %d bytes not followed by a newline", f.name, n)
			}
			f.value, d = d[:n], d[n+1:]
		}
		if !fieldNameRule.MatchString(f.name) {
			return nil, fmt.Errorf("invalid field name %q", f.name)
		}
		fs = append(fs, f)
	}
	if len(fs) == 0 {
		return nil, errors.New("empty datagram")
	}
	return fs, nil
}

// checkEntry checks that d is one well-formed entry that carries the whole
// workload, each field once and byte for byte. Fields beyond the workload
// are returned, and are an error unless allowed.
func checkEntry(d []byte, allowed ...string) (extra []string, err error) {
	fs, err := parseEntry(d)
	if err != nil {
		return nil, err
	}
	want := map[string]string{
		"MESSAGE":           message,
		"PRIORITY":          "3",
		"SYSLOG_IDENTIFIER": identifier,
	}
	for _, w := range workloadFields {
		want[w.name] = w.value
	}
	seen := map[string]bool{}
	for _, f := range fs {
		if seen[f.name] {
			return nil, fmt.Errorf("field %s sent twice", f.name)
		}
		seen[f.name] = true
		v, ok := want[f.name]
		if !ok {
			extra = append(extra, f.name+"="+string(f.value))
			if !contains(allowed, f.name) {
				return extra, fmt.Errorf("unexpected field %s=%q", f.name, f.value)
			}
			continue
		}
		if string(f.value) != v {
			return extra, fmt.Errorf("field %s=%q, want %q", f.name, f.value, v)
		}
	}
	for name := range want {
		if !seen[name] {
			return extra, fmt.Errorf("field %s missing", name)
		}
	}
	return extra, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// slogJournalExtras are the fields slog-journal adds to every record that
// a slog.Logger makes: the caller's position (Logger fills Record.PC) and
// the time (Record.Time). They are part of its cost, and of its datagram.
var slogJournalExtras = []string{"CODE_FILE", "CODE_FUNC", "CODE_LINE", "SYSLOG_TIMESTAMP"}

// fieldNameRule is journald's rule for a field name a client may send
// (journal-file.c, field_name_valid), written out here rather than taken
// from the library under test: 1 to 64 of A-Z, 0-9 and '_', not starting
// with a digit or '_'.
var fieldNameRule = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,63}$`)
