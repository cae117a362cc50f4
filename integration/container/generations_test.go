//go:build container

package container

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readVersion reads the container's systemd version (systemctl
// --version) into c.systemdVersion and c.systemd.
func (c *container) readVersion() error {
	out, err := c.exec("systemctl", "--version")
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(out, "\n")
	major, ok := strings.CutPrefix(first, "systemd ")
	major, _, _ = strings.Cut(major, " ")
	n, err := strconv.Atoi(major)
	if !ok || err != nil {
		return fmt.Errorf("systemctl --version: cannot read the version from %q", first)
	}
	c.systemdVersion, c.systemd = first, n
	return nil
}

// onSystemd runs f as a subtest named after the container's systemd
// ("systemd257"), for the tests whose outcome depends on it: a failure
// names the generation it happened on. It logs the full version.
func onSystemd(t *testing.T, f func(t *testing.T, version int)) {
	t.Helper()
	t.Run(fmt.Sprintf("systemd%d", ct.systemd), func(t *testing.T) {
		t.Logf("on %s", ct.systemdVersion)
		f(t, ct.systemd)
	})
}

// TestNotifyReload: the demo as Type=notify-reload (systemd 253 and
// later). systemd sends SIGHUP itself (no ExecReload=), and the reload
// job lasts until the demo's READY=1: when systemctl reload returns, the
// new greeting is already served, with no polling. systemd 252 does not
// know the type: it keeps the unit's Type=notify, logs that it ignored
// the setting, and with no ExecReload= left, refuses to reload.
func TestNotifyReload(t *testing.T) {
	onSystemd(t, func(t *testing.T, version int) {
		cursor := ct.mark(t)
		dropIn(t, "50-notify-reload.conf", "[Service]\nType=notify-reload\nExecReload=\n")
		pid := running(t)
		p := show(t, unit, "Type", "ReloadSignal")
		if version < 253 {
			if p["Type"] != "notify" {
				t.Errorf("Type=%s, want notify (the unit's own) on systemd %d", p["Type"], version)
			}
			// "/etc/systemd/system/newstyle-demo.service.d/50-notify-reload.conf:2:
			// Failed to parse service type, ignoring: notify-reload", which
			// journalctl -u does not always show: read systemd's own.
			ignored := func(e entry) bool {
				return strings.Contains(e.Get("MESSAGE"), "50-notify-reload.conf") &&
					strings.Contains(e.Get("MESSAGE"), "ignoring: notify-reload")
			}
			entries := ct.waitJournalMatching(t, cursor, 10*time.Second, func(es []entry) bool { return count(es, ignored) > 0 }, "_PID=1")
			if count(entries, ignored) == 0 {
				t.Errorf("systemd %d did not say it ignored Type=notify-reload:\n%s", version, dump(entries))
			}
			if _, err := ct.exec("systemctl", "reload", unit); err == nil {
				t.Errorf("systemctl reload succeeded on systemd %d with no ExecReload=", version)
			} else {
				t.Logf("systemctl reload: %v", err)
			}
			return
		}
		if p["Type"] != "notify-reload" || p["ReloadSignal"] != "1" {
			t.Fatalf("Type=%s ReloadSignal=%s, want notify-reload and 1 (SIGHUP)", p["Type"], p["ReloadSignal"])
		}
		greeting := fmt.Sprintf("hello, notify-reload at %d", time.Now().UnixNano())
		const greetingFile = "/etc/newstyle-demo/greeting"
		if err := ct.writeFile(greetingFile, []byte(greeting+"\n")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = ct.exec("rm", "-f", greetingFile) })

		cursor = ct.mark(t)
		start := time.Now()
		systemctl(t, "reload", unit)
		took := time.Since(start)
		// The reload job waited for READY=1, after the demo's warm-up.
		if body := strings.TrimSpace(mustGet(t, "/", http.StatusOK)); body != greeting {
			t.Errorf("right after systemctl reload: GET / = %q, want %q", body, greeting)
		}
		if took < warmUp {
			t.Errorf("systemctl reload returned after %v, before the demo's %v reload", took, warmUp)
		}
		t.Logf("systemctl reload took %v", took.Round(time.Millisecond))
		p = show(t, unit, "ActiveState", "MainPID", "StatusText")
		if p["ActiveState"] != "active" || p["MainPID"] != pid {
			t.Errorf("after the reload: %v, want active with MainPID %s", p, pid)
		}
		mine := fromPID(pid)
		entries := ct.waitJournal(t, cursor, 10*time.Second, func(es []entry) bool {
			return count(es, and(mine, withMessage("greeting loaded"))) > 0 && count(es, systemdSays("Reloaded ")) > 0
		})
		if count(entries, and(mine, withMessage("service: reloading"))) != 1 {
			t.Errorf("want one \"service: reloading\" entry:\n%s", dump(entries))
		}
		if count(entries, systemdSays("Reloaded ")) != 1 {
			t.Errorf("want systemd's Reloaded entry:\n%s", dump(filter(entries, fromPID("1"))))
		}
	})
}

// TestRestartModeDebug: with RestartMode=debug (systemd 257 and later), a
// panic's restart starts the demo with DEBUG_INVOCATION=1, and so at
// debug level: its first entry says so, and a request's debug record is
// in the journal; the start before it was at info. systemd 252 ignores
// the setting: the restarted demo logs at info.
func TestRestartModeDebug(t *testing.T) {
	onSystemd(t, func(t *testing.T, version int) {
		dropIn(t, "50-restart-mode-debug.conf", "[Service]\nRestartMode=debug\n")
		pid := running(t)
		wantSetting(t, "service-log-level", "info")
		restarts := atoi(t, "NRestarts", show(t, unit, "NRestarts")["NRestarts"])
		if _, _, err := get("/panic", 10*time.Second); err == nil {
			t.Fatal("GET /panic answered; want the connection dropped by the exit")
		}
		cursor := ct.mark(t)
		pid = restarted(t, pid, restarts, 20*time.Second)

		debug := version >= 257
		want := map[bool]string{true: "debug", false: "info"}[debug]
		wantSetting(t, "service-log-level", want)
		entries := requestEntries(t, pid, cursor, true)
		// systemd's own entries from the new process before it executes
		// the demo (SYSLOG_IDENTIFIER "(yle-demo)"): 257 logs them at
		// debug for a debug restart.
		demo := afterAnnouncement(t, filter(entries, func(e entry) bool { return e.Get("SYSLOG_IDENTIFIER") == "newstyle-demo" }))
		executor := count(entries, func(e entry) bool { return strings.HasPrefix(e.Get("SYSLOG_IDENTIFIER"), "(") })
		said := len(demo) > 0 && demo[0].Get("MESSAGE") == "service: DEBUG_INVOCATION is set: logging at debug level" &&
			demo[0].Get("PRIORITY") == "7"
		debugRecords := count(demo, and(withMessage("request received"), func(e entry) bool { return e.Get("PRIORITY") == "7" }))
		if said != debug || (debugRecords > 0) != debug {
			t.Errorf("systemd %d: the restarted demo logs at %s: want its first entry to say so (%v) and requests' debug records (%v), got %v and %d:\n%s",
				version, want, debug, debug, said, debugRecords, dump(demo))
		}
		if (executor > 0) != debug {
			t.Errorf("systemd %d: %d debug entries of systemd's own from the restarted unit's process before it ran the demo, want some: %v",
				version, executor, debug)
		}
		t.Logf("systemd %d: %d entries of systemd's own before the exec, %d debug records of the demo", version, executor, debugRecords)
		env, err := ct.exec("cat", "/proc/"+pid+"/environ")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains("\x00"+env, "\x00DEBUG_INVOCATION=1\x00"); got != debug {
			t.Errorf("systemd %d: DEBUG_INVOCATION=1 in the restarted demo's environment: %v, want %v", version, got, debug)
		}
	})
}
