// Package bench compares journal.Writer with other Go clients of journald's
// native protocol, journal.Handler with slog-journal's slog.Handler, and
// both with the bare system call, on one workload. It is a
// module of its own so that users of github.com/newstyle-go/newstyle never
// pull the clients it is compared with.
//
// Everything is in the tests: see README.md for how to run them. They bind a
// socket at /run/systemd/journal/socket (the other clients hard-code that
// path), so they refuse to run unless NEWSTYLE_PRIVATE_NS=1 says that they
// are in a private mount namespace with a tmpfs on /run/systemd, as
// scripts/private-ns.sh makes.
package bench
