//go:build container

package container

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/newstyle-go/newstyle/internal/testutil"
)

const (
	// warmUp is the demo's default -warmup: how long it takes from its
	// start to READY=1, and for a reload.
	warmUp = 2 * time.Second
	// watchdog is the unit's WatchdogSec=.
	watchdog = 4 * time.Second
	// baseURL is the demo inside the container (its own loopback).
	baseURL = "http://127.0.0.1:8080"
	// maxExposure is the highest `systemd-analyze security` exposure the
	// unit may have (0 is best, 10 worst); see TestSecurityExposure.
	maxExposure = 1.1
)

// show returns properties of a unit (systemctl show -p).
func show(t *testing.T, unitName string, names ...string) map[string]string {
	t.Helper()
	args := []string{"systemctl", "show", unitName}
	for _, n := range names {
		args = append(args, "-p", n)
	}
	out, err := ct.exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	props := make(map[string]string, len(names))
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			props[k] = v
		}
	}
	return props
}

// resetFailed forgets a unit's failures and resets its start rate limit,
// which the tests' restarts would otherwise reach. A unit not loaded (an
// inactive one, garbage-collected) has nothing to reset: that is no error.
func resetFailed(unitName string) { _, _ = ct.exec("systemctl", "reset-failed", unitName) }

func systemctl(t *testing.T, args ...string) {
	t.Helper()
	if _, err := ct.exec(append([]string{"systemctl"}, args...)...); err != nil {
		t.Fatal(err)
	}
}

// running makes sure the demo runs, starting it by hand if it does not,
// and returns its MainPID.
func running(t *testing.T) string {
	t.Helper()
	p := show(t, unit, "ActiveState", "SubState", "MainPID")
	if p["ActiveState"] == "active" && p["SubState"] == "running" {
		return p["MainPID"]
	}
	resetFailed(unit)
	systemctl(t, "start", unit) // returns once READY=1 came
	p = show(t, unit, "ActiveState", "MainPID")
	if p["ActiveState"] != "active" {
		t.Fatalf("after systemctl start: ActiveState=%s", p["ActiveState"])
	}
	return p["MainPID"]
}

// waitProps polls the unit's properties until ok accepts them or timeout
// passes, and returns the last read.
func waitProps(t *testing.T, timeout time.Duration, ok func(map[string]string) bool, names ...string) map[string]string {
	t.Helper()
	var p map[string]string
	testutil.Poll(timeout, 50*time.Millisecond, func() bool {
		p = show(t, unit, names...)
		return ok(p)
	})
	return p
}

// get makes a request to the demo from inside the container.
func get(path string, timeout time.Duration) (status int, body string, err error) {
	resp, err := ct.httpClient(timeout).Get(baseURL + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func mustGet(t *testing.T, path string, want int) string {
	t.Helper()
	status, body, err := get(path, 10*time.Second)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if status != want {
		t.Fatalf("GET %s: status %d, want %d; body %q", path, status, want, body)
	}
	return body
}

// monotonicNow is CLOCK_MONOTONIC in µs, as systemd's *Monotonic
// properties give it: the container has no time namespace of its own.
func monotonicNow(t *testing.T) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

func atoi(t *testing.T, name, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}

// TestReadyAfterWarmUp: a Type=notify unit is "activating" until the demo
// sends READY=1 after its warm-up, "active" after; STATUS= shows in
// StatusText.
func TestReadyAfterWarmUp(t *testing.T) {
	systemctl(t, "stop", unit)
	resetFailed(unit)
	cursor := ct.mark(t)
	systemctl(t, "start", "--no-block", unit)

	names := []string{"ActiveState", "SubState", "StatusText", "MainPID"}
	var activating map[string]string
	p := waitProps(t, 20*time.Second, func(p map[string]string) bool {
		if p["ActiveState"] == "activating" && p["StatusText"] == "warming up" {
			activating = p
		}
		return p["ActiveState"] == "active" || p["ActiveState"] == "failed"
	}, names...)
	if activating == nil {
		t.Errorf("never saw ActiveState=activating with StatusText=%q before active", "warming up")
	} else if activating["SubState"] != "start" {
		t.Errorf("while warming up: SubState=%s, want start", activating["SubState"])
	}
	if p["ActiveState"] != "active" || p["SubState"] != "running" {
		t.Fatalf("after the warm-up: %v", p)
	}
	if want := "serving on [::]:8080"; p["StatusText"] != want {
		t.Errorf("StatusText=%q, want %q", p["StatusText"], want)
	}

	// systemd's own timestamps: active only once READY=1 came, after the
	// warm-up.
	ts := show(t, unit, "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic")
	started := atoi(t, "ExecMainStartTimestampMonotonic", ts["ExecMainStartTimestampMonotonic"])
	active := atoi(t, "ActiveEnterTimestampMonotonic", ts["ActiveEnterTimestampMonotonic"])
	if d := time.Duration(active-started) * time.Microsecond; d < warmUp {
		t.Errorf("active %v after the process started, before its %v warm-up ended", d, warmUp)
	}

	pid := p["MainPID"]
	entries := ct.waitJournal(t, cursor, 10*time.Second, func(es []entry) bool {
		return count(es, systemdSays("Started ")) > 0
	})
	listening := filter(entries, and(fromPID(pid), withMessage("listening")))
	if len(listening) != 1 {
		t.Fatalf("want one \"listening\" entry of pid %s:\n%s", pid, dump(entries))
	}
	if got := listening[0].Get("SOCKET_ACTIVATED"); got != "false" {
		t.Errorf("started by hand: SOCKET_ACTIVATED=%q, want false", got)
	}
	if got := listening[0].Get("ADDR"); got != "[::]:8080" {
		t.Errorf("ADDR=%q, want [::]:8080 (Listener's fallback :8080)", got)
	}
	// The warm-up's entry comes before systemd's "Started".
	var order []string
	for _, e := range entries {
		switch {
		case fromPID(pid)(e) && e.Get("MESSAGE") == "warming up":
			order = append(order, "warming up")
		case systemdSays("Started ")(e):
			order = append(order, "Started")
		}
	}
	if strings.Join(order, ",") != "warming up,Started" {
		t.Errorf("entries in order %v, want warming up, then Started:\n%s", order, dump(entries))
	}
}

// TestRequestsAreJournalEntries: each request is one native entry
// (_TRANSPORT=journal) with its attributes as fields.
func TestRequestsAreJournalEntries(t *testing.T) {
	pid := running(t)
	cursor := ct.mark(t)
	paths := []string{"/", "/", "/", "/nothing-here"}
	for _, path := range paths {
		want := http.StatusOK
		if path != "/" {
			want = http.StatusNotFound
		}
		if body := mustGet(t, path, want); want == http.StatusOK && !strings.HasPrefix(body, "hello") {
			t.Errorf("GET /: %q, want a greeting", body)
		}
	}
	isRequest := and(fromPID(pid), withMessage("request"))
	entries := ct.waitJournal(t, cursor, 10*time.Second, func(es []entry) bool {
		return count(es, isRequest) >= len(paths)
	})
	requests := filter(entries, isRequest)
	if len(requests) != len(paths) {
		t.Fatalf("%d request entries, want %d:\n%s", len(requests), len(paths), dump(entries))
	}
	for i, e := range requests {
		want := map[string]string{
			"_TRANSPORT":        "journal",
			"PRIORITY":          "6",
			"SYSLOG_IDENTIFIER": "newstyle-demo",
			"_SYSTEMD_UNIT":     unit,
			"METHOD":            "GET",
			"PATH":              paths[i],
			"STATUS":            "200",
		}
		if paths[i] != "/" {
			want["STATUS"] = "404"
		}
		for k, v := range want {
			if got := e.Get(k); got != v {
				t.Errorf("request %d: %s=%q, want %q", i, k, got, v)
			}
		}
		if _, err := time.ParseDuration(e.Get("DURATION")); err != nil {
			t.Errorf("request %d: DURATION=%q: %v", i, e.Get("DURATION"), err)
		}
		if !strings.HasPrefix(e.Get("REMOTE"), "127.0.0.1:") {
			t.Errorf("request %d: REMOTE=%q, want 127.0.0.1:port", i, e.Get("REMOTE"))
		}
	}
}

// TestErrorHasTraceback: an error with a stack is one entry, the stack in
// its TRACEBACK field, not in MESSAGE.
func TestErrorHasTraceback(t *testing.T) {
	pid := running(t)
	cursor := ct.mark(t)
	mustGet(t, "/error", http.StatusInternalServerError)

	mine := fromPID(pid)
	entries := ct.waitJournal(t, cursor, 10*time.Second, func(es []entry) bool {
		return count(es, and(mine, withMessage("request"))) > 0
	})
	entries = filter(entries, mine)
	// Two records, two entries: the error and the request's own.
	if len(entries) != 2 {
		t.Fatalf("%d entries, want 2 (the error, the request):\n%s", len(entries), dump(entries))
	}
	withTrace := filter(entries, func(e entry) bool { return e.Has("TRACEBACK") })
	if len(withTrace) != 1 {
		t.Fatalf("%d entries with TRACEBACK, want 1:\n%s", len(withTrace), dump(entries))
	}
	e := withTrace[0]
	for k, v := range map[string]string{
		"MESSAGE":    "order lookup failed",
		"PRIORITY":   "3",
		"_TRANSPORT": "journal",
		"ORDER_ID":   "A-1042",
		"ERR":        "order A-1042: database unreachable",
	} {
		if got := e.Get(k); got != v {
			t.Errorf("%s=%q, want %q", k, got, v)
		}
	}
	trace := e.Get("TRACEBACK")
	if lines := strings.Count(trace, "\n"); lines < 6 {
		t.Errorf("TRACEBACK has %d lines, want the whole stack:\n%s", lines, trace)
	}
	for _, want := range []string{"main.lookUpOrder", "main.(*demo).fail", "cmd/newstyle-demo/main.go:"} {
		if !strings.Contains(trace, want) {
			t.Errorf("TRACEBACK lacks %q:\n%s", want, trace)
		}
	}
	req := filter(entries, withMessage("request"))
	if len(req) != 1 || req[0].Get("STATUS") != "500" || req[0].Get("PRIORITY") != "4" {
		t.Errorf("want the request's entry with STATUS=500 PRIORITY=4:\n%s", dump(entries))
	}
}

// TestReload: systemctl reload (ExecReload: SIGHUP) re-reads the greeting
// file between RELOADING=1 and READY=1; the unit is "reloading" meanwhile.
func TestReload(t *testing.T) {
	pid := running(t)
	restarts := show(t, unit, "NRestarts")["NRestarts"]
	greeting := fmt.Sprintf("hello, reloaded at %d", time.Now().UnixNano())
	const greetingFile = "/etc/newstyle-demo/greeting" // ConfigurationDirectory=newstyle-demo
	if err := ct.writeFile(greetingFile, []byte(greeting+"\n")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = ct.exec("rm", "-f", greetingFile) })

	cursor := ct.mark(t)
	systemctl(t, "reload", unit)
	// The reload job ends when kill does: the demo may not have read the
	// file yet.
	var body string
	if !testutil.Poll(5*time.Second, 50*time.Millisecond, func() bool {
		body = strings.TrimSpace(mustGet(t, "/", http.StatusOK))
		return body == greeting
	}) {
		t.Errorf("after reload: GET / = %q, want %q", body, greeting)
	}
	mine := fromPID(pid)
	entries := ct.waitJournal(t, cursor, 10*time.Second, func(es []entry) bool {
		return count(es, and(mine, withMessage("greeting loaded"))) > 0 && count(es, systemdSays("Reloaded ")) > 0
	})
	if count(entries, and(mine, withMessage("service: reloading"))) != 1 {
		t.Errorf("want one \"service: reloading\" entry:\n%s", dump(entries))
	}
	loaded := filter(entries, and(mine, withMessage("greeting loaded")))
	if len(loaded) != 1 || loaded[0].Get("GREETING") != greeting || loaded[0].Get("SOURCE") != greetingFile {
		t.Errorf("want one \"greeting loaded\" entry with GREETING=%q SOURCE=%s:\n%s", greeting, greetingFile, dump(entries))
	}
	if count(entries, systemdSays("Reloading ")) != 1 || count(entries, systemdSays("Reloaded ")) != 1 {
		t.Errorf("want systemd's Reloading and Reloaded entries:\n%s", dump(entries))
	}

	// The signal alone (no reload job): RELOADING=1 makes the unit
	// "reloading" for the reload's warm-up, READY=1 active again. First,
	// the reload above ends.
	// A reload gives the program's own status back.
	const serving = "serving on [::]:8080"
	names := []string{"ActiveState", "StatusText", "MainPID", "NRestarts"}
	if p := waitProps(t, 2*warmUp+5*time.Second, func(p map[string]string) bool {
		return p["ActiveState"] == "active" && p["StatusText"] == serving
	}, names...); p["StatusText"] != serving {
		t.Fatalf("the reload did not end: %v", p)
	}
	systemctl(t, "kill", "--kill-who=main", "--signal=SIGHUP", unit)
	var sawReloading bool
	p := waitProps(t, 3*warmUp+5*time.Second, func(p map[string]string) bool {
		if p["ActiveState"] == "reloading" {
			sawReloading = true
			if p["StatusText"] != "reloading" {
				t.Errorf("while reloading: StatusText=%q", p["StatusText"])
			}
		}
		return sawReloading && p["ActiveState"] == "active"
	}, names...)
	if !sawReloading {
		t.Errorf("never saw ActiveState=reloading after SIGHUP")
	}
	if p["ActiveState"] != "active" || p["StatusText"] != serving {
		t.Errorf("after the reload: ActiveState=%s StatusText=%q, want active, %q", p["ActiveState"], p["StatusText"], serving)
	}
	if p["MainPID"] != pid || p["NRestarts"] != restarts {
		t.Errorf("reloading restarted the service: MainPID %s→%s, NRestarts %s→%s", pid, p["MainPID"], restarts, p["NRestarts"])
	}
}

// TestWatchdogLeavesHealthyServiceAlone: fed at half the interval while
// its health check passes, the service outlives several watchdog
// intervals.
func TestWatchdogLeavesHealthyServiceAlone(t *testing.T) {
	pid := running(t)
	names := []string{"MainPID", "NRestarts", "ActiveState", "WatchdogUSec", "WatchdogTimestampMonotonic",
		"ActiveEnterTimestampMonotonic", "InvocationID"}
	before := show(t, unit, names...)
	if before["WatchdogUSec"] != "4s" {
		t.Fatalf("WatchdogUSec=%s, want 4s", before["WatchdogUSec"])
	}
	// Three intervals since it became active (earlier tests count).
	activeSince := atoi(t, "ActiveEnterTimestampMonotonic", before["ActiveEnterTimestampMonotonic"])
	until := time.Duration(activeSince-monotonicNow(t))*time.Microsecond + 3*watchdog + time.Second
	if until > 0 {
		time.Sleep(until)
	}
	after := show(t, unit, names...)
	if after["MainPID"] != pid || after["NRestarts"] != before["NRestarts"] || after["ActiveState"] != "active" ||
		after["InvocationID"] != before["InvocationID"] {
		t.Errorf("a healthy service was touched:\nbefore %v\nafter  %v", before, after)
	}
	fed := atoi(t, "WatchdogTimestampMonotonic", after["WatchdogTimestampMonotonic"])
	if age := time.Duration(monotonicNow(t)-fed) * time.Microsecond; age > watchdog/2+time.Second {
		t.Errorf("the watchdog was last fed %v ago, want every %v", age, watchdog/2)
	}
	entries, err := ct.journal("")
	if err != nil {
		t.Fatal(err)
	}
	invocation := func(e entry) bool {
		return e.Get("_SYSTEMD_INVOCATION_ID") == before["InvocationID"] || e.Get("INVOCATION_ID") == before["InvocationID"]
	}
	if n := count(entries, and(invocation, systemdSays("Watchdog timeout"))); n != 0 {
		t.Errorf("%d watchdog timeouts for a healthy service", n)
	}
}

// restarted waits until the unit runs again with another MainPID and
// NRestarts grown by one, and answers.
func restarted(t *testing.T, oldPID string, restarts int64, timeout time.Duration) string {
	t.Helper()
	p := waitProps(t, timeout, func(p map[string]string) bool {
		return p["ActiveState"] == "active" && p["MainPID"] != oldPID && p["MainPID"] != "0"
	}, "ActiveState", "MainPID", "NRestarts")
	if p["ActiveState"] != "active" || p["MainPID"] == oldPID {
		t.Fatalf("not restarted within %v: %v", timeout, p)
	}
	if n := atoi(t, "NRestarts", p["NRestarts"]); n != restarts+1 {
		t.Errorf("NRestarts=%d, want %d", n, restarts+1)
	}
	mustGet(t, "/", http.StatusOK)
	return p["MainPID"]
}

// TestPanicRestarts: a panic in a handler (ExitOnPanic) is one entry at
// crit with the stack in TRACEBACK, the process exits 2, and
// Restart=on-failure brings it back.
func TestPanicRestarts(t *testing.T) {
	pid := running(t)
	restarts := atoi(t, "NRestarts", show(t, unit, "NRestarts")["NRestarts"])
	cursor := ct.mark(t)
	if status, body, err := get("/panic", 10*time.Second); err == nil {
		t.Errorf("GET /panic answered %d %q; want the connection dropped by the exit", status, body)
	}
	restarted(t, pid, restarts, 20*time.Second)

	entries := ct.waitJournal(t, cursor, 10*time.Second, func(es []entry) bool {
		return count(es, systemdSays("Main process exited")) > 0
	})
	if n := count(entries, systemdSays("status=2/")); n != 1 {
		t.Errorf("want systemd's entry of the exit with status 2:\n%s", dump(entries))
	}
	dead := filter(entries, fromPID(pid))
	crit := filter(dead, func(e entry) bool { return e.Get("PRIORITY") == "2" })
	if len(crit) != 1 {
		t.Fatalf("%d entries at crit from the panicking process, want 1:\n%s", len(crit), dump(dead))
	}
	e := crit[0]
	if msg := e.Get("MESSAGE"); !strings.Contains(msg, "assignment to entry in nil map") || strings.Contains(msg, "\n") {
		t.Errorf("MESSAGE=%q, want the panic's value on one line", msg)
	}
	if e.Get("_TRANSPORT") != "journal" {
		t.Errorf("_TRANSPORT=%s, want journal", e.Get("_TRANSPORT"))
	}
	trace := e.Get("TRACEBACK")
	// The module's one stack format: the function that panicked first,
	// then its file and line.
	if !strings.HasPrefix(trace, "main.(*demo).crash(...)\n\t") {
		t.Errorf("TRACEBACK does not start with the function that panicked:\n%s", trace)
	}
	for _, want := range []string{"main.(*demo).crash", "cmd/newstyle-demo/main.go:"} {
		if !strings.Contains(trace, want) {
			t.Errorf("TRACEBACK lacks %q:\n%s", want, trace)
		}
	}
	// It starts where the panic happened, not in the recovery.
	for _, unwanted := range []string{"runtime/debug.Stack", "ExitOnPanic"} {
		if strings.Contains(trace, unwanted) {
			t.Errorf("TRACEBACK holds the recovery's frames (%s):\n%s", unwanted, trace)
		}
	}
	// Nothing on stderr: no runtime dump, line by line, beside the entry.
	if n := count(dead, func(e entry) bool { return e.Get("_TRANSPORT") == "stdout" }); n != 0 {
		t.Errorf("%d stdout/stderr entries from the panicking process:\n%s", n, dump(dead))
	}
	// One crit entry for the death, the unit's whole: the crash watcher
	// writes none for a panic service recovered.
	if n := count(entries, atCrit); n != 1 {
		t.Errorf("%d entries at crit or worse under the unit, want 1:\n%s", n, dump(filter(entries, atCrit)))
	}
}

// TestWatchdogRestartsHungService: once /hang blocks the health check,
// the watchdog is no longer fed and systemd kills and restarts the
// service.
func TestWatchdogRestartsHungService(t *testing.T) {
	pid := running(t)
	restarts := atoi(t, "NRestarts", show(t, unit, "NRestarts")["NRestarts"])
	cursor := ct.mark(t)
	mustGet(t, "/hang", http.StatusAccepted)
	// Fed every 2 s, a ping missed for 4 s, RestartSec=1, the warm-up.
	restarted(t, pid, restarts, watchdog+time.Second+warmUp+15*time.Second)

	entries := ct.waitJournal(t, cursor, 10*time.Second, func(es []entry) bool {
		return count(es, systemdSays("Watchdog timeout")) > 0
	})
	if n := count(entries, systemdSays("Watchdog timeout")); n != 1 {
		t.Errorf("%d \"Watchdog timeout\" entries from systemd, want 1:\n%s", n, dump(filter(entries, fromPID("1"))))
	}
	if n := count(entries, systemdSays("Failed with result 'watchdog'")); n != 1 {
		t.Errorf("want systemd's \"Failed with result 'watchdog'\":\n%s", dump(filter(entries, fromPID("1"))))
	}
	failed := filter(entries, and(fromPID(pid), withMessage("service: health check failed; not feeding the watchdog")))
	if len(failed) != 1 || failed[0].Get("PRIORITY") != "3" {
		t.Errorf("want one entry at err of the failed health check:\n%s", dump(filter(entries, fromPID(pid))))
	}
	// systemd's SIGABRT: every goroutine's stack in one CRIT entry, the
	// hung health check among them; no runtime dump on stderr.
	hung := filter(entries, fromPID(pid))
	aborted := filter(hung, withMessage("service: aborted; the stacks of all goroutines follow"))
	if len(aborted) != 1 || aborted[0].Get("PRIORITY") != "2" ||
		!strings.Contains(aborted[0].Get("TRACEBACK"), "main.(*demo).health(") {
		t.Errorf("want one crit entry with all stacks, the health check's among them:\n%s", dump(hung))
	}
	if n := count(hung, func(e entry) bool { return e.Get("_TRANSPORT") == "stdout" }); n != 0 {
		t.Errorf("%d stdout/stderr entries from the hung process:\n%s", n, dump(hung))
	}
	// One crit entry for the death, the unit's whole: systemd sends the
	// watchdog's SIGABRT to every process of the unit, and the crash
	// watcher, which ignores it, writes none for a process that service
	// ended itself.
	if n := count(entries, atCrit); n != 1 {
		t.Errorf("%d entries at crit or worse under the unit, want 1:\n%s", n, dump(filter(entries, atCrit)))
	}
}

// TestStdoutFallback: with the journal's socket out of reach
// (InaccessiblePaths=), the same records arrive through stdout, one entry
// each with its priority, none lost.
func TestStdoutFallback(t *testing.T) {
	dropIn(t, "50-no-journal-socket.conf", "[Service]\nInaccessiblePaths=/run/systemd/journal/socket\n")
	systemctl(t, "start", unit)
	pid := show(t, unit, "MainPID")["MainPID"]

	cursor := ct.mark(t)
	const hellos, misses = 40, 5
	for range hellos {
		mustGet(t, "/", http.StatusOK)
	}
	for range misses {
		mustGet(t, "/nothing-here", http.StatusNotFound)
	}
	mustGet(t, "/error", http.StatusInternalServerError)
	// Entries: one per request, and the error's own.
	want := hellos + misses + 1 + 1
	mine := fromPID(pid)
	ct.waitJournal(t, cursor, 15*time.Second, func(es []entry) bool {
		return count(es, mine) >= want
	})
	// Anything late would be an extra entry: look again once.
	time.Sleep(500 * time.Millisecond)
	entries, err := ct.journal(cursor)
	if err != nil {
		t.Fatal(err)
	}
	entries = filter(entries, mine)
	if len(entries) != want {
		t.Fatalf("%d entries, want %d (one per record):\n%s", len(entries), want, dump(entries))
	}
	priorities := map[string]int{}
	for _, e := range entries {
		if e.Get("_TRANSPORT") != "stdout" {
			t.Errorf("_TRANSPORT=%s, want stdout: %s", e.Get("_TRANSPORT"), e)
		}
		msg := e.Get("MESSAGE")
		switch {
		case strings.HasPrefix(msg, "request method=GET path=/ status=200 "):
			priorities["hello 6"] += testutil.Btoi(e.Get("PRIORITY") == "6")
		case strings.HasPrefix(msg, "request method=GET path=/nothing-here status=404 "):
			priorities["miss 6"] += testutil.Btoi(e.Get("PRIORITY") == "6")
		case strings.HasPrefix(msg, "request method=GET path=/error status=500 "):
			priorities["error request 4"] += testutil.Btoi(e.Get("PRIORITY") == "4")
		case strings.HasPrefix(msg, "order lookup failed "):
			priorities["error 3"] += testutil.Btoi(e.Get("PRIORITY") == "3")
			// The stack, escaped on the one line.
			if !strings.Contains(msg, `traceback="main.lookUpOrder(...)\n\t`) {
				t.Errorf("the error's line lacks its escaped traceback: %q", msg)
			}
		default:
			t.Errorf("unexpected entry: %s", e)
		}
	}
	wantPri := map[string]int{"hello 6": hellos, "miss 6": misses, "error request 4": 1, "error 3": 1}
	for k, n := range wantPri {
		if priorities[k] != n {
			t.Errorf("%s: %d entries with that priority, want %d", k, priorities[k], n)
		}
	}
}

// TestSocketActivation: with newstyle-demo.socket listening and the
// service stopped, the first connection starts the service, which takes
// the socket named "http" and answers that very connection.
func TestSocketActivation(t *testing.T) {
	systemctl(t, "stop", unit)
	resetFailed(unit)
	t.Cleanup(func() { _, _ = ct.exec("systemctl", "stop", "newstyle-demo.socket", unit) })
	systemctl(t, "start", "newstyle-demo.socket")
	if p := show(t, unit, "ActiveState"); p["ActiveState"] != "inactive" {
		t.Fatalf("before any connection: the service is %s", p["ActiveState"])
	}
	if p := show(t, "newstyle-demo.socket", "ActiveState", "SubState"); p["SubState"] != "listening" {
		t.Fatalf("the socket: %v", p)
	}
	cursor := ct.mark(t)
	start := time.Now()
	// Queued in the socket during the service's start and warm-up.
	body := mustGet(t, "/", http.StatusOK)
	if !strings.HasPrefix(body, "hello") {
		t.Errorf("GET / = %q", body)
	}
	if d := time.Since(start); d < warmUp {
		t.Errorf("answered in %v, before the service's warm-up could end", d)
	}
	p := show(t, unit, "ActiveState", "MainPID", "StatusText")
	if p["ActiveState"] != "active" {
		t.Fatalf("after the connection: %v", p)
	}
	mine := fromPID(p["MainPID"])
	entries := ct.waitJournal(t, cursor, 10*time.Second, func(es []entry) bool {
		return count(es, and(mine, withMessage("request"))) > 0
	})
	listening := filter(entries, and(mine, withMessage("listening")))
	if len(listening) != 1 || listening[0].Get("SOCKET_ACTIVATED") != "true" {
		t.Errorf("want one \"listening\" entry with SOCKET_ACTIVATED=true:\n%s", dump(entries))
	}
	if count(entries, and(mine, withMessage("request"))) != 1 {
		t.Errorf("want the request's entry:\n%s", dump(entries))
	}
	if count(entries, systemdSays("Started ")) != 1 {
		t.Errorf("want systemd's Started entry:\n%s", dump(entries))
	}
}

// TestStopIsClean: systemctl stop (SIGTERM) lets a request in flight
// finish (OnStop: http.Server.Shutdown), and the service ends within its
// shutdown timeout, with exit status 0 and Result=success.
func TestStopIsClean(t *testing.T) {
	pid := running(t)
	cursor := ct.mark(t)
	type response struct {
		status int
		body   string
		err    error
	}
	slow := make(chan response, 1)
	go func() {
		status, body, err := get("/slow", 20*time.Second)
		slow <- response{status, body, err}
	}()
	time.Sleep(500 * time.Millisecond) // the request under way

	start := time.Now()
	systemctl(t, "stop", unit)
	// /slow takes 3 s; service.Options.ShutdownTimeout is 10 s.
	if d := time.Since(start); d < 2*time.Second || d > 10*time.Second {
		t.Errorf("stop took %v, want the rest of /slow's 3 s", d)
	}
	if r := <-slow; r.err != nil || r.status != http.StatusOK || strings.TrimSpace(r.body) != "done, slowly" {
		t.Errorf("the request in flight: %d %q %v, want it answered", r.status, r.body, r.err)
	}
	p := show(t, unit, "ActiveState", "Result", "ExecMainStatus", "ExecMainCode", "ExecMainPID")
	want := map[string]string{
		"ActiveState":    "inactive",
		"Result":         "success",
		"ExecMainStatus": "0",
		"ExecMainCode":   "1", // CLD_EXITED: it exited, no signal killed it
		"ExecMainPID":    pid,
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s=%s, want %s", k, p[k], v)
		}
	}
	mine := fromPID(pid)
	entries := ct.waitJournal(t, cursor, 10*time.Second, func(es []entry) bool {
		return count(es, and(mine, withMessage("service: stopped"))) > 0
	})
	var order []string
	for _, e := range filter(entries, mine) {
		order = append(order, e.Get("MESSAGE")+" "+e.Get("PATH"))
		if e.Get("MESSAGE") == "service: stopping" && e.Get("SIGNAL") != "terminated" {
			t.Errorf("SIGNAL=%q, want terminated", e.Get("SIGNAL"))
		}
		if atoiOr(e.Get("PRIORITY"), 7) <= 3 {
			t.Errorf("an error during the stop: %s", e)
		}
	}
	if got, want := strings.Join(order, ", "), "service: stopping , request /slow, service: stopped "; got != want {
		t.Errorf("entries: %s\nwant:    %s", got, want)
	}
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

// exposureLine is systemd-analyze security's verdict.
var exposureLine = regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(unit) + `: (\d+\.\d+)`)

// acceptedExposures are the checks the unit fails on purpose, and why.
var acceptedExposures = map[string]string{
	"PrivateNetwork=":                          "it serves on the host's network (and listens itself when not socket-activated)",
	"RestrictAddressFamilies=~AF_(INET|INET6)": "it listens on TCP when not socket-activated",
	"RestrictAddressFamilies=~AF_UNIX":         "the journal's socket, sd_notify's and the system bus's are AF_UNIX",
	"IPAddressDeny=":                           "a public HTTP service; and BPF firewalling is not enforced in the test container",
	"RootDirectory=/RootImage=":                "it runs from the host's /usr",
	"DeviceAllow=":                             "ProtectClock= itself adds char-rtc:r",
}

// TestSecurityExposure: systemd-analyze security rates the unit at most
// maxExposure, and fails no check but those accepted above.
func TestSecurityExposure(t *testing.T) {
	out, err := ct.exec("systemd-analyze", "security", "--no-pager", unit)
	if err != nil {
		t.Fatal(err)
	}
	m := exposureLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	exposure, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exposure %.1f (at most %.1f)", exposure, maxExposure)
	if exposure > maxExposure {
		t.Errorf("exposure %.1f, want at most %.1f:\n%s", exposure, maxExposure, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "✗ "); ok {
			name := strings.Fields(rest)[0]
			if _, ok := acceptedExposures[name]; !ok {
				t.Errorf("fails a check not accepted: %s", strings.TrimSpace(line))
			}
		}
	}
}

// TestSandboxEnforced: the sandbox is in force on the running process,
// not only in the unit file (systemd-analyze reads the unit's settings).
func TestSandboxEnforced(t *testing.T) {
	pid := running(t)
	read := func(name string) string {
		out, err := ct.exec("cat", "/proc/"+pid+"/"+name)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	status := map[string]string{}
	for _, line := range strings.Split(read("status"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			status[k] = strings.TrimSpace(v)
		}
	}
	for k, want := range map[string]string{
		"NoNewPrivs": "1",                // NoNewPrivileges=
		"Seccomp":    "2",                // SystemCallFilter= and friends
		"CapBnd":     "0000000000000000", // CapabilityBoundingSet=
		"CapEff":     "0000000000000000",
	} {
		if status[k] != want {
			t.Errorf("%s: %q, want %q", k, status[k], want)
		}
	}
	if uid := strings.Fields(status["Uid"]); len(uid) == 0 || uid[0] == "0" {
		t.Errorf("Uid: %q, want a dynamic user's", status["Uid"])
	}
	// PrivateUsers=: a user namespace that maps only root and itself.
	if m := read("uid_map"); strings.Contains(m, "4294967295") || len(strings.Split(strings.TrimSpace(m), "\n")) > 2 {
		t.Errorf("uid_map:\n%s\nwant a private user namespace", m)
	}
	// ProtectSystem=strict: / read-only; ProtectProc=, ProcSubset=: /proc
	// shows only processes, its own.
	// The last mount on a point is the one in force.
	var root, proc []string
	for _, line := range strings.Split(read("mountinfo"), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		switch f[4] { // mount point; f[5]: mount options
		case "/":
			root = f
		case "/proc":
			proc = f
		}
	}
	if root == nil || !strings.HasPrefix(root[5], "ro") {
		t.Errorf("/ is not read-only: %q", root)
	}
	if p := strings.Join(proc, " "); !strings.Contains(p, "hidepid=invisible") || !strings.Contains(p, "subset=pid") {
		t.Errorf("/proc: %q, want hidepid=invisible and subset=pid", proc)
	}
}

// TestAsyncRecordsSurvivePanicAndWatchdog: with the asynchronous Writer,
// records still queued (a linger of an hour holds them) when the process
// panics or systemd's watchdog aborts it are in the journal: package
// service flushes on both ways out.
func TestAsyncRecordsSurvivePanicAndWatchdog(t *testing.T) {
	dropIn(t, "50-async.conf", "[Service]\nEnvironment=NEWSTYLE_DEMO_ASYNC=1h\n")
	systemctl(t, "start", unit)
	pid := running(t)

	// A panic: the record logged just before it was still queued.
	restarts := atoi(t, "NRestarts", show(t, unit, "NRestarts")["NRestarts"])
	cursor := ct.mark(t)
	if status, body, err := get("/panic", 10*time.Second); err == nil {
		t.Errorf("GET /panic answered %d %q; want the connection dropped by the exit", status, body)
	}
	pid2 := restarted(t, pid, restarts, 20*time.Second)
	entries := pidJournal(t, cursor, pid, func(es []entry) bool {
		return count(es, and(fromPID(pid), withMessage("updating the order counts"))) > 0
	})
	if n := count(entries, and(fromPID(pid), withMessage("updating the order counts"))); n != 1 {
		t.Errorf("%d entries of the record queued before the panic, want 1:\n%s", n, dump(filter(entries, fromPID(pid))))
	}
	if n := count(entries, and(fromPID(pid), func(e entry) bool { return e.Get("PRIORITY") == "2" })); n != 1 {
		t.Errorf("want the panic's crit entry:\n%s", dump(filter(entries, fromPID(pid))))
	}

	// The watchdog: the warning /hang logs is queued when SIGABRT comes.
	restarts = atoi(t, "NRestarts", show(t, unit, "NRestarts")["NRestarts"])
	cursor = ct.mark(t)
	mustGet(t, "/hang", http.StatusAccepted)
	restarted(t, pid2, restarts, watchdog+time.Second+warmUp+15*time.Second)
	const hangMsg = "the state lock is taken for good: the health check will hang"
	entries = pidJournal(t, cursor, pid2, func(es []entry) bool {
		return count(es, and(fromPID(pid2), withMessage(hangMsg))) > 0
	})
	if n := count(entries, and(fromPID(pid2), withMessage(hangMsg))); n != 1 {
		t.Errorf("%d entries of the record queued before the watchdog's SIGABRT, want 1:\n%s", n, dump(filter(entries, fromPID(pid2))))
	}
	if n := count(entries, and(fromPID(pid2), withMessage("service: aborted; the stacks of all goroutines follow"))); n != 1 {
		t.Errorf("want the abort's entry:\n%s", dump(filter(entries, fromPID(pid2))))
	}
}

// pidJournal reads the entries of process pid after cursor until done
// accepts them, for up to 10 s. By _PID, not -u: a process that flushes
// and exits at once may be gone before journald has read which unit it
// belongs to (journald reads a sender's cgroup), and its entries then
// lack _SYSTEMD_UNIT.
func pidJournal(t *testing.T, cursor, pid string, done func([]entry) bool) []entry {
	t.Helper()
	return ct.waitJournalMatching(t, cursor, 10*time.Second, done, "_PID="+pid)
}
