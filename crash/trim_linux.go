//go:build linux

package crash

import (
	"bufio"
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// trimCode gives back the watcher's mappings of code and read-only data:
// the program's binary, and the C library's when it links one. Starting
// the program's binary (the runtime, the init functions) touches
// megabytes of it, which the kernel maps 64 KiB at a time; they are the
// program's own pages, shared through the page cache, but ps and top
// count them in the watcher's RSS all the same. The watcher needs a few
// of them from then on, which come back from the page cache when
// touched.
//
// Only file mappings that are not writable and hold no private
// (anonymous) page are given back: those a loader relocated (RELRO) are
// private copies, which the file cannot give back.
func trimCode() {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return
	}
	defer f.Close()
	type mapping struct{ start, end uintptr }
	var (
		trim    []mapping
		cur     mapping
		ours    bool
		scanner = bufio.NewScanner(f)
	)
	for scanner.Scan() {
		line := scanner.Bytes()
		fields := bytes.Fields(line)
		if len(fields) >= 6 && bytes.IndexByte(fields[0], '-') > 0 {
			// A mapping's first line: start-end perms offset dev inode path.
			lo, hi, _ := bytes.Cut(fields[0], []byte("-"))
			start, err1 := strconv.ParseUint(string(lo), 16, 64)
			end, err2 := strconv.ParseUint(string(hi), 16, 64)
			perms := fields[1]
			ours = err1 == nil && err2 == nil && len(fields[5]) > 0 && fields[5][0] == '/' &&
				len(perms) >= 2 && perms[0] == 'r' && perms[1] != 'w'
			cur = mapping{uintptr(start), uintptr(end)}
			continue
		}
		if ours && bytes.HasPrefix(line, []byte("Anonymous:")) {
			if kb := bytes.Fields(line[len("Anonymous:"):]); len(kb) > 0 && string(kb[0]) == "0" {
				trim = append(trim, cur)
			}
			ours = false
		}
	}
	for _, m := range trim {
		// Addresses of the binary's own mappings, not Go memory: the raw
		// call, as unix.Madvise wants a slice of them.
		unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED)
	}
}
