//go:build container

package container

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// The demo's logging changed while it runs, as an operator changes it:
// systemctl service-log-level and service-log-target, which call
// org.freedesktop.LogControl1 on the unit's BusName= over the container's
// system bus. Each test leaves the demo stopped, so that the next one
// starts it at its unit's settings.

const logControlPath = "/org/freedesktop/LogControl1"

// freshDemo stops the demo when the test ends; it runs now.
func freshDemo(t *testing.T) string {
	t.Helper()
	t.Cleanup(func() { _, _ = ct.exec("systemctl", "stop", unit) })
	return running(t)
}

// logSetting runs systemctl service-log-level or service-log-target
// (verb) with args, and returns what it printed.
func logSetting(t *testing.T, verb string, args ...string) string {
	t.Helper()
	out, err := ct.exec(append([]string{"systemctl", verb, unit}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func wantSetting(t *testing.T, verb, want string) {
	t.Helper()
	if got := logSetting(t, verb); got != want {
		t.Errorf("systemctl %s %s = %q, want %q", verb, unit, got, want)
	}
}

// requestEntries makes one request to / and returns the entries of pid
// after cursor once its "request" record is there, or after a second
// when none is expected to come (target null).
func requestEntries(t *testing.T, pid, cursor string, expect bool) []entry {
	t.Helper()
	mustGet(t, "/", http.StatusOK)
	mine := fromPID(pid)
	if !expect {
		time.Sleep(time.Second)
		entries, err := ct.journal(cursor)
		if err != nil {
			t.Fatal(err)
		}
		return filter(entries, mine)
	}
	// Its native entry, or its line on stdout.
	isRequest := func(e entry) bool {
		return mine(e) && (e.Get("MESSAGE") == "request" && e.Get("PATH") == "/" ||
			strings.HasPrefix(e.Get("MESSAGE"), "request method=GET path=/ "))
	}
	return filter(ct.waitJournal(t, cursor, 10*time.Second, func(es []entry) bool { return count(es, isRequest) > 0 }), mine)
}

// TestServiceLogLevel: systemctl service-log-level debug makes the
// demo's debug records (one per request) appear in the journal, info
// makes them go again; names and numbers both work; the change is one
// notice entry; the process is the same throughout.
func TestServiceLogLevel(t *testing.T) {
	pid := freshDemo(t)
	wantSetting(t, "service-log-level", "info")
	isDebug := withMessage("request received")

	steps := []struct {
		set, get string
		debug    bool
	}{
		{"", "info", false},
		{"debug", "debug", true},
		{"info", "info", false},
		{"7", "debug", true}, // systemctl passes numbers through
		{"6", "info", false},
	}
	for _, st := range steps {
		cursor := ct.mark(t)
		if st.set != "" {
			if out := logSetting(t, "service-log-level", st.set); out != "" {
				t.Errorf("service-log-level %s printed %q", st.set, out)
			}
		}
		wantSetting(t, "service-log-level", st.get)
		entries := requestEntries(t, pid, cursor, true)
		debug := filter(entries, isDebug)
		if st.debug != (len(debug) == 1) || len(debug) > 1 {
			t.Errorf("after service-log-level %s: %d debug entries for the request, want debug=%v:\n%s", st.set, len(debug), st.debug, dump(entries))
		}
		for _, e := range debug {
			if e.Get("PRIORITY") != "7" || e.Get("_TRANSPORT") != "journal" || e.Get("PATH") != "/" {
				t.Errorf("debug entry: %s", e)
			}
		}
		if st.set == "" {
			continue
		}
		notices := filter(entries, withMessage("service: log level set to "+st.get))
		if len(notices) != 1 || notices[0].Get("PRIORITY") != "5" || notices[0].Get("UID") != "0" || notices[0].Get("LOG_LEVEL") != st.get {
			t.Errorf("want one notice of the change to %s, by uid 0:\n%s", st.get, dump(entries))
		}
	}
	if p := show(t, unit, "MainPID", "ActiveState"); p["MainPID"] != pid || p["ActiveState"] != "active" {
		t.Errorf("the demo was restarted: %v, was pid %s", p, pid)
	}
}

// TestServiceLogTarget: console sends the records to stdout (the
// journal's stdout stream, each line with its priority), journal back to
// the native protocol, null nowhere, auto back to the journal (stderr is
// the journal); a target newstyle cannot honour is refused with the
// D-Bus error systemd's services give, and the demo logs on as before.
func TestServiceLogTarget(t *testing.T) {
	pid := freshDemo(t)
	wantSetting(t, "service-log-target", "auto")

	// console: stdout, each line with its priority.
	cursor := ct.mark(t)
	logSetting(t, "service-log-target", "console")
	wantSetting(t, "service-log-target", "console")
	mustGet(t, "/error", http.StatusInternalServerError)
	entries := requestEntries(t, pid, cursor, true)
	for _, want := range []struct{ prefix, priority string }{
		{"service: log target set to console ", "5"},
		{"order lookup failed ", "3"},
		{"request method=GET path=/error status=500 ", "4"},
		{"request method=GET path=/ status=200 ", "6"},
	} {
		got := filter(entries, func(e entry) bool { return strings.HasPrefix(e.Get("MESSAGE"), want.prefix) })
		if len(got) != 1 || got[0].Get("_TRANSPORT") != "stdout" || got[0].Get("PRIORITY") != want.priority {
			t.Errorf("want one stdout entry %q at PRIORITY=%s:\n%s", want.prefix, want.priority, dump(entries))
		}
	}
	if n := count(entries, func(e entry) bool { return e.Get("_TRANSPORT") != "stdout" }); n != 0 {
		t.Errorf("%d entries not through stdout after console:\n%s", n, dump(entries))
	}

	// journal: native again, fields and all.
	cursor = ct.mark(t)
	logSetting(t, "service-log-target", "journal")
	wantSetting(t, "service-log-target", "journal")
	entries = requestEntries(t, pid, cursor, true)
	req := filter(entries, withMessage("request"))
	if len(req) != 1 || req[0].Get("_TRANSPORT") != "journal" || req[0].Get("PRIORITY") != "6" || req[0].Get("PATH") != "/" {
		t.Errorf("after journal: want the request's native entry:\n%s", dump(entries))
	}
	if n := count(entries, func(e entry) bool { return e.Get("_TRANSPORT") != "journal" }); n != 0 {
		t.Errorf("%d entries not native after journal:\n%s", n, dump(entries))
	}

	// null: the change is logged, then nothing.
	cursor = ct.mark(t)
	logSetting(t, "service-log-target", "null")
	wantSetting(t, "service-log-target", "null")
	entries = requestEntries(t, pid, cursor, false)
	if len(entries) != 1 || entries[0].Get("MESSAGE") != "service: log target set to null" {
		t.Errorf("after null: want the change's entry alone:\n%s", dump(entries))
	}

	// auto: the journal, as stderr is the journal's stream.
	cursor = ct.mark(t)
	logSetting(t, "service-log-target", "auto")
	wantSetting(t, "service-log-target", "auto")
	entries = requestEntries(t, pid, cursor, true)
	if n := count(entries, and(withMessage("service: log target set to auto: journal"), func(e entry) bool {
		return e.Get("_TRANSPORT") == "journal" && strings.Contains(e.Get("REASON"), "stderr is the journal")
	})); n != 1 {
		t.Errorf("after auto: want the change's entry, with why it chose the journal:\n%s", dump(entries))
	}
	if n := count(entries, and(withMessage("request"), func(e entry) bool { return e.Get("_TRANSPORT") == "journal" })); n != 1 {
		t.Errorf("after auto: want the request's native entry:\n%s", dump(entries))
	}

	// Refused: what newstyle does not write to, and what systemd does not
	// know either. systemctl prints the service's error.
	for _, tt := range []struct{ target, err string }{
		{"kmsg", "Log target 'kmsg' is not supported: journal, console, null or auto"},
		{"syslog", "Log target 'syslog' is not supported"},
		{"journal-or-kmsg", "Log target 'journal-or-kmsg' is not supported"},
		{"file", "Invalid log target 'file'"},
	} {
		_, err := ct.exec("systemctl", "service-log-target", unit, tt.target)
		want := "Failed to set log target of " + busName + " to " + tt.target + ": " + tt.err
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("service-log-target %s: %v, want %q", tt.target, err, want)
		}
	}
	wantSetting(t, "service-log-target", "auto")
	cursor = ct.mark(t)
	entries = requestEntries(t, pid, cursor, true)
	if len(entries) != 1 || entries[0].Get("_TRANSPORT") != "journal" {
		t.Errorf("after the refusals: want the request's native entry alone:\n%s", dump(entries))
	}
	if p := show(t, unit, "MainPID", "ActiveState"); p["MainPID"] != pid || p["ActiveState"] != "active" {
		t.Errorf("the demo was restarted: %v, was pid %s", p, pid)
	}
}

// asNobody runs a command in the container as an unprivileged user.
func asNobody(args ...string) (string, error) {
	return ct.exec(append([]string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"}, args...)...)
}

// TestLogControlRootOnly: an unprivileged user may read the settings but
// not change them — refused by the bus's policy as shipped, and by the
// demo itself when a policy lets the call through — and the level is
// unchanged.
func TestLogControlRootOnly(t *testing.T) {
	pid := freshDemo(t)
	cursor := ct.mark(t)

	out, err := asNobody("busctl", "get-property", busName, logControlPath, "org.freedesktop.LogControl1", "LogLevel")
	if err != nil || strings.TrimSpace(out) != `s "info"` {
		t.Errorf("reading as nobody: %q, %v", out, err)
	}
	for _, prop := range [][2]string{{"LogLevel", "debug"}, {"LogTarget", "null"}} {
		if _, err := asNobody("busctl", "set-property", busName, logControlPath, "org.freedesktop.LogControl1", prop[0], "s", prop[1]); err == nil || !strings.Contains(err.Error(), "Access denied") {
			t.Errorf("busctl set-property %s as nobody: %v, want Access denied", prop[0], err)
		}
	}
	set := []string{"dbus-send", "--system", "--print-reply", "--dest=" + busName, logControlPath,
		"org.freedesktop.DBus.Properties.Set", "string:org.freedesktop.LogControl1", "string:LogLevel", "variant:string:debug"}
	if _, err := asNobody(set...); err == nil || !strings.Contains(err.Error(), "org.freedesktop.DBus.Error.AccessDenied: Rejected send message") {
		t.Errorf("Set as nobody: %v, want the bus's policy to refuse it", err)
	}

	// A policy that lets anyone call the demo: the demo refuses by itself.
	const open = "/etc/dbus-1/system.d/zz-newstyle-test-open.conf"
	policy := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><policy context="default"><allow send_destination="` + busName + `"/></policy></busconfig>
`
	if err := ct.writeFile(open, []byte(policy)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = ct.exec("rm", "-f", open)
		_, _ = ct.exec("systemctl", "reload", "dbus")
	})
	systemctl(t, "reload", "dbus")
	if _, err := asNobody(set...); err == nil || !strings.Contains(err.Error(), "org.freedesktop.DBus.Error.AccessDenied: Only root may set LogLevel (the caller's uid is 65534)") {
		t.Errorf("Set as nobody through an open policy: %v, want the demo to refuse it", err)
	}

	wantSetting(t, "service-log-level", "info")
	wantSetting(t, "service-log-target", "auto")
	entries := requestEntries(t, pid, cursor, true)
	if n := count(entries, withMessage("request received")); n != 0 {
		t.Errorf("debug records after refused calls:\n%s", dump(entries))
	}
	if n := count(entries, func(e entry) bool { return strings.HasPrefix(e.Get("MESSAGE"), "service: log ") }); n != 0 {
		t.Errorf("refused calls logged a change:\n%s", dump(entries))
	}
}

// dropIn installs a drop-in for the demo's unit for the test, and starts
// the demo afresh with it; the drop-in goes, and the demo stops, when
// the test ends.
func dropIn(t *testing.T, name, content string) {
	t.Helper()
	path := "/etc/systemd/system/" + unit + ".d/" + name
	if err := ct.writeFile(path, []byte(content)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = ct.exec("rm", "-f", path)
		_, _ = ct.exec("systemctl", "daemon-reload")
		_, _ = ct.exec("systemctl", "stop", unit)
		resetFailed(unit)
	})
	systemctl(t, "stop", unit)
	systemctl(t, "daemon-reload")
	resetFailed(unit)
}

// TestDebugInvocation: DEBUG_INVOCATION=1 (as RestartMode=debug sets it,
// here in a drop-in) starts the demo at debug level: debug records from
// its first.
func TestDebugInvocation(t *testing.T) {
	dropIn(t, "50-debug-invocation.conf", "[Service]\nEnvironment=DEBUG_INVOCATION=1\n")
	cursor := ct.mark(t)
	systemctl(t, "start", unit)
	pid := show(t, unit, "MainPID")["MainPID"]
	wantSetting(t, "service-log-level", "debug")
	entries := afterAnnouncement(t, requestEntries(t, pid, cursor, true))
	if len(entries) == 0 || entries[0].Get("MESSAGE") != "service: DEBUG_INVOCATION is set: logging at debug level" || entries[0].Get("PRIORITY") != "7" {
		t.Errorf("want the demo's first entry at debug, saying why:\n%s", dump(entries))
	}
	if n := count(entries, and(withMessage("request received"), func(e entry) bool { return e.Get("PRIORITY") == "7" })); n != 1 {
		t.Errorf("want the request's debug entry:\n%s", dump(entries))
	}
}

// TestExtendTimeout: a warm-up of 7 s under TimeoutStartSec=3s reaches
// active when it asks for more time as it goes (EXTEND_TIMEOUT_USEC every
// second, 2 s each), the watchdog fed meanwhile; the same warm-up that
// does not ask is failed by systemd at 3 s.
func TestExtendTimeout(t *testing.T) {
	const warm = 7 * time.Second
	slow := "[Service]\nTimeoutStartSec=3s\nExecStart=\nExecStart=/opt/test/newstyle-demo -warmup=7s"
	t.Run("extended", func(t *testing.T) {
		dropIn(t, "50-slow-start.conf", slow+" -extend-timeout=2s\n")
		cursor := ct.mark(t)
		systemctl(t, "start", "--no-block", unit)
		names := []string{"ActiveState", "ExecMainStartTimestampMonotonic", "WatchdogTimestampMonotonic", "MainPID"}
		var fedWhileStarting bool
		p := waitProps(t, warm+10*time.Second, func(p map[string]string) bool {
			if p["ActiveState"] == "activating" && p["ExecMainStartTimestampMonotonic"] != "0" {
				started := atoi(t, "ExecMainStartTimestampMonotonic", p["ExecMainStartTimestampMonotonic"])
				fed := atoi(t, "WatchdogTimestampMonotonic", p["WatchdogTimestampMonotonic"])
				// Fed past the watchdog's 4 s and the start's 3 s.
				if time.Duration(fed-started)*time.Microsecond > watchdog {
					fedWhileStarting = true
				}
			}
			return p["ActiveState"] != "activating"
		}, names...)
		if p["ActiveState"] != "active" {
			t.Fatalf("after the warm-up: %v", p)
		}
		if !fedWhileStarting {
			t.Errorf("the watchdog was not seen fed more than %v into the start", watchdog)
		}
		ts := show(t, unit, "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic", "NRestarts")
		took := time.Duration(atoi(t, "ActiveEnterTimestampMonotonic", ts["ActiveEnterTimestampMonotonic"])-
			atoi(t, "ExecMainStartTimestampMonotonic", ts["ExecMainStartTimestampMonotonic"])) * time.Microsecond
		if took < warm || ts["NRestarts"] != "0" {
			t.Errorf("active %v after the start (want the whole %v warm-up), NRestarts=%s", took, warm, ts["NRestarts"])
		}
		entries, err := ct.journal(cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"timed out", "Watchdog timeout", "Failed"} {
			if n := count(entries, systemdSays(bad)); n != 0 {
				t.Errorf("systemd says %q:\n%s", bad, dump(filter(entries, fromPID("1"))))
			}
		}
	})
	t.Run("not extended", func(t *testing.T) {
		// Restart=no: one failed start to look at, not a loop of them.
		dropIn(t, "50-slow-start.conf", slow+"\nRestart=no\n")
		cursor := ct.mark(t)
		start := time.Now()
		_, err := ct.exec("systemctl", "start", unit)
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "a timeout was exceeded") {
			t.Errorf("systemctl start: %v, want the job failed by a timeout", err)
		}
		if took < 3*time.Second || took > warm {
			t.Errorf("the start failed after %v, want at TimeoutStartSec=3s", took)
		}
		if p := show(t, unit, "ActiveState", "Result"); p["ActiveState"] != "failed" || p["Result"] != "timeout" {
			t.Errorf("after the start: %v, want failed with Result=timeout", p)
		}
		entries := ct.waitJournal(t, cursor, 10*time.Second, func(es []entry) bool {
			return count(es, systemdSays("start operation timed out")) > 0
		})
		if count(entries, systemdSays("start operation timed out")) != 1 {
			t.Errorf("want systemd's \"start operation timed out\":\n%s", dump(filter(entries, fromPID("1"))))
		}
	})
}

// TestWithoutBusName: with the name taken out of the environment, the
// demo does not go near the bus and runs as before; systemctl
// service-log-level finds nothing to talk to.
func TestWithoutBusName(t *testing.T) {
	dropIn(t, "50-no-bus-name.conf", "[Service]\nEnvironment=NEWSTYLE_BUS_NAME=\n")
	cursor := ct.mark(t)
	systemctl(t, "start", unit)
	pid := show(t, unit, "MainPID")["MainPID"]
	_, err := ct.exec("systemctl", "service-log-level", unit)
	if want := "The name " + busName + " was not provided by any .service files"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("service-log-level: %v, want %q", err, want)
	}
	entries := requestEntries(t, pid, cursor, true)
	if n := count(entries, func(e entry) bool {
		return strings.Contains(e.Get("MESSAGE"), "bus") || strings.Contains(e.Get("MESSAGE"), "LogControl1")
	}); n != 0 {
		t.Errorf("the demo spoke of the bus:\n%s", dump(entries))
	}
	if n := count(entries, and(withMessage("request"), func(e entry) bool { return e.Get("_TRANSPORT") == "journal" })); n != 1 {
		t.Errorf("want the request's native entry:\n%s", dump(entries))
	}
}

// afterAnnouncement returns the demo's entries after the logger's first,
// which says where it logs and why ("newstyle: logging to the journal").
func afterAnnouncement(t *testing.T, entries []entry) []entry {
	t.Helper()
	if len(entries) == 0 || entries[0].Get("MESSAGE") != "newstyle: logging to the journal" || entries[0].Get("TARGET") != "journal" {
		t.Errorf("want the demo's first entry to say where it logs:\n%s", dump(entries))
		return entries
	}
	return entries[1:]
}
