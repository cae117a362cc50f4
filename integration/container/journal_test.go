//go:build container

package container

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// entry is one journal entry as journalctl -o json shows it: the values of
// each field (several when a field was sent more than once).
type entry map[string][]string

// get returns a field's value; "" when the entry lacks it. A field with
// several values gives them joined by "|", which no test expects.
func (e entry) get(name string) string { return strings.Join(e[name], "|") }

func (e entry) has(name string) bool { return len(e[name]) > 0 }

func (e entry) String() string {
	b, _ := json.Marshal(e)
	return string(b)
}

// decodeEntries decodes journalctl -o json output: one object a line,
// whose values are a string, an array of bytes (a value that is not
// printable UTF-8), or an array of such values (a field sent several
// times); null is a value journalctl left out, which --all prevents.
func decodeEntries(out []byte) ([]entry, error) {
	var entries []entry
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 64<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			return nil, fmt.Errorf("journalctl line %d: %w", n, err)
		}
		e := make(entry, len(raw))
		for name, v := range raw {
			values, err := decodeValues(v)
			if err != nil {
				return nil, fmt.Errorf("journalctl line %d, field %s: %w", n, name, err)
			}
			e[name] = values
		}
		entries = append(entries, e)
	}
	return entries, sc.Err()
}

func decodeValues(v json.RawMessage) ([]string, error) {
	if one, err := decodeValue(v); err == nil {
		return []string{one}, nil
	}
	var many []json.RawMessage
	if err := json.Unmarshal(v, &many); err != nil {
		return nil, fmt.Errorf("not a value nor a list of values: %.40s", v)
	}
	values := make([]string, len(many))
	for i, m := range many {
		var err error
		if values[i], err = decodeValue(m); err != nil {
			return nil, err
		}
	}
	return values, nil
}

func decodeValue(v json.RawMessage) (string, error) {
	if bytes.Equal(v, []byte("null")) {
		return "", errors.New("value left out (null)")
	}
	var s string
	if err := json.Unmarshal(v, &s); err == nil {
		return s, nil
	}
	var nums []int // a value's bytes
	if err := json.Unmarshal(v, &nums); err != nil {
		return "", fmt.Errorf("not a value: %.40s", v)
	}
	b := make([]byte, len(nums))
	for i, n := range nums {
		if n < 0 || n > 255 {
			return "", fmt.Errorf("not a byte: %d", n)
		}
		b[i] = byte(n)
	}
	return string(b), nil
}

// unit is the unit the tests read the journal of.
const unit = "newstyle-demo.service"

// mark returns the journal's cursor now: entries after it are those a test
// caused.
func (c *container) mark(t *testing.T) string {
	t.Helper()
	out, err := c.exec("journalctl", "-n", "0", "--show-cursor", "--quiet", "--no-pager")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if cursor, ok := strings.CutPrefix(line, "-- cursor: "); ok {
			return strings.TrimSpace(cursor)
		}
	}
	t.Fatalf("journalctl --show-cursor printed no cursor: %q", out)
	return ""
}

// journal reads the unit's entries after cursor (all with ""), as users
// do: journalctl -u UNIT -o json --all. They include systemd's own
// entries about the unit (_PID=1, UNIT=).
func (c *container) journal(cursor string) ([]entry, error) {
	args := []string{"journalctl", "-u", unit, "-o", "json", "--all", "--no-pager", "--quiet"}
	if cursor != "" {
		args = append(args, "--after-cursor="+cursor)
	}
	out, err := c.exec(args...)
	if err != nil {
		return nil, err
	}
	return decodeEntries([]byte(out))
}

// waitJournal reads the unit's entries after cursor until done accepts
// them or timeout passes: journald stores an entry a moment after it took
// it. It returns the last entries read; the caller checks them.
func (c *container) waitJournal(t *testing.T, cursor string, timeout time.Duration, done func([]entry) bool) []entry {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		entries, err := c.journal(cursor)
		if err == nil && done(entries) {
			return entries
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("reading the journal: %v", err)
			}
			return entries
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// filter returns the entries keep accepts.
func filter(entries []entry, keep func(entry) bool) []entry {
	var out []entry
	for _, e := range entries {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// fromPID accepts the entries of one process (journald's trusted _PID).
func fromPID(pid string) func(entry) bool {
	return func(e entry) bool { return e.get("_PID") == pid }
}

// withMessage accepts the entries whose MESSAGE is msg.
func withMessage(msg string) func(entry) bool {
	return func(e entry) bool { return e.get("MESSAGE") == msg }
}

// systemdSays accepts systemd's own entries about the unit whose message
// contains text.
func systemdSays(text string) func(entry) bool {
	return func(e entry) bool {
		return e.get("_PID") == "1" && strings.Contains(e.get("MESSAGE"), text)
	}
}

func and(fs ...func(entry) bool) func(entry) bool {
	return func(e entry) bool {
		for _, f := range fs {
			if !f(e) {
				return false
			}
		}
		return true
	}
}

// count returns how many entries keep accepts.
func count(entries []entry, keep func(entry) bool) int { return len(filter(entries, keep)) }

// dump formats entries for a failure message, without the trusted fields
// that only make it long.
func dump(entries []entry) string {
	var b strings.Builder
	for _, e := range entries {
		short := make(entry)
		for k, v := range e {
			if k == "_PID" || k == "_TRANSPORT" || !strings.HasPrefix(k, "_") {
				short[k] = v
			}
		}
		delete(short, "__CURSOR")
		delete(short, "__REALTIME_TIMESTAMP")
		delete(short, "__MONOTONIC_TIMESTAMP")
		b.WriteString(short.String())
		b.WriteByte('\n')
	}
	return b.String()
}
