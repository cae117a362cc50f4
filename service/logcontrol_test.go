//go:build linux

package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/internal/testutil"
	"github.com/newstyle-go/newstyle/journal"
	"github.com/newstyle-go/newstyle/journaltest"
)

// busConfig is a private bus for the tests: anyone may connect, own any
// name and call anything, so that what refuses a caller is the program's
// own check, not the bus's policy.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>newstyle-test</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// privateBus starts a dbus-daemon of the test's own and makes it the
// system bus for the test (DBUS_SYSTEM_BUS_ADDRESS). It fails the test
// when dbus-daemon cannot run: the tests of the interface need a real
// bus daemon, which checks credentials as the system bus does.
func privateBus(t *testing.T) string {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Fatalf("%v: these tests need the reference bus daemon (Debian: dbus-daemon)", err)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "bus")
	config := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(busConfig, sock)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+config, "--nofork", "--nopidfile", "--nosyslog")
	var stderr testutil.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	if !testutil.Poll(10*time.Second, 5*time.Millisecond, func() bool {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return true
		}
		select {
		case <-exited:
			t.Fatalf("dbus-daemon exited: %s", stderr.String())
		default:
		}
		return false
	}) {
		t.Fatalf("dbus-daemon did not listen within 10s: %s", stderr.String())
	}
	addr := "unix:path=" + sock
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	return addr
}

// busClient connects to the bus as a caller such as systemctl.
func busClient(t *testing.T, addr string) *dbus.Conn {
	t.Helper()
	c, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// asRoot makes the caller, whoever runs the tests, the one allowed to set
// the properties; asOther makes it any other user.
func asRoot(t *testing.T) {
	old := privilegedUID
	privilegedUID = uint32(os.Getuid())
	t.Cleanup(func() { privilegedUID = old })
}

func asOther(t *testing.T) {
	old := privilegedUID
	privilegedUID = uint32(os.Getuid()) + 1
	t.Cleanup(func() { privilegedUID = old })
}

const testBusName = "org.newstyle.Test1"

// running is a Run in progress with the service handed out.
type running struct {
	svc  *Service
	end  chan struct{}
	code <-chan int
}

// runService runs Run with opts until the test ends it (stop), after Ready.
func runService(t *testing.T, opts Options) *running {
	t.Helper()
	r := &running{end: make(chan struct{})}
	svcs := make(chan *Service, 1)
	r.code = runAsync(opts, func(ctx context.Context, svc *Service) error {
		svc.Ready("")
		svcs <- svc
		select {
		case <-r.end:
		case <-ctx.Done():
		}
		return nil
	})
	select {
	case r.svc = <-svcs:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not start the function")
	}
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	close(r.end)
	if c := wait(t, r.code); c != ExitOK {
		t.Errorf("exit status %d", c)
	}
}

func getProp(t *testing.T, o dbus.BusObject, name string) string {
	t.Helper()
	v, err := o.GetProperty(logControlInterface + "." + name)
	if err != nil {
		t.Fatalf("Get %s: %v", name, err)
	}
	s, ok := v.Value().(string)
	if !ok {
		t.Fatalf("Get %s: %v, want a string", name, v)
	}
	return s
}

func setProp(o dbus.BusObject, name string, v any) error {
	return o.Call(propertiesInterface+".Set", 0, logControlInterface, name, dbus.MakeVariant(v)).Err
}

// errName is the D-Bus error name of err, "" for none.
func errName(err error) string {
	var e dbus.Error
	if errors.As(err, &e) {
		return e.Name
	}
	var pe *dbus.Error
	if errors.As(err, &pe) {
		return pe.Name
	}
	if err != nil {
		return "not a D-Bus error: " + err.Error()
	}
	return ""
}

// The interface as systemctl service-log-level and service-log-target use
// it: Get and Set of LogLevel and LogTarget, with systemd's names, the
// changes effective for every logger derived from Run's, each logged once.
func TestLogControl(t *testing.T) {
	addr := privateBus(t)
	asRoot(t)
	t.Setenv(EnvBusName, "")
	t.Setenv("JOURNAL_STREAM", "")
	srv := journaltest.NewServer(t)
	var out testutil.Buffer
	opts := testOptions(&out)
	opts.BusName = testBusName
	opts.Log.SyslogIdentifier = "logcontrol-test"
	opts.Log.SocketPath = srv.Path()
	r := runService(t, opts)
	lc := lcClient{
		obj: busClient(t, addr).Object(testBusName, logControlPath),
		out: &out,
		// A logger derived before any change, as a program's components hold.
		component: r.svc.Logger().With("component", "db"),
	}

	lc.checkProperties(t)
	lc.checkLevels(t)
	lc.checkRefused(t)
	lc.checkTargets(t, srv, r.svc)
	lc.checkIntrospect(t)
	r.stop(t)
}

// lcClient is TestLogControl's view of a running Service: its
// LogControl1 object on the bus, its stdout, and a logger derived from its
// own before any change.
type lcClient struct {
	obj       dbus.BusObject
	out       *testutil.Buffer
	component *slog.Logger
}

// checkProperties checks the properties' values at start, one by one and
// by GetAll.
func (lc lcClient) checkProperties(t *testing.T) {
	for name, want := range map[string]string{"LogLevel": "info", "LogTarget": "console", "SyslogIdentifier": "logcontrol-test"} {
		if got := getProp(t, lc.obj, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	var all map[string]dbus.Variant
	if err := lc.obj.Call(propertiesInterface+".GetAll", 0, logControlInterface).Store(&all); err != nil || len(all) != 3 {
		t.Errorf("GetAll = %v, %v", all, err)
	}
}

// checkLevels sets LogLevel by name and by number: each change reads back
// under systemd's name, takes effect for the derived logger, and is logged
// once, at notice.
func (lc lcClient) checkLevels(t *testing.T) {
	levels := []struct {
		set, get string
		enabled  slog.Level // the lowest level logged after it
	}{
		{"debug", "debug", slog.LevelDebug},
		{"3", "err", slog.LevelError},
		{"warning", "warning", slog.LevelWarn},
		{"7", "debug", slog.LevelDebug},
		{"notice", "notice", newstyle.LevelNotice},
		{"crit", "crit", newstyle.LevelCritical},
		{"info", "info", slog.LevelInfo},
	}
	for _, tt := range levels {
		before := strings.Count(lc.out.String(), "\n")
		if err := setProp(lc.obj, "LogLevel", tt.set); err != nil {
			t.Fatalf("Set LogLevel %q: %v", tt.set, err)
		}
		if got := getProp(t, lc.obj, "LogLevel"); got != tt.get {
			t.Errorf("after Set %q: LogLevel = %q, want %q", tt.set, got, tt.get)
		}
		ctx := context.Background()
		if !lc.component.Enabled(ctx, tt.enabled) || lc.component.Enabled(ctx, tt.enabled-1) {
			t.Errorf("after Set %q: the lowest level logged is not %v", tt.set, tt.enabled)
		}
		lines := strings.Split(strings.TrimSpace(lc.out.String()), "\n")[before:]
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "<5>service: log level set to "+tt.get+" ") ||
			!strings.Contains(lines[0], " log_level="+tt.get) {
			t.Errorf("after Set %q, want one notice of it, got %q", tt.set, lines)
		}
	}
}

// checkRefused sets what systemd would not: each call is refused with the
// D-Bus error systemd's own services give, logs nothing and changes
// nothing.
func (lc lcClient) checkRefused(t *testing.T) {
	refused := []struct {
		prop    string
		value   any
		errName string
	}{
		{"LogLevel", "verbose", errInvalidArgs},
		{"LogLevel", "error", errInvalidArgs}, // slog's name, not syslog's
		{"LogLevel", "8", errInvalidArgs},
		{"LogLevel", "", errInvalidArgs},
		{"LogLevel", int32(7), errInvalidArgs},
		{"LogTarget", "kmsg", errInvalidArgs},
		{"LogTarget", "syslog", errInvalidArgs},
		{"LogTarget", "journal-or-kmsg", errInvalidArgs},
		{"LogTarget", "file", errInvalidArgs},
		{"SyslogIdentifier", "other", errPropertyReadOnly},
		{"Nothing", "x", errUnknownProperty},
	}
	before := lc.out.String()
	for _, tt := range refused {
		if err := setProp(lc.obj, tt.prop, tt.value); errName(err) != tt.errName {
			t.Errorf("Set %s %v: %v, want %s", tt.prop, tt.value, err, tt.errName)
		}
	}
	if err := lc.obj.Call(propertiesInterface+".Get", 0, "org.example.Other", "LogLevel").Err; errName(err) != errUnknownInterface {
		t.Errorf("Get of another interface: %v", err)
	}
	if after := lc.out.String(); after != before {
		t.Errorf("refused calls logged: %q", strings.TrimPrefix(after, before))
	}
	if getProp(t, lc.obj, "LogLevel") != "info" || getProp(t, lc.obj, "LogTarget") != "console" {
		t.Errorf("refused calls changed the settings")
	}
}

// checkTargets moves the logger through the targets: journal, null,
// console, auto (not under systemd: console). Each change is logged on the
// target it leaves, and the derived logger follows, its attributes kept.
func (lc lcClient) checkTargets(t *testing.T, srv *journaltest.Server, svc *Service) {
	lc.component.Info("on stdout")
	lc.setTarget(t, "journal")
	lc.component.Info("in the journal")
	entries := srv.Wait(t, 2, 10*time.Second)
	if m, _ := entries[0].Entry.Get("MESSAGE"); m != "service: log target set to journal" {
		t.Errorf("first entry %q, want the change", m)
	}
	if m, _ := entries[1].Entry.Get("MESSAGE"); m != "in the journal" {
		t.Errorf("second entry %q", m)
	}
	if c, _ := entries[1].Entry.Get("COMPONENT"); c != "db" {
		t.Errorf("COMPONENT=%q: the derived logger lost its attributes", c)
	}
	lc.setTarget(t, "null")
	lc.component.Error("nowhere")
	lc.setTarget(t, "auto")
	lc.component.Info("back on stdout")
	if got := svc.logger.Handler().(*newstyle.Handler).Target(); got != newstyle.TargetStdout {
		t.Errorf("auto outside systemd chose %v, want stdout", got)
	}
	lc.checkJournalEnds(t, srv, "service: log target set to null")
	log := lc.out.String()
	if strings.Contains(log, "nowhere") || !strings.Contains(log, "<6>on stdout component=db") ||
		!strings.Contains(log, "<5>service: log target set to auto: console ") || !strings.Contains(log, " previous=null reason=") ||
		!strings.Contains(log, "<6>back on stdout component=db") {
		t.Errorf("log:\n%s", log)
	}
}

// setTarget sets LogTarget, and checks that it reads back (auto as auto,
// as systemd's services read).
func (lc lcClient) setTarget(t *testing.T, target string) {
	t.Helper()
	if err := setProp(lc.obj, "LogTarget", target); err != nil {
		t.Fatalf("Set LogTarget %q: %v", target, err)
	}
	if got := getProp(t, lc.obj, "LogTarget"); got != target {
		t.Errorf("after Set %q: LogTarget = %q", target, got)
	}
}

// checkJournalEnds checks that the journal's last entry so far is last:
// the server reads its socket on a goroutine of its own, so a sentinel sent
// after every record marks where the entries of the test end, and nothing
// sent to the journal by mistake can arrive after the check.
func (lc lcClient) checkJournalEnds(t *testing.T, srv *journaltest.Server, last string) {
	t.Helper()
	w := testutil.Open(t, func() (*journal.Writer, error) {
		return journal.NewWriter(&journal.WriterOptions{SocketPath: srv.Path()})
	})
	if err := w.Send("sentinel", journal.PriInfo); err != nil {
		t.Fatal(err)
	}
	entries := srv.Wait(t, 4, 10*time.Second)
	var msgs []string
	for _, e := range entries {
		m, _ := e.Entry.Get("MESSAGE")
		msgs = append(msgs, m)
	}
	if len(msgs) != 4 || msgs[2] != last || msgs[3] != "sentinel" {
		t.Errorf("journal entries %q, want 3 (the change to the journal, the record, %q), then the sentinel", msgs, last)
	}
}

// checkIntrospect checks that Introspect describes the properties as
// systemctl reads them.
func (lc lcClient) checkIntrospect(t *testing.T) {
	var xml string
	if err := lc.obj.Call(introspectInterface+".Introspect", 0).Store(&xml); err != nil || !strings.Contains(xml, `<property name="LogLevel" type="s" access="readwrite">`) {
		t.Errorf("Introspect: %v\n%s", err, xml)
	}
}

// Setting is for root alone, checked with the bus daemon from the
// caller's credentials; reading is for anyone.
func TestLogControlDeniesOthers(t *testing.T) {
	addr := privateBus(t)
	asOther(t)
	t.Setenv(EnvBusName, "")
	var out testutil.Buffer
	opts := testOptions(&out)
	opts.BusName = testBusName
	r := runService(t, opts)
	obj := busClient(t, addr).Object(testBusName, logControlPath)
	before := out.String()
	for _, set := range [][2]string{{"LogLevel", "debug"}, {"LogTarget", "null"}} {
		err := setProp(obj, set[0], set[1])
		if errName(err) != errAccessDenied {
			t.Errorf("Set %s by uid %d: %v, want %s", set[0], os.Getuid(), err, errAccessDenied)
		}
	}
	if getProp(t, obj, "LogLevel") != "info" || getProp(t, obj, "LogTarget") != "console" {
		t.Errorf("a refused caller changed the settings")
	}
	if r.svc.Logger().Enabled(context.Background(), slog.LevelDebug) {
		t.Errorf("debug enabled by a refused caller")
	}
	if after := out.String(); after != before {
		t.Errorf("refused calls logged: %q", strings.TrimPrefix(after, before))
	}
	r.stop(t)
}

// The name is held while the program runs, and given back when it ends.
func TestLogControlNameLifetime(t *testing.T) {
	addr := privateBus(t)
	t.Setenv(EnvBusName, testBusName) // the environment's, over the option's
	var out testutil.Buffer
	opts := testOptions(&out)
	opts.BusName = "org.newstyle.NotThisOne"
	r := runService(t, opts)
	client := busClient(t, addr)
	hasOwner := func(name string) bool {
		var ok bool
		if err := client.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// Ready returned: the name is taken.
	if !hasOwner(testBusName) || hasOwner(opts.BusName) {
		t.Errorf("after Ready: %s owned %v, %s owned %v", testBusName, hasOwner(testBusName), opts.BusName, hasOwner(opts.BusName))
	}
	if !strings.Contains(out.String(), "<6>service: serving org.freedesktop.LogControl1 on the system bus") {
		t.Errorf("log:\n%s", out.String())
	}
	r.stop(t)
	if hasOwner(testBusName) {
		t.Errorf("the name is still owned after Run returned")
	}
}

// Nothing fails, nothing changes without a bus, with a name another
// connection holds, or with a bus that does not answer: one line says
// so, and Ready is not held up for longer than busTimeout.
func TestLogControlUnavailable(t *testing.T) {
	old := busTimeout
	busTimeout = 300 * time.Millisecond
	t.Cleanup(func() { busTimeout = old })
	t.Setenv(EnvBusName, "")

	tests := []struct {
		name string
		bus  func(t *testing.T) // sets DBUS_SYSTEM_BUS_ADDRESS
		want string
	}{
		{"no bus", func(t *testing.T) {
			t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "none"))
		}, "<6>service: no system bus; the log level and target cannot be changed at run time bus_name=" + testBusName},
		{"name taken", func(t *testing.T) {
			c := busClient(t, privateBus(t))
			if reply, err := c.RequestName(testBusName, dbus.NameFlagDoNotQueue); err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
				t.Fatal(reply, err)
			}
		}, "<4>service: cannot serve org.freedesktop.LogControl1; the log level and target cannot be changed at run time bus_name=" + testBusName + " err=\"taking the name " + testBusName + ": another connection owns it\""},
		{"bus does not answer", muteBus, "<4>service: cannot serve org.freedesktop.LogControl1; the log level and target cannot be changed at run time bus_name=" + testBusName + " err=\"no answer within 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.bus(t)
			var out testutil.Buffer
			opts := testOptions(&out)
			opts.BusName = testBusName
			start := time.Now()
			r := runService(t, opts)
			if d := time.Since(start); d > busTimeout+time.Second {
				t.Errorf("Ready took %v, more than busTimeout", d)
			}
			r.svc.Logger().Info("still logging")
			r.stop(t)
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], tt.want) || lines[1] != "<6>still logging" {
				t.Errorf("log:\n%s\nwant one line starting %q, then the program's", out.String(), tt.want)
			}
		})
	}
}

// Without a name, Run does not go near a bus, and says nothing about one.
func TestLogControlWithoutName(t *testing.T) {
	addr := privateBus(t)
	t.Setenv(EnvBusName, "")
	var out testutil.Buffer
	r := runService(t, testOptions(&out))
	var names []string
	if err := busClient(t, addr).BusObject().Call("org.freedesktop.DBus.ListNames", 0).Store(&names); err != nil {
		t.Fatal(err)
	}
	// The bus itself and the test's own connection.
	if len(names) != 2 {
		t.Errorf("names on the bus: %q", names)
	}
	if r.svc.busDone != nil {
		t.Errorf("Run set up a bus connection")
	}
	r.stop(t)
	if out.String() != "" {
		t.Errorf("log:\n%s", out.String())
	}
}

func TestParseLogLevel(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int // -1: refused
	}{
		{"emerg", 0}, {"alert", 1}, {"crit", 2}, {"err", 3}, {"warning", 4}, {"notice", 5}, {"info", 6}, {"debug", 7},
		{"0", 0}, {"7", 7}, {"8", -1}, {"-1", -1}, {"07", -1}, {"+7", -1}, {"DEBUG", -1}, {"warn", -1}, {"error", -1}, {"", -1},
	} {
		p, err := journal.ParsePriority(tt.in)
		if got := map[bool]int{true: int(p), false: -1}[err == nil]; got != tt.want {
			t.Errorf("journal.ParsePriority(%q) = %d, %v; want %d", tt.in, p, err, tt.want)
		}
	}
}

// DEBUG_INVOCATION, read as systemd reads a boolean, starts the logger at
// debug level; the logger's level is a LevelVar: the program's own, when
// it gave one, which LogLevel then sets.
func TestDebugInvocation(t *testing.T) {
	t.Setenv(EnvBusName, "")
	for _, tt := range []struct {
		env   string
		level slog.Leveler
		want  slog.Level
	}{
		{"", nil, slog.LevelInfo},
		{"1", nil, slog.LevelDebug},
		{"yes", slog.LevelWarn, slog.LevelDebug},
		{"TRUE", nil, slog.LevelDebug},
		{"on", nil, slog.LevelDebug},
		{"0", slog.LevelWarn, slog.LevelWarn},
		{"no", nil, slog.LevelInfo},
		{"2", nil, slog.LevelInfo},
		{"1", slog.Level(-8), slog.Level(-8)}, // already finer than debug
	} {
		t.Run(fmt.Sprintf("%s=%q level %v", EnvDebugInvocation, tt.env, tt.level), func(t *testing.T) {
			t.Setenv(EnvDebugInvocation, tt.env)
			var out testutil.Buffer
			opts := testOptions(&out)
			opts.Log.Level = tt.level
			var got slog.Level
			Run(&opts, func(ctx context.Context, svc *Service) error {
				got = svc.level.Level()
				return nil
			})
			if got != tt.want {
				t.Errorf("level %v, want %v", got, tt.want)
			}
			said := strings.Contains(out.String(), "<7>service: DEBUG_INVOCATION is set: logging at debug level")
			if said != (tt.want <= slog.LevelDebug) {
				t.Errorf("log:\n%s", out.String())
			}
		})
	}

	var v slog.LevelVar
	v.Set(slog.LevelWarn)
	t.Setenv(EnvDebugInvocation, "1")
	var out testutil.Buffer
	opts := testOptions(&out)
	opts.Log.Level = &v
	Run(&opts, func(ctx context.Context, svc *Service) error {
		if svc.level != &v {
			t.Errorf("Run did not take the program's LevelVar")
		}
		return nil
	})
	if v.Level() != slog.LevelDebug {
		t.Errorf("the program's LevelVar is at %v", v.Level())
	}
}

// ExtendTimeout sends EXTEND_TIMEOUT_USEC in whole microseconds, rounded
// up; the watchdog is fed meanwhile, during a start that has not said
// Ready yet.
func TestExtendTimeout(t *testing.T) {
	n := newNotifySocket(t)
	t.Setenv("WATCHDOG_USEC", "40000") // a round every 20 ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	rounds := watchRounds(t, nil)
	var out testutil.Buffer
	code := runAsync(testOptions(&out), func(ctx context.Context, svc *Service) error {
		for _, d := range []time.Duration{90 * time.Second, 1500 * time.Millisecond, time.Nanosecond} {
			if err := svc.ExtendTimeout(d); err != nil {
				t.Error(err)
			}
		}
		for _, d := range []time.Duration{0, -time.Second} {
			if err := svc.ExtendTimeout(d); err == nil {
				t.Errorf("ExtendTimeout(%v) = nil, want an error", d)
			}
		}
		// A slow start: the watchdog is fed before Ready.
		for fed := 0; fed < 3; {
			if rounds.next(t).fed {
				fed++
			}
		}
		svc.Ready("")
		return nil
	})
	if c := wait(t, code); c != ExitOK {
		t.Fatalf("exit status %d:\n%s", c, out.String())
	}
	msgs := n.settle(t)
	var got []string
	pings := 0
	for _, m := range msgs {
		if m == "READY=1" {
			break
		}
		if m == "WATCHDOG=1" {
			pings++
		} else {
			got = append(got, m)
		}
	}
	want := []string{"EXTEND_TIMEOUT_USEC=90000000", "EXTEND_TIMEOUT_USEC=1500000", "EXTEND_TIMEOUT_USEC=1"}
	if !equal(got, want) {
		t.Errorf("notifications before READY=1: %q, want %q", got, want)
	}
	if pings < 3 {
		t.Errorf("%d watchdog pings before READY=1, want 3: %q", pings, msgs)
	}

	t.Setenv("NOTIFY_SOCKET", "")
	Run(ptr(testOptions(&out)), func(ctx context.Context, svc *Service) error {
		if err := svc.ExtendTimeout(time.Second); err != nil {
			t.Errorf("outside systemd: %v", err)
		}
		return nil
	})
}

// LogTarget reads auto when NewHandler chose by itself, as systemd's
// services read auto until told otherwise.
func TestStartsAuto(t *testing.T) {
	for _, tt := range []struct {
		env  string
		opts *newstyle.Options
		want bool
	}{
		{"", nil, true},
		{"", &newstyle.Options{}, true},
		{"auto", &newstyle.Options{}, true},
		{"", &newstyle.Options{Target: newstyle.TargetJournal}, false},
		{"", &newstyle.Options{Target: newstyle.TargetStdout}, false},
		{"Journal", &newstyle.Options{}, false},
		{"stdout", nil, false},
		{"typo", nil, true},
	} {
		t.Setenv(newstyle.EnvTarget, tt.env)
		h := newstyle.NewHandler(tt.opts)
		if got := !h.Detection().Forced; got != tt.want {
			t.Errorf("%s=%q, %+v: chosen automatically = %v", newstyle.EnvTarget, tt.env, tt.opts, got)
		}
		h.Close()
	}
}
