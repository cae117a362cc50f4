//go:build integration

package integration

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journal"
)

// coredumpMessageID is systemd-coredump's MESSAGE_ID: journalctl -u lists
// an entry from root with it and COREDUMP_UNIT=UNIT as a crash of UNIT.
const coredumpMessageID = "fc2e22bc6ee647b6b90729ab34a250b1"

// attributionFields are the fields that, unprefixed, let an entry from
// root be listed under a unit other than the sender's own (journalctl's
// add_matches_for_unit and add_matches_for_user_unit); none may come out
// of the slog handler.
var attributionFields = []string{
	"UNIT", "USER_UNIT", "INVOCATION_ID", "USER_INVOCATION_ID",
	"OBJECT_SYSTEMD_UNIT", "OBJECT_SYSTEMD_USER_UNIT",
	"COREDUMP_UNIT", "COREDUMP_USER_UNIT",
}

// TestAttributesCannotClaimAnotherUnit logs, as root, records whose
// attributes name another unit under every key journalctl attributes
// entries by, and checks that journalctl -u and --user-unit do not list
// them under that unit. Control entries, sent through the strict Writer
// with the real fields, prove that the same journalctl queries do list
// entries that claim a unit: the check can fail.
func TestAttributesCannotClaimAnotherUnit(t *testing.T) {
	a := newAttributionRun(t)
	a.logClaims(t)
	a.sendControls(t)
	a.checkClaimsStored(t)
	a.checkControlsListed(t)
	a.checkVictimListsNone(t)
}

// attributionRun is one run of TestAttributesCannotClaimAnotherUnit: the
// unit the records claim, the unit the controls claim, and what was sent.
type attributionRun struct {
	ident, controlIdent string
	victim, controlUnit string
	cases               []attributionCase
	// wantControl holds, by journalctl flag, the control messages it
	// must list.
	wantControl map[string][]string
}

// attributionCase is a record that claims the victim unit: one per way
// of reaching a reserved name.
type attributionCase struct {
	key   string // what the case is about, in MESSAGE
	log   func(l *slog.Logger, msg string)
	field string // the field the value must arrive in
	extra map[string]string
}

// message is the MESSAGE of the i-th case.
func (c attributionCase) message(i int) string { return fmt.Sprintf("claim %d via %s", i, c.key) }

// newAttributionRun names the run's identifiers and units.
func newAttributionRun(t *testing.T) *attributionRun {
	ident := uniqueIdent(t)
	run := strings.TrimPrefix(ident, "it-")
	a := &attributionRun{
		ident:        ident,
		controlIdent: ident + "-control",
		victim:       "victim-" + run + ".service",
		controlUnit:  "victim-control-" + run + ".service",
		wantControl:  make(map[string][]string),
	}
	a.cases = attributionCases(a.victim)
	return a
}

// attributionCases are the records that claim victim: one per way of
// reaching a reserved name, the key as users write it, in upper case,
// dotted, and through groups and With.
func attributionCases(victim string) []attributionCase {
	return []attributionCase{
		{key: "object.systemd_unit", field: "F_OBJECT_SYSTEMD_UNIT"},
		{key: "OBJECT_SYSTEMD_UNIT", field: "F_OBJECT_SYSTEMD_UNIT"},
		{key: "object_systemd_user_unit", field: "F_OBJECT_SYSTEMD_USER_UNIT"},
		{
			key: "coredump_unit", field: "F_COREDUMP_UNIT",
			log: func(l *slog.Logger, msg string) {
				l.Info(msg, "message_id", coredumpMessageID, "coredump_unit", victim)
			},
			extra: map[string]string{"MESSAGE_ID": coredumpMessageID},
		},
		{
			key: "coredump.user_unit", field: "F_COREDUMP_USER_UNIT",
			log: func(l *slog.Logger, msg string) {
				l.Info(msg, "message_id", coredumpMessageID, "coredump.user_unit", victim)
			},
			extra: map[string]string{"MESSAGE_ID": coredumpMessageID},
		},
		{key: "unit", field: "F_UNIT"},
		{key: "user_unit", field: "F_USER_UNIT"},
		{key: "invocation_id", field: "F_INVOCATION_ID"},
		{
			key: "group object, key systemd_unit", field: "F_OBJECT_SYSTEMD_UNIT",
			log: func(l *slog.Logger, msg string) {
				l.Info(msg, slog.Group("object", slog.String("systemd_unit", victim)))
			},
		},
		{
			// Neither part is reserved; the name they make is.
			key: "group user, key unit", field: "F_USER_UNIT",
			log: func(l *slog.Logger, msg string) { l.Info(msg, slog.Group("user", slog.String("unit", victim))) },
		},
		{
			key: "WithGroup coredump, key unit", field: "F_COREDUMP_UNIT",
			log: func(l *slog.Logger, msg string) { l.WithGroup("coredump").Info(msg, "unit", victim) },
		},
		{
			key: "With user_unit", field: "F_USER_UNIT",
			log: func(l *slog.Logger, msg string) { l.With("user_unit", victim).Info(msg) },
		},
	}
}

// logClaims logs the records of the cases through a newstyle logger to
// the journal.
func (a *attributionRun) logClaims(t *testing.T) {
	logger := newstyle.NewLogger(&newstyle.Options{
		Target:           newstyle.TargetJournal,
		SyslogIdentifier: a.ident,
		Stdout:           testutil.FailWriter{TB: t},
	})
	for i, c := range a.cases {
		msg := c.message(i)
		if c.log != nil {
			c.log(logger, msg)
		} else {
			logger.Info(msg, c.key, a.victim)
		}
	}
}

// sendControls sends the controls: the real fields, which only the strict
// Writer sends, one per way a root sender that is not PID 1 can claim a
// unit (UNIT= counts only from PID 1, so it has none).
func (a *attributionRun) sendControls(t *testing.T) {
	t.Helper()
	w := newWriter(t, journal.WriterOptions{SyslogIdentifier: a.controlIdent})
	controls := []struct {
		flag   string // the journalctl option that must list it
		fields []journal.Field
	}{
		{"-u", []journal.Field{journal.StringField("OBJECT_SYSTEMD_UNIT", a.controlUnit)}},
		{"-u", []journal.Field{
			journal.StringField("MESSAGE_ID", coredumpMessageID),
			journal.StringField("COREDUMP_UNIT", a.controlUnit),
		}},
		{"--user-unit", []journal.Field{journal.StringField("OBJECT_SYSTEMD_USER_UNIT", a.controlUnit)}},
		{"--user-unit", []journal.Field{journal.StringField("USER_UNIT", a.controlUnit)}},
		{"--user-unit", []journal.Field{journal.StringField("COREDUMP_USER_UNIT", a.controlUnit)}},
	}
	for i, c := range controls {
		msg := fmt.Sprintf("control %d via %s", i, c.fields[len(c.fields)-1].Name)
		if err := w.Send(msg, journal.PriInfo, c.fields...); err != nil {
			t.Fatalf("control Send %q: %v", msg, err)
		}
		a.wantControl[c.flag] = append(a.wantControl[c.flag], msg)
	}
}

// checkClaimsStored: every record is in the journal, its value in the
// prefixed field, and none has a field that attributes it to a unit.
func (a *attributionRun) checkClaimsStored(t *testing.T) {
	t.Helper()
	entries := waitEntries(t, query{ident: a.ident}, len(a.cases))
	syncJournal(t)
	if again, err := readJournal(query{ident: a.ident}); err == nil {
		entries = again
	}
	if len(entries) != len(a.cases) {
		t.Fatalf("journal has %d entries for %s, want %d, one per record", len(entries), a.ident, len(a.cases))
	}
	byMessage := make(map[string]entry, len(entries))
	for _, e := range entries {
		m, _ := e.Value("MESSAGE")
		byMessage[m] = e
	}
	for i, c := range a.cases {
		msg := c.message(i)
		e, ok := byMessage[msg]
		if !ok {
			t.Errorf("no entry %q in the journal", msg)
			continue
		}
		want := map[string]string{
			"MESSAGE":           msg,
			"PRIORITY":          "6",
			"SYSLOG_IDENTIFIER": a.ident,
			c.field:             a.victim,
		}
		for k, v := range c.extra {
			want[k] = v
		}
		t.Run(c.key, func(t *testing.T) {
			wantFields(t, e, want)
			for _, name := range attributionFields {
				if v, ok := e[name]; ok {
					t.Errorf("entry has %s = %q", name, v)
				}
			}
		})
	}
}

// checkControlsListed: journalctl -u and --user-unit list the control
// entries under the control unit, and nothing else: the query of
// checkVictimListsNone can see a claim.
func (a *attributionRun) checkControlsListed(t *testing.T) {
	t.Helper()
	for _, flag := range []string{"-u", "--user-unit"} {
		want := slices.Sorted(slices.Values(a.wantControl[flag]))
		var got []unitLine
		testutil.Poll(10*time.Second, 100*time.Millisecond, func() bool {
			var err error
			if got, err = unitEntries(flag, a.controlUnit); err != nil {
				t.Fatal(err)
			}
			return len(got) >= len(want)
		})
		var msgs []string
		for _, l := range got {
			if l.ident != a.controlIdent {
				t.Errorf("journalctl %s %s lists an entry that is not a control: %s", flag, a.controlUnit, l)
				continue
			}
			msgs = append(msgs, l.message)
		}
		slices.Sort(msgs)
		if !slices.Equal(msgs, want) {
			t.Errorf("journalctl %s %s lists %q, want the control entries %q: the check below could not fail",
				flag, a.controlUnit, msgs, want)
		}
	}
}

// checkVictimListsNone: journalctl -u and --user-unit list none of the
// records under the victim unit. Every one is stored by now
// (checkClaimsStored), so one reading is the answer.
func (a *attributionRun) checkVictimListsNone(t *testing.T) {
	t.Helper()
	for _, flag := range []string{"-u", "--user-unit"} {
		got, err := unitEntries(flag, a.victim)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range got {
			t.Errorf("journalctl %s %s lists an entry of %s: %s", flag, a.victim, l.ident, l)
		}
	}
}

// unitLine is one line of journalctl -o json output: an entry, or
// whatever else journalctl printed, which counts as one all the same.
type unitLine struct {
	raw            string
	ident, message string
}

func (l unitLine) String() string {
	if l.message == "" && l.ident == "" {
		return fmt.Sprintf("%q", l.raw)
	}
	return fmt.Sprintf("MESSAGE=%q", l.message)
}

// unitEntries runs journalctl FLAG UNIT (-u or --user-unit) as a user
// looking at a unit's log would, and returns one unitLine per line of its
// output. journalctl exits 0 or 1 when nothing matches, by version.
func unitEntries(flag, unit string) ([]unitLine, error) {
	cmd := exec.Command("journalctl", flag, unit, "-o", "json", "--all", "--no-pager", "--quiet")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			return nil, fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
		}
	}
	var lines []unitLine
	for _, raw := range strings.Split(stdout.String(), "\n") {
		if strings.TrimSpace(raw) == "" {
			continue
		}
		l := unitLine{raw: raw}
		if e, derr := testutil.DecodeJournalEntry([]byte(raw), []string{"MESSAGE", "SYSLOG_IDENTIFIER"}); derr == nil {
			l.message, _ = e.Value("MESSAGE")
			l.ident, _ = e.Value("SYSLOG_IDENTIFIER")
		}
		lines = append(lines, l)
	}
	return lines, nil
}
