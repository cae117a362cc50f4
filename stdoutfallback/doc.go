// Package stdoutfallback is a log/slog handler that writes one line per
// record, prefixed with the record's syslog priority as "<N>", for when
// journald's native socket cannot be reached (see package journal): a
// service's stdout under systemd, systemd-cat, or a terminal.
//
// systemd's stdout stream reads a leading "<N>" (0 emerg … 7 debug, see
// sd-daemon(3)) as the entry's PRIORITY and makes one journal entry of
// each line. So Handler writes each record as exactly one line, whatever
// its content: newlines and other control characters are escaped, and no
// content can start a line or forge a priority. The attributes follow the
// message in logfmt style, "key=value", as slog.TextHandler writes them.
//
//	<3>payment declined order=A-1042 reason="card \"expired\"" took=1.5s
//
// The journal's structure (one field per attribute, a stack trace in a
// field of its own, values byte for byte) is not kept: journald stores the
// whole line as MESSAGE. Prefer package journal wherever its socket is
// there; this package is the fallback.
package stdoutfallback
