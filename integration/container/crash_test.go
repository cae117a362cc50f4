//go:build container

package container

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle/crash"
	"github.com/newstyle-go/newstyle/internal/testutil"
)

// The demo's own crashes, those no recover sees, as package crash's
// watcher reports them: /crash?kind= crashes it on purpose.

// atCrit accepts the entries at PRIORITY 2 or more severe.
func atCrit(e entry) bool { return atoiOr(e.Get("PRIORITY"), 7) <= 2 }

// isCrash accepts the watcher's entries.
func isCrash(e entry) bool { return e.Get("MESSAGE_ID") == crash.MessageID }

// critJournal reads the unit's entries at crit or worse after cursor,
// once journald has written all it read (journalctl --sync), until done
// accepts them or 15 s pass. It reads from the cursor (--cursor) and
// leaves the cursor's own entry out: journalctl 252's --after-cursor,
// with matches, skips the first entry that matches as well.
func critJournal(t *testing.T, cursor string, done func([]entry) bool) []entry {
	t.Helper()
	if _, err := ct.exec("journalctl", "--sync"); err != nil {
		t.Fatal(err)
	}
	var entries []entry
	testutil.Poll(15*time.Second, 100*time.Millisecond, func() bool {
		out, err := ct.exec("journalctl", "-u", unit, "-p", "crit", "--cursor="+cursor, "-o", "json", "--all", "--no-pager", "--quiet")
		if err != nil {
			t.Fatal(err)
		}
		all, err := testutil.DecodeJournal(strings.NewReader(out), nil)
		if err != nil {
			t.Fatal(err)
		}
		entries = filter(all, func(e entry) bool { return e.Get("__CURSOR") != cursor })
		return done(entries)
	})
	return entries
}

// crashDemo makes the running demo crash by /crash?kind=kind (a query
// of its own may follow) and waits for systemd to restart it. It
// returns the crashed MainPID and the cursor before the crash. systemd
// restarts a unit once every process of it is gone, the watcher
// included, which ends only once journald has read its entry: entries of
// the crash are in the journal when it returns.
func crashDemo(t *testing.T, kind string) (pid, cursor string) {
	t.Helper()
	pid = running(t)
	restarts := atoi(t, "NRestarts", show(t, unit, "NRestarts")["NRestarts"])
	cursor = ct.mark(t)
	if status, body, err := get("/crash?kind="+kind, 10*time.Second); err == nil && status != http.StatusAccepted {
		t.Fatalf("GET /crash?kind=%s: %d %q", kind, status, body)
	}
	restarted(t, pid, restarts, 90*time.Second) // NRestarts rises by one
	return pid, cursor
}

// TestCrashIsOneEntry: each crash that no recover sees is one entry at
// crit under the unit, named by the runtime's first lines, with the
// crashing function in its TRACEBACK, the crashed process's PID, and
// Restart=on-failure brings the service back.
func TestCrashIsOneEntry(t *testing.T) {
	for _, tc := range []struct {
		kind, message, function, crashKind string
	}{
		{"goroutine", "panic: crash on purpose: a panic in a goroutine", "main.panicInGoroutine()", "panic"},
		{"map", "fatal error: concurrent map writes", "main.writeMapConcurrently.func1()", "fatal error"},
		{"overflow", "fatal error: stack overflow", "main.recurse(", "fatal error"},
		{"nil", "panic: runtime error: invalid memory address or nil pointer dereference [signal SIGSEGV: segmentation violation",
			"main.dereferenceNil(", "panic"},
		{"all&n=10000", "panic: crash on purpose: a panic among 10000 goroutines", "main.panicAmongMany(", "panic"},
	} {
		t.Run(strings.Split(tc.kind, "&")[0], func(t *testing.T) {
			pid, cursor := crashDemo(t, tc.kind)
			entries := critJournal(t, cursor, func(es []entry) bool { return count(es, isCrash) > 0 })
			if len(entries) != 1 || !isCrash(entries[0]) {
				t.Fatalf("%d entries at crit or worse under the unit, want the crash's alone:\n%s", len(entries), dump(entries))
			}
			e := entries[0]
			checkCrashEntry(t, e, pid, tc.message, tc.function, tc.crashKind)
			trace := e.Get("TRACEBACK")
			t.Logf("%s: MESSAGE %q, TRACEBACK %d bytes", tc.kind, e.Get("MESSAGE"), len(trace))
			if strings.HasPrefix(tc.kind, "all") {
				// GOTRACEBACK=all: every goroutine, whole, through a memfd.
				if n := strings.Count(trace, "\ngoroutine "); n < 10000 {
					t.Errorf("TRACEBACK lists %d goroutines, want the 10000 and more", n)
				}
				if len(trace) < 1<<20 {
					t.Errorf("TRACEBACK of %d bytes, want megabytes", len(trace))
				}
			}
			if tc.crashKind == "fatal error" && !strings.Contains(trace, tc.message+"\n") {
				t.Errorf("TRACEBACK lacks the line that names it, which the runtime writes to stderr alone:\n%.2000s", trace)
			}
			if tc.kind == "goroutine" {
				// journalctl -x explains it, from the module's catalog.
				out, err := ct.exec("journalctl", "-u", unit, "-x", "--no-pager", "MESSAGE_ID="+crash.MessageID, "SYSLOG_PID="+pid)
				if err != nil {
					t.Fatal(err)
				}
				if want := "Subject: newstyle-demo (process " + pid + ") crashed"; !strings.Contains(out, want) {
					t.Errorf("journalctl -x lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// checkCrashEntry checks the watcher's entry of the crash of pid.
func checkCrashEntry(t *testing.T, e entry, pid, message, function, kind string) {
	t.Helper()
	for k, want := range map[string]string{
		"PRIORITY":          "2",
		"MESSAGE_ID":        crash.MessageID,
		"SYSLOG_IDENTIFIER": "newstyle-demo",
		"SYSLOG_PID":        pid,
		crash.FieldPID:      pid,
		crash.FieldKind:     kind,
		"_SYSTEMD_UNIT":     unit,
		"_TRANSPORT":        "journal",
		"_COMM":             "newstyle-demo",
	} {
		if got := e.Get(k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if e.Get("_PID") == pid {
		t.Errorf("_PID=%s: the crashed process's, want the watcher's", pid)
	}
	if msg := e.Get("MESSAGE"); !strings.HasPrefix(msg, message) || strings.Contains(msg, "\n") {
		t.Errorf("MESSAGE=%q, want one line starting %q", msg, message)
	}
	if e.Has(crash.FieldCut) {
		t.Errorf("%s=%s: cut, want the whole output", crash.FieldCut, e.Get(crash.FieldCut))
	}
	if trace := e.Get("TRACEBACK"); !strings.Contains(trace, "\n"+function) {
		t.Errorf("TRACEBACK lacks the crashing function %s:\n%.3000s", function, trace)
	}
}

// TestCrashWithJournaldStopped: journald is stopped when the program
// crashes (its sockets stay, as when it is restarted); the watcher's
// entry starts it again, and waits until it has read the entry, which
// is then under the unit.
func TestCrashWithJournaldStopped(t *testing.T) {
	running(t)
	t.Cleanup(func() { _, _ = ct.exec("systemctl", "start", "systemd-journald.service") })
	systemctl(t, "stop", "systemd-journald.service")
	if p := show(t, "systemd-journald.service", "ActiveState")["ActiveState"]; p != "inactive" {
		t.Fatalf("journald: ActiveState=%s, want inactive", p)
	}
	pid, cursor := crashDemo(t, "goroutine")
	systemctl(t, "start", "systemd-journald.service")
	entries := critJournal(t, cursor, func(es []entry) bool { return count(es, isCrash) > 0 })
	if len(entries) != 1 || !isCrash(entries[0]) {
		t.Fatalf("%d entries at crit or worse under the unit, want the crash's alone:\n%s", len(entries), dump(entries))
	}
	checkCrashEntry(t, entries[0], pid, "panic: crash on purpose: a panic in a goroutine", "main.panicInGoroutine()", "panic")
}

// TestCrashToStdout: without the journal's socket, the crash is one line
// on stdout at <2>: one entry at crit under the unit all the same.
func TestCrashToStdout(t *testing.T) {
	dropIn(t, "50-no-journal-socket.conf", "[Service]\nInaccessiblePaths=/run/systemd/journal/socket\n")
	pid, cursor := crashDemo(t, "goroutine")
	entries := critJournal(t, cursor, func(es []entry) bool { return len(es) > 0 })
	if len(entries) != 1 {
		t.Fatalf("%d entries at crit or worse under the unit, want one:\n%s", len(entries), dump(entries))
	}
	e := entries[0]
	msg := e.Get("MESSAGE")
	for _, want := range []string{
		"panic: crash on purpose: a panic in a goroutine MESSAGE_ID=" + crash.MessageID + " ",
		crash.FieldPID + "=" + pid + " ",
		`traceback="panic: crash on purpose: a panic in a goroutine\n\ngoroutine `,
		`\nmain.panicInGoroutine()\n\t`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the line lacks %q:\n%s", want, msg)
		}
	}
	// journald takes a stream's lines with their writer's credentials:
	// the watcher's.
	if e.Get("_TRANSPORT") != "stdout" || e.Get("_PID") == pid || e.Get("_COMM") != "newstyle-demo" {
		t.Errorf("_TRANSPORT=%s _PID=%s _COMM=%s, want stdout and the watcher's", e.Get("_TRANSPORT"), e.Get("_PID"), e.Get("_COMM"))
	}
}

// TestNoCrashNoEntry: a process that exits (os.Exit(3)), is killed
// (SIGKILL), or is stopped (systemctl stop) writes no crash output, and
// the watcher no entry; a stopped one's watcher ends within a second of
// it, the unit's stop waiting for no more.
func TestNoCrashNoEntry(t *testing.T) {
	for _, how := range []string{"exit", "SIGKILL", "stop"} {
		t.Run(how, func(t *testing.T) {
			var cursor string
			switch how {
			case "exit":
				_, cursor = crashDemo(t, "exit")
			case "SIGKILL":
				pid := running(t)
				restarts := atoi(t, "NRestarts", show(t, unit, "NRestarts")["NRestarts"])
				cursor = ct.mark(t)
				systemctl(t, "kill", "--kill-who=main", "--signal=SIGKILL", unit)
				restarted(t, pid, restarts, 30*time.Second)
			case "stop":
				running(t)
				cursor = ct.mark(t)
				systemctl(t, "stop", unit)
				p := show(t, unit, "ExecMainExitTimestampMonotonic", "InactiveEnterTimestampMonotonic", "Result")
				exited := atoi(t, "ExecMainExitTimestampMonotonic", p["ExecMainExitTimestampMonotonic"])
				inactive := atoi(t, "InactiveEnterTimestampMonotonic", p["InactiveEnterTimestampMonotonic"])
				d := time.Duration(inactive-exited) * time.Microsecond
				t.Logf("the unit was inactive %v after its main process exited (the watcher gone)", d)
				if d > time.Second {
					t.Errorf("inactive %v after the main process exited: the watcher outlived it by more than a second", d)
				}
				if p["Result"] != "success" {
					t.Errorf("Result=%s, want success", p["Result"])
				}
			}
			entries := critJournal(t, cursor, func([]entry) bool { return true })
			if len(entries) != 0 {
				t.Errorf("entries at crit or worse, want none:\n%s", dump(entries))
			}
		})
	}
}

// TestCrashWatcherUnderSystemd: the watcher is in the unit, not its main
// process; it has none of the variables systemd gives the main process
// and none of the sockets it passed (socket activation); its RSS stays
// under 5 MiB; and the program starts at most 20 ms later for it.
func TestCrashWatcherUnderSystemd(t *testing.T) {
	systemctl(t, "stop", unit)
	resetFailed(unit)
	t.Cleanup(func() { _, _ = ct.exec("systemctl", "stop", "newstyle-demo.socket", unit) })
	systemctl(t, "start", "newstyle-demo.socket")
	mustGet(t, "/", http.StatusOK) // starts the service, which takes the socket
	p := show(t, unit, "MainPID", "ControlGroup", "NotifyAccess")
	pid := p["MainPID"]
	w := watcherOf(t, pid)
	if p["NotifyAccess"] != "main" {
		t.Errorf("NotifyAccess=%s, want main (Type=notify's default)", p["NotifyAccess"])
	}
	cgroup, err := ct.exec("cat", "/proc/"+w+"/cgroup")
	if err != nil || !strings.Contains(cgroup, p["ControlGroup"]) {
		t.Errorf("the watcher's cgroup %q (%v), want the unit's %s", cgroup, err, p["ControlGroup"])
	}
	environ, err := ct.exec("cat", "/proc/"+w+"/environ")
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range strings.Split(environ, "\x00") {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID":
			t.Errorf("the watcher's environment has %s", kv)
		}
	}
	// 1 and 2 are the program's stdout and stderr: journald's stream.
	fds, err := ct.exec("sh", "-c", "cd /proc/"+w+"/fd && for f in *; do echo $f $(readlink $f); done")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(fds), "\n") {
		if fd, target, _ := strings.Cut(line, " "); fd != "1" && fd != "2" && strings.HasPrefix(target, "socket:") {
			t.Errorf("the watcher holds a socket, fd %s: %s", fd, target)
		}
	}
	status := procStatus(t, w)
	rss := atoi(t, "VmRSS", strings.TrimSuffix(status["VmRSS"], " kB"))
	t.Logf("the watcher: VmRSS %d KiB (RssAnon %s, RssFile %s), threads %s", rss, status["RssAnon"], status["RssFile"], status["Threads"])
	if rss > 5*1024 {
		t.Errorf("the watcher's VmRSS is %d KiB, want at most 5 MiB", rss)
	}
	// Still the one main process, notifying, after the watcher started.
	time.Sleep(watchdog)
	if q := show(t, unit, "MainPID", "ActiveState"); q["MainPID"] != pid || q["ActiveState"] != "active" {
		t.Errorf("after a watchdog interval: %v, want MainPID %s active", q, pid)
	}
}

// TestCrashCaptureStartCost: the time from the program's start to READY=1
// (systemd's own timestamps), with crash capture and without, the
// demo's warm-up off: the median costs at most 20 ms more.
func TestCrashCaptureStartCost(t *testing.T) {
	dropIn(t, "50-fast-start.conf", "[Service]\nExecStart=\nExecStart=/opt/test/newstyle-demo -warmup 0\n"+
		"EnvironmentFile=-/run/newstyle-crash-mode\n")
	const rounds = 9
	var on, off []time.Duration
	for i := range 2 * rounds {
		mode := "NEWSTYLE_CRASH_CAPTURE=on\n"
		if i%2 == 1 {
			mode = "NEWSTYLE_CRASH_CAPTURE=off\n"
		}
		if err := ct.writeFile("/run/newstyle-crash-mode", []byte(mode)); err != nil {
			t.Fatal(err)
		}
		resetFailed(unit) // the start rate limit: 5 in 10 s
		systemctl(t, "start", unit)
		p := show(t, unit, "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic", "MainPID")
		d := time.Duration(atoi(t, "ActiveEnterTimestampMonotonic", p["ActiveEnterTimestampMonotonic"])-
			atoi(t, "ExecMainStartTimestampMonotonic", p["ExecMainStartTimestampMonotonic"])) * time.Microsecond
		hasWatcher := watcherPID(p["MainPID"]) != ""
		systemctl(t, "stop", unit)
		if i%2 == 0 {
			on = append(on, d)
			if !hasWatcher {
				t.Fatal("capture on, and no watcher")
			}
		} else {
			off = append(off, d)
			if hasWatcher {
				t.Fatal("capture off, and a watcher")
			}
		}
	}
	mOn, mOff := median(on), median(off)
	t.Logf("start to READY=1: median %v with crash capture, %v without (%v more); with: %v; without: %v",
		mOn, mOff, mOn-mOff, on, off)
	if mOn-mOff > 20*time.Millisecond {
		t.Errorf("crash capture makes the start %v slower, want at most 20 ms", mOn-mOff)
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// watcherPID returns the PID of pid's crash watcher in the container, ""
// for none.
func watcherPID(pid string) string {
	// A child is listed under the thread that started it: any of them.
	children, err := ct.exec("sh", "-c", fmt.Sprintf("cat /proc/%s/task/*/children", pid))
	if err != nil {
		return ""
	}
	for _, c := range strings.Fields(children) {
		cmdline, err := ct.exec("cat", "/proc/"+c+"/cmdline")
		if err == nil && strings.Contains(cmdline, "\x00--newstyle-crash-watcher") {
			return c
		}
	}
	return ""
}

// watcherOf is watcherPID once the watcher is one (its init done: it
// goes by the program's name), within 10 s.
func watcherOf(t *testing.T, pid string) string {
	t.Helper()
	var w string
	if !testutil.Poll(10*time.Second, 20*time.Millisecond, func() bool {
		if w = watcherPID(pid); w == "" {
			return false
		}
		comm, err := ct.exec("cat", "/proc/"+w+"/comm")
		return err == nil && strings.TrimSpace(comm) == "newstyle-demo"
	}) {
		t.Fatalf("no crash watcher of %s within 10 s", pid)
	}
	return w
}

// procStatus reads /proc/PID/status in the container.
func procStatus(t *testing.T, pid string) map[string]string {
	t.Helper()
	out, err := ct.exec("cat", "/proc/"+pid+"/status")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// TestCrashStorm: crashes in quick succession, each restarted by
// Restart=on-failure after RestartSec=, are one crit entry each, of the
// PID that crashed, and leave no watcher behind: once the storm is over,
// the unit's cgroup holds the running program and its one watcher.
func TestCrashStorm(t *testing.T) {
	const crashes = 4 // within systemd's default start limit, 5 in 10 s
	resetFailed(unit) // and its start-limit count
	running(t)
	cursor := ct.mark(t)
	crashed := map[string]bool{}
	for range crashes {
		pid, _ := crashDemo(t, "goroutine")
		crashed[pid] = true
	}
	entries := critJournal(t, cursor, func(es []entry) bool { return count(es, isCrash) >= crashes })
	perPID := map[string]int{}
	for _, e := range entries {
		if !isCrash(e) {
			t.Errorf("an entry at crit or worse that is not a crash's: %s", dump([]entry{e}))
			continue
		}
		perPID[e.Get(crash.FieldPID)]++
	}
	for pid := range crashed {
		if perPID[pid] != 1 {
			t.Errorf("process %s crashed once; %d crash entries name it", pid, perPID[pid])
		}
	}
	if len(entries) != crashes {
		t.Errorf("%d crash entries for %d crashes:\n%s", len(entries), crashes, dump(entries))
	}

	pid := running(t)
	want := map[string]bool{pid: true, watcherOf(t, pid): true}
	cg := show(t, unit, "ControlGroup")["ControlGroup"]
	// The processes of the unit's cgroup, as /proc tells (cgroup v2:
	// "0::/system.slice/UNIT").
	procs, err := ct.exec("sh", "-c", `for f in /proc/[0-9]*/cgroup; do
		grep -qxF "0::$1" "$f" 2>/dev/null && p=${f#/proc/} && echo "${p%/cgroup}"
	done; true`, "sh", cg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(procs) {
		if !want[p] {
			cmdline, _ := ct.exec("cat", "/proc/"+p+"/cmdline")
			t.Errorf("process %s (%q) left in the unit after the storm; want the program %s and its watcher alone", p, cmdline, pid)
		}
	}
	if n := len(strings.Fields(procs)); n != len(want) {
		t.Errorf("the unit holds %d processes (%s), want %d", n, procs, len(want))
	}
}
