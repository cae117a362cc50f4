// Package journaltest is a stand-in for systemd-journald's native-protocol
// socket, for testing code that logs to the journal without a journald:
// point the code under test at Server.Path instead of
// /run/systemd/journal/socket (newstyle.Options.SocketPath,
// journal.WriterOptions.SocketPath) and read back what journald would
// have stored.
//
// A Server binds a datagram socket in t.TempDir() (NewServer) or at a
// path of your choice (NewServerAt, Listen) and reads it as journald
// does (src/journal/journald-native.c). It stores what journald stores,
// and wherever journald would silently skip, drop or mis-read input, it
// also records an error that says what journald does there, so that a
// test fails instead of losing log lines in production without a trace.
// Assert Err() == nil at the end of a test.
//
// # What a Server stores, and what it reports
//
// The rules for a datagram are the same in every journald from 252 on,
// but the last:
//
//   - A line with an invalid field name, and a line starting with '.' or
//     '#', is skipped; the rest of the entry is stored. Err says which
//     line.
//   - A binary field whose length or value runs past the end of the
//     datagram, or whose value is not followed by a newline, and bytes
//     after the last newline, end the datagram: the fields before them
//     are stored as an entry, nothing after them is read.
//   - An entry with a field over DataSizeMax, over EntrySizeMax in all,
//     or with a field after EntryFieldCountMax+1 (1025) fields, is
//     dropped whole, and nothing more of the datagram is read. An entry of
//     1025 fields is stored.
//   - An entry with no valid field (an empty line where an entry should
//     start, or only skipped lines) stores nothing and ends the datagram.
//   - An identical NAME=value pair is stored once per entry.
//   - journald 253 and later read nothing more of a datagram (or passed
//     file) after an entry with a MESSAGE field: of several entries with
//     MESSAGE in one datagram only the first is stored. (Since 253 the
//     check of a unit's LogFilterPatterns= returns "keep" as the entry's
//     result, which ends the loop.) The default rules apply it, as do
//     Version(253) and later.
//
// Err reports each of these but the identical pairs, which lose no value;
// a Server's entries hold each identical pair once. journald keeps no order among a
// field's values, so neither do Entry's accessors: see Entry.
//
// Files passed by descriptor (entries too large for a datagram) are where
// versions differ. journald 252 takes a memfd as sealed only with exactly
// the seals SHRINK|GROW|WRITE|SEAL; 254 and later with at least
// SHRINK|GROW|WRITE. A sender that is not root must pass a sealed memfd
// or a file directly in /dev/shm, /tmp or /var/tmp; root may pass any
// regular file. 256 and later ignore a descriptor with status flags
// besides the access mode (O_NONBLOCK, O_APPEND, ...). 257 and later take
// at most 32 MiB (16 MiB unsealed) from a sender that is not root.
// Version chooses the journald a Server models; by default it applies
// the rules of every version at once, and two of its own, for root too: a
// memfd must be sealed with exactly SHRINK|GROW|WRITE|SEAL, and any other
// file must be unlinked and directly in /dev/shm. Tests run as root see
// root's limits: run them as the service's user to check its.
//
// A Server does not add the trusted fields journald adds (_PID, _UID,
// _TRANSPORT, ...), nor does it rate-limit or filter by priority as
// journald does for a unit's processes.
//
// Entries come back as Entry values with Get, All and Count to read them;
// Wait waits for n of them. Entries passed in a file are read from it and
// say so (Received.ViaFD, Received.Sealed). Pause makes the Server stop
// reading, as a stalled journald does (its queue fills and senders wait or
// time out); Resume reads again; Close makes it vanish, as a stopped
// journald does (senders get ECONNREFUSED or ENOENT), and NewServerAt at
// the same path brings it back.
//
// Parse and Encode are the parser and a reference encoder on their own,
// for fuzz tests of an encoder: Parse shows the wire, each pair as sent.
//
// # Systems
//
// Linux: everything above; the Server learns whether a sender is root from
// the socket's credentials (SO_PASSCRED), as journald does.
//
// macOS, FreeBSD and the other BSDs: a Server reads datagrams by the same
// rules, but not passed files (memfds and journald's rules for them are
// Linux's): a datagram with descriptors is recorded as an error. Their
// datagrams are small by default (net.local.dgram.maxdgram: a few KiB),
// so a client may need to raise its SO_SNDBUF.
//
// Windows has no unix datagram sockets: Listen returns an error matching
// errors.ErrUnsupported and NewServer skips the test. Parse, Encode and
// the entry types work on every system.
package journaltest
