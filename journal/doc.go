// Package journal is a client of systemd-journald's native protocol: it
// sends structured log entries straight to the journal's datagram socket,
// /run/systemd/journal/socket, one entry per call, with real fields.
//
// The protocol is described at https://systemd.io/JOURNAL_NATIVE_PROTOCOL/.
// In short, an entry is a list of fields. A field whose value holds no
// newline is sent as
//
//	NAME=value\n
//
// and any other value in the binary form
//
//	NAME\n<64-bit little-endian length><value bytes>\n
//
// so values are binary-safe: newlines, NUL bytes and invalid UTF-8 arrive
// byte for byte and nothing is escaped. An entry that is too large for one
// datagram is written to a sealed memfd whose descriptor is passed instead.
//
// # Writer
//
// [Writer] is the low-level sender. It is strict: every field name is
// checked before anything is sent, and an entry with an invalid name is
// refused whole with [ErrInvalidFieldName]. The Writers of a process that
// send to the same path share one unconnected datagram socket: a Writer
// takes its share at its first send (one that never sends, such as a
// logger writing to stdout, holds no descriptor) and gives it back at
// Close, and the last Writer to give it back closes it. Every send names
// the journal's socket, so a journald that restarts is found again without
// reconnecting.
// A failed send is returned as an error that matches one of the exported
// sentinels with [errors.Is] and is counted in [Writer.Stats]: no entry is
// lost without a trace.
//
// WriterOptions and AsyncOptions follow the module's one rule for options
// (package newstyle, "Options"): zero means the default, and a negative
// timeout or Linger means none.
//
// # Handler
//
// [Handler] is a [log/slog.Handler] on a Writer: each record becomes one
// entry with MESSAGE, PRIORITY (mapped from any slog level), the record's
// attributes as fields, and stack traces in a TRACEBACK field of their
// own. It is forgiving where the Writer is strict: attribute keys are made
// valid field names by one documented rule (see Handler). Most programs
// get one through the root package, newstyle.NewLogger, which also falls
// back to stdout when journald cannot be reached.
//
// # Field names
//
// journald accepts a field name of 1 to 64 characters from A–Z, 0–9 and
// '_', not starting with a digit or '_' (names starting with '_' are the
// trusted fields journald adds itself, such as _PID and _TRANSPORT).
// [ValidFieldName] applies that rule.
package journal
