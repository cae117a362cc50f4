// Package journald holds the limits systemd-journald puts on what it takes
// over its native protocol, in one place for the client (package journal,
// which refuses an entry journald would drop) and the stand-in (package
// journaltest, which models what journald stores).
//
// The values are journald's own (src/shared/journal-importer.h and
// src/journal/journald-native.c), read in the sources of systemd 252.39
// (Debian 12), 254.26 (Debian 12 backports) and 257.13 (Debian 13).
package journald

const (
	// DataSizeMax is DATA_SIZE_MAX: the most bytes of one field, counted
	// as NAME=value (a text field's whole line, a binary field's name,
	// '=' and value). A larger field makes journald drop its whole entry.
	DataSizeMax = 768 << 20

	// EntrySizeMax is ENTRY_SIZE_MAX: the most bytes of one entry,
	// counted as the sum of its NAME=value fields, one separator per
	// field, a trailer, and the _TRANSPORT=journal field journald adds.
	// It also bounds a file passed by descriptor (half of it for a file
	// that is not a sealed memfd, which journald copies).
	EntrySizeMax = 770 << 20

	// EntryFieldCountMax is ENTRY_FIELD_COUNT_MAX. journald checks it
	// before it adds each field (more than EntryFieldCountMax fields
	// already?), so it stores an entry of EntryFieldCountMax+1 fields
	// and drops one with more.
	EntryFieldCountMax = 1024

	// UnprivilegedFileSizeMax is ENTRY_SIZE_UNPRIV_MAX: journald 257 and
	// later take a file passed by descriptor of at most this many bytes
	// (half of it for a file that is not a sealed memfd) from a sender
	// that is not root, unless the sender is systemd-coredump. It came in
	// a 2026 security fix (upstream pull request 40571), also released in
	// the 257 stable series (Debian 13's 257.13 has it).
	UnprivilegedFileSizeMax = 32 << 20

	// TransportField is the field journald adds to every entry it takes
	// from its native socket, before its last size check.
	TransportField = "_TRANSPORT=journal"
)
