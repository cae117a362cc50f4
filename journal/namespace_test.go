package journal

import "testing"

func TestNamespaceSocketPath(t *testing.T) {
	tests := []struct{ name, want string }{
		{"", DefaultSocketPath},
		{"billing", "/run/systemd/journal.billing/socket"},
		{"foo-bar_1", "/run/systemd/journal.foo-bar_1/socket"},
	}
	for _, tt := range tests {
		if got := NamespaceSocketPath(tt.name); got != tt.want {
			t.Errorf("NamespaceSocketPath(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	// What a Writer for a namespace sends to.
	w, err := NewWriter(&WriterOptions{SocketPath: NamespaceSocketPath("billing")})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if got, want := w.SocketPath(), "/run/systemd/journal.billing/socket"; got != want {
		t.Errorf("SocketPath() = %q, want %q", got, want)
	}
}
