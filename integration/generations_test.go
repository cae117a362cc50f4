//go:build integration

package integration

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle/journaltest"

	"github.com/newstyle-go/newstyle/journal"
)

// What journald does differently from one systemd generation to the next,
// measured on the generation the tests run on (the host's 252, or 257 by
// scripts/private-ns.sh --systemd 257): each test runs as a subtest named
// after it (systemd257) and expects what that generation does. The
// README's support table states the outcomes.

var (
	// journaldVersionLine is the first line of journalctl --version
	// ("systemd 257 (257.13-1~deb13u1)"), journaldVersion its major
	// version; set by readJournaldVersion before the tests run.
	journaldVersionLine string
	journaldVersion     int
)

// readJournaldVersion reads journalctl --version; journalctl and
// systemd-journald come from one package. Where NEWSTYLE_SYSTEMD says
// which generation the run is meant for (scripts/private-ns.sh sets it),
// another one is an error.
func readJournaldVersion() error {
	out, err := exec.Command("journalctl", "--version").Output()
	if err != nil {
		return fmt.Errorf("journalctl --version: %w", err)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	n, err := journaltest.ParseVersion(first)
	if err != nil {
		return fmt.Errorf("journalctl --version: %w", err)
	}
	if want := os.Getenv("NEWSTYLE_SYSTEMD"); want != "" && want != strconv.Itoa(n) {
		return fmt.Errorf("NEWSTYLE_SYSTEMD=%s, but journalctl --version says %q", want, first)
	}
	journaldVersionLine, journaldVersion = first, n
	return nil
}

// onJournald runs f as a subtest named after the journald's systemd
// ("systemd257"), so that a failure names the generation it happened on.
func onJournald(t *testing.T, f func(t *testing.T, version int)) {
	t.Helper()
	t.Run(fmt.Sprintf("systemd%d", journaldVersion), func(t *testing.T) {
		t.Logf("on %s", journaldVersionLine)
		f(t, journaldVersion)
	})
}

// nativeEntry encodes fields (name, value pairs) as one entry of the
// native protocol, every value in the binary form, and the empty line
// that ends the entry.
func nativeEntry(fields ...string) []byte {
	var b []byte
	for i := 0; i+1 < len(fields); i += 2 {
		b = append(b, fields[i]...)
		b = append(b, '\n')
		b = binary.LittleEndian.AppendUint64(b, uint64(len(fields[i+1])))
		b = append(b, fields[i+1]...)
		b = append(b, '\n')
	}
	return append(b, '\n')
}

// sendDatagram sends one datagram to the default journald.
func sendDatagram(t *testing.T, data []byte, rights []byte) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Sendmsg(fd, data, rights, &unix.SockaddrUnix{Name: journal.DefaultSocketPath}, 0); err != nil {
		t.Fatalf("sendmsg: %v", err)
	}
}

// sealedMemfd returns a memfd holding data, sealed as libsystemd and
// package journal seal it (shrink, grow, write, seal).
func sealedMemfd(t *testing.T, data []byte) int {
	t.Helper()
	fd, err := unix.MemfdCreate("generations-test", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "memfd")
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS,
		unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		t.Fatal(err)
	}
	return int(f.Fd())
}

// wantMessages checks the MESSAGEs journald stored of what was sent.
func wantMessages(t *testing.T, version int, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
		t.Errorf("systemd %d stored the entries with MESSAGE %q of %s, want %q", version, got, what, want)
	}
}

// messagesAfterMarker sends a marker entry in a datagram of its own and
// returns the MESSAGEs of ident once the marker is stored: journald reads
// its socket in order, so whatever it was sent before the marker has
// been stored, or dropped, by then. The marker is not among them.
func messagesAfterMarker(t *testing.T, ident string) []string {
	t.Helper()
	marker := "marker " + ident
	sendDatagram(t, nativeEntry("SYSLOG_IDENTIFIER", ident, "MESSAGE", marker), nil)
	q := query{ident: ident, fields: []string{"MESSAGE"}}
	entries := waitJournal(t, q, 30*time.Second, func(es []entry) bool {
		return len(es) > 0 && es[len(es)-1].Get("MESSAGE") == marker
	})
	var msgs []string
	for _, e := range entries {
		if m := e.Get("MESSAGE"); m != marker {
			msgs = append(msgs, m)
		}
	}
	if len(entries) == 0 || entries[len(entries)-1].Get("MESSAGE") != marker {
		t.Fatalf("the marker entry is not in the journal; entries: %q", msgs)
	}
	return msgs
}

// TestJournaldEntriesPerDatagram: journald 252 stores every entry of a
// datagram that holds several (separated by an empty line); since 253
// (LogFilterPatterns=) it stops after the first entry that has a MESSAGE,
// and the rest of the datagram is lost without a word.
func TestJournaldEntriesPerDatagram(t *testing.T) {
	onJournald(t, func(t *testing.T, version int) {
		tests := []struct {
			name     string
			messages []string // "" for an entry without MESSAGE
			want252  []string
			want257  []string
		}{
			{"three with MESSAGE", []string{"a", "b", "c"}, []string{"a", "b", "c"}, []string{"a"}},
			{"the first without", []string{"", "b", "c"}, []string{"", "b", "c"}, []string{"", "b"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ident := uniqueIdent(t)
				var datagram []byte
				for i, m := range tt.messages {
					fields := []string{"SYSLOG_IDENTIFIER", ident, "N", strconv.Itoa(i)}
					if m != "" {
						fields = append(fields, "MESSAGE", m)
					}
					datagram = append(datagram, nativeEntry(fields...)...)
				}
				sendDatagram(t, datagram, nil)
				got := messagesAfterMarker(t, ident)
				want := tt.want257
				if version < 253 {
					want = tt.want252
				}
				wantMessages(t, version, fmt.Sprintf("a datagram of %q", tt.messages), got, want)
			})
		}
	})
}

// TestJournaldFdFlags: journald 256 and later refuse a descriptor whose
// status flags hold more than its access mode (fd_verify_safe_flags):
// an entry in a memfd with O_NONBLOCK set is dropped, logged by journald
// alone. 252 reads it. The same memfd without the flag is stored by both:
// package journal's memfd (O_RDWR, sealed) is of that kind.
func TestJournaldFdFlags(t *testing.T) {
	onJournald(t, func(t *testing.T, version int) {
		ident := uniqueIdent(t)
		for _, tt := range []struct {
			msg      string
			nonblock bool
		}{{"plain memfd", false}, {"O_NONBLOCK memfd", true}} {
			fd := sealedMemfd(t, nativeEntry("SYSLOG_IDENTIFIER", ident, "MESSAGE", tt.msg))
			if tt.nonblock {
				flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
				if err == nil {
					_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags|unix.O_NONBLOCK)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			sendDatagram(t, nil, unix.UnixRights(fd))
		}
		got := messagesAfterMarker(t, ident)
		want := []string{"plain memfd", "O_NONBLOCK memfd"}
		if version >= 256 {
			want = want[:1]
		}
		wantMessages(t, version, "the entries passed by memfd", got, want)
	})
}

// TestJournaldUnprivilegedFdCap: journald 257 takes at most 32 MiB in a
// descriptor from a sender that is not root (unless it is
// systemd-coredump); 252 takes up to 770 MiB from anyone. Sent as user
// 65534 (the real UID, which SCM_CREDENTIALS carries, of the sending
// thread alone): a 31 MiB entry is stored by both, a 33 MiB one by 252
// only. Package journal refuses an entry over 32 MiB from a process
// that is not root (ErrTooLarge) on either, as it cannot tell which
// journald it talks to.
func TestJournaldUnprivilegedFdCap(t *testing.T) {
	onJournald(t, func(t *testing.T, version int) {
		ident := uniqueIdent(t)
		sizes := []int{31 << 20, 33 << 20}
		for _, size := range sizes {
			fd := sealedMemfd(t, nativeEntry("SYSLOG_IDENTIFIER", ident, "MESSAGE", fmt.Sprintf("%d MiB", size>>20),
				"PAYLOAD", string(bytes.Repeat([]byte("x"), size))))
			if err := sendAsUser(65534, fd); err != nil {
				t.Fatal(err)
			}
		}
		got := messagesAfterMarker(t, ident)
		want := []string{"31 MiB", "33 MiB"}
		if version >= 257 {
			want = want[:1]
		}
		wantMessages(t, version, "the entries user 65534 passed by memfd", got, want)
	})
}

// sendAsUser passes fd to journald from a thread whose real and
// effective UID are uid, and waits for it. The thread keeps UID 0 as its
// saved UID to go back, but never goes back to the scheduler: it ends,
// locked, with its goroutine.
func sendAsUser(uid int, fd int) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The system call itself, for this thread alone: unix.Setresuid
		// (syscall.Setresuid) changes every thread of the process.
		if _, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), 0); errno != 0 {
			done <- fmt.Errorf("setresuid(%d): %w", uid, errno)
			return
		}
		s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(s)
		done <- unix.Sendmsg(s, nil, unix.UnixRights(fd), &unix.SockaddrUnix{Name: journal.DefaultSocketPath}, 0)
	}()
	return <-done
}
