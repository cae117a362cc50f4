//go:build container

package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle/internal/testutil"
)

const (
	// bootTimeout bounds the boot, up to `systemctl is-system-running`.
	bootTimeout = 90 * time.Second
	// commandTimeout bounds each command run in the container.
	commandTimeout = 60 * time.Second
	// poweroffTimeout bounds the wait for nspawn after a poweroff, and
	// again after SIGTERM, before the container is killed.
	poweroffTimeout = 30 * time.Second
)

// container is a booted systemd container: systemd-nspawn running the
// host's /usr as a throwaway system (--volatile=yes: / is a tmpfs), or a
// root tree of another systemd generation (--volatile=overlay: writes go
// to a tmpfs over it, the tree stays as it is), with a network namespace
// of its own (--private-network: only its loopback, so its port 8080 is
// not the host's) and the test binaries bound in read-only at /opt/test.
type container struct {
	name    string
	console string // nspawn's output: the container's boot messages
	nspawn  *exec.Cmd
	exited  chan struct{} // closed when nspawn has exited
	waitErr error         // nspawn's exit, once exited is closed
	init    int           // the container's PID 1, as the host sees it
	netns   int           // a descriptor of its network namespace

	// systemdVersion is the first line of the container's systemctl
	// --version ("systemd 257 (257.13-1~deb13u1)"), systemd its major
	// version; both set by readVersion.
	systemdVersion string
	systemd        int
}

// boot starts the container with binDir at /opt/test and waits until its
// systemd says the system is running. tree is the root tree to boot, ""
// for the host's own /usr. On error, whatever was started is stopped
// again.
func boot(name, tree, binDir, consolePath string) (_ *container, err error) {
	console, err := os.Create(consolePath)
	if err != nil {
		return nil, err
	}
	defer console.Close()
	c := &container{name: name, console: consolePath, exited: make(chan struct{})}
	// nspawn refuses --volatile=overlay for --directory=/.
	root := []string{"--directory=/", "--volatile=yes"}
	if tree != "" {
		root = []string{"--directory=" + tree, "--volatile=overlay"}
	}
	c.nspawn = exec.Command("systemd-nspawn", append(root,
		"--register=no", "--keep-unit", // no machined, no system bus here
		"--private-network",
		"--machine="+name,
		"--bind-ro="+binDir+":/opt/test",
		"--console=read-only", // boot messages to the console file
		"--boot", "--",
		"systemd.firstboot=off", // else boot stops at a prompt
	)...)
	c.nspawn.Stdout, c.nspawn.Stderr = console, console
	// Should this process die without stopping the container (a test's
	// panic, go test's -timeout), nspawn gets SIGTERM and powers the
	// container off. The signal is sent when the thread that started
	// nspawn ends, so that thread is locked to a goroutine that lives as
	// long as nspawn does.
	c.nspawn.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := c.nspawn.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.waitErr = c.nspawn.Wait()
		close(c.exited)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("starting systemd-nspawn: %w", err)
	}
	defer func() {
		if err != nil {
			c.shutdown()
			err = fmt.Errorf("%w\n--- console (%s):\n%s", err, consolePath, c.consoleTail())
		}
	}()

	deadline := time.Now().Add(bootTimeout)
	var exited bool
	if !testutil.Poll(bootTimeout, 20*time.Millisecond, func() bool {
		select {
		case <-c.exited:
			exited = true
			return true // no use waiting
		default:
		}
		c.init = containerInit(c.nspawn.Process.Pid)
		return c.init != 0
	}) {
		return nil, errors.New("the container's init did not start in time")
	}
	if exited {
		return nil, fmt.Errorf("systemd-nspawn exited during boot: %v", c.waitErr)
	}
	if c.netns, err = unix.Open(fmt.Sprintf("/proc/%d/ns/net", c.init), unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
		return nil, fmt.Errorf("the container's network namespace: %w", err)
	}

	// --wait waits for the boot to finish; "degraded" is a finished boot
	// with some unit of the host's own failed, none of the tests' concern.
	// Until systemd listens on its private socket, systemctl answers
	// "offline" at once: ask again.
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for {
		out, err := c.execContext(ctx, nil, "systemctl", "is-system-running", "--wait")
		switch state := strings.TrimSpace(out); {
		case state == "running" || state == "degraded":
			return c, nil
		case ctx.Err() != nil:
			return nil, fmt.Errorf("systemctl is-system-running --wait: %q, %v", state, err)
		}
		select {
		case <-c.exited:
			return nil, fmt.Errorf("systemd-nspawn exited during boot: %v", c.waitErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// containerInit returns the child of nspawn that is PID 1 of its own PID
// namespace — the container's systemd — or 0 while there is none yet.
func containerInit(nspawn int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", nspawn, nspawn))
	if err != nil {
		return 0
	}
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			continue
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if ns, ok := strings.CutPrefix(line, "NSpid:"); ok {
				// PID 1 of a namespace of its own, and nspawn's set-up
				// done: it runs systemd.
				ids := strings.Fields(ns)
				exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
				if len(ids) > 1 && ids[len(ids)-1] == "1" && filepath.Base(exe) == "systemd" {
					return pid
				}
			}
		}
	}
	return 0
}

func (c *container) consoleTail() string {
	b, _ := os.ReadFile(c.console)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// shutdown powers the container off and waits for nspawn to exit; if it
// does not, nspawn gets SIGTERM, then the container's init and nspawn get
// SIGKILL (which ends every process of the container's PID namespace).
// Every wait is bounded.
func (c *container) shutdown() error {
	err := c.stop()
	select {
	case <-c.exited:
		// nspawn makes this directory for --bind mounts and, /run being
		// no tmpfs here, leaves it behind, empty.
		_ = os.Remove("/run/systemd/nspawn/propagate/" + c.name)
	default:
	}
	return err
}

func (c *container) stop() error {
	if c.netns > 0 {
		unix.Close(c.netns)
		c.netns = 0
	}
	select {
	case <-c.exited:
		return c.exitError()
	default:
	}
	if c.init > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		// The connection may drop as systemd goes down: not an error.
		_, _ = c.execContext(ctx, nil, "systemctl", "poweroff", "--no-block")
		cancel()
		if c.waitExit(poweroffTimeout) {
			return c.exitError()
		}
	}
	_ = c.nspawn.Process.Signal(syscall.SIGTERM) // nspawn: power off
	if c.waitExit(poweroffTimeout) {
		return fmt.Errorf("the container did not power off; nspawn stopped by SIGTERM: %v", c.exitError())
	}
	if c.init > 0 {
		_ = syscall.Kill(c.init, syscall.SIGKILL)
	}
	_ = c.nspawn.Process.Kill()
	if c.waitExit(10 * time.Second) {
		return errors.New("the container did not power off; killed")
	}
	return fmt.Errorf("systemd-nspawn (pid %d) did not exit, even killed", c.nspawn.Process.Pid)
}

func (c *container) waitExit(d time.Duration) bool {
	select {
	case <-c.exited:
		return true
	case <-time.After(d):
		return false
	}
}

// exitError is nspawn's exit, once it exited: a container powered off
// makes nspawn exit with status 0.
func (c *container) exitError() error {
	if c.waitErr != nil {
		return fmt.Errorf("systemd-nspawn: %w", c.waitErr)
	}
	return nil
}

// exec runs a command in the container (all its namespaces, its root) and
// returns its standard output; an error carries the standard error.
func (c *container) exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return c.execContext(ctx, nil, args...)
}

// execInput is exec with input on the command's standard input.
func (c *container) execInput(input []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return c.execContext(ctx, input, args...)
}

func (c *container) execContext(ctx context.Context, input []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(c.init), "-a", "--"}, args...)...)
	// Not this process's environment: nothing of the host's (a
	// NOTIFY_SOCKET, SYSTEMD_* settings) leaks into the container.
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"SYSTEMD_PAGER=",
		"SYSTEMD_COLORS=0",
	}
	if input != nil {
		cmd.Stdin = bytes.NewReader(input)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// writeFile writes a file in the container, making its directory.
func (c *container) writeFile(path string, data []byte) error {
	_, err := c.execInput(data, "sh", "-c", `mkdir -p "$(dirname "$1")" && cat > "$1"`, "sh", path)
	return err
}

// installUnit copies a unit file of the host into /etc/systemd/system.
func (c *container) installUnit(hostPath string) error {
	data, err := os.ReadFile(hostPath)
	if err != nil {
		return err
	}
	return c.writeFile("/etc/systemd/system/"+filepath.Base(hostPath), data)
}

// dial connects from inside the container's network namespace: the
// socket is made by a thread moved into that namespace (setns), and stays
// there whichever thread uses it afterwards. The thread is never moved
// back: it ends with its goroutine, locked, instead of going back to the
// scheduler in the wrong namespace.
func (c *container) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(c.netns, unix.CLONE_NEWNET); err != nil {
			done <- result{nil, fmt.Errorf("setns into the container's network: %w", err)}
			return
		}
		// An IP address, so one connect on this very thread: no
		// resolver, no parallel dials on other threads.
		if host, _, err := net.SplitHostPort(addr); err != nil || net.ParseIP(host) == nil {
			done <- result{nil, fmt.Errorf("dial %s: want an IP address", addr)}
			return
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		done <- result{conn, err}
	}()
	r := <-done
	return r.conn, r.err
}

// httpClient makes requests inside the container, one connection each.
func (c *container) httpClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DialContext: c.dial, DisableKeepAlives: true},
	}
}

// installCatalog installs a message catalog where journalctl looks for
// local ones, /usr/local/lib/systemd/catalog/, and rebuilds journalctl's
// database (journalctl --update-catalog), as an administrator does. The
// host's /usr, which the container boots, is read-only: there a tmpfs
// of the container's own is mounted on /usr/local/lib first.
func (c *container) installCatalog(hostPath string) error {
	data, err := os.ReadFile(hostPath)
	if err != nil {
		return err
	}
	const dir = "/usr/local/lib/systemd/catalog"
	if _, err := c.exec("sh", "-c", "mkdir -p "+dir+" 2>/dev/null || "+
		"{ mount -t tmpfs -o mode=0755 tmpfs /usr/local/lib && mkdir -p "+dir+"; }"); err != nil {
		return err
	}
	if err := c.writeFile(dir+"/"+filepath.Base(hostPath), data); err != nil {
		return err
	}
	_, err = c.exec("journalctl", "--update-catalog")
	return err
}
