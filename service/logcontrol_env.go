package service

import (
	"os"
	"strings"
	"time"
)

// EnvBusName is the environment variable that gives the program the D-Bus
// name to serve org.freedesktop.LogControl1 under, the unit's BusName=:
//
//	[Service]
//	BusName=org.example.Shop1
//	Environment=NEWSTYLE_BUS_NAME=org.example.Shop1
//
// When set, it overrides Options.BusName.
const EnvBusName = "NEWSTYLE_BUS_NAME"

// EnvDebugInvocation is the environment variable with which systemd asks
// for debug logging: it sets DEBUG_INVOCATION=1 when it restarts a failed
// unit with RestartMode=debug (systemd 257+), and an operator may set it
// in a drop-in. Run then starts the logger at slog.LevelDebug.
const EnvDebugInvocation = "DEBUG_INVOCATION"

// busTimeout bounds each exchange with the bus daemon: connecting and
// taking the name at start, asking who a caller is. A bus that does not
// answer in time is treated as no bus. A variable for the tests.
var busTimeout = 5 * time.Second

// busName returns the name to serve LogControl1 under: the environment's,
// else the option's.
func busName(opts Options) string {
	if name := os.Getenv(EnvBusName); name != "" {
		return name
	}
	return opts.BusName
}

// debugInvocation reports whether DEBUG_INVOCATION asks for debug
// logging: a boolean as systemd parses one (1, yes, y, true, t, on, in
// any case).
func debugInvocation() bool {
	switch strings.ToLower(os.Getenv(EnvDebugInvocation)) {
	case "1", "yes", "y", "true", "t", "on":
		return true
	}
	return false
}
