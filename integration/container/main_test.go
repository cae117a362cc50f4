//go:build container

// Package container tests cmd/newstyle-demo and package service under a
// real systemd: a container booted with systemd-nspawn from the host's own
// /usr, in which the demo runs from its own unit files
// (cmd/newstyle-demo/newstyle-demo.{service,socket}). What the tests
// check, they read as an operator does: systemctl show, journalctl -u
// -o json, HTTP requests to the service, systemctl service-log-level and
// service-log-target over the container's own system bus (the demo's bus
// policy and the user it names are installed as shipped).
//
//	go test -tags container -count=1 -timeout 15m ./integration/container/
//
// It needs root and systemd-nspawn (package systemd-container, pinned to
// the installed systemd: scripts/deps.sh). One container serves the whole
// package; it is powered off at the end, whatever happened. With the
// container tag the tests are required: when the container cannot be
// booted they fail, they never skip.
//
// The container boots the host's systemd, or another generation's:
// NEWSTYLE_SYSTEMD_TREE names a root tree to boot instead (the systemd
// 257 tree of scripts/systemd-tree.sh 257), and NEWSTYLE_SYSTEMD, when
// set, the major version the container's systemd must have. Either way
// the package's output starts with the version it runs on ("container
// tests: systemd 257 (257.13-1~deb13u1)"), and the tests whose outcome
// depends on it run as subtests named after it (systemd257).
//
//	NEWSTYLE_SYSTEMD=257 NEWSTYLE_SYSTEMD_TREE=$(scripts/systemd-tree.sh 257) \
//		go test -tags container -count=1 -timeout 15m ./integration/container/
package container

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// The units under test, as shipped.
var unitFiles = []string{
	"../../cmd/newstyle-demo/newstyle-demo.service",
	"../../cmd/newstyle-demo/newstyle-demo.socket",
}

// What the demo's D-Bus name needs, as shipped: the system bus's policy
// for it, and the static user that policy names (see the unit's
// BusName=), each with where it goes in the container.
var busFiles = []struct{ host, container string }{
	{"../../cmd/newstyle-demo/newstyle-demo.sysusers", "/etc/sysusers.d/newstyle-demo.conf"},
	{"../../cmd/newstyle-demo/" + busName + ".conf", "/etc/dbus-1/system.d/" + busName + ".conf"},
}

// catalogFile is the module's message catalog, which journalctl -x shows
// for the module's entries, installed as the demo's instructions say.
const catalogFile = "../../catalog/newstyle.catalog"

// busName is the demo's D-Bus name (BusName=, NEWSTYLE_BUS_NAME).
const busName = "io.github.newstyle_go.Demo1"

// ct is the container the tests share.
var ct *container

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) (code int) {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "container tests: "+format+"\n", args...)
		return 1
	}
	if os.Geteuid() != 0 {
		return fail("need root (systemd-nspawn, nsenter)")
	}
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		return fail("%v: install systemd-container pinned to systemd's version (scripts/deps.sh)", err)
	}
	dir, err := os.MkdirTemp("", "newstyle-container-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(dir)
	binDir := filepath.Join(dir, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		return fail("%v", err)
	}

	goCmd := os.Getenv("GO")
	if goCmd == "" {
		goCmd = "go"
	}
	// The demo, and the program of TestRateLimit.
	for _, pkg := range []string{"cmd/newstyle-demo", "integration/burstchild"} {
		build := exec.Command(goCmd, "build", "-o", filepath.Join(binDir, filepath.Base(pkg)),
			"github.com/newstyle-go/newstyle/"+pkg)
		if out, err := build.CombinedOutput(); err != nil {
			return fail("building %s: %v\n%s", pkg, err, out)
		}
	}

	tree := os.Getenv("NEWSTYLE_SYSTEMD_TREE")
	if tree != "" {
		if _, err := os.Stat(filepath.Join(tree, "usr/lib/systemd/systemd")); err != nil {
			return fail("NEWSTYLE_SYSTEMD_TREE=%s is no systemd root tree: %v", tree, err)
		}
	}
	start := time.Now()
	// Unique on this machine: other runs boot containers at the same time.
	name := fmt.Sprintf("newstyle-test-%s-%d", cmp.Or(os.Getenv("NEWSTYLE_SYSTEMD"), "host"), os.Getpid())
	c, err := boot(name, tree, binDir, filepath.Join(dir, "console.log"))
	if err != nil {
		return fail("booting the container: %v", err)
	}
	booted := time.Since(start).Round(time.Millisecond)
	if err := c.readVersion(); err != nil {
		c.shutdown()
		return fail("%v", err)
	}
	if want := os.Getenv("NEWSTYLE_SYSTEMD"); want != "" && want != strconv.Itoa(c.systemd) {
		c.shutdown()
		return fail("NEWSTYLE_SYSTEMD=%s, but the container runs %s", want, c.systemdVersion)
	}
	fmt.Fprintf(os.Stderr, "container tests: %s, booted in %v\n", c.systemdVersion, booted)
	defer func() {
		start := time.Now()
		if err := c.shutdown(); err != nil {
			fmt.Fprintf(os.Stderr, "container tests: shutdown: %v\n--- console:\n%s\n", err, c.consoleTail())
			code = 1
			return
		}
		fmt.Fprintf(os.Stderr, "container tests: powered off in %v\n", time.Since(start).Round(time.Millisecond))
	}()

	for _, f := range unitFiles {
		if err := c.installUnit(f); err != nil {
			return fail("installing %s: %v", f, err)
		}
	}
	// The user first, then the policy that names it: the bus daemon
	// resolves the name when it reads the policy, which it does again
	// only on reload.
	for _, f := range busFiles {
		data, err := os.ReadFile(f.host)
		if err == nil {
			err = c.writeFile(f.container, data)
		}
		if err != nil {
			return fail("installing %s: %v", f.host, err)
		}
	}
	for _, args := range [][]string{{"systemd-sysusers", busFiles[0].container}, {"systemctl", "reload", "dbus"}} {
		if _, err := c.exec(args...); err != nil {
			return fail("%v", err)
		}
	}
	if err := c.installCatalog(catalogFile); err != nil {
		return fail("installing %s: %v", catalogFile, err)
	}
	// Enabled, as installed for good: a unit another one wants stays
	// loaded when it stops, so systemctl show still tells how it ended
	// (ExecMainStatus, Result) rather than a fresh load's defaults.
	for _, args := range [][]string{{"daemon-reload"}, {"enable", unit}} {
		if _, err := c.exec(append([]string{"systemctl"}, args...)...); err != nil {
			return fail("%v", err)
		}
	}
	ct = c
	return m.Run()
}
