package service

import "context"

// On FreeBSD there is no org.freedesktop.LogControl1: the D-Bus library
// it is built on (github.com/godbus/dbus/v5 v5.1.0, the version
// go-systemd requires) does not build there, and no systemd would call
// it. Options.BusName and NEWSTYLE_BUS_NAME are then reported once and
// otherwise ignored.

// startLogControl says once that the log level and target cannot be
// changed at run time, and serves nothing.
func (s *Service) startLogControl(context.Context) (stop func()) {
	if s.busName != "" {
		s.logger.Warn("service: org.freedesktop.LogControl1 is not built on FreeBSD; the log level and target cannot be changed at run time",
			"bus_name", s.busName)
	}
	return func() {}
}
