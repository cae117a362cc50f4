package journaltest

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/newstyle-go/newstyle/internal/journald"
)

// The versions of systemd-journald a Server can model. Where journald
// changed between them, the rules come from its sources (systemd 252.39,
// 254.26 and 257.13, as Debian ships them) and from the upstream changes
// named at each rule below.
const (
	// OldestVersion is the oldest journald journaltest models: systemd
	// 252, Debian 12's.
	OldestVersion = 252
	// NewestVersion is the newest journald whose rules journaltest
	// knows: systemd 257, Debian 13's. A newer version is modelled as
	// this one.
	NewestVersion = 257
)

// Option configures a Server.
type Option func(*config)

type config struct {
	version int // 0: every version at once, the strictest rules
}

// Version makes a Server model the journald of systemd version v
// (OldestVersion or later; a version past NewestVersion is modelled as
// NewestVersion): it stores what that journald stores, and reports in Err
// what that journald would skip, drop or mis-read, for the sender it
// actually has (root or not, from the socket's credentials on Linux).
//
// Without it, a Server applies the strictest rules: those of every
// version at once, plus two of its own for passed files (a memfd must be
// sealed with exactly SHRINK|GROW|WRITE|SEAL, any other file unlinked and
// directly in /dev/shm, whoever sends it), so that a client that passes
// its tests works with any journald. Version(0) asks for that explicitly.
// Where a sender's credentials are unknown (off Linux), a Server takes it
// for one that is not root, as journald does.
//
// What the versions disagree on is passed files (entries too large for a
// datagram): which memfd counts as sealed, the descriptor's status
// flags, and a size limit for senders that are not root; and, from 253
// on, that journald reads nothing more of a datagram after an entry with
// a MESSAGE field (so a client must send one entry a datagram to it; the
// strict rules apply this too). See the package documentation for the
// rules.
func Version(v int) Option {
	return func(c *config) { c.version = v }
}

// ParseVersion reads the systemd version from the output of
// journalctl --version (or systemctl --version): "systemd 252
// (252.38-1~deb12u1)" is 252.
func ParseVersion(out string) (int, error) {
	f := strings.Fields(out)
	if len(f) < 2 || f[0] != "systemd" {
		return 0, fmt.Errorf("journaltest: not a systemd version: %.40q", out)
	}
	v, err := strconv.Atoi(f[1])
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("journaltest: not a systemd version: %.40q", out)
	}
	return v, nil
}

func newConfig(opts []Option) (config, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.version != 0 && c.version < OldestVersion {
		return c, fmt.Errorf("journaltest: journald %d: the oldest version modelled is %d", c.version, OldestVersion)
	}
	return c, nil
}

// Seals of a memfd (linux/fcntl.h), here so that the rules can be
// stated, and tested, on every system.
const (
	sealSeal        = 0x1
	sealShrink      = 0x2
	sealGrow        = 0x4
	sealWrite       = 0x8
	sealFutureWrite = 0x10
	sealExec        = 0x20

	// journald's sealed memfd: the client can no longer change it.
	sealsSealed = sealShrink | sealGrow | sealWrite
)

// passedFile is what a Server learns of a file passed by descriptor, the
// facts journald's manager_process_native_file looks at.
type passedFile struct {
	regular bool
	size    int64
	// oddFlags are the status flags (F_GETFL) besides the access mode,
	// O_NOFOLLOW and O_LARGEFILE: those fd_verify_safe_flags refuses.
	oddFlags int
	seals    int    // F_GET_SEALS; -1 when the file cannot say
	path     string // as /proc/self/fd shows it: "/memfd:NAME (deleted)", "/dev/shm/F (deleted)"
	links    uint64
}

func (f passedFile) memfd() bool { return strings.HasPrefix(f.path, "/memfd:") }

// sender is who sent a datagram, as the socket's credentials say.
type sender struct {
	known bool // credentials came with the datagram
	uid   uint32
}

func (s sender) root() bool { return s.known && s.uid == 0 }

// sealedBy reports whether journald of version v takes a file with these
// seals as a sealed memfd (memfd_get_sealed), which it maps rather than
// copies and takes from any sender.
func sealedBy(v int, seals int) bool {
	if seals < 0 {
		return false
	}
	if v < 254 {
		// 252: exactly SHRINK|GROW|WRITE|SEAL, nothing more (not even
		// the F_SEAL_EXEC a kernel may add by itself).
		return seals == sealsSealed|sealSeal
	}
	// 254 and later: at least SHRINK|GROW|WRITE (upstream pull request
	// 28423, 2023).
	return seals&sealsSealed == sealsSealed
}

// checksFlags reports whether journald of version v refuses a passed
// descriptor with status flags besides the access mode
// (fd_verify_safe_flags, upstream pull requests 31419 and 31425, February
// 2024: first released in 256). Before, journald set O_NONBLOCK itself.
func checksFlags(v int) bool { return v >= 256 }

// fileSizeMax is the largest file journald of version v takes from the
// sender, sealed or not (an unsealed one it copies: half of it).
func fileSizeMax(v int, from sender, sealed bool) int64 {
	max := int64(journald.EntrySizeMax)
	if v >= 257 && !from.root() {
		max = journald.UnprivilegedFileSizeMax
	}
	if !sealed {
		max /= 2
	}
	return max
}

// allowedDir reports whether journald takes an unsealed file at path
// from a sender that is not root: a file directly in /dev/shm, /tmp or
// /var/tmp (PATH_STARTSWITH_SET and filename_is_valid).
func allowedDir(path string) bool {
	for _, dir := range []string{"/dev/shm/", "/tmp/", "/var/tmp/"} {
		if name, ok := strings.CutPrefix(path, dir); ok {
			return name != "" && name != "." && name != ".." && len(name) <= 255 && !strings.Contains(name, "/")
		}
	}
	return false
}

// takeFile says whether journald of version v stores the entries of the
// passed file f from the sender, and whether it takes f as a sealed
// memfd; reason says why not. An empty file is refused too: journald
// ignores it without a word.
func takeFile(v int, f passedFile, from sender) (sealed bool, reason string) {
	ignores := fmt.Sprintf("journald %d ignores the file", v)
	if !f.regular {
		return false, "not a regular file: " + ignores
	}
	if f.size <= 0 {
		return false, "an empty file: " + ignores
	}
	if checksFlags(v) && f.oddFlags != 0 {
		return false, fmt.Sprintf("file status flags %#o besides the access mode (e.g. O_NONBLOCK, O_APPEND): %s", f.oddFlags, ignores)
	}
	sealed = sealedBy(v, f.seals)
	if !sealed && !from.root() && !allowedDir(strings.TrimSuffix(f.path, " (deleted)")) {
		what := fmt.Sprintf("file %q", f.path)
		if f.memfd() {
			what = fmt.Sprintf("memfd %q with seals %s, which journald %d does not take as sealed (%s),",
				f.path, sealNames(f.seals), v, sealRule(v))
		}
		return false, fmt.Sprintf("%s from a sender that is not root, not directly in /dev/shm, /tmp or /var/tmp: %s", what, ignores)
	}
	if max := fileSizeMax(v, from, sealed); f.size > max {
		return sealed, fmt.Sprintf("a file of %d bytes from this sender exceeds %d: %s", f.size, max, ignores)
	}
	return sealed, ""
}

// takeFileStrictly is takeFile for every version at once: what works
// with any journald. Two rules are journaltest's own, for any sender: a
// memfd must be sealed with exactly SHRINK|GROW|WRITE|SEAL (what every
// version takes as sealed, from any sender), and any other file must be
// unlinked, and directly in /dev/shm. /tmp is no good for a service with
// PrivateTmp=, whose /tmp journald sees as a subdirectory of its own /tmp;
// a file elsewhere only root may pass; and journald never removes a file.
func takeFileStrictly(f passedFile, from sender) (sealed bool, reason string) {
	for v := OldestVersion; v <= NewestVersion; v++ {
		if _, reason := takeFile(v, f, from); reason != "" {
			return false, reason + " (journaltest's strict rules: what every journald from 252 on takes)"
		}
	}
	const strict = "journaltest's strict rules: pass a memfd sealed with exactly SHRINK|GROW|WRITE|SEAL, or an unlinked file directly in /dev/shm"
	switch {
	case sealedBy(OldestVersion, f.seals):
		return true, ""
	case f.memfd():
		return false, fmt.Sprintf("memfd %q with seals %s: journald 252 takes it only from root, copying it (%s)", f.path, sealNames(f.seals), strict)
	case f.links != 0:
		return false, fmt.Sprintf("file %q still has %d links: journald never removes it (%s)", f.path, f.links, strict)
	case filepath.Dir(strings.TrimSuffix(f.path, " (deleted)")) != "/dev/shm":
		return false, fmt.Sprintf("file %q is not directly in /dev/shm: journald takes it only from root, and a /tmp file of a service with PrivateTmp= it sees in a subdirectory (%s)", f.path, strict)
	}
	return false, ""
}

// sealRule says which memfd journald of version v takes as sealed.
func sealRule(v int) string {
	if v < 254 {
		return "exactly SHRINK|GROW|WRITE|SEAL"
	}
	return "at least SHRINK|GROW|WRITE"
}

// sealNames spells seals out: SHRINK|GROW|WRITE|SEAL.
func sealNames(seals int) string {
	if seals < 0 {
		return "(none: not a memfd)"
	}
	names := []struct {
		bit  int
		name string
	}{{sealShrink, "SHRINK"}, {sealGrow, "GROW"}, {sealWrite, "WRITE"}, {sealFutureWrite, "FUTURE_WRITE"}, {sealExec, "EXEC"}, {sealSeal, "SEAL"}}
	var out []string
	for _, n := range names {
		if seals&n.bit != 0 {
			out = append(out, n.name)
			seals &^= n.bit
		}
	}
	if seals != 0 {
		out = append(out, fmt.Sprintf("%#x", seals))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "|")
}

// takeFile applies the Server's model to a passed file.
func (c config) takeFile(f passedFile, from sender) (sealed bool, reason string) {
	if c.version == 0 {
		return takeFileStrictly(f, from)
	}
	return takeFile(min(c.version, NewestVersion), f, from)
}

// scanVersion is the version whose rules for a datagram apply:
// strictScan for the strict rules, which drop what follows an entry with
// a MESSAGE field in a datagram, as journald 253 and later do
// (stopsAfterMessage).
func (c config) scanVersion() int {
	if c.version == 0 {
		return strictScan
	}
	return min(c.version, NewestVersion)
}
