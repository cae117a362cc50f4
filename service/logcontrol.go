//go:build !freebsd

package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/newstyle-go/newstyle"
	"github.com/newstyle-go/newstyle/journal"
)

// The D-Bus names of the interface and of the errors it answers with, as
// systemd's own services (src/shared/bus-log-control-api.c and sd-bus)
// answer.
const (
	logControlPath      = dbus.ObjectPath("/org/freedesktop/LogControl1")
	logControlInterface = "org.freedesktop.LogControl1"
	propertiesInterface = "org.freedesktop.DBus.Properties"
	introspectInterface = "org.freedesktop.DBus.Introspectable"

	errInvalidArgs      = "org.freedesktop.DBus.Error.InvalidArgs"
	errAccessDenied     = "org.freedesktop.DBus.Error.AccessDenied"
	errUnknownProperty  = "org.freedesktop.DBus.Error.UnknownProperty"
	errUnknownInterface = "org.freedesktop.DBus.Error.UnknownInterface"
	errPropertyReadOnly = "org.freedesktop.DBus.Error.PropertyReadOnly"
	errFailed           = "org.freedesktop.DBus.Error.Failed"
)

// privilegedUID is the one user allowed to set the properties: root, as
// for systemd's own services. The tests, not run as root, change it.
var privilegedUID uint32 = 0

// unsupportedTargets are systemd's log targets that newstyle does not
// write to; the others it reads with newstyle.ParseTarget.
var unsupportedTargets = map[string]bool{
	"kmsg": true, "syslog": true, "journal-or-kmsg": true, "syslog-or-kmsg": true, "console-prefixed": true,
}

// systemdTarget is the LogTarget value, systemd's name, of a target:
// systemd calls a service's stdout "console".
func systemdTarget(t newstyle.Target) string {
	if t == newstyle.TargetStdout {
		return "console"
	}
	return t.String()
}

// logControl serves org.freedesktop.LogControl1 for Run's logger.
type logControl struct {
	conn    *dbus.Conn
	name    string
	close   context.CancelFunc // ends conn's context
	logger  *slog.Logger       // Run's, for the records of each change
	handler *newstyle.Handler  // its handler, shared by every logger derived from it
	level   *slog.LevelVar     // its level
	ident   string             // SyslogIdentifier

	mu sync.Mutex // one change at a time, each logged with the value it replaced
	// auto: the target is chosen automatically (at start, or since a Set
	// of auto), and LogTarget reads "auto", as systemd's services read.
	auto bool
}

// startLogControl serves LogControl1, when there is a bus name, beside
// the program's function, which starts at once: Ready waits for it
// (busDone). It returns what Run calls on its way out, which gives the
// name back. A stop (ctx ending) while the bus is still being set up ends
// the setting up, rather than wait for a bus that does not answer.
func (s *Service) startLogControl(ctx context.Context) (stop func()) {
	if s.busName == "" {
		return func() {}
	}
	h, ok := s.logger.Handler().(*newstyle.Handler)
	if !ok {
		return func() {}
	}
	var lc *logControl
	s.busDone = make(chan struct{})
	go func() {
		defer close(s.busDone)
		lc = s.connectLogControl(ctx, s.busName, h)
	}()
	return func() {
		<-s.busDone // within busTimeout, or at once after ctx ended
		if lc != nil {
			lc.stop()
		}
	}
}

// connectLogControl connects to the system bus, takes name and serves
// LogControl1 on it, within busTimeout, or until stop ends. Whatever goes
// wrong is logged once and leaves the program as it is: it returns nil
// then.
func (s *Service) connectLogControl(stop context.Context, name string, h *newstyle.Handler) *logControl {
	lc, err := serveLogControl(stop, name, s.logger, h, s.level, s.ident, !h.Detection().Forced)
	switch {
	case stop.Err() != nil && err != nil:
		// Stopping: nothing left to change at run time.
		s.logger.Debug("service: stopped before org.freedesktop.LogControl1 was served", "bus_name", name, "err", err)
	case err == nil:
		s.logger.Info("service: serving org.freedesktop.LogControl1 on the system bus: systemctl service-log-level and service-log-target reach this program",
			"bus_name", name)
		return lc
	case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED):
		// No system bus, as outside systemd or in a minimal container:
		// not the program's concern.
		s.logger.Info("service: no system bus; the log level and target cannot be changed at run time",
			"bus_name", name, "err", err)
	default:
		s.logger.Warn("service: cannot serve org.freedesktop.LogControl1; the log level and target cannot be changed at run time",
			"bus_name", name, "err", err)
	}
	return nil
}

// serveLogControl sets up LogControl1 on the system bus, within
// busTimeout, and unless stop ends first.
func serveLogControl(stop context.Context, name string, logger *slog.Logger, h *newstyle.Handler, level *slog.LevelVar, ident string, auto bool) (*logControl, error) {
	// The connection lives as long as ctx; ctx is cancelled if setting
	// up takes longer than busTimeout, or if stop ends meanwhile, which
	// ends any call under way. Once set up, the connection outlives stop:
	// the interface is served until Run returns.
	ctx, cancel := context.WithCancel(context.Background())
	timer := time.AfterFunc(busTimeout, cancel)
	stopped := context.AfterFunc(stop, cancel)
	fail := func(err error) (*logControl, error) {
		cancel()
		stopped()
		if !timer.Stop() {
			err = fmt.Errorf("no answer within %v: %w", busTimeout, err)
		}
		return nil, err
	}
	conn, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return fail(fmt.Errorf("connecting to the system bus: %w", err))
	}
	lc := &logControl{conn: conn, name: name, close: cancel, logger: logger, handler: h, level: level, ident: ident, auto: auto}
	// Served before the name is taken, so that no call to it finds
	// nothing there.
	for _, o := range []struct {
		v     any
		path  dbus.ObjectPath
		iface string
	}{
		{properties{lc}, logControlPath, propertiesInterface},
		{introspectable(logControlXML), logControlPath, introspectInterface},
		{introspectable(nodeXML("org")), "/", introspectInterface},
		{introspectable(nodeXML("freedesktop")), "/org", introspectInterface},
		{introspectable(nodeXML("LogControl1")), "/org/freedesktop", introspectInterface},
	} {
		if err := conn.Export(o.v, o.path, o.iface); err != nil {
			return fail(err)
		}
	}
	reply, err := conn.RequestName(name, dbus.NameFlagDoNotQueue)
	if err != nil {
		return fail(fmt.Errorf("taking the name %s: %w", name, err))
	}
	if reply != dbus.RequestNameReplyPrimaryOwner {
		return fail(fmt.Errorf("taking the name %s: another connection owns it", name))
	}
	if !stopped() {
		return fail(errors.New("the program is stopping"))
	}
	if !timer.Stop() {
		// The name came, but too late: the connection is being closed.
		return fail(errors.New("the name came too late"))
	}
	return lc, nil
}

// stop gives the name back and leaves the bus. The name is released
// first, and the bus's answer awaited (within busTimeout), so that once
// Run has returned no caller finds the program there.
func (lc *logControl) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
	defer cancel()
	_ = lc.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.ReleaseName", 0, lc.name).Err
	lc.close()
	_ = lc.conn.Close()
}

func (lc *logControl) get(prop string) (dbus.Variant, *dbus.Error) {
	switch prop {
	case "LogLevel":
		return dbus.MakeVariant(journal.LevelPriority(lc.level.Level()).String()), nil
	case "LogTarget":
		lc.mu.Lock()
		defer lc.mu.Unlock()
		if lc.auto {
			return dbus.MakeVariant("auto"), nil
		}
		return dbus.MakeVariant(systemdTarget(lc.handler.Target())), nil
	case "SyslogIdentifier":
		return dbus.MakeVariant(lc.ident), nil
	}
	return dbus.Variant{}, dbusError(errUnknownProperty, "Unknown property '%s'", prop)
}

// set changes a property for sender: root alone may.
func (lc *logControl) set(sender dbus.Sender, prop string, value dbus.Variant) *dbus.Error {
	switch prop {
	case "LogLevel", "LogTarget":
	case "SyslogIdentifier":
		return dbusError(errPropertyReadOnly, "Property '%s' is not writable", prop)
	default:
		return dbusError(errUnknownProperty, "Unknown property '%s'", prop)
	}
	uid, derr := lc.callerUID(sender)
	if derr != nil {
		return derr
	}
	if uid != privilegedUID {
		return dbusError(errAccessDenied, "Only root may set %s (the caller's uid is %d)", prop, uid)
	}
	v, ok := value.Value().(string)
	if !ok {
		return dbusError(errInvalidArgs, "%s is a string, not %s", prop, value.Signature())
	}
	by := []slog.Attr{slog.String("sender", string(sender)), slog.Uint64("uid", uint64(uid))}
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if prop == "LogLevel" {
		return lc.setLevel(v, by)
	}
	return lc.setTarget(v, by)
}

func (lc *logControl) setLevel(v string, by []slog.Attr) *dbus.Error {
	p, err := journal.ParsePriority(v)
	if err != nil {
		return dbusError(errInvalidArgs, "Invalid log level '%s'", v)
	}
	was := journal.LevelPriority(lc.level.Level()).String()
	// Logged before the change, as systemd's services do, and past the
	// level: the change is recorded whichever way it goes.
	lc.announce("service: log level set to "+p.String(),
		append(by, slog.String("log_level", p.String()), slog.String("previous", was)))
	lc.level.Set(newstyle.PriorityLevel(p))
	return nil
}

func (lc *logControl) setTarget(v string, by []slog.Attr) *dbus.Error {
	t, err := newstyle.ParseTarget(v)
	if err != nil {
		if unsupportedTargets[v] {
			return dbusError(errInvalidArgs, "Log target '%s' is not supported: journal, console, null or auto", v)
		}
		return dbusError(errInvalidArgs, "Invalid log target '%s'", v)
	}
	was := systemdTarget(lc.handler.Target())
	if lc.auto {
		was = "auto (" + was + ")"
	}
	attrs := append(by, slog.String("log_target", v), slog.String("previous", was))
	if t == newstyle.TargetNull {
		// Before the change, as systemd's services log it, or it would
		// not be logged at all.
		lc.announce("service: log target set to null", attrs)
	}
	d, err := lc.handler.SetTarget(t)
	if err != nil {
		lc.logger.LogAttrs(context.Background(), slog.LevelError, "service: cannot set the log target; it is unchanged",
			append(attrs, slog.Any("err", err))...)
		return dbusError(errFailed, "Cannot log to %s: %v", v, err)
	}
	lc.auto = t == newstyle.TargetAuto
	switch t {
	case newstyle.TargetNull:
	case newstyle.TargetAuto:
		// After the change: the first record where records go now.
		lc.announce("service: log target set to auto: "+systemdTarget(d.Target),
			append(attrs, slog.String("reason", d.Reason)))
	default:
		lc.announce("service: log target set to "+v, attrs)
	}
	return nil
}

// announce logs a change at notice, whatever the level: it is the record
// of what the operator did.
func (lc *logControl) announce(msg string, attrs []slog.Attr) {
	r := slog.NewRecord(time.Now(), newstyle.LevelNotice, msg, 0)
	r.AddAttrs(attrs...)
	_ = lc.logger.Handler().Handle(context.Background(), r)
}

// callerUID asks the bus daemon which user sender runs as: the bus
// vouches for it (SO_PEERCRED), the caller cannot forge it.
func (lc *logControl) callerUID(sender dbus.Sender) (uint32, *dbus.Error) {
	ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
	defer cancel()
	var uid uint32
	err := lc.conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.GetConnectionUnixUser", 0, string(sender)).Store(&uid)
	if err != nil {
		return 0, dbusError(errAccessDenied, "Cannot tell who is asking: %v", err)
	}
	return uid, nil
}

func dbusError(name, format string, args ...any) *dbus.Error {
	return dbus.NewError(name, []any{fmt.Sprintf(format, args...)})
}

// properties is org.freedesktop.DBus.Properties on the LogControl1 object,
// written out rather than taken from godbus's prop package so that Set
// knows who is asking.
type properties struct{ lc *logControl }

// checkInterface accepts LogControl1's name, or none (the D-Bus
// specification allows an empty interface name).
func checkInterface(iface string) *dbus.Error {
	if iface != logControlInterface && iface != "" {
		return dbusError(errUnknownInterface, "Unknown interface '%s'", iface)
	}
	return nil
}

func (p properties) Get(iface, prop string) (dbus.Variant, *dbus.Error) {
	if err := checkInterface(iface); err != nil {
		return dbus.Variant{}, err
	}
	return p.lc.get(prop)
}

func (p properties) GetAll(iface string) (map[string]dbus.Variant, *dbus.Error) {
	if err := checkInterface(iface); err != nil {
		return nil, err
	}
	all := make(map[string]dbus.Variant, 3)
	for _, prop := range []string{"LogLevel", "LogTarget", "SyslogIdentifier"} {
		all[prop], _ = p.lc.get(prop)
	}
	return all, nil
}

func (p properties) Set(sender dbus.Sender, iface, prop string, value dbus.Variant) *dbus.Error {
	if err := checkInterface(iface); err != nil {
		return err
	}
	return p.lc.set(sender, prop, value)
}

// introspectable answers Introspect with its XML.
type introspectable string

func (i introspectable) Introspect() (string, *dbus.Error) { return string(i), nil }

const introspectHeader = `<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
`

// nodeXML introspects an object on the way to LogControl1's: one child.
func nodeXML(child string) string {
	return introspectHeader + `<node>
 <interface name="org.freedesktop.DBus.Introspectable">
  <method name="Introspect"><arg name="xml" type="s" direction="out"/></method>
 </interface>
 <node name="` + child + `"/>
</node>
`
}

// logControlXML is the interface as org.freedesktop.LogControl1(5) gives
// it, with the standard interfaces the object answers.
const logControlXML = introspectHeader + `<node>
 <interface name="org.freedesktop.LogControl1">
  <property name="LogLevel" type="s" access="readwrite">
   <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="false"/>
   <annotation name="org.freedesktop.systemd1.Privileged" value="true"/>
  </property>
  <property name="LogTarget" type="s" access="readwrite">
   <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="false"/>
   <annotation name="org.freedesktop.systemd1.Privileged" value="true"/>
  </property>
  <property name="SyslogIdentifier" type="s" access="read">
   <annotation name="org.freedesktop.DBus.Property.EmitsChangedSignal" value="false"/>
  </property>
 </interface>
 <interface name="org.freedesktop.DBus.Properties">
  <method name="Get">
   <arg name="interface_name" type="s" direction="in"/>
   <arg name="property_name" type="s" direction="in"/>
   <arg name="value" type="v" direction="out"/>
  </method>
  <method name="GetAll">
   <arg name="interface_name" type="s" direction="in"/>
   <arg name="props" type="a{sv}" direction="out"/>
  </method>
  <method name="Set">
   <arg name="interface_name" type="s" direction="in"/>
   <arg name="property_name" type="s" direction="in"/>
   <arg name="value" type="v" direction="in"/>
  </method>
  <signal name="PropertiesChanged">
   <arg name="interface_name" type="s"/>
   <arg name="changed_properties" type="a{sv}"/>
   <arg name="invalidated_properties" type="as"/>
  </signal>
 </interface>
 <interface name="org.freedesktop.DBus.Introspectable">
  <method name="Introspect"><arg name="xml" type="s" direction="out"/></method>
 </interface>
 <interface name="org.freedesktop.DBus.Peer">
  <method name="Ping"/>
  <method name="GetMachineId"><arg name="machine_uuid" type="s" direction="out"/></method>
 </interface>
</node>
`
