//go:build integration

package integration

import (
	"encoding/binary"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/journaltest"
)

// The differential test sends the same raw datagrams, and the same files
// by descriptor, to the real journald of the namespace and to journaltest
// Servers: one that models that journald's version (read from journalctl
// --version), one with journaltest's default strict rules. For each case
// the model must store exactly what journald stores, and report in Err
// exactly when journald lost something of what was sent; the strict
// Server must store the same or say in Err why it does not. Files are
// passed as root and, by this test binary run again as the user nobody,
// as a sender that is not root.

const (
	diffChildMode = "differential" // childEnv: send the cases of a sender that is not root
	diffDirEnv    = "NEWSTYLE_IT_DIFF_DIR"
	diffCaseField = "DIFF_CASE"
	diffMarkField = "DIFF_MARK"       // the last entry of every case, in a datagram of its own
	diffSubdir    = "/dev/shm/SUBDIR" // diffFile.dir: a directory in /dev/shm
)

// diffFile is a file a case passes by descriptor: a memfd (dir "") or a
// file in dir, holding one entry of the case, with one field of size
// bytes if size is set.
type diffFile struct {
	dir    string
	seals  int  // F_ADD_SEALS on a memfd
	flags  int  // status flags: O_NONBLOCK set on the descriptor, or O_APPEND at open
	linked bool // the file is left in dir
	size   int
}

type diffCase struct {
	name   string
	nobody bool // sent by the test binary run as nobody
	// datagrams builds the case's datagrams; each entry must start with
	// head, which names the case.
	datagrams func(head string) []string
	file      *diffFile
	fds       int  // memfds passed with the first datagram
	lossy     bool // journald does not store all that was sent (datagram cases)
	// lossySince: from this version on, journald does not store all
	// that was sent; and the strict rules, which leave this rule out
	// (journaltest.Version), store more than it, without a word.
	lossySince int
	// journal checks journald's own entries further.
	journal func(t *testing.T, entries []entry)
}

func diffBin(name string, length uint64, value string) string {
	return name + "\n" + string(binary.LittleEndian.AppendUint64(nil, length)) + value
}

func diffFields(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s%d=%d\n", prefix, i, i)
	}
	return b.String()
}

// diffCases are the cases. Their content depends on nothing but head, so
// that the child process builds the same ones.
func diffCases() []diffCase {
	d := func(datagrams ...func(head string) string) func(string) []string {
		return func(head string) []string {
			var out []string
			for _, f := range datagrams {
				out = append(out, f(head))
			}
			return out
		}
	}
	const seals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	const four = seals | unix.F_SEAL_SEAL
	cases := []diffCase{
		{name: "two entries in a datagram", lossySince: 253, datagrams: d(func(h string) string {
			return h + "MESSAGE=one\nPRIORITY=6\n\n" + h + "MESSAGE=two\nA_B_1=x=y\nEMPTY=\n"
		})},
		{name: "an entry with MESSAGE ends the datagram", lossySince: 253, datagrams: d(func(h string) string {
			return h + "A=1\n\n" + h + "MESSAGE=m\n\n" + h + "B=2\n"
		})},
		{name: "binary fields", datagrams: d(func(h string) string {
			return h + diffBin("MESSAGE", 12, "two\nlines\x00\xff\xfe") + "\n" + diffBin("EMPTY", 0, "") + "\n" +
				diffBin("NL", 1, "\n") + "\nTEXT=\x01\x7f\xc3\x28\n"
		})},
		{name: "identical pairs", datagrams: d(func(h string) string {
			return h + "DUP=x\nDUP=x\nDUP=y\nDUP=x\n"
		})},
		{name: "order of a repeated field", datagrams: d(
			// Values new to the journal file: the run's identifier in them.
			func(h string) string { return h + "ORD=b " + diffIdent(h) + "\n" },
			func(h string) string { return h + "ORD=a " + diffIdent(h) + "\nORD=b " + diffIdent(h) + "\n" },
		), journal: func(t *testing.T, entries []entry) {
			// journald keeps no order among a field's values: the value
			// already in the journal file comes first.
			require.Len(t, entries, 3)
			var got []string
			for _, v := range entries[1]["ORD"] {
				got = append(got, string(v[:1]))
			}
			assert.Equal(t, []string{"b", "a"}, got, "ORD=a, ORD=b after ORD=b: the journal's order")
		}},
		{name: "invalid names", lossy: true, datagrams: d(func(h string) string {
			return h + "A=1\nmessage=x\n1A=x\n_PID=1\nA-B=x\n=x\n" + strings.Repeat("N", 65) + "=x\nB=2\n" +
				strings.Repeat("N", 64) + "=64\n"
		})},
		{name: "invalid binary name", lossy: true, datagrams: d(func(h string) string {
			return h + "A=1\n" + diffBin("bad", 3, "x\ny") + "\nB=2\n"
		})},
		{name: "comment and control lines", lossy: true, datagrams: d(func(h string) string {
			return h + "#comment\nA=1\n.control\nB=2\n"
		})},
		{name: "missing final newline", lossy: true, datagrams: d(func(h string) string {
			return h + "A=1\nB=2"
		})},
		{name: "binary length too short", lossy: true, datagrams: d(func(h string) string {
			return h + "A=1\n" + diffBin("B", 2, "xyz") + "\nC=3\n\n" + h + "D=4\n"
		})},
		{name: "binary length too long", lossy: true, datagrams: d(func(h string) string {
			return h + "A=1\n" + diffBin("B", 100, "xyz") + "\n\n" + h + "D=4\n"
		})},
		{name: "binary length over the field limit", lossy: true, datagrams: d(func(h string) string {
			return h + "A=1\n\n" + h + "B=2\n" + diffBin("C", journaltest.DataSizeMax+1, "x") + "\n\n" + h + "D=4\n"
		})},
		{name: "1024 fields", datagrams: d(func(h string) string { return h + diffFields("F", 1022) })},
		{name: "1025 fields", datagrams: d(func(h string) string { return h + diffFields("F", 1023) })},
		{name: "1026 fields", lossy: true, datagrams: d(func(h string) string {
			return h + "A=1\n\n" + h + diffFields("F", 1024) + "\n" + h + "B=2\n"
		})},
		{name: "empty entry mid-datagram", lossy: true, datagrams: d(func(h string) string {
			return h + "A=1\n\n\n" + h + "B=2\n"
		})},
		{name: "entry of invalid lines mid-datagram", lossy: true, datagrams: d(func(h string) string {
			return h + "A=1\n\nb=2\n#c\n\n" + h + "C=3\n"
		})},
		{name: "separator at the end", datagrams: d(func(h string) string { return h + "A=1\n\n\n" })},
		{name: "payload with a descriptor", lossy: true, fds: 1, datagrams: d(func(h string) string { return h + "A=1\n" })},
		{name: "two descriptors", lossy: true, fds: 2, datagrams: d(func(string) string { return "" })},
	}
	files := []struct {
		name string
		file diffFile
	}{
		{"sealed memfd", diffFile{seals: four}},
		{"memfd sealed without SEAL", diffFile{seals: seals}},
		{"memfd sealed with FUTURE_WRITE", diffFile{seals: four | unix.F_SEAL_FUTURE_WRITE}},
		{"memfd sealed with EXEC", diffFile{seals: four | unix.F_SEAL_EXEC}},
		{"unsealed memfd", diffFile{}},
		{"sealed memfd, O_NONBLOCK", diffFile{seals: four, flags: unix.O_NONBLOCK}},
		{"unlinked /dev/shm file", diffFile{dir: "/dev/shm"}},
		{"linked /dev/shm file", diffFile{dir: "/dev/shm", linked: true}},
		{"unlinked /dev/shm file, O_APPEND", diffFile{dir: "/dev/shm", flags: unix.O_APPEND}},
		{"unlinked /tmp file", diffFile{dir: "/tmp"}},
		{"file in a subdirectory of /dev/shm", diffFile{dir: diffSubdir}},
		{"33 MiB sealed memfd", diffFile{seals: four, size: 33 << 20}},
		{"20 MiB unlinked /dev/shm file", diffFile{dir: "/dev/shm", size: 20 << 20}},
	}
	for _, nobody := range []bool{false, true} {
		for _, f := range files {
			who := "root"
			if nobody {
				who = "nobody"
			}
			cases = append(cases, diffCase{name: f.name + " from " + who, nobody: nobody, file: &f.file})
		}
	}
	return cases
}

// diffIdent is the SYSLOG_IDENTIFIER in a case's head.
func diffIdent(head string) string {
	line, _, _ := strings.Cut(head, "\n")
	return strings.TrimPrefix(line, "SYSLOG_IDENTIFIER=")
}

// diffHead starts every entry of a case: SYSLOG_IDENTIFIER and DIFF_CASE.
func diffHead(ident string, c diffCase) string {
	return "SYSLOG_IDENTIFIER=" + ident + "\n" + diffCaseField + "=" + c.name + "\n"
}

// sendDiffCase sends the case to each of the sockets, then its mark.
func sendDiffCase(ident string, c diffCase, sockets []string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	head := diffHead(ident, c)
	for _, path := range sockets {
		to := &unix.SockaddrUnix{Name: path}
		if c.file != nil {
			if err := sendDiffFile(fd, to, head, c); err != nil {
				return fmt.Errorf("%s to %s: %w", c.name, path, err)
			}
		}
		if c.datagrams != nil {
			for i, dg := range c.datagrams(head) {
				var oob []byte
				if i == 0 && c.fds > 0 {
					var fds []int
					for range c.fds {
						mfd, err := diffMemfd([]byte(head+"FD=1\n"), unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL)
						if err != nil {
							return err
						}
						defer unix.Close(mfd)
						fds = append(fds, mfd)
					}
					oob = unix.UnixRights(fds...)
				}
				if err := unix.Sendmsg(fd, []byte(dg), oob, to, 0); err != nil {
					return fmt.Errorf("%s to %s: %w", c.name, path, err)
				}
			}
		}
		if err := unix.Sendmsg(fd, []byte(head+diffMarkField+"=end\n"), nil, to, 0); err != nil {
			return fmt.Errorf("%s mark to %s: %w", c.name, path, err)
		}
	}
	return nil
}

func diffMemfd(data []byte, seals int) (int, error) {
	fd, err := unix.MemfdCreate("diff", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, err
	}
	for rest := data; len(rest) > 0; {
		n, err := unix.Write(fd, rest)
		if err != nil {
			unix.Close(fd)
			return -1, err
		}
		rest = rest[n:]
	}
	if seals != 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("F_ADD_SEALS %#x: %w", seals, err)
		}
	}
	return fd, nil
}

// sendDiffFile passes the case's file, made anew for each destination.
func sendDiffFile(sock int, to *unix.SockaddrUnix, head string, c diffCase) error {
	f := c.file
	content := []byte(head + "MESSAGE=" + c.name + "\nFILE=1\n")
	if f.size > 0 {
		content = []byte(head + diffBin("BIG", uint64(f.size), strings.Repeat("x", f.size)) + "\n")
	}
	var fd int
	var err error
	if f.dir == "" {
		if fd, err = diffMemfd(content, f.seals); err != nil {
			return err
		}
		if f.flags != 0 {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, f.flags); err != nil {
				unix.Close(fd)
				return err
			}
		}
	} else {
		dir := f.dir
		if dir == diffSubdir {
			// One of each sender's own, which it may write in.
			dir = fmt.Sprintf("/dev/shm/journaltest-diff-sub%d", os.Getuid())
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		tmp, err := os.CreateTemp(dir, "journaltest-diff-")
		if err != nil {
			return err
		}
		_, err = tmp.Write(content)
		tmp.Close()
		if err != nil {
			return err
		}
		if fd, err = unix.Open(tmp.Name(), unix.O_RDONLY|unix.O_CLOEXEC|f.flags, 0); err != nil {
			return err
		}
		if !f.linked {
			// Linked files are removed by the parent, after every reader
			// has looked at them.
			if err := os.Remove(tmp.Name()); err != nil {
				unix.Close(fd)
				return err
			}
		}
	}
	defer unix.Close(fd)
	return unix.Sendmsg(sock, nil, unix.UnixRights(fd), to, 0)
}

// runDifferentialChild is the child process: it sends the cases of a
// sender that is not root, to journald and to the Servers in the
// directory diffDirEnv names.
func runDifferentialChild() int {
	ident, dir := os.Getenv(childIdentEnv), os.Getenv(diffDirEnv)
	for i, c := range diffCases() {
		if !c.nobody {
			continue
		}
		if err := sendDiffCase(ident, c, diffSockets(dir, i)); err != nil {
			fmt.Fprintf(os.Stderr, "uid %d: %v\n", os.Getuid(), err)
			return 1
		}
	}
	return 0
}

// diffSockets are where case i goes: journald, the Server of its
// version, the strict Server.
func diffSockets(dir string, i int) []string {
	return []string{journal.DefaultSocketPath, filepath.Join(dir, strconv.Itoa(i)+"-v.sock"), filepath.Join(dir, strconv.Itoa(i)+"-s.sock")}
}

// storedEntry is an entry as a reader of the journal finds it: each of
// the client's fields with its values, each once, sorted.
type storedEntry map[string][]string

func journalStored(e entry) storedEntry {
	s := storedEntry{}
	for name, values := range e {
		if strings.HasPrefix(name, "_") {
			continue // journald's trusted fields
		}
		for _, v := range values {
			s[name] = append(s[name], string(v))
		}
		slices.Sort(s[name])
		s[name] = slices.Compact(s[name])
	}
	return s
}

func serverStored(r journaltest.Received) storedEntry {
	s := storedEntry{}
	for _, f := range r.Fields {
		s[f.Name] = r.All(f.Name)
	}
	return s
}

// describe shows entries briefly: field names, long values cut.
func describe(entries []storedEntry) string {
	var b strings.Builder
	for i, e := range entries {
		names := slices.Sorted(maps.Keys(e))
		fmt.Fprintf(&b, "\n  entry %d (%d fields):", i, len(names))
		for j, n := range names {
			if j == 12 {
				fmt.Fprintf(&b, " …")
				break
			}
			var vs []string
			for _, v := range e[n] {
				if len(v) > 24 {
					v = fmt.Sprintf("%.24q…(%d bytes)", v, len(v))
				} else {
					v = strconv.Quote(v)
				}
				vs = append(vs, v)
			}
			fmt.Fprintf(&b, " %s=%s", n, strings.Join(vs, "|"))
		}
	}
	return b.String()
}

// waitMark waits until srv has stored the mark of its case, the last
// datagram sent to it.
func waitMark(t *testing.T, srv *journaltest.Server) []journaltest.Received {
	t.Helper()
	var got []journaltest.Received
	if !testutil.Poll(30*time.Second, 5*time.Millisecond, func() bool {
		got = srv.Received()
		if n := len(got); n > 0 {
			_, ok := got[n-1].Get(diffMarkField)
			return ok
		}
		return false
	}) {
		t.Fatalf("%s: no mark after 30s (errors: %v)", srv.Path(), srv.Err())
	}
	return got
}

// runAsNobody runs this test binary as the user nobody in the child mode
// that sends the cases of a sender that is not root. The binary is copied
// where nobody may run it.
func runAsNobody(t *testing.T, dir, ident string) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	data, err := os.ReadFile(exe)
	require.NoError(t, err)
	bin := filepath.Join(dir, "integration.test")
	require.NoError(t, os.WriteFile(bin, data, 0o755))
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), childEnv+"="+diffChildMode, childIdentEnv+"="+ident, diffDirEnv+"="+dir, "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the cases of nobody: %s", out)
}

func TestJournaldDifferential(t *testing.T) {
	version, versionLine := journaldVersion, journaldVersionLine
	t.Logf("against the journald of %s: journaltest models %d", versionLine, version)
	ident := uniqueIdent(t)
	cases := diffCases()

	// The Servers live in a directory nobody can reach, so that the
	// child process can send to them.
	dir, err := os.MkdirTemp("", "journaltest-differential")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() {
		for _, d := range []string{"/dev/shm", "/tmp"} {
			left, _ := filepath.Glob(filepath.Join(d, "journaltest-diff-*"))
			for _, f := range left {
				os.RemoveAll(f)
			}
		}
	})
	modelled := make([]*journaltest.Server, len(cases))
	strict := make([]*journaltest.Server, len(cases))
	for i := range cases {
		paths := diffSockets(dir, i)
		modelled[i] = journaltest.NewServerAt(t, paths[1], journaltest.Version(version))
		strict[i] = journaltest.NewServerAt(t, paths[2])
	}

	for i, c := range cases {
		if !c.nobody {
			require.NoError(t, sendDiffCase(ident, c, diffSockets(dir, i)))
		}
	}
	runAsNobody(t, dir, ident)

	syncJournal(t)
	all := waitJournal(t, query{ident: ident}, 30*time.Second, func(es []entry) bool {
		marks := 0
		for _, e := range es {
			if e.Has(diffMarkField) {
				marks++
			}
		}
		return marks == len(cases)
	})
	byCase := map[string][]entry{}
	for _, e := range all {
		name := e.Get(diffCaseField)
		byCase[name] = append(byCase[name], e)
	}

	var summary strings.Builder
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []storedEntry
			for _, e := range byCase[c.name] {
				want = append(want, journalStored(e))
			}
			require.NotEmpty(t, want, "journald has not even the mark of the case")
			stored := len(want) - 1 // without the mark
			lossy := c.lossy || (c.file != nil && stored == 0) || (c.lossySince != 0 && version >= c.lossySince)
			if c.journal != nil {
				c.journal(t, byCase[c.name])
			}

			// The model of this version stores exactly what journald
			// stores, and reports exactly when journald lost something.
			var got []storedEntry
			for _, r := range waitMark(t, modelled[i]) {
				got = append(got, serverStored(r))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("journald %d stored:%s\njournaltest.Version(%d) stored:%s\nits errors: %v",
					version, describe(want), version, describe(got), modelled[i].Err())
			}
			merr := modelled[i].Err()
			if lossy {
				assert.Error(t, merr, "journald %d lost part of what was sent, and journaltest.Version(%d) does not say so", version, version)
			} else {
				assert.NoError(t, merr, "journald %d stored all that was sent", version)
			}

			// The strict rules store the same, or say why not.
			got = got[:0]
			for _, r := range waitMark(t, strict[i]) {
				got = append(got, serverStored(r))
			}
			serr := strict[i].Err()
			same := reflect.DeepEqual(got, want)
			if !same {
				if assert.Error(t, serr, "the strict rules store other entries than journald %d, and do not say why:\njournald:%s\nstrict:%s", version, describe(want), describe(got)) {
					assert.Contains(t, serr.Error(), "strict rules", "the strict rules' reason")
				}
			}
			if merr != nil {
				assert.Error(t, serr, "the strict rules must report what the model of journald %d reports", version)
			}

			verdict := "stored all"
			if lossy {
				verdict = "lost some"
			}
			strictSays := "same"
			if !same {
				strictSays = "differs, says: " + firstLine(serr)
			} else if serr != nil {
				strictSays = "same, says: " + firstLine(serr)
			}
			fmt.Fprintf(&summary, "\n  %-42s journald: %d entries, %s; model: %s; strict: %s", c.name, stored, verdict, firstLine(merr), strictSays)
		})
	}
	t.Logf("journald of %s, case by case:%s", versionLine, summary.String())
}

// firstLine is the first line of err's text, cut: for the summary.
func firstLine(err error) string {
	if err == nil {
		return "no error"
	}
	line, _, _ := strings.Cut(err.Error(), "\n")
	line = strings.TrimPrefix(line, "journaltest: ")
	if len(line) > 160 {
		line = line[:160] + "…"
	}
	return line
}
