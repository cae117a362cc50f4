//go:build container

package container

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journal"
)

// journald's per-unit rate limit, seen from a unit that logs a burst
// through journal.Writer (integration/burstchild).
const (
	burstEntries = 1000
	// burstLimit is the LogRateLimitBurst= of the limited units, and
	// burstRaised that of the units that raise it past the burst.
	burstLimit  = 100
	burstRaised = 5000
	// burstInterval is the units' LogRateLimitIntervalSec=, burstAfter
	// how long the program waits, once the test has read the journal,
	// before it logs again: in the next interval.
	burstInterval = 10 * time.Second
	burstAfter    = burstInterval + time.Second
	// burstScale is the most journald scales a burst by for free space
	// under 1 TB (burst_modulate: ×1 up to 1 MB, ×6 at 1 TB).
	burstScale = 6
	// suppressedMessageID is journald's SD_MESSAGE_JOURNAL_DROPPED, the
	// MESSAGE_ID of its "Suppressed N messages from UNIT" entry.
	suppressedMessageID = "a596d6fe7bfa4994828e72309e95d61e"
)

// burstUnit is a template unit running burstchild (%i: sync or async)
// with the rate limit set by the lines a user would write.
func burstUnit(name string, burst int) string {
	return fmt.Sprintf(`[Unit]
Description=burstchild (%%i) with journald's rate limit at %[2]d entries per %[3]s

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/opt/test/burstchild -mode %%i -n %[4]d -after %[5]s -state /run/%[1]s-%%i
LogRateLimitIntervalSec=%[3]s
LogRateLimitBurst=%[2]d
`, name, burst, burstInterval, burstEntries, burstAfter)
}

// burstReport is integration/burstchild's report.
type burstReport struct {
	Mode   string
	Sent   int
	Errors []string
	Stats  journal.Stats
}

// TestRateLimit: a burst of 1,000 entries from a unit with
// LogRateLimitIntervalSec=10s LogRateLimitBurst=100, through
// journal.Writer, synchronous and asynchronous. journald stores the first
// entries of the burst, about the limit (scaled by free space), drops the
// rest, and says nothing until the unit logs again in a later interval:
// then it logs "Suppressed N messages from UNIT" (N_DROPPED=N) with the
// unit's entries. The program sees none of it: every Send returned nil
// and Stats counts every entry in Entries. A unit that raises the limit
// (LogRateLimitBurst=5000) has every entry stored.
func TestRateLimit(t *testing.T) {
	onSystemd(t, func(t *testing.T, _ int) {
		type run struct {
			unit, state string
			limit       int
		}
		var runs []run
		for _, tmpl := range []struct {
			name  string
			limit int
		}{{"burst-limited", burstLimit}, {"burst-raised", burstRaised}} {
			path := "/etc/systemd/system/" + tmpl.name + "@.service"
			require.NoError(t, ct.writeFile(path, []byte(burstUnit(tmpl.name, tmpl.limit))))
			t.Cleanup(func() { _, _ = ct.exec("rm", "-f", path) })
			for _, mode := range []string{"sync", "async"} {
				runs = append(runs, run{tmpl.name + "@" + mode + ".service", "/run/" + tmpl.name + "-" + mode, tmpl.limit})
			}
		}
		args := []string{"systemctl", "start", "--no-block"}
		for _, r := range runs {
			args = append(args, r.unit)
		}
		systemctl(t, "daemon-reload")
		t.Cleanup(func() {
			for _, r := range runs {
				_, _ = ct.exec("systemctl", "stop", r.unit)
				resetFailed(r.unit)
				_, _ = ct.exec("sh", "-c", `rm -f "$1".*`, "sh", r.state)
			}
			_, _ = ct.exec("systemctl", "daemon-reload")
		})
		_, err := ct.exec(args...)
		require.NoError(t, err)

		// The burst: all sent, and what journald stored of it.
		for _, r := range runs {
			rep := readBurstReport(t, r.state+".burst", 60*time.Second)
			checkBurstReport(t, r.unit, rep, burstEntries)
		}
		_, err = ct.exec("journalctl", "--sync")
		require.NoError(t, err)
		stored := map[string]int{}
		for _, r := range runs {
			entries, err := ct.journalMatching("", "-u", r.unit)
			require.NoError(t, err)
			burst := filter(entries, isBurst)
			stored[r.unit] = len(burst)
			if r.limit > burstEntries {
				assert.Len(t, burst, burstEntries, "%s: every entry of the burst stored", r.unit)
			} else {
				t.Logf("%s: journald stored %d of %d entries (LogRateLimitBurst=%d, scaled by free space)", r.unit, len(burst), burstEntries, r.limit)
				assert.GreaterOrEqual(t, len(burst), r.limit, "%s: stored less than the burst limit", r.unit)
				assert.LessOrEqual(t, len(burst), burstScale*r.limit, "%s: stored more than the scaled burst limit", r.unit)
			}
			// journald keeps the first entries of an interval.
			for i, e := range burst {
				if !assert.Equal(t, strconv.Itoa(i), e.Get("BURST_SEQ"), "%s: entry %d of those stored", r.unit, i) {
					break
				}
				assert.Equal(t, r.unit, e.Get("_SYSTEMD_UNIT"))
			}
			assert.Zero(t, count(entries, isSuppressed), "%s: journald said it suppressed entries before the unit logged again:\n%s",
				r.unit, dump(filter(entries, isSuppressed)))
		}

		// The next interval: one more entry, and journald's account.
		for _, r := range runs {
			require.NoError(t, ct.writeFile(r.state+".go", nil))
		}
		for _, r := range runs {
			rep := readBurstReport(t, r.state+".done", burstAfter+60*time.Second)
			checkBurstReport(t, r.unit, rep, burstEntries+1)
		}
		_, err = ct.exec("journalctl", "--sync")
		require.NoError(t, err)
		isAfter := and(isBurstchild, func(e entry) bool { return e.Has("BURST_AFTER") })
		for _, r := range runs {
			entries := ct.waitJournalMatching(t, "", 30*time.Second, func(es []entry) bool {
				return count(es, isAfter) > 0 && (r.limit > burstEntries || count(es, isSuppressed) > 0)
			}, "-u", r.unit)
			assert.Equal(t, 1, count(entries, isAfter), "%s: the entry after the burst stored", r.unit)
			assert.Equal(t, stored[r.unit], count(entries, isBurst), "%s: entries of the burst", r.unit)
			suppressed := filter(entries, isSuppressed)
			if r.limit > burstEntries {
				assert.Empty(t, suppressed, "%s: the limit raised, journald suppressed nothing", r.unit)
				continue
			}
			if !assert.Len(t, suppressed, 1, "%s: journald's entry of what it suppressed:\n%s", r.unit, dump(suppressed)) {
				continue
			}
			dropped := burstEntries - stored[r.unit]
			e := suppressed[0]
			assert.Equal(t, fmt.Sprintf("Suppressed %d messages from %s", dropped, r.unit), e.Get("MESSAGE"))
			assert.Equal(t, strconv.Itoa(dropped), e.Get("N_DROPPED"))
			t.Logf("%s: journald: %q (the program's Stats: %d entries, no error)", r.unit, e.Get("MESSAGE"), burstEntries+1)
		}

		// The program ends well.
		for _, r := range runs {
			require.NoError(t, ct.writeFile(r.state+".exit", nil))
		}
		for _, r := range runs {
			p := waitUnit(t, r.unit, 30*time.Second)
			assert.Equal(t, "exited", p["SubState"], "%s: %v", r.unit, p)
			assert.Equal(t, "success", p["Result"], "%s: %v", r.unit, p)
		}
	})
}

func isBurstchild(e entry) bool { return e.Get("SYSLOG_IDENTIFIER") == "burstchild" }

// isBurst accepts the entries of the burst.
func isBurst(e entry) bool { return isBurstchild(e) && e.Has("BURST_SEQ") }

// isSuppressed accepts journald's entries of what its rate limit dropped.
func isSuppressed(e entry) bool { return e.Get("MESSAGE_ID") == suppressedMessageID }

// readBurstReport polls for a report of burstchild, for at most d.
func readBurstReport(t *testing.T, path string, d time.Duration) burstReport {
	t.Helper()
	var (
		out string
		err error
	)
	if !testutil.Poll(d, 100*time.Millisecond, func() bool {
		out, err = ct.exec("cat", path)
		return err == nil
	}) {
		out, _ := ct.exec("sh", "-c", "systemctl status --no-pager 'burst-*' 2>&1")
		t.Fatalf("no %s within %v: %v\n%s", path, d, err, out)
	}
	var rep burstReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep), "%s: %q", path, out)
	return rep
}

// checkBurstReport: the program saw no error, and Stats counts every
// entry as sent, those journald then dropped included.
func checkBurstReport(t *testing.T, unitName string, rep burstReport, sent int) {
	t.Helper()
	assert.Empty(t, rep.Errors, "%s: errors the program saw", unitName)
	assert.Equal(t, sent, rep.Sent, "%s: Send calls", unitName)
	assert.Equal(t, uint64(sent), rep.Stats.Entries, "%s: Stats.Entries", unitName)
	assert.Zero(t, rep.Stats.Errors, "%s: Stats.Errors", unitName)
	assert.Zero(t, rep.Stats.Dropped, "%s: Stats.Dropped", unitName)
}

// waitUnit polls a oneshot unit with RemainAfterExit= until it has
// exited or failed, for at most d, and returns its last state.
func waitUnit(t *testing.T, unitName string, d time.Duration) map[string]string {
	t.Helper()
	var p map[string]string
	testutil.Poll(d, 200*time.Millisecond, func() bool {
		p = show(t, unitName, "ActiveState", "SubState", "Result", "ExecMainStatus")
		return p["SubState"] == "exited" || p["ActiveState"] == "failed"
	})
	if p["ActiveState"] == "failed" || p["SubState"] != "exited" {
		out, _ := ct.exec("journalctl", "-u", unitName, "-n", "20", "--no-pager")
		t.Logf("%s:\n%s", unitName, strings.TrimSpace(out))
	}
	return p
}
