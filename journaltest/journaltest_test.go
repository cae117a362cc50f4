package journaltest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// bin builds a binary-form field by hand, so malformed variants are easy.
func bin(name string, length uint64, value string) string {
	return name + "\n" + string(binary.LittleEndian.AppendUint64(nil, length)) + value
}

// pairs shows entries as NAME=value strings, for comparisons that print well.
func pairs(entries ...Entry) [][]string {
	out := [][]string{}
	for _, e := range entries {
		fs := []string{}
		for _, f := range e.Fields {
			fs = append(fs, f.Name+"="+string(f.Value))
		}
		out = append(out, fs)
	}
	return out
}

func fieldLines(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s%d=x\n", prefix, i)
	}
	return b.String()
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Entry
	}{
		{"text without separator", "MESSAGE=hello\nPRIORITY=6\n",
			[]Entry{NewEntry("MESSAGE", "hello", "PRIORITY", "6")}},
		{"text with separator", "MESSAGE=hello\n\n", []Entry{NewEntry("MESSAGE", "hello")}},
		{"stray separator at the end", "MESSAGE=hello\n\n\n", []Entry{NewEntry("MESSAGE", "hello")}},
		{"empty value", "MESSAGE=\n", []Entry{NewEntry("MESSAGE", "")}},
		{"value with equals", "A=b=c\n", []Entry{NewEntry("A", "b=c")}},
		{"binary", bin("MESSAGE", 11, "hello\nworld") + "\n", []Entry{NewEntry("MESSAGE", "hello\nworld")}},
		{"binary empty", bin("A", 0, "") + "\n", []Entry{NewEntry("A", "")}},
		{"binary value with newline at end", bin("A", 2, "x\n") + "\n", []Entry{NewEntry("A", "x\n")}},
		{"binary then text", bin("A", 1, "\n") + "\nB=2\n", []Entry{NewEntry("A", "\n", "B", "2")}},
		{"multi entry, repeated names", "A=1\n\nB=2\nB=3\n\nC=4\n",
			[]Entry{NewEntry("A", "1"), NewEntry("B", "2", "B", "3"), NewEntry("C", "4")}},
		{"identical pairs kept on the wire", "DUP=x\nDUP=x\n", []Entry{NewEntry("DUP", "x", "DUP", "x")}},
		{"NUL in text", "MESSAGE=a\x00b\n", []Entry{NewEntry("MESSAGE", "a\x00b")}},
		{"NUL in binary", bin("MESSAGE", 3, "\x00\n\x00") + "\n", []Entry{NewEntry("MESSAGE", "\x00\n\x00")}},
		{"invalid UTF-8", "MESSAGE=\xff\xfe\n", []Entry{NewEntry("MESSAGE", "\xff\xfe")}},
		{"64-char name", strings.Repeat("A", 64) + "=x\n", []Entry{NewEntry(strings.Repeat("A", 64), "x")}},
		{"digits and underscore after first", "A_1=x\n", []Entry{NewEntry("A_1", "x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			require.NoError(t, err)
			assert.Equal(t, pairs(tt.want...), pairs(got...))
		})
	}
}

// TestParseFieldCount: journald checks for more than 1024 fields before
// it adds each, so 1025 are stored and a 1026th drops the entry.
func TestParseFieldCount(t *testing.T) {
	for _, n := range []int{EntryFieldCountMax, EntryFieldCountMax + 1} {
		got, err := Parse([]byte(fieldLines("F", n)))
		require.NoError(t, err, "%d fields", n)
		require.Len(t, got, 1)
		assert.Len(t, got[0].Fields, n)
	}
	in := fieldLines("F", EntryFieldCountMax+2)
	got, err := Parse([]byte(in))
	var pe *ParseError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, strings.Index(in, "F1025="), pe.Offset)
	assert.Contains(t, pe.Reason, "a field after 1025 fields: journald drops the whole entry")
	assert.Empty(t, got)
}

func TestParseMalformed(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		offset  int
		reason  string
		entries int // complete entries returned before the error
	}{
		{"empty input", "", 0, "empty datagram: journald ignores it", 0},
		{"lowercase name", "message=x\n", 0, `invalid field name "message": journald skips this line and keeps the rest`, 0},
		{"protected name", "_PID=1\n", 0, "invalid field name", 0},
		{"leading digit", "1A=x\n", 0, "invalid field name", 0},
		{"empty name", "=x\n", 0, "invalid field name", 0},
		{"dash in name", "A-B=x\n", 0, "invalid field name", 0},
		{"65-char name", strings.Repeat("A", 65) + "=x\n", 0, "invalid field name", 0},
		{"invalid binary name", bin("a", 1, "x") + "\n", 0, "(binary form): journald skips this field", 0},
		{"invalid name in second entry", "A=1\n\nb=2\n", 5, "invalid field name", 1},
		{"trailing bytes", "A=1\nB=2", 4, "3 bytes after the last newline: journald stores the fields before them and reads nothing more", 0},
		{"trailing bytes after entry", "A=1\n\nB", 5, "after the last newline", 1},
		{"truncated length", "A\n\x01\x00\x00", 0, "the datagram ends before its length and value: journald stores the fields before it", 0},
		{"length without value newline", bin("A", 0, ""), 0, "ends before its length", 0},
		{"truncated value", bin("A", 10, "abc"), 0, "its value of 10 bytes runs past the end of the datagram", 0},
		{"value without newline at end", bin("A", 3, "abc"), 0, "runs past the end", 0},
		{"value not followed by newline", bin("A", 3, "abcX") + "\n", 0, "its value of 3 bytes is not followed by a newline", 0},
		{"binary length over limit", bin("A", DataSizeMax+1, "x"), 0, "exceeds 805306368: journald drops the whole entry and reads nothing more", 0},
		{"binary length huge", bin("A", 1<<63, "x\n"), 0, "exceeds", 0},
		{"dot line", ".control\nA=1\n", 0, `line starting with '.' (a control line or comment): journald skips this line`, 0},
		{"dot line with equals", "A=1\n.A=1\n", 4, "control line", 0},
		{"hash line", "A=1\n#comment\n", 4, "comment", 0},
		{"leading empty line", "\nA=1\n", 0, "an empty line where an entry should start: journald reads nothing more of the datagram (4 bytes follow)", 0},
		{"double separator", "A=1\n\n\nB=2\n", 5, "an empty line where an entry should start", 1},
		{"only separator", "\n", 0, "an empty line where an entry should start", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.in))
			var pe *ParseError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.offset, pe.Offset, "offset of %v", err)
			assert.Contains(t, pe.Reason, tt.reason)
			assert.Len(t, got, tt.entries)
		})
	}
}

// TestStored checks what journald stores from a datagram with problems,
// and every problem it meets, in order.
func TestStored(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     [][]string // stored entries
		problems []string   // substrings, one per problem
	}{
		{"invalid line skipped", "A=1\nb=2\nC=3\n", [][]string{{"A=1", "C=3"}},
			[]string{`invalid field name "b"`}},
		{"comment skipped", "#c\nA=1\n.x\nB=2\n", [][]string{{"A=1", "B=2"}},
			[]string{"'#'", "'.'"}},
		{"invalid binary field skipped, value consumed", "A=1\n" + bin("b", 3, "x\ny") + "\nC=3\n", [][]string{{"A=1", "C=3"}},
			[]string{`"b" (binary form)`}},
		{"trailing bytes: fields before stored", "A=1\nB=2\n\nC=3\nxyz", [][]string{{"A=1", "B=2"}, {"C=3"}},
			[]string{"3 bytes after the last newline"}},
		{"truncated binary: fields before stored, rest unread", "A=1\n" + bin("B", 10, "abc") + "\n\nC=3\n", [][]string{{"A=1"}},
			[]string{"runs past the end"}},
		{"binary not followed by newline", "A=1\n" + bin("B", 1, "xy") + "\n\nC=3\n", [][]string{{"A=1"}},
			[]string{"not followed by a newline"}},
		{"oversized binary drops entry and rest", "A=1\n\nB=2\n" + bin("C", DataSizeMax+1, "") + "\n\nD=4\n", [][]string{{"A=1"}},
			[]string{"journald drops the whole entry and reads nothing more of the datagram"}},
		{"entry of invalid lines ends the datagram", "A=1\n\nb=2\n\nC=3\n", [][]string{{"A=1"}},
			[]string{`invalid field name "b"`, "an entry with no valid field: journald stores nothing of it and reads nothing more of the datagram (4 bytes follow)"}},
		{"empty entry ends the datagram", "A=1\n\n\nC=3\n", [][]string{{"A=1"}},
			[]string{"an empty line where an entry should start"}},
		{"1025 fields stored, 1026 dropped", fieldLines("F", 1025) + "\n" + fieldLines("G", 1026) + "\nH=1\n",
			[][]string{strings.Split(strings.TrimSuffix(fieldLines("F", 1025), "\n"), "\n")},
			[]string{"a field after 1025 fields"}},
		{"identical pairs once", "DUP=x\nDUP=x\nDUP=y\nA=1\n", [][]string{{"DUP=x", "DUP=y", "A=1"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := scan([]byte(tt.in), journaldLimits, OldestVersion)
			var stored []Entry
			for _, e := range res.entries {
				if e.stored {
					stored = append(stored, e.collapse())
				}
			}
			assert.Equal(t, tt.want, pairs(stored...))
			require.Len(t, res.problems, len(tt.problems), "problems: %v", res.problems)
			for i, p := range tt.problems {
				assert.Contains(t, res.problems[i].Reason, p)
			}
		})
	}
}

// TestParseLimits checks the size accounting with small limits, since the real
// ones would need 770 MiB of input.
func TestParseLimits(t *testing.T) {
	lim := limits{data: 8, entry: 40, fields: 5}
	tests := []struct {
		name   string
		in     string
		offset int    // -1: no error
		reason string // substring of the error's reason
	}{
		{"text at data limit", "AAA=1234\n", -1, ""},
		// journald compares the whole NAME=value line, not just the value
		{"text over data limit", "AAA=12345\n", 0, "field AAA of 9 bytes exceeds 8"},
		{"binary at data limit", bin("A", 8, "12345678") + "\n", -1, ""},
		{"binary over data limit", bin("A", 9, "123456789") + "\n", 0, "length 9 exceeds 8"},
		// 8+8 bytes, +18 for _TRANSPORT=journal, +3 fields +1 trailer = 38
		{"entry at limit with transport", "AAA=1234\nBBB=1234\n", -1, ""},
		// 8+8+3 = 19, +18, +4, +1 = 42: only the final check catches it
		{"entry over limit with transport", "AAA=1234\nBBB=1234\nC=1\n", 0, "with the _TRANSPORT=journal journald adds, exceeds 40"},
		// running check at EE=1: 32+4 bytes, +4 fields before it, +1 = 41
		{"entry over limit at a field", "AAA=1234\nBBB=1234\nCCC=1234\nDDD=1234\nEE=1\n", 36, "entry exceeds 40 bytes at field EE"},
		// journald checks the entry size before noticing the value is missing
		{"binary over entry limit before truncation", "AAA=1234\nBBB=1234\nCCC=1234\nDDD=1234\n" + bin("E", 8, "x"), 36, "entry exceeds 40 bytes at binary field"},
		{"second entry over limit", "A=1\n\nAAA=1234\nBBB=1234\nCCC=1234\n", 5, "with the _TRANSPORT=journal journald adds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := scan([]byte(tt.in), lim, OldestVersion)
			if tt.offset < 0 {
				require.Empty(t, res.problems)
				return
			}
			require.NotEmpty(t, res.problems)
			assert.Equal(t, tt.offset, res.problems[0].Offset)
			assert.Contains(t, res.problems[0].Reason, tt.reason)
		})
	}
	// More than 2 fields before a field: 3 are stored, a 4th drops the entry.
	lim = limits{data: 8, entry: 100, fields: 2}
	assert.Empty(t, scan([]byte("A=1\nB=2\nC=3\n"), lim, OldestVersion).problems)
	res := scan([]byte("A=1\nB=2\nC=3\nD=4\n"), lim, OldestVersion)
	require.Len(t, res.problems, 1)
	assert.Equal(t, 12, res.problems[0].Offset)
	assert.Contains(t, res.problems[0].Reason, "a field after 3 fields")
}

// TestEntryAccessors: the accessors promise no order among a field's
// values, and count identical values once, as a reader of the journal
// finds them.
func TestEntryAccessors(t *testing.T) {
	e := NewEntry("A", "3", "B", "2", "A", "1", "A", "3")
	v, ok := e.Get("A")
	assert.True(t, ok)
	assert.Equal(t, "3", v, "Get: the first value sent")
	v, ok = e.Get("C")
	assert.False(t, ok)
	assert.Empty(t, v)
	assert.Equal(t, []string{"1", "3"}, e.All("A"), "All: each value once, sorted")
	assert.Nil(t, e.All("C"))
	assert.Equal(t, 2, e.Count("A"))
	assert.Equal(t, 0, e.Count("C"))
	assert.Equal(t, [][]string{{"A=3", "B=2", "A=1"}}, pairs(e.collapse()))
	assert.Equal(t, "2", e.Fields[1].String(), "Field.String: the value as text")
	assert.Equal(t, "x\x00\ny", Field{Name: "B", Value: []byte("x\x00\ny")}.String(), "every byte kept")
	assert.Equal(t, "v", fmt.Sprint(Field{Name: "N", Value: []byte("v")}), "a Field prints as its value")
}

func TestEncode(t *testing.T) {
	tests := []struct {
		name    string
		entries []Entry
		want    string
	}{
		{"text", []Entry{NewEntry("A", "1", "B", "")}, "A=1\nB=\n\n"},
		{"binary for newline", []Entry{NewEntry("A", "x\ny")}, bin("A", 3, "x\ny") + "\n\n"},
		{"two entries", []Entry{NewEntry("A", "1"), NewEntry("B", "2")}, "A=1\n\nB=2\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Encode(tt.entries...)
			assert.Equal(t, tt.want, string(got))
			back, err := Parse(got)
			require.NoError(t, err)
			assert.Equal(t, pairs(tt.entries...), pairs(back...))
		})
	}
}

func FuzzEncodeParse(f *testing.F) {
	f.Add("MESSAGE", []byte("hello"))
	f.Add("A", []byte(""))
	f.Add("CODE_LINE", []byte("a\nb\x00\xff"))
	f.Add("X", []byte("\n"))
	f.Add("message", []byte("x"))
	f.Add("A", []byte("A=1\n\nB\n\x01\x00\x00\x00\x00\x00\x00\x00x\n"))
	f.Fuzz(func(t *testing.T, name string, value []byte) {
		// Arbitrary bytes must never make Parse panic, and whatever it accepts
		// must survive a re-encoding unchanged; what journald stores of them
		// is a part of what was sent.
		if got, err := Parse(value); err == nil {
			again, err := Parse(Encode(got...))
			require.NoError(t, err)
			require.Equal(t, pairs(got...), pairs(again...))
		}
		res := scan(value, journaldLimits, NewestVersion)
		for _, e := range res.entries {
			if e.stored && !bytes.Contains(value, []byte(e.Fields[0].Name)) {
				t.Fatalf("stored field %q is not in the input", e.Fields[0].Name)
			}
		}
		if !ValidName(name) {
			return
		}
		got, err := Parse(Encode(Entry{Fields: []Field{{Name: name, Value: value}}}))
		require.NoError(t, err, "Parse(Encode(%q=%q))", name, value)
		require.Len(t, got, 1)
		require.Len(t, got[0].Fields, 1)
		require.Equal(t, name, got[0].Fields[0].Name)
		require.Equal(t, value, got[0].Fields[0].Value)
	})
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]int{
		"systemd 252 (252.38-1~deb12u1)\n+PAM +AUDIT": 252,
		"systemd 257 (257.13-1~deb13u1)":              257,
	} {
		got, err := ParseVersion(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	for _, in := range []string{"", "journalctl 252", "systemd x"} {
		_, err := ParseVersion(in)
		assert.Error(t, err, "%q", in)
	}
	_, err := Listen("/nonexistent/socket", Version(251))
	assert.ErrorContains(t, err, "journald 251: the oldest version modelled is 252")
}

// TestTakeFile checks the rules for passed files, version by version, for
// root and for a sender that is not.
func TestTakeFile(t *testing.T) {
	root, nobody := sender{known: true}, sender{known: true, uid: 65534}
	memfd := func(seals int) passedFile {
		return passedFile{regular: true, size: 100, seals: seals, path: "/memfd:journal-entry (deleted)"}
	}
	shm := passedFile{regular: true, size: 100, seals: sealSeal, path: "/dev/shm/entry (deleted)"}
	four := sealsSealed | sealSeal
	type verdict struct {
		ok     bool
		sealed bool
	}
	take, sealedOK, refuse := verdict{ok: true}, verdict{ok: true, sealed: true}, verdict{}
	tests := []struct {
		name string
		file passedFile
		from sender
		want map[int]verdict // by version; 0 is the strict model
	}{
		{"sealed memfd", memfd(four), nobody, map[int]verdict{252: sealedOK, 254: sealedOK, 256: sealedOK, 257: sealedOK, 0: sealedOK}},
		{"memfd without SEAL, not root", memfd(sealsSealed), nobody, map[int]verdict{252: refuse, 254: sealedOK, 257: sealedOK, 0: refuse}},
		{"memfd without SEAL, root", memfd(sealsSealed), root, map[int]verdict{252: take, 254: sealedOK, 257: sealedOK, 0: refuse}},
		{"memfd with FUTURE_WRITE, not root", memfd(four | sealFutureWrite), nobody, map[int]verdict{252: refuse, 254: sealedOK, 0: refuse}},
		{"memfd with EXEC, not root", memfd(four | sealExec), nobody, map[int]verdict{252: refuse, 257: sealedOK, 0: refuse}},
		{"unsealed memfd, root", memfd(0), root, map[int]verdict{252: take, 257: take, 0: refuse}},
		{"unsealed memfd, not root", memfd(0), nobody, map[int]verdict{252: refuse, 257: refuse, 0: refuse}},
		{"unsealed memfd, sender unknown", memfd(0), sender{}, map[int]verdict{252: refuse, 257: refuse}},
		{"unlinked /dev/shm file", shm, nobody, map[int]verdict{252: take, 257: take, 0: take}},
		{"linked /dev/shm file", passedFile{regular: true, size: 1, seals: sealSeal, path: "/dev/shm/entry", links: 1}, nobody,
			map[int]verdict{252: take, 257: take, 0: refuse}},
		{"unlinked /tmp file", passedFile{regular: true, size: 1, seals: -1, path: "/tmp/entry (deleted)"}, nobody,
			map[int]verdict{252: take, 257: take, 0: refuse}},
		{"file in a subdirectory of /dev/shm", passedFile{regular: true, size: 1, seals: sealSeal, path: "/dev/shm/d/entry (deleted)"}, nobody,
			map[int]verdict{252: refuse, 257: refuse, 0: refuse}},
		{"file elsewhere, root", passedFile{regular: true, size: 1, seals: -1, path: "/var/lib/entry"}, root,
			map[int]verdict{252: take, 257: take, 0: refuse}},
		{"O_NONBLOCK memfd", func() passedFile { f := memfd(four); f.oddFlags = 0o4000; return f }(), nobody,
			map[int]verdict{252: sealedOK, 254: sealedOK, 255: sealedOK, 256: refuse, 257: refuse, 0: refuse}},
		{"33 MiB sealed memfd, not root", func() passedFile { f := memfd(four); f.size = 33 << 20; return f }(), nobody,
			map[int]verdict{252: sealedOK, 256: sealedOK, 257: refuse, 0: refuse}},
		{"33 MiB sealed memfd, root", func() passedFile { f := memfd(four); f.size = 33 << 20; return f }(), root,
			map[int]verdict{252: sealedOK, 257: sealedOK, 0: sealedOK}},
		{"20 MiB unsealed /dev/shm file, not root", func() passedFile { f := shm; f.size = 20 << 20; return f }(), nobody,
			map[int]verdict{252: take, 257: refuse, 0: refuse}},
		{"empty memfd", func() passedFile { f := memfd(four); f.size = 0; return f }(), root,
			map[int]verdict{252: refuse, 257: refuse, 0: refuse}},
		{"pipe", passedFile{seals: -1, path: "pipe:[1]"}, root, map[int]verdict{252: refuse, 257: refuse, 0: refuse}},
	}
	for _, tt := range tests {
		for v, want := range tt.want {
			t.Run(fmt.Sprintf("%s/%d", tt.name, v), func(t *testing.T) {
				c, err := newConfig([]Option{Version(v)})
				require.NoError(t, err)
				sealed, reason := c.takeFile(tt.file, tt.from)
				assert.Equal(t, want.ok, reason == "", "reason: %q", reason)
				if want.ok {
					assert.Equal(t, want.sealed, sealed)
				} else {
					assert.Contains(t, reason, "journald")
				}
			})
		}
	}
}

// A newer journald than the rules know is modelled as the newest known.
func TestNewestVersion(t *testing.T) {
	c, err := newConfig([]Option{Version(260)})
	require.NoError(t, err)
	_, reason := c.takeFile(passedFile{regular: true, size: 1, seals: sealsSealed | sealSeal, oddFlags: 0o4000, path: "/memfd:x"}, sender{known: true})
	assert.Contains(t, reason, "journald 257 ignores the file")
}

func TestSealNames(t *testing.T) {
	assert.Equal(t, "SHRINK|GROW|WRITE|SEAL", sealNames(sealsSealed|sealSeal))
	assert.Equal(t, "none", sealNames(0))
	assert.Equal(t, "SHRINK|0x100", sealNames(sealShrink|0x100))
	assert.Equal(t, "(none: not a memfd)", sealNames(-1))
}

// TestStopsAfterMessage: journald 253 and later store of a datagram the
// entries up to the first one with a MESSAGE field, and report the rest.
func TestStopsAfterMessage(t *testing.T) {
	in := []byte("A=1\n\nMESSAGE=one\n\nMESSAGE=two\n\nB=2\n")
	for _, tt := range []struct {
		version int
		stored  int
		problem string
	}{
		{252, 4, ""},
		{253, 2, "journald 253 reads nothing more of a datagram after an entry with a MESSAGE field (253 and later: its LogFilterPatterns= check ends the loop): 2 entries after it lost"},
		{257, 2, "journald 257 reads nothing more"},
	} {
		res := scan(in, journaldLimits, tt.version)
		assert.Equal(t, tt.stored, storedCount(res), "journald %d", tt.version)
		if tt.problem == "" {
			assert.Empty(t, res.problems)
			continue
		}
		require.Len(t, res.problems, 1)
		assert.Equal(t, 18, res.problems[0].Offset)
		assert.Contains(t, res.problems[0].Reason, tt.problem)
	}
	// Nothing after it: nothing lost, nothing to report.
	assert.Empty(t, scan([]byte("MESSAGE=one\n\n"), journaldLimits, 257).problems)
	// The strict default applies it, as the newest version does.
	c, err := newConfig(nil)
	require.NoError(t, err)
	assert.Equal(t, strictScan, c.scanVersion())
	c, err = newConfig([]Option{Version(260)})
	require.NoError(t, err)
	assert.Equal(t, NewestVersion, c.scanVersion())
}
