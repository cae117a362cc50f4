// Package journaltest is a stand-in for systemd-journald's native-protocol
// socket, for testing code that logs to the journal without a journald:
// point the code under test at Server.Path instead of
// /run/systemd/journal/socket (newstyle.Options.SocketPath,
// journal.WriterOptions.SocketPath) and read back what it sent.
//
// A Server binds a datagram socket in t.TempDir() (NewServer) or at a
// path of your choice (NewServerAt, Listen) and reads it as journald does.
// It parses what a client sends exactly by journald's rules
// (src/journal/journald-native.c), but strictly: wherever journald would
// silently drop, ignore or mis-read input (an invalid field name, a binary
// field whose length runs past the datagram, a passed file that is not a
// sealed memfd or an unlinked file directly under /dev/shm, a descriptor
// with flags journald refuses), the Server records an error, so that a
// test fails instead of losing log lines in production without a trace.
// Assert Err() == nil at the end of a test.
//
// Entries come back as ordered field lists (Entry), repeated names and
// all, with Get, All and Count to read them; Wait waits for n of them.
// Entries passed as a memfd are read from it and say so (Received.ViaFD,
// Received.Sealed). Pause makes the Server stop reading, as a stalled
// journald does (its queue fills and senders wait or time out); Resume
// reads again; Close makes it vanish, as a stopped journald does (senders
// get ECONNREFUSED or ENOENT), and NewServerAt at the same path brings it
// back.
//
// Parse and Encode are the parser and a reference encoder on their own,
// for fuzz tests of an encoder.
package journaltest
