//go:build linux

package journal

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/newstyle-go/newstyle/journaltest"
)

// TestSendPermissionDenied sends to a socket this process may not write
// to. root may write anywhere, so as root the test runs itself again as
// the user nobody, the way an unprivileged service meets a journald
// socket it is not allowed to use.
func TestSendPermissionDenied(t *testing.T) {
	if path := os.Getenv("JOURNAL_TEST_PERMISSION_SOCKET"); path != "" {
		w := newTestWriter(t, path, WriterOptions{})
		err := w.Send("denied", PriInfo)
		if !errors.Is(err, ErrPermission) || !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.EACCES) {
			t.Fatalf("Send = %v, want ErrPermission", err)
		}
		if st := w.Stats(); st.Errors.Permission != 1 {
			t.Fatalf("Stats = %+v, want one permission error", st)
		}
		return
	}

	srv := journaltest.NewServer(t)
	if err := os.Chmod(srv.Path(), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if err := os.Chmod(srv.Path(), 0); err != nil {
			t.Fatal(err)
		}
		t.Setenv("JOURNAL_TEST_PERMISSION_SOCKET", srv.Path())
		TestSendPermissionDenied(t)
		return
	}

	// The test binary may sit in a directory only root can enter: copy it
	// where nobody can run it.
	dir, err := os.MkdirTemp("", "journal-perm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "journal.test")
	if err := copyFile(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	// nobody must reach the socket's directory to be refused by the socket.
	for d := filepath.Dir(srv.Path()); d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-test.run=^TestSendPermissionDenied$", "-test.count=1")
	cmd.Env = append(os.Environ(), "JOURNAL_TEST_PERMISSION_SOCKET="+srv.Path())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
	if n := len(srv.Received()); n != 0 {
		t.Errorf("the socket received %d entries from nobody", n)
	}
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
