package journal

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNamespaceSocketPath(t *testing.T) {
	valid := []struct{ name, want string }{
		{"", DefaultSocketPath},
		{"billing", "/run/systemd/journal.billing/socket"},
		{"foo-bar_1", "/run/systemd/journal.foo-bar_1/socket"},
		{"a.b:c@d", "/run/systemd/journal.a.b:c@d/socket"},
		{"x.", "/run/systemd/journal.x./socket"},
		{strings.Repeat("n", 222), "/run/systemd/journal." + strings.Repeat("n", 222) + "/socket"},
	}
	for _, tt := range valid {
		got, err := NamespaceSocketPath(tt.name)
		require.NoError(t, err, "NamespaceSocketPath(%q)", tt.name)
		assert.Equal(t, tt.want, got, "NamespaceSocketPath(%q)", tt.name)
	}

	// Names a configuration file could hold that systemd would refuse as
	// LogNamespace=, and that must not lead to any other socket.
	invalid := []struct{ name, why string }{
		{"probe/../../../../tmp/evil", "'/'"},
		{"a/b", "'/'"},
		{".", "starts with '.'"},
		{"..", "starts with '.'"},
		{".hidden", "starts with '.'"},
		{"@x", "starts with '@'"},
		{"a\x00b", `'\x00'`},
		{"\x00", `'\x00'`},
		{"a b", "' '"},
		{"tab\t", `'\t'`},
		{"new\nline", `'\n'`},
		{"quote\"", `'"'`},
		{"back\\slash", `'\\'`},
		{"glob*", "'*'"},
		{"glob?", "'?'"},
		{"glob[1]", "'['"},
		{"dollar$", "'$'"},
		{"ünicode", "byte"},
		{strings.Repeat("n", 223), "longer than 222 bytes"},
	}
	for _, tt := range invalid {
		t.Run(strings.ToValidUTF8(tt.name, "?"), func(t *testing.T) {
			got, err := NamespaceSocketPath(tt.name)
			require.ErrorIs(t, err, ErrInvalidNamespace)
			assert.Empty(t, got, "no path for an invalid name")
			assert.Contains(t, err.Error(), tt.why)
			assert.NotContains(t, err.Error(), "\x00", "a NUL is shown escaped, not printed")
		})
	}
}

func TestNamespaceWriter(t *testing.T) {
	// What a Writer for a namespace sends to.
	path, err := NamespaceSocketPath("billing")
	require.NoError(t, err)
	w, err := NewWriter(&WriterOptions{SocketPath: path})
	require.NoError(t, err)
	defer w.Close()
	assert.Equal(t, "/run/systemd/journal.billing/socket", w.SocketPath())
}

func TestInvalidSocketPath(t *testing.T) {
	for _, path := range []string{"@", "/run/a\x00b", "@a\x00", "/" + strings.Repeat("p", 108)} {
		w, err := NewWriter(&WriterOptions{SocketPath: path})
		assert.Nil(t, w)
		require.ErrorIs(t, err, ErrInvalidSocketPath, "NewWriter(SocketPath: %q)", path)
		assert.NotContains(t, err.Error(), "\x00")
		assert.False(t, errors.Is(err, ErrUnavailable))
	}
}
