//go:build linux

package journal

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The system's systemd version, from its shared library's name, as each
// distribution lays it out.
func TestLibrariesVersion(t *testing.T) {
	for _, tt := range []struct {
		file string
		want int
	}{
		{"usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-257.so", 257}, // Debian 13
		{"usr/lib/systemd/libsystemd-shared-252.so", 252},                  // Debian 12
		{"usr/lib64/systemd/libsystemd-shared-257.7-1.fc42.so", 257},       // Fedora
		{"usr/lib/systemd/libsystemd-shared-x.so", 0},
		{"usr/lib/systemd/libsystemd-core-252.so", 0},
		{"", 0},
	} {
		root := t.TempDir()
		if tt.file != "" {
			p := filepath.Join(root, tt.file)
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			require.NoError(t, os.WriteFile(p, nil, 0o644))
		}
		assert.Equal(t, tt.want, librariesVersion(root), tt.file)
	}
}

// Batches go only to the system's journald sockets, and only when its
// systemd is one whose journald keeps every entry of a datagram.
func TestBatchable(t *testing.T) {
	v := systemdVersion()
	t.Logf("systemd %d found", v)
	journald := v > 0 && v <= 252
	for path, want := range map[string]bool{
		"/run/systemd/journal/socket":         journald,
		"/run/systemd/journal.billing/socket": journald,
		"/tmp/x/socket":                       false,
		"@abstract":                           false,
	} {
		assert.Equal(t, want, batchable(path), path)
	}
}
