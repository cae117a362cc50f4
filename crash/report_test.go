package crash

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Crash outputs as the runtime writes them (Go 1.24 and 1.26 alike; the
// tests of runtime_test.go take them from the runtime itself too).
const (
	panicOut = "panic: boom\n\tsecond line\n\ngoroutine 18 [running]:\nmain.main.func1()\n\t/tmp/cx/main.go:19 +0x25\ncreated by main.main in goroutine 1\n\t/tmp/cx/main.go:19 +0x174\n"
	nilOut   = "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x48c630]\n\ngoroutine 18 [running]:\nmain.main.func3()\n\t/tmp/cx/main.go:31 +0x10\n"
	nestOut  = "panic: first [recovered]\n\tpanic: second\n\ngoroutine 1 [running]:\nmain.main.func4()\n\t/tmp/cx/main.go:38 +0x25\n"
	mapOut   = "\ngoroutine 13 [running]:\ninternal/runtime/maps.fatal({0x4b098d?, 0x0?})\n\t/usr/local/go/src/runtime/panic.go:1181 +0x18\nmain.main.func2()\n\t/tmp/cx/main.go:25 +0x2d\n"
	stackOut = "\nruntime stack:\nruntime.throw({0x4af13f?, 0x418e01?})\n\t/usr/local/go/src/runtime/panic.go:1229 +0x48 fp=0x7ffd5ba33fa8 sp=0x7ffd5ba33f78 pc=0x477d88\nruntime.newstack()\n\t/usr/local/go/src/runtime/stack.go:1207 +0x5fd fp=0x7ffd5ba340d8 sp=0x7ffd5ba33fa8 pc=0x45f8bd\n\ngoroutine 1 gp=0x26fe36cb41e0 m=0 mp=0x55eda0 [running]:\nmain.overflow(0x0?)\n\t/tmp/cx/main.go:11 +0x5a\n"
	oomOut   = "\nruntime stack:\nruntime.throw({0x4b0b18?, 0x29eb?})\n\t/usr/local/go/src/runtime/panic.go:1229 +0x48\nruntime.sysMapOS(0x27acf0400000, 0x10000000000, {0x4ad970, 0x4})\n\t/usr/local/go/src/runtime/mem_linux.go:175 +0x13b\nruntime.sysMap(0x27acf0400000, 0x10000000000, 0x576fe8?, {0x4ad970, 0x4})\n\t/usr/local/go/src/runtime/mem.go:279 +0x45\n"
	abrtOut  = "SIGABRT: abort\nPC=0x40816e m=0 sigcode=0\n\ngoroutine 1 gp=0x1d5cea0b61e0 m=0 mp=0x55fdc0 [running, locked to thread]:\nsyscall.RawSyscall6(0x3e, 0x1, 0x6)\n"
	deadOut  = "\ngoroutine 1 [select (no cases), locked to thread]:\nmain.init.0()\n\t/tmp/cx/sig.go:23 +0x247\n"
	cgoOut   = "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x7f0e2d4b1234]\n\nruntime stack:\nruntime.throw({0x4af13f?, 0x0?})\n\t/usr/local/go/src/runtime/panic.go:1229 +0x48\n"
)

func TestName(t *testing.T) {
	for _, tc := range []struct {
		name, prefix, out string
		kind, msg         string
	}{
		{"panic", "", panicOut, kindPanic, "panic: boom"},
		{"nil dereference", "", nilOut, kindPanic,
			"panic: runtime error: invalid memory address or nil pointer dereference [signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x48c630]"},
		{"nested panic", "", nestOut, kindPanic, "panic: first [recovered]"},
		{"map writes, stderr seen", "fatal error: concurrent map writes\n", mapOut, kindFatal, "fatal error: concurrent map writes"},
		{"map writes, from the trace", "", mapOut, kindFatal, "fatal error: concurrent map access (read from the trace)"},
		{"map writes, from a trace that shows the access", "",
			"\ngoroutine 7 [running]:\nruntime.fatal({0x1?})\n\tpanic.go:1\nruntime.mapassign_faststr(0x1)\n\tmap.go:1\n", kindFatal,
			"fatal error: concurrent map writes (read from the trace)"},
		{"stack overflow, stderr seen",
			"runtime: goroutine stack exceeds 1000000000-byte limit\nruntime: sp=0x26fe56de0390 stack=[0x26fe56de0000, 0x26fe76de0000]\nfatal error: stack overflow\n",
			stackOut, kindFatal, "fatal error: stack overflow"},
		{"stack overflow, from the trace", "", stackOut, kindFatal, "fatal error: stack overflow (read from the trace)"},
		{"out of memory, stderr seen", "fatal error: runtime: out of memory\n", oomOut, kindFatal, "fatal error: runtime: out of memory"},
		{"out of memory, from the trace", "", oomOut, kindFatal, "fatal error: out of memory (read from the trace)"},
		{"SIGABRT", "", abrtOut, kindSignal, "SIGABRT: abort"},
		{"deadlock, stderr seen", "fatal error: all goroutines are asleep - deadlock!\n", deadOut, kindFatal,
			"fatal error: all goroutines are asleep - deadlock!"},
		{"deadlock, from the trace", "", deadOut, kindFatal, "fatal error (its message went to stderr)"},
		{"unexpected signal", "fatal error: unexpected signal during runtime execution\n", cgoOut, kindFatal,
			"fatal error: unexpected signal during runtime execution [signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x7f0e2d4b1234]"},
		{"the last fatal line wins", "fatal error: first\nruntime: context\nfatal error: second\n", mapOut, kindFatal, "fatal error: second"},
		{"nothing at all", "", "", kindFatal, "fatal error (its message went to stderr)"},
		{"SIG alone is no signal", "", "SIG: x\n", kindFatal, "fatal error (its message went to stderr)"},
		{"a lower-case SIG name is no signal", "", "SIGabc: x\n", kindFatal, "fatal error (its message went to stderr)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, msg := name([]byte(tc.prefix), []byte(tc.out))
			assert.Equal(t, tc.kind, kind)
			assert.Equal(t, tc.msg, msg)
		})
	}
}

func TestNameClipsLongPanics(t *testing.T) {
	value := strings.Repeat("é", 3000) // 6000 bytes, two to a rune
	_, msg := name(nil, []byte("panic: "+value+"\n\ngoroutine 1 [running]:\n"))
	assert.LessOrEqual(t, len(msg), maxMessage)
	assert.True(t, strings.HasPrefix(msg, "panic: éé"))
	assert.True(t, strings.HasSuffix(msg, "é…"), "cut between runes, marked")
}

func TestFindPrefix(t *testing.T) {
	start := []byte(mapOut[:40])
	for _, tc := range []struct {
		name, window string
		prefix       string
		found        bool
	}{
		{"after the program's lines", "program line\nfatal error: concurrent map writes\n" + mapOut, "fatal error: concurrent map writes\n", true},
		{"with runtime context",
			"hello\nruntime: goroutine stack exceeds 1000000000-byte limit\nruntime: sp=0x1 stack=[0x1, 0x2]\nfatal error: stack overflow\n" + mapOut,
			"runtime: goroutine stack exceeds 1000000000-byte limit\nruntime: sp=0x1 stack=[0x1, 0x2]\nfatal error: stack overflow\n", true},
		{"at the start of the window", "fatal error: x\n" + mapOut, "fatal error: x\n", true},
		{"a program's line between ends the context", "fatal error: x\nprogram line\n" + mapOut, "", true},
		{"no context line", "program line\n" + mapOut, "", true},
		{"the output's start is not there", "fatal error: x\nsomething else\n", "", false},
		{"the start cut off by the window", "fatal error: x\n" + mapOut[:20], "", false},
		{"a partial line before", "fatal error: x" + mapOut, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix, found := findPrefix([]byte(tc.window), start)
			assert.Equal(t, tc.found, found)
			assert.Equal(t, tc.prefix, string(prefix))
		})
	}
	t.Run("the last place the output starts wins", func(t *testing.T) {
		w := "fatal error: old\n" + mapOut + "fatal error: new\n" + mapOut
		prefix, found := findPrefix([]byte(w), start)
		assert.True(t, found)
		assert.Equal(t, "fatal error: new\n", string(prefix))
	})
	t.Run("context is bounded", func(t *testing.T) {
		w := strings.Repeat("runtime: x\n", 100) + "fatal error: x\n" + mapOut
		prefix, _ := findPrefix([]byte(w), start)
		assert.Equal(t, maxContextLines, strings.Count(string(prefix), "\n"))
		assert.True(t, strings.HasSuffix(string(prefix), "fatal error: x\n"))
	})
}

// output is n bytes of numbered lines, as a crash output is lines.
func output(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		b = strconv.AppendInt(append(b, "line "...), int64(i), 10)
		b = append(b, '\n')
	}
	return b[:n]
}

func TestCutter(t *testing.T) {
	for _, tc := range []struct {
		name      string
		max, size int
		chunk     int // write in chunks of this size; 0: at once
	}{
		{"empty", 1000, 0, 0},
		{"under the cap", 1000, 999, 0},
		{"at the cap", 1000, 1000, 0},
		{"one byte over", 1000, 1001, 0},
		{"far over, at once", 1000, 100000, 0},
		{"far over, in chunks", 1000, 100000, 7},
		{"far over, in chunks over the tail", 1000, 100000, 777},
		{"a chunk ends the head exactly", 1000, 5000, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := output(tc.size)
			var c cutter
			c.init(tc.max)
			if tc.chunk == 0 {
				c.Write(in)
			} else {
				for p := in; len(p) > 0; {
					n := min(tc.chunk, len(p))
					c.Write(p[:n])
					p = p[n:]
				}
			}
			head, tail, cut := c.parts()
			require.Equal(t, int64(tc.size), c.total)
			if tc.size <= tc.max {
				assert.Nil(t, tail)
				assert.Zero(t, cut)
				assert.Equal(t, string(in), string(head))
				return
			}
			require.NotNil(t, tail)
			assert.LessOrEqual(t, len(head)+len(tail), tc.max)
			assert.Equal(t, int64(tc.size-len(head)-len(tail)), cut)
			assert.True(t, bytes.HasPrefix(in, head), "the head is the output's start")
			assert.True(t, bytes.HasSuffix(in, tail), "the tail is the output's end")
			assert.True(t, bytes.HasSuffix(head, []byte("\n")), "the head ends at a line's end")
			assert.True(t, bytes.HasPrefix(tail, []byte("line ")), "the tail starts at a line's start")
			// At most a line of each half is given up for whole lines.
			assert.Greater(t, len(head)+len(tail), tc.max-40)
		})
	}
}

func TestCutterKeepsItsMemory(t *testing.T) {
	var c cutter
	c.init(1 << 20)
	chunk := output(64 << 10)
	for range 100 {
		c.Write(chunk)
	}
	assert.LessOrEqual(t, cap(c.head)+cap(c.tail), 1<<20)
}

func TestKeepEnds(t *testing.T) {
	in := output(10000)
	h, tl := keepEnds(in, nil, 20000)
	assert.Equal(t, in, h)
	assert.Nil(t, tl)

	h, tl = keepEnds(in, nil, 1000)
	assert.LessOrEqual(t, len(h)+len(tl), 1000)
	assert.True(t, bytes.HasPrefix(in, h))
	assert.True(t, bytes.HasSuffix(in, tl))

	h2, t2 := keepEnds(h, tl, 500)
	assert.LessOrEqual(t, len(h2)+len(t2), 500)
	assert.True(t, bytes.HasPrefix(in, h2))
	assert.True(t, bytes.HasSuffix(in, t2))

	h3, t3 := keepEnds(h, tl, 0)
	assert.Empty(t, h3)
	assert.Empty(t, t3)
}

func TestTraceback(t *testing.T) {
	var c cutter
	c.init(1000)
	c.Write([]byte(panicOut))
	r := newReport(nil, &c)
	assert.Equal(t, panicOut, string(r.traceback()), "the output exactly as the runtime wrote it")
	assert.Zero(t, r.cut())

	prefix := "fatal error: concurrent map writes\n"
	c.init(1000)
	c.Write([]byte(mapOut))
	r = newReport([]byte(prefix), &c)
	assert.Equal(t, prefix+mapOut, string(r.traceback()), "stderr's lines, then the output")
	assert.Equal(t, "fatal error: concurrent map writes", r.message)

	big := append([]byte(panicOut), output(100000)...)
	c.init(4000)
	c.Write(big)
	r = newReport(nil, &c)
	tb := string(r.traceback())
	assert.Equal(t, "panic: boom", r.message, "named from the head")
	assert.Contains(t, tb, "[… "+strconv.FormatInt(r.cut(), 10)+" bytes of the crash output cut here …]\n")
	assert.Equal(t, len(big), len(r.head)+len(r.tail)+int(r.cut()))
	assert.True(t, strings.HasPrefix(tb, "panic: boom\n"))
	assert.True(t, strings.HasSuffix(tb, string(big[len(big)-len(r.tail):])))
}

func TestJournalFields(t *testing.T) {
	var c cutter
	c.init(1000)
	c.Write([]byte(panicOut))
	fields := newReport(nil, &c).journalFields(4242)
	got := map[string]string{}
	for _, f := range fields {
		got[f.Name] = string(f.Value)
	}
	assert.Equal(t, map[string]string{
		"MESSAGE_ID":         MessageID,
		"SYSLOG_PID":         "4242",
		"NEWSTYLE_CRASH_PID": "4242",
		FieldKind:            "panic",
		"TRACEBACK":          panicOut,
	}, got)

	c.init(1000)
	c.Write(output(5000))
	fields = newReport(nil, &c).journalFields(1)
	assert.Equal(t, FieldCut, fields[len(fields)-1].Name)
	n, err := strconv.Atoi(string(fields[len(fields)-1].Value))
	require.NoError(t, err)
	assert.Greater(t, n, 4000)
}

// stdoutRecord is a line of the stdout fallback's format, read back.
type stdoutRecord struct {
	priority string
	message  string
	attrs    map[string]string
}

// parseStdoutLine reads a line as the fallback writes it: "<N>", the
// message (its escapes are those of a Go string literal, without the
// quotes), then " key=value" pairs, a value quoted as a Go string literal
// when it has a space, '=', '"' or an escape. The crash's message has
// no " KEY=" of its own in these tests.
func parseStdoutLine(t *testing.T, line string) stdoutRecord {
	t.Helper()
	require.True(t, strings.HasSuffix(line, "\n"), "a line ends with a newline")
	line = strings.TrimSuffix(line, "\n")
	require.NotContains(t, line, "\n", "one line")
	require.True(t, len(line) >= 3 && line[0] == '<' && line[2] == '>', "a <N> prefix: %q", line)
	rec := stdoutRecord{priority: line[1:2], attrs: map[string]string{}}
	rest := line[3:]
	i := strings.Index(rest, " MESSAGE_ID=")
	require.GreaterOrEqual(t, i, 0, "MESSAGE_ID follows the message")
	msg, err := strconv.Unquote(`"` + strings.ReplaceAll(rest[:i], `"`, `\"`) + `"`)
	require.NoError(t, err)
	rec.message = msg
	rest = rest[i+1:]
	for rest != "" {
		k, v, ok := strings.Cut(rest, "=")
		require.True(t, ok, "key=value: %q", rest)
		if strings.HasPrefix(v, `"`) {
			q, err := strconv.QuotedPrefix(v)
			require.NoError(t, err)
			rest = strings.TrimPrefix(v[len(q):], " ")
			v, err = strconv.Unquote(q)
			require.NoError(t, err)
		} else {
			v, rest, _ = strings.Cut(v, " ")
		}
		rec.attrs[k] = v
	}
	return rec
}

func TestStdoutLine(t *testing.T) {
	var c cutter
	c.init(DefaultMaxTraceback)
	c.Write([]byte(nilOut))
	r := newReport(nil, &c)
	line := string(r.stdoutLine(77, maxStdoutLine))
	rec := parseStdoutLine(t, line)
	assert.Equal(t, "2", rec.priority)
	assert.Equal(t, r.message, rec.message)
	assert.Equal(t, map[string]string{
		"MESSAGE_ID":         MessageID,
		"NEWSTYLE_CRASH_PID": "77",
		FieldKind:            "panic",
		"traceback":          nilOut,
	}, rec.attrs)
}

func TestStdoutLineFitsLineMax(t *testing.T) {
	t.Run("fits", func(t *testing.T) {
		small := []byte(panicOut + strings.Repeat("\tmain.f()\n", maxStdoutLine/20))
		var c cutter
		c.init(DefaultMaxTraceback)
		c.Write(small)
		rec := parseStdoutLine(t, string(newReport(nil, &c).stdoutLine(1, maxStdoutLine)))
		assert.Equal(t, string(small), rec.attrs["traceback"], "whole")
		assert.NotContains(t, rec.attrs, FieldCut)
	})
	for _, size := range []int{maxStdoutLine, 10 * maxStdoutLine, DefaultMaxTraceback + 100000} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			// Tabs and newlines, which escape to two bytes each.
			big := []byte(panicOut + strings.Repeat("\tmain.f()\n", size/10))
			var c cutter
			c.init(DefaultMaxTraceback)
			c.Write(big)
			r := newReport(nil, &c)
			line := r.stdoutLine(1, maxStdoutLine)
			assert.LessOrEqual(t, len(line), maxStdoutLine)
			assert.Greater(t, len(line), maxStdoutLine-4096, "not cut more than it must")
			rec := parseStdoutLine(t, string(line))
			assert.Equal(t, "panic: boom", rec.message)
			tb := rec.attrs["traceback"]
			require.True(t, strings.HasPrefix(tb, "panic: boom\n"))
			cut, err := strconv.Atoi(rec.attrs[FieldCut])
			require.NoError(t, err, "the cut is counted")
			marker := "[… " + strconv.Itoa(cut) + " bytes of the crash output cut here …]\n"
			head, tail, ok := strings.Cut(tb, marker)
			require.True(t, ok, "the marker says what the count says: %d", cut)
			assert.True(t, bytes.HasPrefix(big, []byte(head)))
			assert.True(t, bytes.HasSuffix(big, []byte(tail)))
			assert.Equal(t, len(big), len(head)+len(tail)+cut, "every byte is kept or counted")
		})
	}
}

// FuzzStdoutLine: whatever the crash's message and output, the fallback
// writes one line, at <2>, within journald's LineMax, from which the
// output's kept parts and the count of the rest read back.
func FuzzStdoutLine(f *testing.F) {
	f.Add([]byte(panicOut), 1000)
	f.Add([]byte(nilOut), 100)
	f.Add([]byte("panic: a\x00b\r\n\x1b[31m\xff\xfe \"q\" k=v\n\tx\n"), 50)
	f.Add([]byte("panic: <3>forged\n<2>also\n"), 4096)
	f.Fuzz(func(t *testing.T, out []byte, max int) {
		if max < 1 || max > 1<<16 || len(out) == 0 {
			return // the watcher reports only a crash that wrote something
		}
		var c cutter
		c.init(max)
		c.Write(out)
		r := newReport(nil, &c)
		line := r.stdoutLine(9, 4096)
		require.LessOrEqual(t, len(line), 4096+maxMessage*6, "bounded")
		require.True(t, bytes.HasPrefix(line, []byte("<2>")))
		require.Equal(t, 1, bytes.Count(line, []byte("\n")), "one line")
		require.True(t, bytes.HasSuffix(line, []byte("\n")))
		// The traceback reads back: kept head and tail of the output,
		// and the count of what is not.
		s := string(line)
		i := strings.LastIndex(s, " traceback=")
		require.GreaterOrEqual(t, i, 0)
		// Quoted as a Go string literal, or as it is when it needs no
		// quotes (no space, quote, '=' or escape in it).
		tb := strings.TrimSuffix(s[i+len(" traceback="):], "\n")
		var err error
		if strings.HasPrefix(tb, `"`) {
			tb, err = strconv.Unquote(tb)
			require.NoError(t, err)
		}
		cut := int64(0)
		if j := strings.Index(s, " "+FieldCut+"="); j >= 0 {
			v, _, _ := strings.Cut(s[j+len(FieldCut)+2:], " ")
			cut, err = strconv.ParseInt(v, 10, 64)
			require.NoError(t, err)
		}
		if cut == 0 {
			require.Equal(t, string(out), tb)
			return
		}
		head, tail, ok := strings.Cut(tb, "[… "+strconv.FormatInt(cut, 10)+" bytes of the crash output cut here …]\n")
		require.True(t, ok)
		if int64(len(head)+len(tail))+cut == int64(len(out))+1 {
			// The marker starts a line of its own: after a head that does
			// not end one, a newline was added.
			head = strings.TrimSuffix(head, "\n")
		}
		require.True(t, strings.HasPrefix(string(out), head))
		require.True(t, strings.HasSuffix(string(out), tail))
		require.Equal(t, int64(len(out)), int64(len(head)+len(tail))+cut)
	})
}
