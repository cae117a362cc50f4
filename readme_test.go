//go:build linux

package newstyle_test

import (
	"bufio"
	"bytes"
	"context"
	"go/format"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readmeFiles returns the Go files README.md holds, word for word: each
// fenced go block after a "<!-- readme-test: DIR/FILE -->" line, by
// DIR/FILE.
func readmeFiles(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	require.NoError(t, err)
	re := regexp.MustCompile("(?s)<!-- readme-test: ([^ ]+) -->\n```go\n(.*?)```\n")
	files := make(map[string]string)
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		files[m[1]] = m[2]
	}
	return files
}

// userModule writes the README's files as a user's module that requires
// this checkout, and returns its directory.
func userModule(t *testing.T, files map[string]string) string {
	t.Helper()
	repo, err := os.Getwd()
	require.NoError(t, err)
	dir := t.TempDir()
	gomod := "module example.com/shop\n\ngo 1.24.0\n\nrequire github.com/newstyle-go/newstyle v0.0.0\n\nreplace github.com/newstyle-go/newstyle => " + repo + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644))
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))
	for name, src := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(src), 0o644))
	}
	return dir
}

// goCmd runs the go command in dir, as a user's shell would, with env
// added.
func goCmd(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// TestReadmeUserPath follows the README's user path word for word: the
// quick start, the service whose HTTP handler panics and whose level is
// changed by code, and the journaltest recipe in a hostile environment.
func TestReadmeUserPath(t *testing.T) {
	files := readmeFiles(t)
	for _, name := range []string{"quickstart/main.go", "service/main.go", "journaltest/order_test.go"} {
		require.Contains(t, files, name, "README.md holds %s", name)
		formatted, err := format.Source([]byte(files[name]))
		require.NoError(t, err, name)
		assert.Equal(t, string(formatted), files[name], "%s is gofmt'd as printed", name)
	}
	dir := userModule(t, files)
	bin := t.TempDir()
	goCmd(t, dir, nil, "build", "-o", bin, "./quickstart", "./service")

	t.Run("quick start", func(t *testing.T) {
		cmd := exec.Command(filepath.Join(bin, "quickstart"))
		cmd.Env = append(os.Environ(), "NEWSTYLE_LOG_TARGET=", "JOURNAL_STREAM=")
		out, err := cmd.Output()
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		require.Len(t, lines, 3, "%s", out)
		assert.Equal(t, `<6>newstyle: logging to stdout target=stdout reason="JOURNAL_STREAM is not set: stderr is not the journal"`, lines[0])
		assert.Equal(t, `<6>order placed order_id=A-1042 amount_cents=1999`, lines[1])
		assert.True(t, strings.HasPrefix(lines[2], `<3>payment failed order_id=A-1042 err="card declined" traceback="main.main(...)\n\t`), lines[2])
	})

	t.Run("service with an HTTP panic, level changed by code", func(t *testing.T) {
		testReadmeService(t, filepath.Join(bin, "service"))
	})

	t.Run("journaltest in a hostile environment", func(t *testing.T) {
		for _, env := range []string{"NEWSTYLE_LOG_TARGET=stdout", "NEWSTYLE_LOG_TARGET=null", "NEWSTYLE_LOG_TARGET=bogus"} {
			out := goCmd(t, dir, []string{env}, "test", "-count=1", "-v", "./journaltest")
			assert.Contains(t, out, "--- PASS: TestPaymentDeclinedIsLogged", env)
		}
	})
}

// testReadmeService runs the README's service as systemd would start it
// from a .socket unit (its listener passed as fd 3), logging to stdout.
func testReadmeService(t *testing.T, bin string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	lnFile, err := ln.(*net.TCPListener).File()
	require.NoError(t, err)
	ln.Close()
	base := "http://" + ln.Addr().String()

	// LISTEN_PID must be the program's own: sh execs it, keeping its PID.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0"`, bin)
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=http", "NEWSTYLE_LOG_TARGET=stdout", "NOTIFY_SOCKET=")
	cmd.ExtraFiles = []*os.File{lnFile}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	lnFile.Close()
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() { io.Copy(&out, bufio.NewReader(stdout)); close(copied) }()

	// A fresh connection a request: Go's client sends a GET again on a
	// reused connection that closed without an answer.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	do := func(method, path, body string) (string, error) {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b)), err
	}
	_, err = do("GET", "/orders/A-1", "")
	require.Error(t, err, "the panicking request is aborted")
	level, err := do("GET", "/debug/level", "")
	require.NoError(t, err, "the server serves on after a handler's panic")
	assert.Equal(t, "info", level)
	level, err = do("PUT", "/debug/level", "debug")
	require.NoError(t, err)
	assert.Equal(t, "debug", level)
	_, err = do("GET", "/orders/A-2", "")
	require.Error(t, err)

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	select {
	case <-copied:
	case <-ctx.Done():
		t.Fatal("the service did not stop on SIGTERM")
	}
	require.NoError(t, cmd.Wait(), "a clean stop exits 0:\n%s", out.String())

	text := out.String()
	var crit []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "<2>") {
			crit = append(crit, line)
		}
	}
	require.Len(t, crit, 2, "one CRIT line a panic:\n%s", text)
	for i, id := range []string{"A-1", "A-2"} {
		assert.True(t, strings.HasPrefix(crit[i], "<2>service: panic: assignment to entry in nil map"), crit[i])
		assert.Contains(t, crit[i], "method=GET path=/orders/"+id)
		assert.Contains(t, crit[i], `traceback="`)
	}
	assert.NotContains(t, text, "http: panic serving", "net/http does not log the panic a second time")
	assert.NotContains(t, text, "looking up order_id=A-1", "debug is off until the level is set")
	assert.Contains(t, text, "<7>looking up order_id=A-2", "debug is on once set by code")
}
